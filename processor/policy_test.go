package processor

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
)

// policyQueue is the fake queue whose Policy fails as an unreachable
// service would until the test lets it answer, or answers policy.
type policyQueue struct {
	*fakeQueue
	down   atomic.Bool
	asked  atomic.Int32
	policy *orderflow.QueuePolicy // if set, answered instead of the fake's
}

func (q *policyQueue) Policy(ctx context.Context) (orderflow.QueuePolicy, error) {
	q.asked.Add(1)
	if q.down.Load() {
		return orderflow.QueuePolicy{}, orderflow.Unavailable(nil, "queue down")
	}
	if q.policy != nil {
		return *q.policy, nil
	}
	return q.fakeQueue.Policy(ctx)
}

// TestRunReadsTheQueuesPolicyBeforeItReceives: while the queue cannot say
// its redelivery policy, Run receives nothing and keeps asking (the
// program starts while the queue is down); once it answers, orders are
// worked by it.
func TestRunReadsTheQueuesPolicyBeforeItReceives(t *testing.T) {
	var pq *policyQueue
	h := newHarness(t, func(h *harness) {
		pq = &policyQueue{fakeQueue: h.q}
		h.deps.Queue = pq
		h.cfg.ReceiveBackoffBase, h.cfg.ReceiveBackoffMax = time.Millisecond, 5*time.Millisecond
	})
	// newHarness learnt the policy for the tests that call parts directly;
	// this one starts from a processor that has not, while the queue is down.
	pq.down.Store(true)
	p, err := New(h.cfg, h.deps)
	if err != nil {
		t.Fatal(err)
	}
	h.p = p
	o := h.order(1000)
	h.send(o)
	h.start()
	h.eventually("Run to ask again for the policy", func() bool { return pq.asked.Load() >= 4 })
	if got := h.q.receiveCalls(); got != 0 {
		t.Errorf("Run received %d times before it knew the queue's policy, want 0", got)
	}
	pq.down.Store(false)
	h.eventually("the order to complete once the policy is known", func() bool {
		got, _ := h.s.GetOrder(context.Background(), o.ID)
		return got.Status == orderflow.StatusCompleted
	})
	if len(h.logs.Messages("cannot read the queue's redelivery policy; pausing")) == 0 {
		t.Error("no line said why Run waits")
	}
}

// TestRunRefusesAPolicyItCannotFollow: a queue whose max receives is not
// positive, or whose visibility timeout is negative, stops Run with an
// error that says so.
func TestRunRefusesAPolicyItCannotFollow(t *testing.T) {
	for name, qp := range map[string]orderflow.QueuePolicy{
		"max receives":       {VisibilityTimeout: time.Second, MaxReceives: 0},
		"visibility timeout": {VisibilityTimeout: -time.Second, MaxReceives: 3},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			p, err := New(h.cfg, Deps{Queue: &policyQueue{fakeQueue: h.q, policy: &qp}, Store: h.deps.Store,
				Inventory: h.deps.Inventory, Fraud: h.deps.Fraud, Payment: h.deps.Payment})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			err = p.Run(ctx)
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("Run = %v, want an error about the queue's %s", err, name)
			}
		})
	}
}
