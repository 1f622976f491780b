package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/auth"
	"github.com/orderflow/orderflow/httpapi/openapitest"
)

func TestCreateOrder(t *testing.T) {
	long := `{"amount":1,"currency":"USD","items":[{"sku":"` + strings.Repeat("a", 70<<10) + `","quantity":1}]}`
	var lines []string
	for i := range orderflow.MaxItems + 1 {
		lines = append(lines, fmt.Sprintf(`{"sku":"S%d","quantity":1}`, i))
	}
	items51 := strings.Join(lines, ",")
	expiredTokens := func(t *testing.T) string {
		kr, _ := auth.NewKeyring(auth.Key{ID: "k1", Secret: testSecret})
		tok, _, err := auth.NewTokens(kr, time.Hour, func() time.Time { return t0.Add(-2 * time.Hour) }).Issue("u123")
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	forged := func(t *testing.T) string {
		kr, _ := auth.NewKeyring(auth.Key{ID: "k1", Secret: []byte("another-secret-another-secret-another-secret")})
		tok, _, err := auth.NewTokens(kr, time.Hour, func() time.Time { return t0 }).Issue("u123")
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tests := []struct {
		name      string
		body      string
		header    []string                  // extra headers
		auth      func(t *testing.T) string // Authorization value; default a valid token of u123
		ctype     string                    // default application/json; "-" for none
		want      int
		wantType  string // problem slug
		wantField string
		// offContract marks a request that breaks openapi.json on purpose.
		offContract bool
		wantAmount  int64 // of the stored order, if set
	}{
		{name: "the spec's order is accepted", body: `{"user_id":"u123","amount":999}`, want: 202},
		{name: "user_id may be left out", body: `{"amount":999}`, want: 202},
		{name: "items and currency are accepted", body: `{"amount":1250,"currency":"EUR","items":[{"sku":"SKU-1","quantity":2}]}`, want: 202},
		{name: "charset parameter on the content type is accepted", body: `{"amount":1}`, ctype: "application/json; charset=utf-8", want: 202},
		{name: "content type is case-insensitive", body: `{"amount":1}`, ctype: "Application/JSON", want: 202},
		{name: "a quoted idempotency key is accepted", body: `{"amount":1}`, header: []string{"Idempotency-Key", `"abc-123"`}, want: 202},

		{name: "unknown field ammount is 422 naming it", offContract: true, body: `{"ammount":999}`, want: 422, wantType: "validation-failed", wantField: "ammount"},
		{name: "unknown nested field is 422 naming it", offContract: true, body: `{"amount":1,"items":[{"sku":"A","qty":1}]}`, want: 422, wantType: "validation-failed", wantField: "items[0].qty"},
		{name: "field names are case-sensitive", offContract: true, body: `{"Amount":999}`, want: 422, wantType: "validation-failed", wantField: "Amount"},
		{name: "amount as a string is 422 naming amount", offContract: true, body: `{"amount":"999"}`, want: 422, wantType: "validation-failed", wantField: "amount"},
		{name: "fractional amount is 422", offContract: true, body: `{"amount":9.99}`, want: 422, wantType: "validation-failed", wantField: "amount"},
		{name: "amount beyond int64 is 422", offContract: true, body: `{"amount":99999999999999999999}`, want: 422, wantType: "validation-failed", wantField: "amount"},
		{name: "quantity of the wrong type names items[0].quantity", offContract: true, body: `{"amount":1,"items":[{"sku":"A","quantity":"2"}]}`, want: 422, wantType: "validation-failed", wantField: "items[0].quantity"},
		{name: "items as an object is 422", offContract: true, body: `{"amount":1,"items":{"sku":"A"}}`, want: 422, wantType: "validation-failed", wantField: "items"},
		{name: "a duplicate field is 422", body: `{"amount":1,"amount":2}`, want: 422, wantType: "validation-failed", wantField: "amount"},
		{name: "a top-level array is 422", offContract: true, body: `[{"amount":1}]`, want: 422, wantType: "validation-failed"},
		{name: "zero amount is 422", offContract: true, body: `{"amount":0}`, want: 422, wantType: "validation-failed", wantField: "amount"},
		{name: "missing amount is 422", offContract: true, body: `{"currency":"USD"}`, want: 422, wantType: "validation-failed", wantField: "amount"},
		{name: "lower-case currency is 422", offContract: true, body: `{"amount":1,"currency":"usd"}`, want: 422, wantType: "validation-failed", wantField: "currency"},
		{name: "repeated sku is 422", body: `{"amount":1,"items":[{"sku":"A","quantity":1},{"sku":"A","quantity":1}]}`, want: 422, wantType: "validation-failed", wantField: "items[1].sku"},
		{name: "user_id other than the token's is 422", body: `{"user_id":"mallory","amount":1}`, want: 422, wantType: "validation-failed", wantField: "user_id"},

		{name: "an integral decimal amount is the integer", body: `{"amount":16777217.0}`, want: 202, wantAmount: 16777217},
		{name: "an amount with an exponent is the integer", body: `{"amount":1.6777217e7}`, want: 202, wantAmount: 16777217},
		// Not offContract: the contract checker reads numbers as float64 and so sees a whole number.
		{name: "a fraction too small for float64 is still a fraction", body: `{"amount":9999999999.0000001}`, want: 422, wantType: "validation-failed", wantField: "amount"},
		{name: "an amount of 9999999999.00 is exact", body: `{"amount":9999999999.00}`, want: 202, wantAmount: 9999999999},
		{name: "an integral decimal quantity is the integer", body: `{"amount":1,"items":[{"sku":"A","quantity":2.0}]}`, want: 202, wantAmount: 1},
		{name: "a negative exponent with a fraction is 422", body: `{"amount":1e-2}`, want: 422, wantType: "validation-failed", wantField: "amount", offContract: true},
		{name: "a huge exponent is 422 out of range", body: `{"amount":1e999999999}`, want: 422, wantType: "validation-failed", wantField: "amount", offContract: true},
		{name: "an integral decimal beyond int64 is 422", body: `{"amount":99999999999999999999.0}`, want: 422, wantType: "validation-failed", wantField: "amount", offContract: true},
		{name: "51 items are 422 naming items", body: `{"amount":1,"items":[` + items51 + `]}`, want: 422, wantType: "validation-failed", wantField: "items", offContract: true},

		{name: "an unclosed array is 400", body: `[`, want: 400, wantType: "malformed-json", offContract: true},
		{name: "an unfinished array is 400", body: `[1,`, want: 400, wantType: "malformed-json", offContract: true},
		{name: "a number with trailing letters is 400", body: `123abc`, want: 400, wantType: "malformed-json", offContract: true},
		{name: "an object with trailing letters is 400", body: `{"amount":1}x`, want: 400, wantType: "malformed-json", offContract: true},
		{name: "malformed JSON is 400", offContract: true, body: `{"amount":`, want: 400, wantType: "malformed-json"},
		{name: "not JSON at all is 400", offContract: true, body: `amount=1`, want: 400, wantType: "malformed-json"},
		{name: "trailing data is 400", offContract: true, body: `{"amount":1}{"amount":2}`, want: 400, wantType: "malformed-json"},
		{name: "invalid UTF-8 is 400", offContract: true, body: "{\"amount\":1,\"currency\":\"\xff\"}", want: 400, wantType: "malformed-json"},
		{name: "empty body is 400", offContract: true, body: ``, want: 400, wantType: "bad-request"},
		// Not offContract: the contract checker takes an empty header for an absent one.
		{name: "empty idempotency key is 400", body: `{"amount":1}`, header: []string{"Idempotency-Key", ""}, want: 400, wantType: "bad-request"},
		{name: "idempotency key over 255 characters is 400", offContract: true, body: `{"amount":1}`, header: []string{"Idempotency-Key", strings.Repeat("k", 256)}, want: 400, wantType: "bad-request"},
		{name: "idempotency key with a control character is 400", offContract: true, body: `{"amount":1}`, header: []string{"Idempotency-Key", "a\x01b"}, want: 400, wantType: "bad-request"},
		{name: "two idempotency keys are 400", body: `{"amount":1}`, header: []string{"Idempotency-Key", "a", "Idempotency-Key", "b"}, want: 400, wantType: "bad-request"},

		{name: "body over the limit is 413", offContract: true, body: long, want: 413, wantType: "payload-too-large"},
		{name: "missing content type is 415", offContract: true, body: `{"amount":1}`, ctype: "-", want: 415, wantType: "unsupported-media-type"},
		{name: "text/plain is 415", offContract: true, body: `{"amount":1}`, ctype: "text/plain", want: 415, wantType: "unsupported-media-type"},
		{name: "form encoding is 415", offContract: true, body: `amount=1`, ctype: "application/x-www-form-urlencoded", want: 415, wantType: "unsupported-media-type"},

		{name: "an identity content coding is accepted", body: `{"amount":1}`, header: []string{"Content-Encoding", "identity"}, want: 202},
		{name: "a gzip-encoded body is 415", offContract: true, body: "\x1f\x8b\x08\x00", header: []string{"Content-Encoding", "gzip"}, want: 415, wantType: "unsupported-media-type"},
		{name: "a br-encoded body is 415", offContract: true, body: `{"amount":1}`, header: []string{"Content-Encoding", "br"}, want: 415, wantType: "unsupported-media-type"},

		{name: "missing token is 401", offContract: true, body: `{"amount":1}`, auth: func(*testing.T) string { return "" }, want: 401, wantType: "unauthorized"},
		{name: "basic auth is 401", offContract: true, body: `{"amount":1}`, auth: func(*testing.T) string { return "Basic dTEyMzpwdw==" }, want: 401, wantType: "unauthorized"},
		{name: "garbage token is 401", body: `{"amount":1}`, auth: func(*testing.T) string { return "Bearer not.a.jwt" }, want: 401, wantType: "unauthorized"},
		{name: "forged token is 401", body: `{"amount":1}`, auth: func(t *testing.T) string { return "Bearer " + forged(t) }, want: 401, wantType: "unauthorized"},
		{name: "expired token is 401", body: `{"amount":1}`, auth: func(t *testing.T) string { return "Bearer " + expiredTokens(t) }, want: 401, wantType: "unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			authz := "Bearer " + f.token("u123")
			if tt.auth != nil {
				authz = tt.auth(t)
			}
			ctype := "application/json"
			if tt.ctype != "" {
				ctype = tt.ctype
			}
			req := request(http.MethodPost, "/orders", tt.body, tt.header...)
			if ctype != "-" {
				req.Header.Set("Content-Type", ctype)
			}
			if authz != "" {
				req.Header.Set("Authorization", authz)
			}
			if tt.offContract {
				req = openapitest.Invalid(req)
			}
			rr := f.do(req)
			if rr.Code != tt.want {
				t.Fatalf("status = %d, want %d; body %s", rr.Code, tt.want, rr.Body)
			}
			if tt.want == 202 {
				var a accepted
				decode(t, rr, &a)
				if a.Status != "PENDING" || a.OrderID == "" || a.StatusURL == "" || a.ExpiresAt == "" {
					t.Errorf("202 body %+v lacks fields", a)
				}
				if got := rr.Header().Get("Location"); got != a.StatusURL {
					t.Errorf("Location = %q, want status_url %q", got, a.StatusURL)
				}
				if got := rr.Header().Get("Retry-After"); got != "1" {
					t.Errorf("Retry-After = %q, want 1", got)
				}
				if f.store.count() != 1 {
					t.Errorf("store has %d orders, want 1", f.store.count())
				}
				if o, err := f.store.GetOrder(context.Background(), orderflow.OrderID(a.OrderID)); tt.wantAmount != 0 && (err != nil || o.Amount != tt.wantAmount) {
					t.Errorf("stored amount %d (%v), want %d", o.Amount, err, tt.wantAmount)
				}
				return
			}
			p := problemOf(t, rr)
			if p.Type != problemTypeBase+tt.wantType {
				t.Errorf("type = %q, want %q (detail %q)", p.Type, problemTypeBase+tt.wantType, p.Detail)
			}
			if tt.wantField != "" {
				if len(p.Errors) != 1 || p.Errors[0].Field != tt.wantField {
					t.Errorf("errors = %+v, want one naming %q (detail %q)", p.Errors, tt.wantField, p.Detail)
				}
				if !strings.Contains(p.Detail, tt.wantField) {
					t.Errorf("detail %q does not name %q", p.Detail, tt.wantField)
				}
			}
			if tt.want == 415 && len(tt.header) > 0 && tt.header[0] == "Content-Encoding" && rr.Header().Get("Accept-Encoding") != "identity" {
				t.Errorf("415 for a content coding has Accept-Encoding %q, want identity (RFC 7694)", rr.Header().Get("Accept-Encoding"))
			}
			if tt.want == 401 && rr.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if f.store.count() != 0 {
				t.Errorf("a rejected request stored %d orders", f.store.count())
			}
		})
	}
}

func TestCreateOrderStoresWhatWasAsked(t *testing.T) {
	f := newFixture(t)
	rr := f.postOrder("u123", `{"amount":1250,"items":[{"sku":"B","quantity":1},{"sku":"A","quantity":3}]}`, "X-Request-ID", "req-42")
	if rr.Code != 202 {
		t.Fatalf("status = %d, body %s", rr.Code, rr.Body)
	}
	var a accepted
	decode(t, rr, &a)
	o, err := f.store.GetOrder(context.Background(), orderflow.OrderID(a.OrderID))
	if err != nil {
		t.Fatal(err)
	}
	if o.UserID != "u123" || o.Amount != 1250 || o.Currency != "USD" || len(o.Items) != 2 || o.Status != orderflow.StatusPending {
		t.Errorf("stored %+v, want u123's PENDING 1250 USD with 2 items", o)
	}
	if o.RequestID != "req-42" {
		t.Errorf("order request id = %q, want the request's req-42", o.RequestID)
	}
	if !o.CreatedAt.Equal(t0) || !o.UpdatedAt.Equal(t0) {
		t.Errorf("times = %v/%v, want %v", o.CreatedAt, o.UpdatedAt, t0)
	}
	wantURL := "http://example.com/orders/" + a.OrderID + "/status?"
	if !strings.HasPrefix(a.StatusURL, wantURL) {
		t.Errorf("status_url = %q, want prefix %q", a.StatusURL, wantURL)
	}
	if want := t0.Add(DefaultStatusURLTTL).Format(time.RFC3339); a.ExpiresAt != want {
		t.Errorf("expires_at = %q, want %q", a.ExpiresAt, want)
	}
}

func TestCreateOrderUsesPublicURL(t *testing.T) {
	f := newFixture(t, func(c *Config, _ *Deps) { c.PublicURL = "https://api.example.org/" })
	rr := f.postOrder("u123", `{"amount":1}`)
	var a accepted
	decode(t, rr, &a)
	if !strings.HasPrefix(a.StatusURL, "https://api.example.org/orders/") {
		t.Errorf("status_url = %q, want it under PublicURL", a.StatusURL)
	}
}

func TestCreateOrderDependencyErrors(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		want       int
		wantType   string
		retryAfter bool
	}{
		{"an unavailable store is 503 with Retry-After", orderflow.Unavailable(errors.New("dial tcp: refused"), "store unreachable"), 503, "service-unavailable", true},
		{"a store conflict is 409", orderflow.Errorf(orderflow.EConflict, "first request with this key has not finished"), 409, "conflict", false},
		{"a key mismatch is 422", orderflow.Errorf(orderflow.EMismatch, "key reused"), 422, "idempotency-key-reused", false},
		{"an internal error is 500 with a generic detail", errors.New("secret database detail"), 500, "internal-error", false},
		{"a dependency deadline is 503", fmt.Errorf("send: %w", context.DeadlineExceeded), 503, "service-unavailable", true},
		{"a damaged store is 503 store-unavailable without Retry-After", &orderflow.Error{Code: orderflow.EStoreUnavailable, Detail: "the order store's database file is corrupted", Err: errors.New("dial tcp: malformed")}, 503, "store-unavailable", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.store.acceptErr = tt.err
			rr := f.postOrder("u123", `{"amount":1}`)
			if rr.Code != tt.want {
				t.Fatalf("status = %d, want %d; body %s", rr.Code, tt.want, rr.Body)
			}
			p := problemOf(t, rr)
			if p.Type != problemTypeBase+tt.wantType {
				t.Errorf("type = %q, want %q", p.Type, tt.wantType)
			}
			if got := rr.Header().Get("Retry-After") != ""; got != tt.retryAfter {
				t.Errorf("Retry-After present = %v, want %v", got, tt.retryAfter)
			}
			if strings.Contains(p.Detail, "secret") || strings.Contains(p.Detail, "dial tcp") {
				t.Errorf("detail %q leaks the cause", p.Detail)
			}
			if tt.want >= 500 && !strings.Contains(f.logs.String(), p.RequestID) {
				t.Errorf("a %d was not logged with its request id", tt.want)
			}
		})
	}
}

