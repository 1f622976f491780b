package orderflow

import (
	"strings"
	"testing"
)

func TestValidRequestID(t *testing.T) {
	for id, want := range map[string]bool{
		"abc-123_X.y:z":                         true,
		strings.Repeat("a", MaxRequestIDLength): true,
		"":                                      false,
		"abc 123":                               false,
		"abc\u00e9":                             false,
		"a\nb":                                  false,
		strings.Repeat("a", MaxRequestIDLength+1): false,
	} {
		if got := ValidRequestID(id); got != want {
			t.Errorf("ValidRequestID(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestRequestIDsTakeSaneIDsAndMakeUniqueOnes(t *testing.T) {
	a, b := NewRequestIDs(), NewRequestIDs()
	if got := a.Take("client-1"); got != "client-1" {
		t.Errorf("Take(client-1) = %q, want it kept", got)
	}
	seen := map[string]bool{}
	for _, g := range []*RequestIDs{a, b} {
		for _, sent := range []string{"", "bad id", "x\x00"} {
			id := g.Take(sent)
			if !ValidRequestID(id) || seen[id] {
				t.Errorf("Take(%q) = %q, want a new valid id", sent, id)
			}
			seen[id] = true
		}
	}
}
