package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
)

// Content-Security-Policy values. JSON answers allow nothing; the docs
// pages allow our own scripts and styles. Swagger UI sets inline style
// attributes and injects <style> elements (hence 'unsafe-inline' for
// styles only) and uses data: images.
const (
	cspAPI     = "default-src 'none'; frame-ancestors 'none'"
	cspSwagger = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
	// cspWeb is the order page's: our own modules and stylesheet only, no
	// inline script or style at all, and requests to this server only.
	cspWeb = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

// Content types of the answers.
const (
	contentJSON    = "application/json"
	contentProblem = "application/problem+json"
	contentHTML    = "text/html; charset=utf-8"
)

// writeJSON answers with v as JSON (no HTML escaping). HEAD gets headers only.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, contentType string, v any) {
	writeBytes(w, r, status, contentType, encodeJSON(v))
}

// encodeJSON is v as JSON followed by a newline, without HTML escaping
// (which keeps URLs readable).
func encodeJSON(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Our response types always encode; this is a bug.
		panic("httpapi: encode response: " + err.Error())
	}
	return buf.Bytes()
}

// writeBytes answers with body of the given content type. HEAD gets
// headers only.
func writeBytes(w http.ResponseWriter, r *http.Request, status int, contentType string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
