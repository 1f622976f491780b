package httpapi

import (
	"net/http"
	"testing"

	"github.com/go-json-experiment/json"

	"github.com/orderflow/orderflow"
)

// writeAccepted writes the 202 body by hand; it must be exactly what
// encoding Accepted gives, every field set, so that clients decoding
// Accepted (the orderflow command) read what the server wrote.
func TestAcceptedBodyIsTheWireType(t *testing.T) {
	f := newFixture(t)
	rr := f.postOrder("u123", `{"amount":1250,"currency":"EUR"}`)
	if rr.Code != http.StatusAccepted {
		t.Fatalf("status %d %s, want 202", rr.Code, rr.Body)
	}
	var a Accepted
	if err := json.Unmarshal(rr.Body.Bytes(), &a, json.RejectUnknownMembers(true)); err != nil {
		t.Fatalf("202 body %s does not decode into Accepted: %v", rr.Body, err)
	}
	if a.OrderID == "" || a.Status != orderflow.StatusPending || a.StatusURL != rr.Header().Get("Location") || a.ExpiresAt.IsZero() {
		t.Errorf("Accepted %+v from %s: want every field set, status PENDING, status_url = Location", a, rr.Body)
	}
	if got, want := rr.Body.String(), string(encodeJSON(a)); got != want {
		t.Errorf("hand-written 202 body\n%s differs from Accepted encoded\n%s", got, want)
	}
}
