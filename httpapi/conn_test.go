package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/httpapi/openapitest"
)

// serve runs the fixture's handler on a real listener, as NewHTTPServer
// configures it, for tests of what only a connection shows. It returns the
// address.
func (f *fixture) serve(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewHTTPServer(ln.Addr().String(), f.h)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// rawExchange writes raw to addr as the whole request and reads the answer,
// waiting at most within; the exchange is checked against openapi.json.
func rawExchange(t *testing.T, addr, raw string, within time.Duration) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	return readAnswer(t, conn, raw, false, within)
}

// readAnswer reads the answer to the raw request sent on conn, waiting at
// most within, and checks the exchange against openapi.json; offContract
// marks a request that breaks it on purpose.
func readAnswer(t *testing.T, conn net.Conn, raw string, offContract bool, within time.Duration) (*http.Response, []byte) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(within))
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatalf("the test's request does not parse: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatalf("no answer within %s: %v", within, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("answer body: %v", err)
	}
	reqBody, _ := io.ReadAll(req.Body)
	if offContract {
		req = openapitest.Invalid(req)
	}
	c, err := contract()
	if err != nil {
		t.Fatal(err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	for _, v := range c.Check(req, reqBody, resp, body) {
		t.Errorf("contract: %s", v)
	}
	return resp, body
}

func TestABodyThatNeverFinishesIsCutAtTheRequestTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond // the server's ReadTimeout is 15 s
	for _, path := range []string{"/orders", "/login"} {
		t.Run(path, func(t *testing.T) {
			f := newFixture(t, func(c *Config, _ *Deps) { c.RequestTimeout = timeout })
			conn, err := net.Dial("tcp", f.serve(t))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			head := "POST " + path + " HTTP/1.1\r\nHost: api.test\r\nContent-Type: application/json\r\nAuthorization: Bearer " +
				f.token("u123") + "\r\nContent-Length: 100\r\n\r\n"
			part := `{"amount":`
			if _, err := io.WriteString(conn, head+part); err != nil {
				t.Fatal(err)
			}
			// The rest of the body never comes. The answer must come long
			// before the server's 15 s ReadTimeout would close the connection.
			// (The request checked against openapi.json is the one the server
			// waits for, padded to its length: not JSON.)
			resp, body := readAnswer(t, conn, head+part+strings.Repeat(" ", 100-len(part)), true, 5*time.Second)
			if resp.StatusCode != http.StatusRequestTimeout || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("status %d %q, want a 408 problem; body %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			if !resp.Close {
				t.Error("the connection stays open after a cut body")
			}
		})
	}
}
