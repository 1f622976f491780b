package orderflow

import (
	"strings"
	"testing"
	"time"
)

var testTime = time.UnixMilli(1_750_000_000_000)

func validOrder() Order {
	return Order{UserID: "u123", Amount: 999, Currency: "USD", Items: []Item{{SKU: "widget", Quantity: 2}}}
}

func TestOrderValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Order)
		want   string // substring of the detail; "" = valid
		field  string // the error's Field
	}{
		{"a plain order is valid", func(o *Order) {}, "", ""},
		{"an order without items is valid", func(o *Order) { o.Items = nil }, "", ""},
		{"amount of zero is rejected", func(o *Order) { o.Amount = 0 }, "amount must be a positive", "amount"},
		{"negative amount is rejected", func(o *Order) { o.Amount = -5 }, "amount must be a positive", "amount"},
		{"amount above the maximum is rejected", func(o *Order) { o.Amount = MaxAmount + 1 }, "at most", "amount"},
		{"amount at the maximum is accepted", func(o *Order) { o.Amount = MaxAmount }, "", ""},
		{"lower-case currency is rejected", func(o *Order) { o.Currency = "usd" }, "currency", "currency"},
		{"empty currency is rejected", func(o *Order) { o.Currency = "" }, "currency", "currency"},
		{"empty user id is rejected", func(o *Order) { o.UserID = "" }, "user_id", "user_id"},
		{"user id with a space is rejected", func(o *Order) { o.UserID = "a b" }, "user_id", "user_id"},
		{"overlong user id is rejected", func(o *Order) { o.UserID = strings.Repeat("a", MaxUserIDLength+1) }, "user_id", "user_id"},
		{"email-like user id is accepted", func(o *Order) { o.UserID = "ada+test@example.com" }, "", ""},
		{"empty sku is rejected", func(o *Order) { o.Items[0].SKU = "" }, "items[0].sku", "items[0].sku"},
		{"sku with a slash is rejected", func(o *Order) { o.Items[0].SKU = "a/b" }, "items[0].sku", "items[0].sku"},
		{"quantity of zero is rejected", func(o *Order) { o.Items[0].Quantity = 0 }, "items[0].quantity", "items[0].quantity"},
		{"quantity above the maximum is rejected", func(o *Order) { o.Items[0].Quantity = MaxQuantity + 1 }, "items[0].quantity", "items[0].quantity"},
		{"the same sku twice is rejected", func(o *Order) { o.Items = append(o.Items, Item{SKU: "widget", Quantity: 1}) }, "appears twice", "items[1].sku"},
		{"too many items are rejected", func(o *Order) {
			o.Items = nil
			for i := 0; i <= MaxItems; i++ {
				o.Items = append(o.Items, Item{SKU: "s" + itoa3(i), Quantity: 1})
			}
		}, "at most", "items"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := validOrder()
			tt.mutate(&o)
			err := o.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v, want valid", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("got valid, want an error containing %q", tt.want)
			}
			if ErrorCode(err) != EInvalid || !strings.Contains(ErrorDetail(err), tt.want) {
				t.Fatalf("got %s %q, want invalid containing %q", ErrorCode(err), ErrorDetail(err), tt.want)
			}
			if got := ErrorField(err); got != tt.field {
				t.Errorf("field: got %q, want %q", got, tt.field)
			}
		})
	}
}

func itoa3(i int) string { return string(rune('a'+i/26)) + string(rune('a'+i%26)) }

func TestStatusMovesForwardOnly(t *testing.T) {
	all := []Status{StatusPending, StatusProcessing, StatusCompleted, StatusRejected, StatusFailed, StatusCancelled}
	allowed := map[[2]Status]bool{
		{StatusPending, StatusProcessing}:   true,
		{StatusPending, StatusCompleted}:    true,
		{StatusPending, StatusRejected}:     true,
		{StatusPending, StatusFailed}:       true,
		{StatusPending, StatusCancelled}:    true,
		{StatusProcessing, StatusCompleted}: true,
		{StatusProcessing, StatusRejected}:  true,
		{StatusProcessing, StatusFailed}:    true,
		{StatusProcessing, StatusCancelled}: true,
	}
	for _, from := range all {
		for _, to := range all {
			if got, want := from.CanMoveTo(to), allowed[[2]Status{from, to}]; got != want {
				t.Errorf("%s→%s: got %v, want %v", from, to, got, want)
			}
		}
		if from.CanMoveTo("BOGUS") || Status("BOGUS").CanMoveTo(from) {
			t.Errorf("unknown status moves with %s", from)
		}
	}
	for _, s := range all {
		if got, want := s.Terminal(), s != StatusPending && s != StatusProcessing; got != want {
			t.Errorf("%s.Terminal() = %v, want %v", s, got, want)
		}
		if got, want := s.Cancellable(), !s.Terminal(); got != want {
			t.Errorf("%s.Cancellable() = %v, want %v", s, got, want)
		}
	}
}

