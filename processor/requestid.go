package processor

import (
	"net/http"

	"github.com/orderflow/orderflow"
)

// withRequestID gives every request to the processor's port its id by the
// api's rule: the client's X-Request-ID if orderflow.ValidRequestID takes
// it, else a new one from ids. The id is set on the answer and carried by
// the request's context, for problems and logs.
func withRequestID(ids *orderflow.RequestIDs, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rid := ids.Take(r.Header.Get("X-Request-Id"))
		w.Header()["X-Request-Id"] = []string{rid}
		next.ServeHTTP(w, r.WithContext(orderflow.WithRequestID(r.Context(), rid)))
	})
}
