package httpapi

import (
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// readBody checks that the request carries JSON and reads its body, at most
// MaxBodyBytes. Errors: 415 for another content type or a content coding
// other than identity (the body is not decompressed: RFC 9110 §15.5.16),
// 413 for a larger body.
func (s *server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if !isJSONContentType(r.Header.Get("Content-Type")) {
		return nil, newClientError(codeUnsupportedMedia, "", "Content-Type must be application/json")
	}
	if !isIdentityCoding(r.Header.Values("Content-Encoding")) {
		w.Header().Set("Accept-Encoding", "identity") // RFC 7694 §3: the codings the server takes
		return nil, newClientError(codeUnsupportedMedia, "", "Content-Encoding must be identity (or absent): send the body uncompressed")
	}
	limit := s.cfg.MaxBodyBytes
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	// The body must arrive within the request's deadline (RequestTimeout),
	// not just the server's ReadTimeout, which bounds every request alike.
	if deadline, ok := r.Context().Deadline(); ok {
		_ = http.NewResponseController(w).SetReadDeadline(deadline) // not supported by test recorders
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return nil, tooLarge(limit)
		case errors.Is(err, os.ErrDeadlineExceeded):
			w.Header().Set("Connection", "close") // the rest of the body is not awaited
			return nil, newClientError(codeRequestTimeout, "", "the request body did not arrive within "+s.cfg.RequestTimeout.String())
		}
		return nil, newClientError(codeBadRequest, "", "could not read the request body")
	}
	return body, nil
}

func tooLarge(limit int64) error {
	return newClientError(codeTooLarge, "", "request body exceeds "+strconv.FormatInt(limit, 10)+" bytes")
}

// isJSONContentType reports whether v is application/json, with or without
// parameters such as charset.
func isJSONContentType(v string) bool {
	mt, _, _ := strings.Cut(v, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/json")
}

// isIdentityCoding reports whether the Content-Encoding values vs leave
// the body as it is: none, empty, or identity (case-insensitive).
func isIdentityCoding(vs []string) bool {
	for _, v := range vs {
		if v = strings.TrimSpace(v); v != "" && !strings.EqualFold(v, "identity") {
			return false
		}
	}
	return true
}