func TestTransitionValidate(t *testing.T) {
	f := &Failure{Code: ReasonFraudSuspected, Detail: "score 60"}
	tests := []struct {
		name string
		t    Transition
		ok   bool
	}{
		{"pending to processing is fine", Transition{ID: "x", From: StatusPending, To: StatusProcessing}, true},
		{"processing to rejected with a failure is fine", Transition{ID: "x", From: StatusProcessing, To: StatusRejected, Failure: f}, true},
		{"rejected without a failure is refused", Transition{ID: "x", From: StatusProcessing, To: StatusRejected}, false},
		{"completed with a failure is refused", Transition{ID: "x", From: StatusProcessing, To: StatusCompleted, Failure: f}, false},
		{"backward is refused", Transition{ID: "x", From: StatusCompleted, To: StatusProcessing}, false},
		{"processing to cancelled with a refund is fine", Transition{ID: "x", From: StatusProcessing, To: StatusCancelled, RefundID: "re_1"}, true},
		{"a refund on another status is refused", Transition{ID: "x", From: StatusProcessing, To: StatusCompleted, RefundID: "re_1"}, false},
		{"cancelled with a failure is refused", Transition{ID: "x", From: StatusProcessing, To: StatusCancelled, Failure: f}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.t.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("got %v, want ok=%v", err, tt.ok)
			}
			if err != nil && ErrorCode(err) != EInvalid {
				t.Fatalf("got code %s, want invalid", ErrorCode(err))
			}
		})
	}
	if got := (Transition{ID: "o1", From: StatusPending, To: StatusProcessing}).String(); got != "o1 PENDING→PROCESSING" {
		t.Errorf("got %q", got)
	}
}

func TestNewOrderIDSortsByTime(t *testing.T) {
	t0 := time.UnixMilli(1_700_000_000_000)
	a, b := NewOrderID(t0), NewOrderID(t0.Add(time.Millisecond))
	if !a.Valid() || !b.Valid() {
		t.Fatalf("ids not valid: %s %s", a, b)
	}
	if !(a < b) {
		t.Fatalf("got %s >= %s, want ids to sort by time", a, b)
	}
	if c, d := NewOrderID(t0), NewOrderID(t0); c == d {
		t.Fatal("two ids in the same millisecond are equal")
	}
	for _, bad := range []OrderID{"", "xyz", OrderID(strings.Repeat("A", 32)), a + "0", a[:31],
		a[:31] + "g", a[:31] + "/", a[:31] + ":", a[:31] + "`", "é" + a[2:]} {
		if bad.Valid() {
			t.Errorf("%q is valid, want invalid", bad)
		}
	}
}

func TestNewOrderIDInCarriesTheRegion(t *testing.T) {
	t0 := time.UnixMilli(1_700_000_000_000)
	a, b := NewOrderIDIn(t0, "us-east-1"), NewOrderIDIn(t0.Add(time.Millisecond), "eu-west-1")
	if !a.Valid() || !b.Valid() || !(a < b) {
		t.Fatalf("ids %s, %s: want valid and sorted by time", a, b)
	}
	if !a.AcceptedIn("us-east-1") || a.AcceptedIn("eu-west-1") || !b.AcceptedIn("eu-west-1") || b.AcceptedIn("us-east-1") {
		t.Errorf("%s and %s: want each accepted in its own region only", a, b)
	}
	if got := string(a[12:16]); got != RegionTag("us-east-1") {
		t.Errorf("%s carries %q, want the tag %q at 12-15", a, got, RegionTag("us-east-1"))
	}
	if a.AcceptedIn("") || OrderID("nope").AcceptedIn("us-east-1") {
		t.Error("no region, or an id that is not one, is accepted in a region")
	}
	seen := map[OrderID]bool{}
	for range 1000 {
		id := NewOrderIDIn(t0, "us-east-1")
		if seen[id] {
			t.Fatalf("%s made twice in one millisecond", id)
		}
		seen[id] = true
	}
}

// The regions an id's tag must tell apart: AWS's (commercial, GovCloud,
// China) on 2026-12-01.
func TestRegionTagsOfTheAWSRegionsDiffer(t *testing.T) {
	regions := []string{
		"us-east-1", "us-east-2", "us-west-1", "us-west-2", "af-south-1", "ap-east-1", "ap-east-2",
		"ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3",
		"ap-southeast-4", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7", "ap-northeast-1",
		"ap-northeast-2", "ap-northeast-3", "ca-central-1", "ca-west-1", "eu-central-1",
		"eu-central-2", "eu-west-1", "eu-west-2", "eu-west-3", "eu-south-1", "eu-south-2",
		"eu-north-1", "il-central-1", "me-south-1", "me-central-1", "mx-central-1", "sa-east-1",
		"us-gov-east-1", "us-gov-west-1", "cn-north-1", "cn-northwest-1",
	}
	byTag := map[string]string{}
	for _, r := range regions {
		if other, ok := byTag[RegionTag(r)]; ok {
			t.Errorf("%s and %s share the tag %s", r, other, RegionTag(r))
		}
		byTag[RegionTag(r)] = r
	}
}
