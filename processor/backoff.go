package processor

import (
	"hash/fnv"
	"strconv"
	"time"
)

// backoff returns how long to hide a message before its next attempt after
// attempt n (1 on the first failure): base·2^(n-1) capped at max, with
// "equal jitter" (half fixed, half spread). The jitter is a hash of seed
// and n rather than a random number, so that it spreads retries of
// different messages yet is a pure function that tests can predict.
func backoff(base, max time.Duration, n int, seed string) time.Duration {
	if n < 1 {
		n = 1
	}
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	if d <= 1 {
		return d
	}
	h := fnv.New64a()
	h.Write([]byte(seed))
	h.Write([]byte(strconv.Itoa(n)))
	half := d / 2
	return half + time.Duration(h.Sum64()%uint64(d-half+1))
}
