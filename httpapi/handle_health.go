package httpapi

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/orderflow/orderflow"
)

// readyRetryAfter is the Retry-After of a 503 from /ready, in seconds.
const readyRetryAfter = "5"

// healthView is the body of a healthy /health or /ready.
type healthView struct {
	Status string `json:"status"`
}

// handleHealth serves GET /health (liveness): the process answers.
func (s *server) handleHealth() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, r, http.StatusOK, contentJSON, healthView{Status: "healthy"})
	})
}

// handleReady serves GET /ready (readiness): the queue and store are
// reachable, as Deps.Ready reports. Not ready is a 503 problem with
// Retry-After.
func (s *server) handleReady() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.ready(r.Context()); err != nil {
			s.logs.Log(r.Context(), slog.LevelWarn, "not ready", "not ready", "err", err)
			detail := "not ready: a dependency is unreachable"
			if orderflow.ErrorCode(err) != orderflow.EInternal {
				detail = "not ready: " + orderflow.ErrorDetail(err)
			}
			w.Header().Set("Retry-After", readyRetryAfter)
			s.problem(w, r, codeNotReady, detail, nil)
			return
		}
		writeJSON(w, r, http.StatusOK, contentJSON, healthView{Status: "ready"})
	})
}

// handleMetrics serves GET /metrics in the Prometheus exposition format.
func (s *server) handleMetrics() http.Handler {
	return promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{})
}
