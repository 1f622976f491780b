package processor

import "time"

// action is what happens to a message after an attempt.
type action int

const (
	actDelete     action = iota // finished: delete it
	actRetry                    // keep it, hidden for the outcome's delay
	actDeadLetter               // no attempt follows: visible at once, for the queue to dead-letter it
	actAbandon                  // the drain timed out: put it back at once, unchanged
)

// outcome is the decision on one message.
type outcome struct {
	action action
	delay  time.Duration // of actRetry
	// fail: before the message goes to the dead-letter queue, end its
	// order FAILED (and give its stock back), since no attempt follows.
	fail bool
}

// kind is what an attempt came to.
type kind int

const (
	kindFinished  kind = iota // the order is terminal, by this attempt or an earlier one
	kindDuplicate             // another message of the order is in work in this process
	kindPoison                // the message cannot be decoded
	kindBusy                  // the same message came back while still in work
	kindNotFound              // no such order (yet)
	kindTransient             // a step failed in a way that may pass
	kindDrained               // the drain timed out while the order was in work
	kindForeign               // the order is another region's, which works it
)

// reason is the label of processor_retries_total for a retry of kind k.
func (k kind) reason() string {
	switch k {
	case kindPoison:
		return "poison"
	case kindBusy:
		return "busy"
	case kindNotFound:
		return "not_found"
	default:
		return "transient"
	}
}

// verdict is what decide knows of an attempt.
type verdict struct {
	kind         kind
	receiveCount int
	last         bool // ReceiveCount ≥ the queue's MaxReceives: no redelivery follows
	// The order's state, for a transient error on the last receive:
	read    bool // the order was read
	charged bool // the payment was taken, in this attempt or an earlier one
	unpaid  bool // no attempt can have taken the payment
	// messageID seeds the jitter of the backoff.
	messageID string
}

// decide is the acknowledgement policy (see the package documentation):
// a finished order or a duplicate message is deleted; a drained attempt
// is put back unchanged; anything else is retried after a backoff of
// base·2^(n-1) capped at max, unless this was the last receive, when the
// message is left for the dead-letter queue. Leaving it, the order is
// ended FAILED only if that cannot contradict a payment (a transient error
// on an order read and known unpaid), or if a poison message names it
// (failPoisoned decides which orders).
func decide(v verdict, base, max time.Duration) outcome {
	switch v.kind {
	case kindFinished, kindDuplicate, kindForeign:
		return outcome{action: actDelete}
	case kindDrained:
		return outcome{action: actAbandon}
	}
	if !v.last {
		return outcome{action: actRetry, delay: backoff(base, max, v.receiveCount, v.messageID)}
	}
	switch v.kind {
	case kindPoison:
		return outcome{action: actDeadLetter, fail: true}
	case kindTransient:
		return outcome{action: actDeadLetter, fail: v.read && v.unpaid && !v.charged}
	}
	return outcome{action: actDeadLetter}
}
