package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"unicode/utf8"
)

// Content-Security-Policy values. JSON answers allow nothing; the docs
// pages allow our own scripts and styles. Swagger UI and ReDoc set inline
// style attributes and inject <style> elements (hence 'unsafe-inline' for
// styles only), use data: images, and ReDoc runs its search index in a
// Worker built from a blob: URL.
const (
	cspAPI     = "default-src 'none'; frame-ancestors 'none'"
	cspSwagger = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
	cspRedoc   = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
	// cspWeb is the order page's: our own modules and stylesheet only, no
	// inline script or style at all, and requests to this server only.
	cspWeb = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

// headerValues are header values built once, so that the hot path sets
// them without allocating. They are never modified.
type headerValues struct {
	json, problemJSON, html               []string
	nosniff, noReferrer, deny             []string
	cspAPI, cspSwagger, cspRedoc, cspWeb  []string
	noStore, noCache, longCache, replayed []string
	identity                              []string
}

func newHeaderValues() headerValues {
	return headerValues{
		json:        []string{"application/json"},
		problemJSON: []string{"application/problem+json"},
		html:        []string{"text/html; charset=utf-8"},
		nosniff:     []string{"nosniff"},
		noReferrer:  []string{"no-referrer"},
		deny:        []string{"DENY"},
		cspAPI:      []string{cspAPI},
		cspSwagger:  []string{cspSwagger},
		cspRedoc:    []string{cspRedoc},
		cspWeb:      []string{cspWeb},
		noStore:     []string{"no-store"},
		noCache:     []string{"no-cache"},
		longCache:   []string{"public, max-age=604800"},
		replayed:    []string{"true"},
		identity:    []string{"identity"},
	}
}

// bufferPool recycles response and request body buffers.
type bufferPool struct{ p *sync.Pool }

func newBufferPool() bufferPool {
	return bufferPool{&sync.Pool{New: func() any { return new(bytes.Buffer) }}}
}

func (p bufferPool) get() *bytes.Buffer { return p.p.Get().(*bytes.Buffer) }

// put returns b to the pool unless it grew large (a big body would
// otherwise pin memory).
func (p bufferPool) put(b *bytes.Buffer) {
	if b.Cap() > 256<<10 {
		return
	}
	b.Reset()
	p.p.Put(b)
}

// writeJSON answers with v as JSON (no HTML escaping). HEAD gets headers only.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, contentType []string, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Our response types always encode; this is a bug.
		panic("httpapi: encode response: " + err.Error())
	}
	writeBody(w, r, status, contentType, buf.Bytes())
}

// writeBody answers with body of the given content type.
func writeBody(w http.ResponseWriter, r *http.Request, status int, contentType []string, body []byte) {
	h := w.Header()
	h["Content-Type"] = contentType
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// appendJSONString appends s as a JSON string. Unlike encoding/json it does
// not escape <, > and &, which keeps URLs readable.
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
				b = append(b, s[start:i]...)
				if r == utf8.RuneError {
					b = append(b, `\ufffd`...)
				} else {
					b = append(b, `\u202`...)
					b = append(b, hexDigits[r&0xF])
				}
				i += size
				start = i
				continue
			}
			i += size
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