// An EInvalid error from a dependency lists its Field in errors, and lists
// nothing when it names no field (the field is never guessed from the
// detail's text).
func TestDependencyValidationErrorNamesItsField(t *testing.T) {
	for _, tt := range []struct {
		name   string
		err    error
		fields []string
	}{
		{"an error with a field names it", orderflow.Invalid("currency", "currency must be a three-letter ISO 4217 code such as USD, got %q", "usd"), []string{"currency"}},
		{"an error without a field names none", orderflow.Errorf(orderflow.EInvalid, "order x: a new order needs an id and status PENDING"), nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.store.acceptErr = tt.err
			rr := f.postOrder("u123", `{"amount":1}`)
			if rr.Code != 422 {
				t.Fatalf("status = %d, want 422; body %s", rr.Code, rr.Body)
			}
			var got []string
			for _, e := range problemOf(t, rr).Errors {
				got = append(got, e.Field)
			}
			if !slices.Equal(got, tt.fields) {
				t.Errorf("errors name %q, want %q", got, tt.fields)
			}
		})
	}
}

// A dependency that is down fails every request; its error is logged
// once per interval with a count, not once per request (the request line
// still shows each 503), and a damaged store's not at all (the store logs
// it once, at ERROR).
func TestRepeatedDependencyFailuresAreLoggedOncePerInterval(t *testing.T) {
	for _, tt := range []struct {
		name  string
		err   error
		lines int
	}{
		{"unavailable", orderflow.Unavailable(errors.New("disk full"), "commit sqlite transaction"), 1},
		{"store unavailable", &orderflow.Error{Code: orderflow.EStoreUnavailable, Detail: "corrupted"}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.store.acceptErr = tt.err
			for range 50 {
				if rr := f.postOrder("u123", `{"amount":1}`); rr.Code != 503 {
					t.Fatalf("status = %d, want 503", rr.Code)
				}
			}
			warnings, requests := 0, 0
			for _, l := range strings.Split(strings.TrimSpace(f.logs.String()), "\n") {
				switch {
				case strings.Contains(l, `"msg":"http request"`):
					requests++
				case strings.Contains(l, `"level":"WARN"`) || strings.Contains(l, `"level":"ERROR"`):
					warnings++
				}
			}
			if warnings != tt.lines || requests != 50 {
				t.Errorf("got %d warning lines and %d request lines for 50 failed requests, want %d and 50:\n%s", warnings, requests, tt.lines, f.logs.String())
			}
		})
	}
}

