package httpapi

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/httpapi/openapitest"
)

func TestGetOrder(t *testing.T) {
	f := newFixture(t)
	mine := orderflow.Order{ID: f.nextID(), UserID: "alice", Amount: 10, Currency: "USD", Status: orderflow.StatusCompleted, CreatedAt: t0, UpdatedAt: t0}
	theirs := orderflow.Order{ID: f.nextID(), UserID: "bob", Amount: 10, Currency: "USD", Status: orderflow.StatusPending, CreatedAt: t0, UpdatedAt: t0}
	f.store.put(mine)
	f.store.put(theirs)
	get := func(user string, id orderflow.OrderID) *httptest.ResponseRecorder {
		req := request(http.MethodGet, "/orders/"+string(id), "")
		if user != "" {
			req.Header.Set("Authorization", "Bearer "+f.token(user))
		}
		if user == "" || !id.Valid() {
			req = openapitest.Invalid(req) // no token or a malformed id
		}
		return f.do(req)
	}
	t.Run("the owner sees the order", func(t *testing.T) {
		rr := get("alice", mine.ID)
		if rr.Code != 200 {
			t.Fatalf("status %d", rr.Code)
		}
		var v OrderView
		decode(t, rr, &v)
		if v.OrderID != mine.ID || v.UserID != "alice" || v.Status != orderflow.StatusCompleted {
			t.Errorf("got %+v", v)
		}
	})
	t.Run("another user's order is 404 exactly like a missing one", func(t *testing.T) {
		other := get("alice", theirs.ID)
		missingID := orderflow.NewOrderID(t0)
		missing := get("alice", missingID)
		if other.Code != 404 || missing.Code != 404 {
			t.Fatalf("statuses %d, %d; want 404, 404", other.Code, missing.Code)
		}
		po, pm := problemOf(t, other), problemOf(t, missing)
		if po.Type != pm.Type || po.Title != pm.Title || po.Detail != "order "+string(theirs.ID)+" not found" || pm.Detail != "order "+string(missingID)+" not found" {
			t.Errorf("foreign %+v vs missing %+v differ beyond the id", po, pm)
		}
	})
	t.Run("a malformed id is 404", func(t *testing.T) {
		if rr := get("alice", "not-an-id"); rr.Code != 404 {
			t.Errorf("status %d, want 404", rr.Code)
		}
	})
	t.Run("no token is 401", func(t *testing.T) {
		if rr := get("", mine.ID); rr.Code != 401 {
			t.Errorf("status %d, want 401", rr.Code)
		}
	})
	t.Run("an unavailable store is 503", func(t *testing.T) {
		f.store.getErr = orderflow.Unavailable(errors.New("down"), "store unreachable")
		defer func() { f.store.getErr = nil }()
		if rr := get("alice", mine.ID); rr.Code != 503 {
			t.Errorf("status %d, want 503", rr.Code)
		}
	})
}

