package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/orderflow/orderflow"
)

// handleLogin serves POST /login: it checks the credentials (any valid
// user_id in dev mode) and issues a bearer token. Unknown body fields are
// ignored, so the spec's {"user_id":"u123","amount":1} works unchanged.
// Attempts are rate limited per client IP.
func (s *server) handleLogin() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d, _, _ := s.loginLim.take(r.Context(), s.clients.of(r), s.now()); !d.Allowed {
			secs := max(1, ceilSeconds(d.RetryAfter))
			w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
			s.problem(w, r, codeRateLimited, "too many login attempts from this address; retry in "+strconv.FormatInt(secs, 10)+" s", nil)
			return
		}
		body, err := s.readBody(w, r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		var req LoginRequest
		empty := len(body) == 0
		if err = json.Unmarshal(body, &req); err != nil {
			err = decodeError(body, err)
		}
		if empty {
			s.problem(w, r, codeBadRequest, `request body is empty; send {"user_id":"..."}`, nil)
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		switch {
		case req.UserID == "":
			s.problem(w, r, orderflow.EInvalid, "user_id is required", []FieldError{{Field: "user_id", Detail: "user_id is required"}})
			return
		case s.cfg.DevLogin && !orderflow.ValidUserID(req.UserID):
			detail := "user_id must be 1-128 letters, digits or ._@+- starting with a letter or digit"
			s.problem(w, r, orderflow.EInvalid, detail, []FieldError{{Field: "user_id", Detail: detail}})
			return
		case !s.cfg.DevLogin && !s.cfg.Users.Check(req.UserID, req.Password):
			s.problem(w, r, codeBadCredentials, "unknown user_id or wrong password", nil)
			return
		}
		tok, ttl, err := s.cfg.Tokens.Issue(req.UserID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if rec, ok := w.(*recorder); ok {
			rec.userID = req.UserID
		}
		w.Header().Set("Pragma", "no-cache") // RFC 6749 §5.1
		writeJSON(w, r, http.StatusOK, contentJSON, LoginResponse{AccessToken: tok, TokenType: "bearer", ExpiresIn: int64(ttl / time.Second)})
	})
}
