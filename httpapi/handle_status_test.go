package httpapi

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/httpapi/openapitest"
)

// statusPath is the path and query of the signed status URL of id.
func (f *fixture) statusPath(id orderflow.OrderID, expires time.Time) string {
	return "/orders/" + string(id) + "/status?" + f.urls.Sign(id, expires).Encode()
}

func TestOrderStatus(t *testing.T) {
	f := newFixture(t)
	pending := orderflow.Order{ID: f.nextID(), UserID: "u123", Amount: 999, Currency: "USD", Status: orderflow.StatusPending, CreatedAt: t0, UpdatedAt: t0}
	rejected := orderflow.Order{ID: f.nextID(), UserID: "u123", Amount: 5, Currency: "USD", Status: orderflow.StatusRejected,
		Items:     []orderflow.Item{{SKU: "A", Quantity: 1}},
		Failure:   &orderflow.Failure{Code: orderflow.ReasonOutOfStock, Detail: "A: 0 left, 1 wanted"},
		CreatedAt: t0, UpdatedAt: t0.Add(time.Second)}
	f.store.put(pending)
	f.store.put(rejected)
	exp := t0.Add(time.Hour)

	t.Run("a pending order is shown with Retry-After and no-store", func(t *testing.T) {
		rr := f.do(request(http.MethodGet, f.statusPath(pending.ID, exp), ""))
		if rr.Code != 200 {
			t.Fatalf("status %d, body %s", rr.Code, rr.Body)
		}
		var v map[string]any
		decode(t, rr, &v)
		for _, k := range []string{"order_id", "status", "amount", "currency", "items", "created_at", "updated_at"} {
			if _, ok := v[k]; !ok {
				t.Errorf("document lacks %q: %s", k, rr.Body)
			}
		}
		if _, ok := v["user_id"]; ok {
			t.Error("the shareable status document shows user_id")
		}
		if v["status"] != "PENDING" || v["failure"] != nil {
			t.Errorf("status %v failure %v, want PENDING without failure", v["status"], v["failure"])
		}
		if got := rr.Header().Get("Retry-After"); got != "1" {
			t.Errorf("Retry-After = %q, want 1", got)
		}
		if got := rr.Header().Get("Cache-Control"); got != "no-store" {
			t.Errorf("Cache-Control = %q, want no-store", got)
		}
		if e := rr.Header().Get("ETag"); !strings.HasPrefix(e, `"`) {
			t.Errorf("ETag = %q, want a strong tag", e)
		}
	})
	t.Run("a rejected order carries a problem-style failure and no Retry-After", func(t *testing.T) {
		rr := f.do(request(http.MethodGet, f.statusPath(rejected.ID, exp), ""))
		var v OrderView
		decode(t, rr, &v)
		want := FailureView{Type: problemTypeBase + "out-of-stock", Title: "Out of stock", Detail: "A: 0 left, 1 wanted", Code: "out_of_stock"}
		if v.Failure == nil || *v.Failure != want {
			t.Errorf("failure = %+v, want %+v", v.Failure, want)
		}
		if rr.Header().Get("Retry-After") != "" {
			t.Error("terminal order has Retry-After")
		}
	})
	t.Run("If-None-Match with the ETag is 304", func(t *testing.T) {
		first := f.do(request(http.MethodGet, f.statusPath(pending.ID, exp), ""))
		etag := first.Header().Get("ETag")
		for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
			rr := f.do(request(http.MethodGet, f.statusPath(pending.ID, exp), "", "If-None-Match", inm))
			if rr.Code != 304 || rr.Body.Len() != 0 {
				t.Errorf("If-None-Match %s: status %d body %q, want empty 304", inm, rr.Code, rr.Body)
			}
			if rr.Header().Get("ETag") != etag || rr.Header().Get("Retry-After") != "1" {
				t.Errorf("304 headers: ETag %q Retry-After %q", rr.Header().Get("ETag"), rr.Header().Get("Retry-After"))
			}
		}
	})
	t.Run("a transition changes the ETag", func(t *testing.T) {
		before := f.do(request(http.MethodGet, f.statusPath(pending.ID, exp), "")).Header().Get("ETag")
		moved := pending
		moved.Status, moved.UpdatedAt = orderflow.StatusProcessing, t0.Add(time.Second)
		f.store.put(moved)
		defer f.store.put(pending)
		rr := f.do(request(http.MethodGet, f.statusPath(pending.ID, exp), "", "If-None-Match", before))
		if rr.Code != 200 || rr.Header().Get("ETag") == before {
			t.Errorf("status %d ETag %q after a transition, want 200 and a new tag", rr.Code, rr.Header().Get("ETag"))
		}
	})
	t.Run("HEAD gives the headers only", func(t *testing.T) {
		rr := f.do(request(http.MethodHead, f.statusPath(pending.ID, exp), ""))
		if rr.Code != 200 || rr.Body.Len() != 0 || rr.Header().Get("ETag") == "" {
			t.Errorf("HEAD: status %d, body %d bytes, ETag %q", rr.Code, rr.Body.Len(), rr.Header().Get("ETag"))
		}
	})

	tamper := func(path string, edit func(q url.Values)) string {
		u, _ := url.Parse(path)
		q := u.Query()
		edit(q)
		u.RawQuery = q.Encode()
		return u.RequestURI()
	}
	good := f.statusPath(pending.ID, exp)
	errs := []struct {
		name     string
		target   string
		want     int
		wantType string
		// offContract marks a URL that breaks openapi.json on purpose.
		offContract bool
	}{
		{"a tampered signature is 403", tamper(good, func(q url.Values) { q.Set("sig", strings.Repeat("A", 43)) }), 403, "invalid-signature", false},
		{"a moved expiry is 403", tamper(good, func(q url.Values) { q.Set("exp", "9999999999") }), 403, "invalid-signature", false},
		{"an unknown key id is 403", tamper(good, func(q url.Values) { q.Set("kid", "k9") }), 403, "invalid-signature", false},
		{"a missing signature is 403", tamper(good, func(q url.Values) { q.Del("sig") }), 403, "invalid-signature", true},
		{"another order's signature is 403", "/orders/" + string(rejected.ID) + "/status?" + strings.SplitN(good, "?", 2)[1], 403, "invalid-signature", false},
		{"a malformed order id is 403", "/orders/nope/status?" + strings.SplitN(good, "?", 2)[1], 403, "invalid-signature", true},
		{"an expired URL is 403", f.statusPath(pending.ID, t0.Add(-time.Second)), 403, "status-url-expired", false},
		{"a validly signed URL of a missing order is 404", f.statusPath(orderflow.NewOrderID(t0), exp), 404, "not-found", false},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			req := request(http.MethodGet, tt.target, "")
			if tt.offContract {
				req = openapitest.Invalid(req)
			}
			rr := f.do(req)
			if rr.Code != tt.want {
				t.Fatalf("status %d, want %d; body %s", rr.Code, tt.want, rr.Body)
			}
			if p := problemOf(t, rr); p.Type != problemTypeBase+tt.wantType {
				t.Errorf("type = %q, want %q", p.Type, tt.wantType)
			}
		})
	}
	t.Run("an unavailable store is 503", func(t *testing.T) {
		f2 := newFixture(t)
		f2.store.getErr = orderflow.Unavailable(errors.New("down"), "store unreachable")
		rr := f2.do(request(http.MethodGet, f2.statusPath(pending.ID, exp), ""))
		if rr.Code != 503 || rr.Header().Get("Retry-After") == "" {
			t.Errorf("status %d Retry-After %q, want 503 with Retry-After", rr.Code, rr.Header().Get("Retry-After"))
		}
	})
	t.Run("the URL expires after StatusURLTTL from creation", func(t *testing.T) {
		f2 := newFixture(t, func(c *Config, _ *Deps) { c.StatusURLTTL = time.Minute })
		var a accepted
		decode(t, f2.postOrder("u123", `{"amount":1}`), &a)
		u, _ := url.Parse(a.StatusURL)
		if rr := f2.do(request(http.MethodGet, u.RequestURI(), "")); rr.Code != 200 {
			t.Fatalf("fresh URL: %d", rr.Code)
		}
		f2.clock.Advance(time.Minute)
		if rr := f2.do(request(http.MethodGet, u.RequestURI(), "")); rr.Code != 403 {
			t.Errorf("after the TTL: status %d, want 403", rr.Code)
		}
	})
}

