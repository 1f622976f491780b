package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/orderflow/orderflow/httpapi"
)

// Exit codes of the client commands besides 0 and 1 (any failure): how
// a watched order ended other than COMPLETED.
const (
	exitRejected  = 2
	exitFailed    = 3
	exitCancelled = 4
)

// exitError ends the program with code; main prints its message.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// apiClient talks to the api at base for the client commands. Answers
// are decoded into httpapi's wire types, the ones the handlers encode.
type apiClient struct {
	base  string
	token string // bearer token for /orders; empty for /login and status URLs
	http  *http.Client
	// sleep waits d or until ctx ends; tests replace it to see the waits.
	sleep func(ctx context.Context, d time.Duration) error
	log   io.Writer // remarks for the person: retries, reconnects
	// streamIdle is how long a followed event stream may send nothing
	// (watchStreamIdle; tests shorten it).
	streamIdle time.Duration
}

func newAPIClient(cc clientConfig, log io.Writer) *apiClient {
	return &apiClient{
		base: cc.URL,
		http: &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: time.Minute, // beyond a long poll's wait
		}},
		sleep:      sleepCtx,
		log:        log,
		streamIdle: watchStreamIdle,
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// answer is a response with its body read.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request to target (a path under base, or an absolute URL)
// with body (nil, or a value encoded as JSON) and reads the answer. An
// error is a transport failure, made readable by networkError.
func (c *apiClient) do(ctx context.Context, method, target string, header http.Header, body any) (answer, error) {
	if !strings.Contains(target, "://") {
		target = c.base + target
	}
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return answer{}, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, r)
	if err != nil {
		return answer{}, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept-Encoding", "identity")
	if c.token != "" && strings.HasPrefix(target, c.base+"/") {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return answer{}, networkError(target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return answer{}, networkError(target, err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// decode reads a successful answer (one of the statuses ok) into out, and
// turns any other into an error: a *problemError for a problem document.
func (c *apiClient) decode(a answer, out any, ok ...int) error {
	for _, s := range ok {
		if a.status == s {
			if out == nil {
				return nil
			}
			if err := json.Unmarshal(a.body, out); err != nil {
				return fmt.Errorf("the server's %d answer is not what orderflow expects: %v", a.status, err)
			}
			return nil
		}
	}
	return c.failure(a)
}

// failure is the error for an unsuccessful answer a.
func (c *apiClient) failure(a answer) error {
	var p httpapi.Problem
	mt, _, _ := mime.ParseMediaType(a.header.Get("Content-Type"))
	if strings.HasSuffix(mt, "json") && json.Unmarshal(a.body, &p) == nil && p.Title != "" {
		pe := &problemError{status: a.status, p: p}
		if a.status == http.StatusUnauthorized && c.token != "" {
			pe.hint = "run orderflow login --user U to get a new token"
		}
		return pe
	}
	msg := fmt.Sprintf("the server answered %d %s", a.status, http.StatusText(a.status))
	if line, _, _ := strings.Cut(string(a.body), "\n"); line != "" && !strings.HasSuffix(mt, "json") && len(line) < 200 {
		msg += ": " + line
	}
	return errors.New(msg)
}

// problemError is an RFC 9457 problem answered by the api, shown as its
// title and detail (and the fields at fault), never as raw JSON.
type problemError struct {
	status int
	p      httpapi.Problem
	hint   string
}

func (e *problemError) Error() string {
	var b strings.Builder
	b.WriteString(e.p.Title)
	if e.p.Detail != "" {
		b.WriteString(": " + e.p.Detail)
	}
	for _, f := range e.p.Errors {
		if f.Detail != e.p.Detail {
			fmt.Fprintf(&b, "\n  %s: %s", f.Field, f.Detail)
		}
	}
	if e.hint != "" {
		b.WriteString("\n" + e.hint)
	}
	if e.p.RequestID != "" {
		fmt.Fprintf(&b, "\n(HTTP %d, request id %s)", e.status, e.p.RequestID)
	}
	return b.String()
}

// is reports whether the problem's type ends in slug (its stable name).
func (e *problemError) is(slug string) bool { return strings.HasSuffix(e.p.Type, "/"+slug) }

// networkError says in words what went wrong on the way to target.
func networkError(target string, err error) error {
	host := target
	if u, perr := url.Parse(target); perr == nil {
		host = u.Scheme + "://" + u.Host
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return &timeoutError{fmt.Sprintf("no answer from %s in time", host)}
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot connect to %s (connection refused): is orderflow running there? ORDERFLOW_URL names the api", host)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("request to %s failed: %v", host, err)
}

// timeoutError is a request that got no answer in time: it may or may
// not have been served.
type timeoutError struct{ msg string }

func (e *timeoutError) Error() string { return e.msg }

// retryAfter is the wait an answer asks for (Retry-After in seconds or as
// an HTTP date), else def, at most limit.
func retryAfter(h http.Header, def, limit time.Duration, now time.Time) time.Duration {
	d := def
	if v := h.Get("Retry-After"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			d = time.Duration(n) * time.Second
		} else if t, err := http.ParseTime(v); err == nil {
			d = max(0, t.Sub(now))
		}
	}
	return min(d, limit)
}
