package orderflow

import (
	"strings"
	"testing"
	"time"
)

func TestMessageRoundTrip(t *testing.T) {
	m := Message{OrderID: NewOrderID(testTime), RequestID: "req-1", TraceParent: "00-abc-def-01"}
	got, err := DecodeMessage(EncodeMessage(m))
	if err != nil || got != m {
		t.Fatalf("got %+v, %v; want %+v", got, err, m)
	}
}

func TestDecodeMessageRejectsPoison(t *testing.T) {
	id := string(NewOrderID(testTime))
	tests := []struct{ name, body string }{
		{"empty body", ""},
		{"not json", "hello"},
		{"unknown field", `{"order_id":"` + id + `","x":1}`},
		{"trailing data", `{"order_id":"` + id + `"} {}`},
		{"missing order id", `{"request_id":"r"}`},
		{"malformed order id", `{"order_id":"../etc/passwd"}`},
		{"wrong type", `{"order_id":42}`},
		{"overlong request id", `{"order_id":"` + id + `","request_id":"` + strings.Repeat("r", 129) + `"}`},
		{"oversized body", `{"order_id":"` + id + `","request_id":"` + strings.Repeat(" ", MaxMessageBytes) + `"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if m, err := DecodeMessage([]byte(tt.body)); err == nil || ErrorCode(err) != EInvalid {
				t.Fatalf("got %+v, %v; want an invalid error", m, err)
			}
		})
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add(EncodeMessage(Message{OrderID: NewOrderID(testTime), RequestID: "r"}))
	f.Add([]byte(`{"order_id":"0123456789abcdef0123456789abcdef"}`))
	f.Add([]byte(`{"order_id":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := DecodeMessage(body)
		if err != nil {
			return
		}
		if !m.OrderID.Valid() {
			t.Fatalf("accepted invalid order id %q", m.OrderID)
		}
		again, err := DecodeMessage(EncodeMessage(m))
		if err != nil || again != m {
			t.Fatalf("accepted message does not round-trip: %+v vs %+v (%v)", m, again, err)
		}
	})
}

func TestEncodeMessageNeverFails(t *testing.T) {
	m := Message{OrderID: NewOrderID(testTime), RequestID: "bad\xffutf8"}
	got, err := DecodeMessage(EncodeMessage(m))
	if err != nil || got.OrderID != m.OrderID || got.RequestID != "bad\uFFFDutf8" {
		t.Fatalf("got %+v, %v; want the order id and the request id with U+FFFD", got, err)
	}
}

func TestDecodeOrderIDReadsTheOrderOfAPoisonMessage(t *testing.T) {
	id := NewOrderID(time.Unix(1700000000, 0))
	tests := []struct {
		name string
		body string
		ok   bool
	}{
		{"a well-formed message names its order", `{"order_id":"` + string(id) + `"}`, true},
		{"unknown members are tolerated", `{"order_id":"` + string(id) + `","garbage":true}`, true},
		{"a name in another case is tolerated", `{"Order_ID":"` + string(id) + `"}`, true},
		{"a request id too long is tolerated", `{"order_id":"` + string(id) + `","request_id":"` + strings.Repeat("r", 200) + `"}`, true},
		{"an invalid order id is rejected", `{"order_id":"nope"}`, false},
		{"an order id of another type is rejected", `{"order_id":42}`, false},
		{"a body that is not JSON is rejected", `order`, false},
		{"trailing data is rejected", `{"order_id":"` + string(id) + `"} x`, false},
		{"an oversized body is rejected", `{"order_id":"` + string(id) + `","x":"` + strings.Repeat("x", MaxMessageBytes) + `"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeOrderID([]byte(tt.body))
			if tt.ok && (err != nil || got != id) {
				t.Errorf("DecodeOrderID = %q, %v; want %q", got, err, id)
			}
			if !tt.ok && err == nil {
				t.Errorf("DecodeOrderID = %q, want an error", got)
			}
		})
	}
}
