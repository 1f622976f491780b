package sqsqueue

import "time"

// SetPauseClock makes the pauses of q's receive linger end when the
// channel that after returns delivers, instead of after the linger.
func SetPauseClock(q *Queue, after func(time.Duration) <-chan time.Time) {
	q.pace.after = after
}
