package httpapi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/orderflow/orderflow"
)

// streamFixture is a fixture served over a real listener, with a
// WatchHub that the test notifies after each change of the fake store.
type streamFixture struct {
	*fixture
	hub *orderflow.WatchHub
	srv *httptest.Server
}

func newStreamFixture(t *testing.T, mutate ...func(*Config, *Deps)) *streamFixture {
	t.Helper()
	hub := orderflow.NewWatchHub(orderflow.WatchOptions{})
	f := newFixture(t, append([]func(*Config, *Deps){func(c *Config, d *Deps) {
		d.Watcher = hub
		c.StreamHeartbeat = time.Hour
	}}, mutate...)...)
	srv := httptest.NewServer(f.h)
	t.Cleanup(srv.Close)
	return &streamFixture{fixture: f, hub: hub, srv: srv}
}

// move changes the stored order's status, as a processor would, and tells
// the watchers.
func (f *streamFixture) move(o *orderflow.Order, to orderflow.Status) {
	o.Status = to
	o.UpdatedAt = o.UpdatedAt.Add(time.Second)
	f.store.put(*o)
	f.hub.Notify(o.ID)
}

func (f *streamFixture) pending(user string) orderflow.Order {
	o := orderflow.Order{ID: f.nextID(), UserID: user, Amount: 100, Currency: "USD", Status: orderflow.StatusPending, CreatedAt: t0, UpdatedAt: t0}
	f.store.put(o)
	return o
}

// sseEvent is one server-sent event, or a comment (Comment true).
type sseEvent struct {
	ID, Event, Data string
	Comment         bool
}

// eventStream is an open event stream.
type eventStream struct {
	t      *testing.T
	resp   *http.Response
	sc     *bufio.Scanner
	cancel context.CancelFunc
	raw    strings.Builder
}

// open sends GET url with headers (name, value pairs) and returns the
// answer, with the stream still open on a 200.
func (f *streamFixture) open(t *testing.T, path string, headers ...string) *eventStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	es := &eventStream{t: t, resp: resp, sc: bufio.NewScanner(resp.Body), cancel: cancel}
	t.Cleanup(es.close)
	return es
}

func (es *eventStream) close() { es.cancel(); es.resp.Body.Close() }

// next returns the next event or comment; ok is false at the end of the
// stream.
func (es *eventStream) next() (ev sseEvent, ok bool) {
	es.t.Helper()
	seen := false
	for es.sc.Scan() {
		line := es.sc.Text()
		es.raw.WriteString(line + "\n")
		switch {
		case line == "" && seen:
			return ev, true
		case line == "":
		case strings.HasPrefix(line, ":"):
			return sseEvent{Comment: true}, true
		case strings.HasPrefix(line, "id: "):
			ev.ID, seen = line[4:], true
		case strings.HasPrefix(line, "event: "):
			ev.Event, seen = line[7:], true
		case strings.HasPrefix(line, "data: "):
			ev.Data, seen = line[6:], true
		default:
			es.t.Errorf("unexpected line %q", line)
		}
	}
	return ev, false
}

// nextStatus returns the next status event, skipping heartbeats; it fails
// the test at the end of the stream.
func (es *eventStream) nextStatus() sseEvent {
	es.t.Helper()
	for {
		ev, ok := es.next()
		if !ok {
			es.t.Fatalf("stream ended; read so far:\n%s", es.raw.String())
		}
		if !ev.Comment {
			return ev
		}
	}
}

// checkContract checks the stream's answer, read to its end, against
// openapi.json.
func (f *streamFixture) checkContract(t *testing.T, es *eventStream) {
	t.Helper()
	c, err := contract()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range c.Check(es.resp.Request, nil, es.resp, []byte(es.raw.String())) {
		t.Errorf("contract: %s", v)
	}
}

func TestStatusStream(t *testing.T) {
	exp := t0.Add(time.Hour)
	t.Run("streams every change and ends after the terminal document", func(t *testing.T) {
		f := newStreamFixture(t)
		o := f.pending("u1")
		es := f.open(t, f.statusPath(o.ID, exp), "Accept", "text/event-stream")
		if es.resp.StatusCode != 200 || es.resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("got %d %q, want 200 text/event-stream", es.resp.StatusCode, es.resp.Header.Get("Content-Type"))
		}
		want := []orderflow.Status{orderflow.StatusPending, orderflow.StatusProcessing, orderflow.StatusCompleted}
		for i, st := range want {
			if i > 0 {
				f.move(&o, st)
			}
			ev := es.nextStatus()
			if ev.Event != "status" || ev.ID != etagOf(o) || !strings.Contains(ev.Data, `"status":"`+string(st)+`"`) {
				t.Fatalf("event %d = %+v, want status %s with id %s", i, ev, st, etagOf(o))
			}
		}
		if ev, ok := es.next(); ok {
			t.Fatalf("after the terminal document got %+v, want the end of the stream", ev)
		}
		f.checkContract(t, es)
	})
	t.Run("Last-Event-ID of the current document resumes without repeating it", func(t *testing.T) {
		f := newStreamFixture(t)
		o := f.pending("u1")
		es := f.open(t, f.statusPath(o.ID, exp), "Accept", "text/event-stream", "Last-Event-ID", etagOf(o))
		f.move(&o, orderflow.StatusProcessing)
		if ev := es.nextStatus(); ev.ID != etagOf(o) {
			t.Fatalf("first event %+v, want the PROCESSING document %s", ev, etagOf(o))
		}
	})
	t.Run("Last-Event-ID of an older document sends the current one", func(t *testing.T) {
		f := newStreamFixture(t)
		o := f.pending("u1")
		old := etagOf(o)
		f.move(&o, orderflow.StatusProcessing)
		es := f.open(t, f.statusPath(o.ID, exp), "Accept", "text/event-stream", "Last-Event-ID", old)
		if ev := es.nextStatus(); ev.ID != etagOf(o) {
			t.Fatalf("first event %+v, want %s", ev, etagOf(o))
		}
	})
	t.Run("Last-Event-ID of the terminal document gets 204", func(t *testing.T) {
		f := newStreamFixture(t)
		o := f.pending("u1")
		f.move(&o, orderflow.StatusRejected)
		es := f.open(t, f.statusPath(o.ID, exp), "Accept", "text/event-stream", "Last-Event-ID", etagOf(o))
		if es.resp.StatusCode != http.StatusNoContent {
			t.Fatalf("got %d, want 204", es.resp.StatusCode)
		}
		f.checkContract(t, es)
	})
	t.Run("heartbeats keep an idle stream open past the request timeout", func(t *testing.T) {
		f := newStreamFixture(t, func(c *Config, _ *Deps) {
			c.StreamHeartbeat = 20 * time.Millisecond
			c.RequestTimeout = 50 * time.Millisecond
		})
		o := f.pending("u1")
		es := f.open(t, f.statusPath(o.ID, exp), "Accept", "text/event-stream")
		es.nextStatus()
		for i := 0; i < 5; i++ { // 100 ms of heartbeats: twice the request timeout
			if ev, ok := es.next(); !ok || !ev.Comment {
				t.Fatalf("heartbeat %d: got %+v (open %v), want a comment", i, ev, ok)
			}
		}
		f.move(&o, orderflow.StatusCompleted)
		if ev := es.nextStatus(); !strings.Contains(ev.Data, "COMPLETED") {
			t.Fatalf("got %+v, want COMPLETED", ev)
		}
	})
	t.Run("the stream ends at the URL's expiry", func(t *testing.T) {
		f := newStreamFixture(t)
		o := f.pending("u1")
		es := f.open(t, f.statusPath(o.ID, f.clock.Now().Add(time.Second)), "Accept", "text/event-stream")
		es.nextStatus()
		if ev, ok := es.next(); ok {
			t.Fatalf("got %+v, want the stream to end at the expiry", ev)
		}
	})
	t.Run("an expired URL is 403, not a stream", func(t *testing.T) {
		f := newStreamFixture(t)
		o := f.pending("u1")
		rr := f.do(request(http.MethodGet, f.statusPath(o.ID, t0.Add(-time.Second)), "", "Accept", "text/event-stream"))
		if rr.Code != http.StatusForbidden {
			t.Fatalf("got %d, want 403", rr.Code)
		}
		problemOf(t, rr)
	})
}