func TestRequestTimeoutGives503(t *testing.T) {
	f := newFixture(t, func(c *Config, d *Deps) { c.RequestTimeout = 20 * time.Millisecond })
	f.store.onAccept = func(ctx context.Context, _ orderflow.Order) error {
		<-ctx.Done() // a hanging dependency that honours the context
		return ctx.Err()
	}
	rr := f.postOrder("u123", `{"amount":1}`)
	if rr.Code != 503 {
		t.Fatalf("status = %d, want 503; body %s", rr.Code, rr.Body)
	}
	if rr.Header().Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
}

func TestIdempotency(t *testing.T) {
	t.Run("same key and body replays the same 202 without a second order", func(t *testing.T) {
		f := newFixture(t)
		first := f.postOrder("u123", `{"amount":999}`, "Idempotency-Key", "key-1")
		f.clock.Advance(time.Minute)
		second := f.postOrder("u123", `{"currency":"USD","amount":999}`, "Idempotency-Key", "key-1")
		if first.Code != 202 || second.Code != 202 {
			t.Fatalf("statuses %d, %d; want 202 twice", first.Code, second.Code)
		}
		if first.Body.String() != second.Body.String() {
			t.Errorf("replayed body differs:\n%s\n%s", first.Body, second.Body)
		}
		if first.Header().Get("Location") != second.Header().Get("Location") {
			t.Error("replayed Location differs")
		}
		if got := second.Header().Get("Idempotent-Replayed"); got != "true" {
			t.Errorf("Idempotent-Replayed = %q, want true", got)
		}
		if got := first.Header().Get("Idempotent-Replayed"); got != "" {
			t.Errorf("first answer has Idempotent-Replayed %q", got)
		}
		if f.store.count() != 1 {
			t.Errorf("store created %d orders, want 1", f.store.count())
		}
		if got := counterValue(t, f.reg, "orders_accepted_total", nil); got != 1 {
			t.Errorf("orders_accepted_total = %v, want 1 (replays are not counted)", got)
		}
	})
	t.Run("same key with another body is 422", func(t *testing.T) {
		f := newFixture(t)
		f.postOrder("u123", `{"amount":999}`, "Idempotency-Key", "key-1")
		rr := f.postOrder("u123", `{"amount":1000}`, "Idempotency-Key", "key-1")
		if rr.Code != 422 {
			t.Fatalf("status = %d, want 422", rr.Code)
		}
		if p := problemOf(t, rr); p.Type != problemTypeBase+"idempotency-key-reused" {
			t.Errorf("type = %q", p.Type)
		}
	})
	t.Run("keys are scoped per user", func(t *testing.T) {
		f := newFixture(t)
		a := f.postOrder("alice", `{"amount":999}`, "Idempotency-Key", "key-1")
		b := f.postOrder("bob", `{"amount":999}`, "Idempotency-Key", "key-1")
		if a.Code != 202 || b.Code != 202 || b.Header().Get("Idempotent-Replayed") != "" {
			t.Fatalf("statuses %d, %d (replayed %q); want two fresh 202s", a.Code, b.Code, b.Header().Get("Idempotent-Replayed"))
		}
		if f.store.count() != 2 {
			t.Errorf("store created %d orders, want 2", f.store.count())
		}
	})
	t.Run("same key while the first request is in flight is 409", func(t *testing.T) {
		f := newFixture(t)
		entered, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		f.store.onAccept = func(context.Context, orderflow.Order) error {
			once.Do(func() { close(entered); <-release })
			return nil
		}
		done := make(chan int)
		go func() {
			req := request(http.MethodPost, "/orders", `{"amount":5}`, "Content-Type", "application/json",
				"Authorization", "Bearer "+f.token("u123"), "Idempotency-Key", "key-1")
			done <- f.do(req).Code
		}()
		<-entered
		rr := f.postOrder("u123", `{"amount":5}`, "Idempotency-Key", "key-1")
		close(release)
		if rr.Code != 409 {
			t.Fatalf("status = %d, want 409; body %s", rr.Code, rr.Body)
		}
		if p := problemOf(t, rr); p.Type != problemTypeBase+"request-in-flight" {
			t.Errorf("type = %q", p.Type)
		}
		if rr.Header().Get("Retry-After") == "" {
			t.Error("409 without Retry-After")
		}
		if code := <-done; code != 202 {
			t.Errorf("first request status = %d, want 202", code)
		}
		if again := f.postOrder("u123", `{"amount":5}`, "Idempotency-Key", "key-1"); again.Code != 202 || again.Header().Get("Idempotent-Replayed") != "true" {
			t.Errorf("after the first finished: status %d replayed %q, want a replayed 202", again.Code, again.Header().Get("Idempotent-Replayed"))
		}
	})
	t.Run("the request hash ignores item order and a defaulted currency", func(t *testing.T) {
		a := orderflow.Order{UserID: "u", Amount: 5, Currency: "USD", Items: []orderflow.Item{{SKU: "A", Quantity: 1}, {SKU: "B", Quantity: 2}}}
		b := orderflow.Order{UserID: "u", Amount: 5, Currency: "USD", Items: []orderflow.Item{{SKU: "B", Quantity: 2}, {SKU: "A", Quantity: 1}}}
		c := a
		c.UserID = "v"
		if requestHash(a) != requestHash(b) {
			t.Error("item order changed the hash")
		}
		if requestHash(a) == requestHash(c) {
			t.Error("another user gave the same hash")
		}
	})
}

