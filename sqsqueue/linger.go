package sqsqueue

import (
	"context"
	"sync"
	"time"

	"github.com/orderflow/orderflow"
)

// Defaults of the batching windows. Each trades latency for fewer
// requests (SQS bills per request, up to 10 messages each). At an arrival
// rate of r messages per millisecond a window of w ms fills a batch of
// about 1 + r·w, so at 100 orders/s 10 ms halve the sends and the receives
// of a moderate load; docs/performance.md has the figures.
const (
	// DefaultSendWindow is how long a Send waits for other Sends to share
	// its SendMessageBatch. It adds up to that much to the api's 202.
	DefaultSendWindow = 10 * time.Millisecond
	// DefaultReceiveLinger is the pause before the next receive of the
	// order queue once a receive came back short (see pacer). It adds up
	// to that much to the wait of a message that arrives in the pause.
	DefaultReceiveLinger = 10 * time.Millisecond
	// DefaultDeleteWindow is how long a processor on SQS should let a
	// finished message wait for others to share its DeleteMessageBatch
	// (processor.Config.DeleteDelay). The order is final before its
	// message is deleted, so the window adds nothing to an order's
	// latency; it only bounds how much a crash leaves for redelivery.
	DefaultDeleteWindow = 200 * time.Millisecond
)

// pacer spaces the order queue's receives while they come back short, so
// that each carries several messages instead of one.
//
// A long poll returns as soon as one message is there: at a moderate rate
// each ReceiveMessage carries one message, and several receive loops
// polling at once split the arrivals further. Once a receive returns
// fewer messages than it asked for, the pacer lets only one receive at a
// time through, and that one no sooner than linger after the short one
// returned: what arrived meanwhile comes back in one request. The
// messages of a receive are handed out as they arrive, never held, so a
// message waits at most linger longer than without the pacer, and the
// one a long poll catches after a quiet spell waits not at all. A
// receive that comes back full (the queue has plenty) lifts the pause
// and lets receives run side by side again, so throughput is not capped.
//
// Holding the messages of a short receive and asking again after the
// linger would cost two requests for what the pause gets in one, and
// the second would often come back empty.
type pacer struct {
	linger time.Duration
	gate   chan struct{} // capacity 1: the one receive allowed while short
	// after is time.After; the tests end a pause when they choose.
	after func(time.Duration) <-chan time.Time

	mu    sync.Mutex
	short bool      // the last receive returned fewer messages than asked
	next  time.Time // while short, no receive before this
}

func newPacer(linger time.Duration) *pacer {
	return &pacer{linger: linger, gate: make(chan struct{}, 1), after: time.After}
}

// wait returns once a receive may go, and done, which the caller must
// call with the receive's outcome. It returns an EUnavailable error, and
// no done, when ctx ends first.
func (p *pacer) wait(ctx context.Context) (done func(got, asked int, err error), err error) {
	p.mu.Lock()
	short := p.short
	p.mu.Unlock()
	if !short {
		return p.record, nil
	}
	select {
	case p.gate <- struct{}{}:
	case <-ctx.Done():
		return nil, orderflow.Unavailable(ctx.Err(), "sqs: receive: gave up waiting")
	}
	p.mu.Lock()
	pause := time.Until(p.next)
	p.mu.Unlock()
	if pause > 0 {
		select {
		case <-p.after(pause):
		case <-ctx.Done():
			<-p.gate
			return nil, orderflow.Unavailable(ctx.Err(), "sqs: receive: gave up waiting")
		}
	}
	return func(got, asked int, err error) {
		p.record(got, asked, err)
		<-p.gate
	}, nil
}

// record notes a receive's outcome: short or full. A failed receive
// changes nothing.
func (p *pacer) record(got, asked int, err error) {
	if err != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.short = got < asked
	if p.short {
		p.next = time.Now().Add(p.linger)
	}
}
