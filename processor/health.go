package processor

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/orderflow/orderflow"
)

// Handler serves the processor's probes and metrics:
//
//	GET /health   200 {"status":"healthy"} while the process runs (liveness)
//	GET /ready    200 {"status":"ready"}, or 503 application/problem+json
//	              when ready returns an error (queue or store unreachable)
//	GET /metrics  the Prometheus metrics gathered from g
//
// Other paths get a 404 problem document. Like the api, every answer
// carries X-Request-ID (the client's if sane, else a new one) and every
// problem names it in request_id.
func Handler(ready func(context.Context) error, g prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/health", getOnly(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, "application/json", map[string]string{"status": "healthy"})
	}))
	mux.Handle("/ready", getOnly(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			// The api's /ready says the same: why, unless it is a bug.
			detail := "not ready: a dependency is unreachable"
			if orderflow.ErrorCode(err) != orderflow.EInternal {
				detail = "not ready: " + orderflow.ErrorDetail(err)
			}
			w.Header().Set("Retry-After", "5")
			writeProblem(w, r, http.StatusServiceUnavailable, "not-ready", "Not ready", detail)
			return
		}
		writeJSON(w, http.StatusOK, "application/json", map[string]string{"status": "ready"})
	}))
	mux.Handle("/metrics", getOnly(promhttp.HandlerFor(g, promhttp.HandlerOpts{}).ServeHTTP))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, http.StatusNotFound, "not-found", "Not found", "no such endpoint; try /health, /ready or /metrics")
	})
	return withRequestID(orderflow.NewRequestIDs(), mux)
}

// getOnly answers methods other than GET and HEAD with a 405 problem.
func getOnly(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeProblem(w, r, http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed", r.Method+" is not allowed here; use GET")
			return
		}
		h(w, r)
	})
}

// writeProblem writes an RFC 9457 problem document about r, with the
// fields of the api's: instance (the path) and request_id.
func writeProblem(w http.ResponseWriter, r *http.Request, status int, slug, title, detail string) {
	writeJSON(w, status, "application/problem+json", map[string]any{
		"type":       "https://orderflow.dev/problems/" + slug,
		"title":      title,
		"status":     status,
		"detail":     detail,
		"instance":   r.URL.Path,
		"request_id": orderflow.RequestID(r.Context()),
	})
}

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // a failed write means the client left
}