func TestStatusLongPoll(t *testing.T) {
	exp := t0.Add(time.Hour)
	t.Run("answers 200 as soon as the document changes", func(t *testing.T) {
		f := newStreamFixture(t)
		o := f.pending("u1")
		old := etagOf(o)
		go func() {
			// Once the long-poll holds the request (read, compared), move the order.
			for testutil.ToFloat64(f.s.streams.gauge) == 0 {
				runtime.Gosched()
			}
			f.move(&o, orderflow.StatusProcessing)
		}()
		rr := f.do(request(http.MethodGet, f.statusPath(o.ID, exp), "", "If-None-Match", old, "Prefer", "wait=30"))
		if rr.Code != 200 || rr.Header().Get("ETag") == old || !strings.Contains(rr.Body.String(), "PROCESSING") {
			t.Fatalf("got %d ETag %s %s, want 200 with the PROCESSING document", rr.Code, rr.Header().Get("ETag"), rr.Body)
		}
		if got := rr.Header().Get("Preference-Applied"); got != "wait=30" {
			t.Errorf("Preference-Applied = %q, want wait=30", got)
		}
	})
	t.Run("answers 304 when the wait runs out", func(t *testing.T) {
		f := newStreamFixture(t)
		o := f.pending("u1")
		rr := f.do(request(http.MethodGet, f.statusPath(o.ID, exp), "", "If-None-Match", etagOf(o), "Prefer", "wait=1"))
		if rr.Code != http.StatusNotModified || rr.Header().Get("Preference-Applied") != "wait=1" {
			t.Fatalf("got %d Preference-Applied %q, want 304 wait=1", rr.Code, rr.Header().Get("Preference-Applied"))
		}
	})
	t.Run("the wait is capped at 60 seconds", func(t *testing.T) {
		f := newStreamFixture(t)
		o := f.pending("u1")
		old := etagOf(o)
		go func() {
			for testutil.ToFloat64(f.s.streams.gauge) == 0 {
				runtime.Gosched()
			}
			f.move(&o, orderflow.StatusProcessing)
		}()
		rr := f.do(request(http.MethodGet, f.statusPath(o.ID, exp), "", "If-None-Match", old, "Prefer", "wait=3600"))
		if got := rr.Header().Get("Preference-Applied"); rr.Code != 200 || got != "wait=60" {
			t.Fatalf("got %d Preference-Applied %q, want 200 wait=60", rr.Code, got)
		}
	})
	for _, prefer := range []string{"wait=abc", "wait=-5", "wait=0", "respond-async", "wait"} {
		t.Run("Prefer "+prefer+" is ignored: the answer comes at once", func(t *testing.T) {
			f := newStreamFixture(t)
			o := f.pending("u1")
			rr := f.do(request(http.MethodGet, f.statusPath(o.ID, exp), "", "If-None-Match", etagOf(o), "Prefer", prefer))
			if rr.Code != http.StatusNotModified || rr.Header().Get("Preference-Applied") != "" {
				t.Fatalf("got %d Preference-Applied %q, want 304 without", rr.Code, rr.Header().Get("Preference-Applied"))
			}
		})
	}
	t.Run("a stale If-None-Match gets the document at once", func(t *testing.T) {
		f := newStreamFixture(t)
		o := f.pending("u1")
		rr := f.do(request(http.MethodGet, f.statusPath(o.ID, exp), "", "If-None-Match", `"other"`, "Prefer", "wait=30"))
		if rr.Code != 200 || rr.Header().Get("Preference-Applied") != "" {
			t.Fatalf("got %d Preference-Applied %q, want 200 without", rr.Code, rr.Header().Get("Preference-Applied"))
		}
	})
}

