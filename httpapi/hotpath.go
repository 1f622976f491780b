package httpapi

import (
	"net/http"
	"strconv"
	"unicode/utf8"
)

// The measured hot route is POST /orders and the status URL's GET (with
// the middleware every request passes): cmd/bench drives it, and a
// served order costs the handler 42 µs of its 214 µs of server CPU
// (docs/performance.md). Only that route writes its headers from values
// built once (headerValues) and its answer with writeBody, and POST
// /orders writes its 202 body by hand (appendJSONString) instead of
// through encoding/json; every other answer is encoding/json and
// Header().Set (writeJSON, writeBytes). The bearer token cache
// (tokencache.go) is the other measured piece.

// headerValues are header values built once, so that the hot route sets
// them without allocating. They are never modified.
type headerValues struct {
	json                      []string
	nosniff, noReferrer, deny []string
	cspAPI, noStore, replayed []string
}

func newHeaderValues() headerValues {
	return headerValues{
		json:       []string{contentJSON},
		nosniff:    []string{"nosniff"},
		noReferrer: []string{"no-referrer"},
		deny:       []string{"DENY"},
		cspAPI:     []string{cspAPI},
		noStore:    []string{"no-store"},
		replayed:   []string{"true"},
	}
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
