package httpapi

import (
	"net/http"

	"github.com/orderflow/orderflow"
)

// recorder wraps the ResponseWriter to learn the status and size of the
// response and the authenticated user, for metrics and the request log.
// It also turns the mux's plain-text 404 and 405 answers (for requests that
// matched no route) into problem documents.
type recorder struct {
	http.ResponseWriter
	s           *server
	req         *http.Request
	status      int
	bytes       int64
	wroteHeader bool
	discard     bool // the mux's own body is replaced by a problem
	userID      string
}

// WriteHeader records code and sends it.
func (rec *recorder) WriteHeader(code int) {
	if rec.wroteHeader {
		return
	}
	if code >= 100 && code < 200 {
		rec.ResponseWriter.WriteHeader(code)
		return
	}
	rec.wroteHeader = true
	rec.status = code
	if rec.req.Pattern == "" && (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) {
		rec.writeRouteProblem(code)
		return
	}
	rec.ResponseWriter.WriteHeader(code)
}

// Write counts the bytes written.
func (rec *recorder) Write(p []byte) (int, error) {
	if !rec.wroteHeader {
		rec.WriteHeader(http.StatusOK)
	}
	if rec.discard {
		return len(p), nil
	}
	n, err := rec.ResponseWriter.Write(p)
	rec.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// writeRouteProblem answers an unmatched request with a problem document
// instead of the mux's plain text.
func (rec *recorder) writeRouteProblem(code int) {
	r := rec.req
	k := kindOf(codeMethodNotAllowed)
	detail := "method " + r.Method + " is not allowed on " + r.URL.Path + "; allowed: " + rec.Header().Get("Allow")
	if code == http.StatusNotFound {
		k = kindOf(orderflow.ENotFound)
		detail = "no resource at " + r.URL.Path
	}
	rec.discard = true
	writeJSON(rawWriter{rec}, r, k.status, contentProblem, rec.s.newProblem(r, k, detail, nil))
}

// rawWriter writes through to the recorder's underlying writer while still
// counting bytes.
type rawWriter struct{ rec *recorder }

func (w rawWriter) Header() http.Header { return w.rec.ResponseWriter.Header() }
func (w rawWriter) WriteHeader(code int) {
	w.rec.ResponseWriter.WriteHeader(code)
}
func (w rawWriter) Write(p []byte) (int, error) {
	n, err := w.rec.ResponseWriter.Write(p)
	w.rec.bytes += int64(n)
	return n, err
}