func TestListOrders(t *testing.T) {
	f := newFixture(t)
	var ids []orderflow.OrderID
	for i := range 5 {
		o := orderflow.Order{ID: f.nextID(), UserID: "alice", Amount: int64(i + 1), Currency: "USD", Status: orderflow.StatusPending, CreatedAt: t0, UpdatedAt: t0}
		f.store.put(o)
		ids = append(ids, o.ID)
	}
	f.store.put(orderflow.Order{ID: f.nextID(), UserID: "bob", Amount: 1, Currency: "USD", Status: orderflow.StatusPending, CreatedAt: t0, UpdatedAt: t0})
	type page struct {
		Orders     []OrderView `json:"orders"`
		NextCursor *string     `json:"next_cursor"`
	}
	// listAs lists alice's orders; offContract marks a query that breaks
	// openapi.json on purpose.
	listAs := func(query string, offContract bool) (*httptest.ResponseRecorder, page) {
		req := request(http.MethodGet, "/orders"+query, "", "Authorization", "Bearer "+f.token("alice"))
		if offContract {
			req = openapitest.Invalid(req)
		}
		rr := f.do(req)
		var p page
		if rr.Code == 200 {
			decode(t, rr, &p)
		}
		return rr, p
	}

	list := func(query string) (*httptest.ResponseRecorder, page) { return listAs(query, false) }

	t.Run("pages walk all of the user's orders newest first", func(t *testing.T) {
		var got []orderflow.OrderID
		query := "?limit=2"
		for pages := 0; ; pages++ {
			if pages > 5 {
				t.Fatal("paging does not end")
			}
			rr, p := list(query)
			if rr.Code != 200 {
				t.Fatalf("status %d, body %s", rr.Code, rr.Body)
			}
			for _, o := range p.Orders {
				got = append(got, o.OrderID)
			}
			if p.NextCursor == nil {
				break
			}
			query = "?limit=2&cursor=" + *p.NextCursor
		}
		if len(got) != 5 {
			t.Fatalf("got %d orders, want alice's 5", len(got))
		}
		for i, id := range got {
			if id != ids[4-i] {
				t.Errorf("order %d = %s, want %s", i, id, ids[4-i])
			}
		}
	})
	t.Run("the default page holds all five and has no next cursor", func(t *testing.T) {
		rr, p := list("")
		if rr.Code != 200 || len(p.Orders) != 5 || p.NextCursor != nil {
			t.Errorf("status %d, %d orders, next %v; want 200, 5, null", rr.Code, len(p.Orders), p.NextCursor)
		}
		if !json200HasNullCursor(rr) {
			t.Errorf("next_cursor is not null in %s", rr.Body)
		}
	})
	for _, q := range []string{"?limit=0", "?limit=101", "?limit=abc", "?limit=", "?limit=1&limit=2", "?cursor=zzz", "?cursor=", "?cursor=" + strconv.Quote("x")} {
		t.Run("bad paging parameter "+q+" is 400", func(t *testing.T) {
			// OpenAPI cannot say that a parameter comes once; the rest break openapi.json.
			rr, _ := listAs(q, q != "?limit=1&limit=2")
			if rr.Code != 400 {
				t.Fatalf("status %d, want 400", rr.Code)
			}
			if p := problemOf(t, rr); p.Type != problemTypeBase+"bad-request" {
				t.Errorf("type %q", p.Type)
			}
		})
	}
	t.Run("no token is 401", func(t *testing.T) {
		if rr := f.do(openapitest.Invalid(request(http.MethodGet, "/orders", ""))); rr.Code != 401 {
			t.Errorf("status %d, want 401", rr.Code)
		}
	})
	t.Run("an unavailable store is 503", func(t *testing.T) {
		f.store.getErr = orderflow.Unavailable(errors.New("down"), "store unreachable")
		defer func() { f.store.getErr = nil }()
		if rr, _ := list(""); rr.Code != 503 {
			t.Errorf("status %d, want 503", rr.Code)
		}
	})
}

func json200HasNullCursor(rr *httptest.ResponseRecorder) bool {
	return rr.Code == 200 && strings.Contains(rr.Body.String(), `"next_cursor":null`)
}

func TestOwnerViewsCarryTheStatusURL(t *testing.T) {
	f := newFixture(t)
	var a accepted
	decode(t, f.postOrder("alice", `{"amount":1250}`), &a)
	auth := []string{"Authorization", "Bearer " + f.token("alice")}

	var one OrderView
	decode(t, f.do(request(http.MethodGet, "/orders/"+a.OrderID, "", auth...)), &one)
	if one.StatusURL != a.StatusURL {
		t.Errorf("GET /orders/{id} status_url = %q, want the 202's %q", one.StatusURL, a.StatusURL)
	}
	var page struct {
		Orders []OrderView `json:"orders"`
	}
	decode(t, f.do(request(http.MethodGet, "/orders", "", auth...)), &page)
	if len(page.Orders) != 1 || page.Orders[0].StatusURL != a.StatusURL {
		t.Errorf("GET /orders = %+v, want one order with status_url %q", page.Orders, a.StatusURL)
	}
	rr := f.do(request(http.MethodGet, one.StatusURL, ""))
	var doc map[string]any
	decode(t, rr, &doc)
	if rr.Code != 200 || doc["order_id"] != a.OrderID {
		t.Errorf("following status_url: %d %v", rr.Code, doc)
	}
	if _, ok := doc["status_url"]; ok {
		t.Error("the shareable status document carries status_url")
	}
	if _, ok := doc["user_id"]; ok {
		t.Error("the shareable status document carries user_id")
	}
}