func TestStatusStreamLimits(t *testing.T) {
	exp := t0.Add(time.Hour)
	f := newStreamFixture(t, func(c *Config, _ *Deps) { c.MaxStreamsPerUser, c.MaxStreams = 1, 2 })
	a1, a2, b, c := f.pending("alice"), f.pending("alice"), f.pending("bob"), f.pending("carol")
	first := f.open(t, f.statusPath(a1.ID, exp), "Accept", "text/event-stream")
	first.nextStatus()

	rr := f.do(request(http.MethodGet, f.statusPath(a2.ID, exp), "", "Accept", "text/event-stream"))
	if rr.Code != http.StatusTooManyRequests || rr.Header().Get("Retry-After") == "" {
		t.Fatalf("a second stream of alice: got %d Retry-After %q, want 429 with Retry-After", rr.Code, rr.Header().Get("Retry-After"))
	}
	if p := problemOf(t, rr); !strings.HasSuffix(p.Type, "/too-many-streams") {
		t.Errorf("type %s, want too-many-streams", p.Type)
	}
	rr = f.do(request(http.MethodGet, f.statusPath(a2.ID, exp), "", "If-None-Match", etagOf(a2), "Prefer", "wait=5"))
	if rr.Code != http.StatusTooManyRequests {
		t.Errorf("a long-poll of alice: got %d, want 429 (long-polls count as streams)", rr.Code)
	}
	second := f.open(t, f.statusPath(b.ID, exp), "Accept", "text/event-stream")
	second.nextStatus()
	rr = f.do(request(http.MethodGet, f.statusPath(c.ID, exp), "", "Accept", "text/event-stream"))
	if rr.Code != http.StatusServiceUnavailable || rr.Header().Get("Retry-After") == "" {
		t.Fatalf("a third stream: got %d, want 503 with Retry-After", rr.Code)
	}
	if p := problemOf(t, rr); !strings.HasSuffix(p.Type, "/streams-full") {
		t.Errorf("type %s, want streams-full", p.Type)
	}
	if rr := f.do(request(http.MethodGet, f.statusPath(c.ID, exp), "")); rr.Code != 200 {
		t.Errorf("polling beside full streams: got %d, want 200", rr.Code)
	}
	first.close()
	waitFor(t, "alice's place is given back", func() bool {
		return testutil.ToFloat64(f.s.streams.gauge) == 1
	})
	third := f.open(t, f.statusPath(a2.ID, exp), "Accept", "text/event-stream")
	third.nextStatus()
}

func TestStatusStreamsLeakNothing(t *testing.T) {
	exp := t0.Add(time.Hour)
	f := newStreamFixture(t, func(c *Config, _ *Deps) { c.MaxStreamsPerUser = 1000 })
	o := f.pending("u1")
	f.srv.Client().Get(f.srv.URL + "/health") // warm the client's connection pool
	base := runtime.NumGoroutine()
	const clients = 100
	streams := make([]*eventStream, clients)
	for i := range streams {
		streams[i] = f.open(t, f.statusPath(o.ID, exp), "Accept", "text/event-stream")
		streams[i].nextStatus()
	}
	if got := testutil.ToFloat64(f.s.streams.gauge); got != clients {
		t.Fatalf("status_streams = %v with %d open, want %d", got, clients, clients)
	}
	for _, es := range streams {
		es.close() // the client vanishes without reading on
	}
	f.srv.CloseClientConnections()
	waitFor(t, "every stream ended", func() bool {
		return testutil.ToFloat64(f.s.streams.gauge) == 0 && f.hub.Watched() == 0
	})
	waitFor(t, "the goroutines are back to where they were", func() bool {
		return runtime.NumGoroutine() <= base
	})
}

// waitFor waits up to 10 s for cond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// smallBuffers shrinks the kernel send buffer of each accepted
// connection, so that a reader who stops reading blocks the server's
// writes after a few kilobytes.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

func TestStatusStreamDropsSlowReader(t *testing.T) {
	exp := t0.Add(time.Hour)
	f := newStreamFixture(t, func(c *Config, _ *Deps) {
		c.StreamHeartbeat = 100 * time.Microsecond // a flood of comments, to fill the buffers fast
		c.StreamWriteTimeout = 200 * time.Millisecond
	})
	srv := httptest.NewUnstartedServer(f.h)
	srv.Listener = smallBuffers{srv.Listener}
	srv.Start()
	t.Cleanup(srv.Close)
	o := f.pending("u1")

	// A client with a small receive window that reads the headers and
	// the first event, then reads nothing more and keeps the connection.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	conn, err := d.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n", f.statusPath(o.ID, exp))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("open the stream: %v, %v", resp, err)
	}
	waitFor(t, "the stream is held", func() bool { return testutil.ToFloat64(f.s.streams.gauge) == 1 })

	waitFor(t, "the server drops the reader that stopped reading", func() bool {
		return testutil.ToFloat64(f.s.streams.gauge) == 0 && f.hub.Watched() == 0
	})
}