func TestRateLimit(t *testing.T) {
	f := newFixture(t, func(c *Config, _ *Deps) { c.RateLimit = 3 })
	for i := range 3 {
		rr := f.postOrder("u123", `{"amount":1}`)
		if rr.Code != 202 {
			t.Fatalf("request %d: status %d", i+1, rr.Code)
		}
		if got, want := rr.Header().Get("RateLimit-Policy"), `"default";q=3;w=60`; got != want {
			t.Errorf("RateLimit-Policy = %q, want %q", got, want)
		}
		if got, want := rr.Header().Get("RateLimit"), fmt.Sprintf(`"default";r=%d;t=%d`, 2-i, 20*(i+1)); got != want {
			t.Errorf("request %d: RateLimit = %q, want %q", i+1, got, want)
		}
	}
	rr := f.postOrder("u123", `{"amount":1}`)
	if rr.Code != 429 {
		t.Fatalf("4th request: status %d, want 429", rr.Code)
	}
	if p := problemOf(t, rr); p.Type != problemTypeBase+"rate-limited" {
		t.Errorf("type = %q", p.Type)
	}
	if got := rr.Header().Get("Retry-After"); got != "20" {
		t.Errorf("Retry-After = %q, want 20", got)
	}
	if got := rr.Header().Get("RateLimit"); got != `"default";r=0;t=60` {
		t.Errorf("RateLimit = %q, want r=0;t=60", got)
	}
	if f.store.count() != 3 {
		t.Errorf("store has %d orders, want 3", f.store.count())
	}
	// Rejected bodies count too: the limit is on attempts.
	if other := f.postOrder("someone-else", `{"amount":1}`); other.Code != 202 {
		t.Errorf("another user: status %d, want 202 (limits are per user)", other.Code)
	}
	f.clock.Advance(20 * time.Second)
	if rr := f.postOrder("u123", `{"amount":1}`); rr.Code != 202 {
		t.Errorf("after Retry-After: status %d, want 202", rr.Code)
	}
	f.clock.Advance(2 * time.Minute)
	f.postOrder("third", `{"amount":1}`) // sweeps idle users
	if n := f.s.orderLim.local.Len(); n != 1 {
		t.Errorf("limiter holds %d users after they went idle, want 1", n)
	}
}