func TestFailureTitles(t *testing.T) {
	tests := []struct {
		code   string
		status orderflow.Status
		want   string
	}{
		{orderflow.ReasonUnknownSKU, orderflow.StatusRejected, "Unknown SKU"},
		{orderflow.ReasonFraudSuspected, orderflow.StatusRejected, "Fraud suspected"},
		{orderflow.ReasonPaymentDeclined, orderflow.StatusRejected, "Payment declined"},
		{orderflow.ReasonProcessingFailed, orderflow.StatusFailed, "Processing failed"},
		{orderflow.ReasonDeadLettered, orderflow.StatusFailed, "Processing failed (dead-lettered)"},
		{"something_new", orderflow.StatusRejected, "Order rejected"},
		{"something_new", orderflow.StatusFailed, "Order failed"},
	}
	for _, tt := range tests {
		if got := failureTitle(tt.code, tt.status); got != tt.want {
			t.Errorf("failureTitle(%q, %s) = %q, want %q", tt.code, tt.status, got, tt.want)
		}
	}
	v := newOrderView(orderflow.Order{Status: orderflow.StatusFailed}, false)
	if v.Failure == nil || v.Failure.Code != "unknown" {
		t.Errorf("a FAILED order without a recorded reason shows failure %+v, want code unknown", v.Failure)
	}
}
