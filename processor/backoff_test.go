package processor

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	const base, max = time.Second, 30 * time.Second
	tests := []struct {
		name     string
		n        int
		min, max time.Duration
	}{
		{"the first retry waits between half the base and the base", 1, 500 * time.Millisecond, time.Second},
		{"the second retry doubles", 2, time.Second, 2 * time.Second},
		{"the fourth retry doubles again", 4, 4 * time.Second, 8 * time.Second},
		{"late retries are capped at the max", 20, 15 * time.Second, 30 * time.Second},
		{"a receive count of zero counts as the first", 0, 500 * time.Millisecond, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := backoff(base, max, tt.n, "m1")
			if d < tt.min || d > tt.max {
				t.Errorf("backoff(%d) = %s, want within [%s, %s]", tt.n, d, tt.min, tt.max)
			}
			if again := backoff(base, max, tt.n, "m1"); again != d {
				t.Errorf("backoff is not a pure function: %s then %s", d, again)
			}
		})
	}
}

func TestBackoffJitterSpreadsMessages(t *testing.T) {
	seen := map[time.Duration]bool{}
	for _, id := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		seen[backoff(time.Second, 30*time.Second, 3, id)] = true
	}
	if len(seen) < 4 {
		t.Errorf("8 messages got only %d distinct delays", len(seen))
	}
}

func TestBackoffOfZeroBaseIsZero(t *testing.T) {
	if d := backoff(0, 0, 3, "m"); d != 0 {
		t.Errorf("backoff = %s, want 0", d)
	}
}
