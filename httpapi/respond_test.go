package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/httpapi/openapitest"
)

func TestAppendJSONStringRoundTrips(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " and \ backslash`, "new\nline\ttab\rret", "\x00\x1f control",
		"<>& kept as is", "ünïcødé ✓", "bad \xff utf8", "line\u2028sep\u2029", "https://x/y?a=1&b=2",
	} {
		b := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Errorf("%q encodes to invalid JSON %s: %v", s, b, err)
			continue
		}
		want := strings.ToValidUTF8(s, "\ufffd")
		if got != want {
			t.Errorf("%q round-trips to %q", s, got)
		}
	}
	if got := string(appendJSONString(nil, "a&b<c>")); got != `"a&b<c>"` {
		t.Errorf("HTML characters escaped: %s", got)
	}
}

// errReader fails every read.
type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestReadBody(t *testing.T) {
	t.Run("a chunked body over the limit is 413", func(t *testing.T) {
		f := newFixture(t, func(c *Config, _ *Deps) { c.MaxBodyBytes = 100 })
		req := request(http.MethodPost, "/orders", "", "Content-Type", "application/json", "Authorization", "Bearer "+f.token("u123"))
		req.Body = io.NopCloser(strings.NewReader(`{"amount":1,"currency":"USD","items":[` + strings.Repeat(`{"sku":"A","quantity":1},`, 10) + `]}`))
		req.ContentLength = -1
		if rr := f.do(openapitest.Invalid(req)); rr.Code != 413 { // cut short, the body is not JSON
			t.Errorf("status %d, want 413", rr.Code)
		}
	})
	t.Run("a body that cannot be read is 400", func(t *testing.T) {
		f := newFixture(t)
		req := request(http.MethodPost, "/orders", "", "Content-Type", "application/json", "Authorization", "Bearer "+f.token("u123"))
		req.Body = io.NopCloser(errReader{})
		req.ContentLength = -1
		if rr := f.do(openapitest.Invalid(req)); rr.Code != 400 { // no body arrives
			t.Errorf("status %d, want 400", rr.Code)
		}
	})
}

func TestResponseControllerReachesTheConnection(t *testing.T) {
	f := newFixture(t)
	var flushErr error
	h := f.s.observe(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		flushErr = http.NewResponseController(w).Flush()
		_, _ = w.Write([]byte("x"))
	}))
	rr := httptestRecorder()
	h.ServeHTTP(rr, request(http.MethodGet, "/x", ""))
	if flushErr != nil || rr.Code != 200 || !rr.Flushed {
		t.Errorf("flush err %v, status %d, flushed %v", flushErr, rr.Code, rr.Flushed)
	}
}
