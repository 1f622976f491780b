package awstest

import (
	"sync/atomic"
	"time"
)

// Clock is a settable clock for the stores' and the intake's Now, safe for
// concurrent use: it starts at the time NewClock is called and moves only
// by Advance, so that a test can step past a takeover or sweep time
// without waiting for it.
type Clock struct{ ns atomic.Int64 }

// NewClock returns a Clock set to the current time.
func NewClock() *Clock {
	c := &Clock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

// Now is the clock's time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
