package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/httpapi"
)

// Following a status URL: how long a poll asks the server to hold it
// (Prefer: wait, for servers that long-poll), the wait between polls when
// the answer names none, how many failures in a row end the watch, and
// how long an event stream may stay silent before it is taken for dead
// (the server sends a heartbeat every 15 s; a connection cut without a
// FIN, by a NAT or a proxy, sends nothing at all) and resumed.
const (
	watchLongPoll    = "wait=25"
	watchPollDefault = time.Second
	watchMaxWait     = 30 * time.Second
	watchMaxFailures = 8
	watchStreamIdle  = 3 * httpapi.DefaultStreamHeartbeat
)

// watchCmd is `orderflow order watch ID|STATUS_URL`: it prints each
// status of the order with its time and exits by how the order ended.
func watchCmd(ctx context.Context, c *apiClient, cc clientConfig, args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: orderflow order watch ID|STATUS_URL")
	}
	statusURL := args[0]
	if !strings.Contains(statusURL, "://") {
		if err := c.authenticate(cc); err != nil {
			return err
		}
		var v httpapi.OrderView
		a, err := c.do(ctx, "GET", "/orders/"+url.PathEscape(statusURL), nil, nil)
		if err == nil {
			err = c.decode(a, &v, http.StatusOK)
		}
		if err != nil {
			return err
		}
		statusURL = v.StatusURL
	}
	var last orderflow.Status
	var final httpapi.OrderView
	err := c.follow(ctx, statusURL, func(v httpapi.OrderView) bool {
		if v.Status != last {
			last = v.Status
			fmt.Fprintln(stdout, statusLine(v))
		}
		final = v
		return v.Status.Terminal()
	})
	if err != nil {
		return err
	}
	return endOf(final)
}

// statusLine is "2026-12-02T03:40:01Z REJECTED Payment declined: ...".
func statusLine(v httpapi.OrderView) string {
	s := v.UpdatedAt.UTC().Format(time.RFC3339) + " " + string(v.Status)
	if f := v.Failure; f != nil {
		s += " " + f.Title + ": " + f.Detail
	}
	return s
}

// endOf is the exit of a watch that saw the order end as v.
func endOf(v httpapi.OrderView) error {
	switch v.Status {
	case orderflow.StatusCompleted:
		return nil
	case orderflow.StatusRejected:
		return &exitError{exitRejected, "order " + string(v.OrderID) + " was REJECTED"}
	case orderflow.StatusFailed:
		return &exitError{exitFailed, "order " + string(v.OrderID) + " FAILED"}
	}
	return &exitError{exitCancelled, "order " + string(v.OrderID) + " was CANCELLED"}
}

// follow calls seen with each status document of statusURL until seen
// returns true. Each request asks for server-sent events; a server that
// answers with the document instead is polled (If-None-Match, Prefer:
// wait, Retry-After). A broken stream is resumed with Last-Event-ID, and a
// 503 or a network failure is retried after a backoff, watchMaxFailures
// times in a row at most.
func (c *apiClient) follow(ctx context.Context, statusURL string, seen func(httpapi.OrderView) bool) error {
	var etag string
	sse := false // the server has answered with an event stream
	failures := 0
	for {
		wait, done, err := c.followOnce(ctx, statusURL, &etag, &sse, seen)
		switch {
		case done:
			return nil
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case err != nil && !retriable(err):
			return err
		case err != nil:
			failures++
			if failures >= watchMaxFailures {
				return fmt.Errorf("%w; gave up after %d tries", err, failures)
			}
			wait = max(wait, min(time.Duration(failures)*time.Second, watchMaxWait))
			fmt.Fprintf(c.log, "orderflow: %v; trying again in %s\n", err, wait)
		default:
			failures = 0
		}
		if err := c.sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// retriable reports whether a watch may ask again after err.
func retriable(err error) bool {
	var pe *problemError
	if errors.As(err, &pe) {
		return pe.status == http.StatusServiceUnavailable || pe.status == http.StatusTooManyRequests
	}
	var ee *exitError
	return !errors.As(err, &ee)
}

// followOnce makes one request to statusURL and hands its document(s) to
// seen. It returns how long to wait before the next request, and done
// when seen has had the last document.
func (c *apiClient) followOnce(ctx context.Context, statusURL string, etag *string, sse *bool, seen func(httpapi.OrderView) bool) (time.Duration, bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", statusURL, nil)
	if err != nil {
		return 0, false, &exitError{1, fmt.Sprintf("bad status URL %q: %v", statusURL, err)}
	}
	req.Header.Set("Accept", "text/event-stream, application/json;q=0.9")
	if *etag != "" {
		req.Header.Set("Last-Event-ID", *etag)
		if !*sse {
			req.Header.Set("If-None-Match", *etag)
			req.Header.Set("Prefer", watchLongPoll)
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, false, networkError(statusURL, err)
	}
	defer resp.Body.Close()
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	poll := retryAfter(resp.Header, watchPollDefault, watchMaxWait, time.Now())
	switch {
	case resp.StatusCode == http.StatusOK && mt == "text/event-stream":
		*sse = true
		body := &idleReader{r: resp.Body, idle: c.streamIdle, t: time.AfterFunc(c.streamIdle, cancel)}
		wait, done, err := c.readStream(body, etag, seen)
		if !body.t.Stop() && err != nil {
			err = fmt.Errorf("the status stream sent nothing for %s", c.streamIdle)
		}
		return wait, done, err
	case resp.StatusCode == http.StatusNotModified:
		return poll, false, nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, false, networkError(statusURL, err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, body: b}
	var v httpapi.OrderView
	if err := c.decode(a, &v, http.StatusOK); err != nil {
		return poll, false, err
	}
	*sse = false
	*etag = resp.Header.Get("ETag")
	return poll, seen(v), nil
}

// readStream hands each status event of an event stream to seen. A
// stream that ends before the last document is resumed after its retry
// time (or at once); one that ends with no event at all counts as a
// failure.
func (c *apiClient) readStream(body io.Reader, etag *string, seen func(httpapi.OrderView) bool) (time.Duration, bool, error) {
	var retry time.Duration
	done := false
	events := 0
	var bad error
	err := readSSE(body, *etag, func(ev sseEvent) bool {
		retry = ev.Retry
		events++
		if ev.Event != "status" && ev.Event != "message" {
			return true
		}
		var v httpapi.OrderView
		if err := json.Unmarshal([]byte(ev.Data), &v); err != nil {
			bad = fmt.Errorf("the status stream sent an event that is not a status document: %v", err)
			return false
		}
		*etag = ev.ID
		done = seen(v)
		return !done
	})
	switch {
	case done:
		return 0, true, nil
	case bad != nil:
		return retry, false, bad
	case err != nil:
		return retry, false, fmt.Errorf("the status stream broke: %v", err)
	case events > 0:
		return retry, false, nil // a server may end a stream now and then
	}
	return retry, false, errors.New("the status stream ended before the order did")
}

// idleReader reads r and restarts t (which ends the request) each time
// bytes arrive, so that a stream silent for idle ends.
type idleReader struct {
	r    io.Reader
	idle time.Duration
	t    *time.Timer
}

func (ir *idleReader) Read(p []byte) (int, error) {
	n, err := ir.r.Read(p)
	if n > 0 {
		ir.t.Reset(ir.idle)
	}
	return n, err
}
