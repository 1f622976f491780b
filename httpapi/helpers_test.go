package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow/logtest"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/auth"
	"github.com/orderflow/orderflow/httpapi/openapitest"
)

// t0 is the fixed start of the test clock.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeStore is an in-memory Intake and Orders with the idempotency rules
// of orderflow.Intake.Accept.
type fakeStore struct {
	mu      sync.Mutex
	orders  map[orderflow.OrderID]orderflow.Order
	keys    map[string]orderflow.IdempotencyKey
	keyed   map[string]orderflow.OrderID
	creates int

	acceptErr error                                              // returned by Accept if set
	getErr    error                                              // returned by GetOrder and ListOrders if set
	onAccept  func(ctx context.Context, o orderflow.Order) error // called first by Accept if set
}

func newFakeStore() *fakeStore {
	return &fakeStore{
		orders: make(map[orderflow.OrderID]orderflow.Order),
		keys:   make(map[string]orderflow.IdempotencyKey),
		keyed:  make(map[string]orderflow.OrderID),
	}
}

func (f *fakeStore) Accept(ctx context.Context, o orderflow.Order, key orderflow.IdempotencyKey) (orderflow.Order, bool, error) {
	if f.onAccept != nil {
		if err := f.onAccept(ctx, o); err != nil {
			return orderflow.Order{}, false, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.acceptErr != nil {
		return orderflow.Order{}, false, f.acceptErr
	}
	if key.Key != "" {
		k := key.UserID + "\x00" + key.Key
		if prev, ok := f.keys[k]; ok {
			if prev.RequestHash != key.RequestHash {
				return orderflow.Order{}, false, orderflow.Errorf(orderflow.EMismatch, "idempotency key %q was used with another request", key.Key)
			}
			return f.orders[f.keyed[k]], false, nil
		}
		f.keys[k] = key
		f.keyed[k] = o.ID
	}
	f.orders[o.ID] = o
	f.creates++
	return o, true, nil
}

func (f *fakeStore) GetOrder(_ context.Context, id orderflow.OrderID) (orderflow.Order, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.getErr != nil {
		return orderflow.Order{}, f.getErr
	}
	o, ok := f.orders[id]
	if !ok {
		return orderflow.Order{}, orderflow.Errorf(orderflow.ENotFound, "order %s not found", id)
	}
	return o, nil
}

func (f *fakeStore) ListOrders(_ context.Context, userID string, cursor orderflow.OrderID, limit int) ([]orderflow.Order, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.getErr != nil {
		return nil, f.getErr
	}
	var out []orderflow.Order
	for _, o := range f.orders {
		if o.UserID == userID && (cursor == "" || o.ID < cursor) {
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b orderflow.Order) int { return strings.Compare(string(b.ID), string(a.ID)) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// RequestCancel follows orderflow.Store.RequestCancel.
func (f *fakeStore) RequestCancel(_ context.Context, id orderflow.OrderID, by string, at time.Time) (orderflow.Order, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.getErr != nil {
		return orderflow.Order{}, f.getErr
	}
	o, ok := f.orders[id]
	switch {
	case !ok:
		return orderflow.Order{}, orderflow.Errorf(orderflow.ENotFound, "order %s not found", id)
	case o.Status == orderflow.StatusCancelled, o.Cancellation != nil:
		return o, nil
	case !o.Status.Cancellable():
		return o, orderflow.Errorf(orderflow.EConflict, "order %s is %s", id, o.Status)
	}
	o.Cancellation = &orderflow.Cancellation{RequestedBy: by, RequestedAt: at}
	o.UpdatedAt = at
	if o.Status == orderflow.StatusPending {
		o.Status = orderflow.StatusCancelled
	}
	f.orders[id] = o
	return o, nil
}

func (f *fakeStore) put(o orderflow.Order) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.orders[o.ID] = o
}

func (f *fakeStore) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.creates
}

// fixture is a server under test with its collaborators.
type fixture struct {
	t      testing.TB
	s      *server
	h      http.Handler
	store  *fakeStore
	clock  *clock
	tokens *auth.Tokens
	urls   *auth.URLSigner
	reg    *prometheus.Registry
	logs   *logtest.Buffer
	ids    int
}

var testSecret = []byte("0123456789abcdef0123456789abcdef-test-secret")

// newFixture builds a server with dev login, a fake store, a fixed clock
// and a private registry; mutate adjusts the config and deps first.
func newFixture(t testing.TB, mutate ...func(*Config, *Deps)) *fixture {
	t.Helper()
	kr, err := auth.NewKeyring(auth.Key{ID: "k1", Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, store: newFakeStore(), clock: &clock{t: t0}, reg: prometheus.NewRegistry(), logs: &logtest.Buffer{}}
	f.tokens = auth.NewTokens(kr, time.Hour, f.clock.Now)
	f.urls = auth.NewURLSigner(kr)
	cfg := Config{Env: "test", DevLogin: true, Tokens: f.tokens, URLs: f.urls}
	deps := Deps{
		Logger:     slog.New(orderflow.LogHandler(slog.NewJSONHandler(f.logs, nil))),
		Registerer: f.reg,
		Gatherer:   f.reg,
		Intake:     f.store,
		Orders:     f.store,
		Now:        f.clock.Now,
		NewID:      f.nextID,
	}
	for _, m := range mutate {
		m(&cfg, &deps)
	}
	f.s = newServer(cfg, deps)
	f.h = f.s.handler
	return f
}

// nextID returns ordered, valid order ids.
func (f *fixture) nextID() orderflow.OrderID {
	f.ids++
	return orderflow.NewOrderID(t0.Add(time.Duration(f.ids) * time.Millisecond))
}

// token returns a bearer token for user.
func (f *fixture) token(user string) string {
	f.t.Helper()
	tok, _, err := f.tokens.Issue(user)
	if err != nil {
		f.t.Fatal(err)
	}
	return tok
}

// observed collects, per route pattern, the statuses the tests saw; the
// OpenAPI test (run from TestMain) checks each is documented.
var observed = struct {
	sync.Mutex
	codes map[string]map[int]bool
}{codes: make(map[string]map[int]bool)}

// contract is openapi.json as a checker of exchanges, built once.
var contract = sync.OnceValues(func() (*openapitest.Contract, error) { return openapitest.New(openapiJSON) })

// do serves req and records the status under the route pattern it
// matched. It checks the exchange against openapi.json and reports each
// violation as a test error; a request that breaks the contract on purpose
// is sent as do(openapitest.Invalid(req)).
func (f *fixture) do(req *http.Request) *httptest.ResponseRecorder {
	f.t.Helper()
	c, err := contract()
	if err != nil {
		f.t.Fatal(err)
	}
	var body []byte
	if req.Body != nil {
		// Read the body for the check and give the server the same bytes,
		// and the same error if reading failed.
		var rerr error
		body, rerr = io.ReadAll(req.Body)
		req.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errorReader{rerr}))
	}
	_, pattern := f.s.mux.Handler(req)
	rr := httptest.NewRecorder()
	f.h.ServeHTTP(rr, req)
	for _, v := range c.Check(req, body, rr.Result(), rr.Body.Bytes()) {
		f.t.Errorf("contract: %s", v)
	}
	if pattern != "" {
		observed.Lock()
		if observed.codes[pattern] == nil {
			observed.codes[pattern] = make(map[int]bool)
		}
		observed.codes[pattern][rr.Code] = true
		observed.Unlock()
	}
	return rr
}

// errorReader returns err, or io.EOF if err is nil.
type errorReader struct{ err error }

func (r errorReader) Read([]byte) (int, error) {
	if r.err == nil {
		return 0, io.EOF
	}
	return 0, r.err
}

// request builds a request; headers are name, value pairs.
func request(method, target, body string, headers ...string) *http.Request {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	return req
}

// postOrder sends POST /orders as user with a JSON body; extra headers follow.
func (f *fixture) postOrder(user, body string, headers ...string) *httptest.ResponseRecorder {
	f.t.Helper()
	h := append([]string{"Content-Type", "application/json", "Authorization", "Bearer " + f.token(user)}, headers...)
	return f.do(request(http.MethodPost, "/orders", body, h...))
}

// problemOf decodes a problem answer and checks its invariants.
func problemOf(t testing.TB, rr *httptest.ResponseRecorder) Problem {
	t.Helper()
	if ct := rr.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json (body %s)", ct, rr.Body)
	}
	var p Problem
	if err := json.Unmarshal(rr.Body.Bytes(), &p); err != nil {
		t.Fatalf("problem body %q: %v", rr.Body, err)
	}
	if p.Status != rr.Code {
		t.Errorf("problem status = %d, want the response's %d", p.Status, rr.Code)
	}
	if !strings.HasPrefix(p.Type, problemTypeBase) || p.Title == "" || p.Detail == "" || p.Instance == "" {
		t.Errorf("problem lacks type/title/detail/instance: %+v", p)
	}
	if p.RequestID == "" || p.RequestID != rr.Header().Get("X-Request-ID") {
		t.Errorf("problem request_id = %q, want the X-Request-ID %q", p.RequestID, rr.Header().Get("X-Request-ID"))
	}
	return p
}

// decode decodes a JSON answer into v.
func decode(t testing.TB, rr *httptest.ResponseRecorder, v any) {
	t.Helper()
	if ct := rr.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json (body %s)", ct, rr.Body)
	}
	if err := json.Unmarshal(rr.Body.Bytes(), v); err != nil {
		t.Fatalf("body %q: %v", rr.Body, err)
	}
}

// accepted is the body of a 202.
type accepted struct {
	OrderID   string `json:"order_id"`
	Status    string `json:"status"`
	StatusURL string `json:"status_url"`
	ExpiresAt string `json:"expires_at"`
}

func httptestRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }
