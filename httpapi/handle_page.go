package httpapi

import (
	"net/http"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/web"
)

// handleOrderPage serves GET / and GET /app/{file}: the order page of
// package web and its scripts and styles, under the page's strict
// Content-Security-Policy. An unknown file is a 404 problem.
func (s *server) handleOrderPage() http.Handler {
	page := web.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", cspAPI)
		s.problem(w, r, orderflow.ENotFound, "no file at "+r.URL.Path, nil)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", cspWeb)
		page.ServeHTTP(w, r)
	})
}
