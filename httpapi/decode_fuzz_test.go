package httpapi

import (
	"errors"
	"net/http"
	"testing"
)

// FuzzDecodeOrder checks the POST /orders decoder on arbitrary bodies: it
// never panics, rejects only with a 400 or 422 client error, and whatever
// it accepts is a valid order of the authenticated user. The seed corpus is
// in testdata/fuzz/FuzzDecodeOrder.
func FuzzDecodeOrder(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		o, err := decodeOrder(body, "u123")
		if err != nil {
			var ce *clientError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T) is not a client error", err, err)
			}
			if s := kindOf(ce.code).status; s != http.StatusBadRequest && s != http.StatusUnprocessableEntity {
				t.Fatalf("error %q maps to %d, want 400 or 422", ce.detail, s)
			}
			if ce.detail == "" {
				t.Fatal("client error without a detail")
			}
			return
		}
		if err := o.Validate(); err != nil {
			t.Fatalf("accepted %q but Validate says %v", body, err)
		}
		if o.UserID != "u123" {
			t.Fatalf("accepted an order of user %q", o.UserID)
		}
	})
}