func TestRateLimitRetryAfterIsAtLeastOneSecond(t *testing.T) {
	f := newFixture(t, func(c *Config, _ *Deps) { c.RateLimit = 1000 }) // 60 ms per request
	for range 1000 {
		_, _, _ = f.s.orderLim.take(context.Background(), "u123", t0)
	}
	rr := f.postOrder("u123", `{"amount":1}`)
	if rr.Code != 429 || rr.Header().Get("Retry-After") != "1" {
		t.Errorf("status %d Retry-After %q, want 429 and 1", rr.Code, rr.Header().Get("Retry-After"))
	}
}

func TestStatusURLRoundTrip(t *testing.T) {
	f := newFixture(t)
	var a accepted
	decode(t, f.postOrder("u123", `{"amount":1}`), &a)
	u, err := url.Parse(a.StatusURL)
	if err != nil {
		t.Fatal(err)
	}
	rr := f.do(request(http.MethodGet, u.RequestURI(), ""))
	if rr.Code != 200 {
		t.Fatalf("GET status_url: %d, body %s", rr.Code, rr.Body)
	}
}

func TestHTTP10WithoutHostGetsAUsableStatusURL(t *testing.T) {
	post := func(f *fixture) string {
		return "POST /orders HTTP/1.0\r\nContent-Type: application/json\r\nAuthorization: Bearer " + f.token("u123") +
			"\r\nContent-Length: 12\r\n\r\n{\"amount\":1}"
	}
	t.Run("the listener's address stands in for the Host", func(t *testing.T) {
		f := newFixture(t)
		addr := f.serve(t)
		resp, body := rawExchange(t, addr, post(f), 5*time.Second)
		var a accepted
		if err := json.Unmarshal(body, &a); err != nil || resp.StatusCode != 202 {
			t.Fatalf("status %d, body %s", resp.StatusCode, body)
		}
		if want := "http://" + addr + "/orders/" + a.OrderID + "/status?"; !strings.HasPrefix(a.StatusURL, want) || resp.Header.Get("Location") != a.StatusURL {
			t.Errorf("status_url %q, Location %q; want both under %q", a.StatusURL, resp.Header.Get("Location"), want)
		}
	})
	t.Run("the public URL wins", func(t *testing.T) {
		f := newFixture(t, func(c *Config, _ *Deps) { c.PublicURL = "https://api.example.org" })
		_, body := rawExchange(t, f.serve(t), post(f), 5*time.Second)
		var a accepted
		if err := json.Unmarshal(body, &a); err != nil || !strings.HasPrefix(a.StatusURL, "https://api.example.org/orders/") {
			t.Errorf("status_url %q (%v), want it under the public URL", a.StatusURL, err)
		}
	})
	t.Run("with neither, the order is refused before it is accepted", func(t *testing.T) {
		f := newFixture(t)
		req := request(http.MethodPost, "/orders", `{"amount":1}`, "Content-Type", "application/json", "Authorization", "Bearer "+f.token("u123"))
		req.Host = ""
		rr := f.do(req)
		if rr.Code != 400 || f.store.count() != 0 {
			t.Fatalf("status %d with %d orders stored, want 400 and none; body %s", rr.Code, f.store.count(), rr.Body)
		}
		if p := problemOf(t, rr); !strings.Contains(p.Detail, "Host") {
			t.Errorf("detail %q does not say what is missing", p.Detail)
		}
	})
}
