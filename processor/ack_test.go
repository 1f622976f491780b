package processor

import (
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	const base, max = time.Second, 30 * time.Second
	retry := func(n int) outcome {
		return outcome{action: actRetry, delay: backoff(base, max, n, "m1")}
	}
	deadLetter := outcome{action: actDeadLetter}
	tests := []struct {
		name string
		v    verdict
		want outcome
	}{
		{"a finished order's message is deleted", verdict{kind: kindFinished, receiveCount: 1}, outcome{action: actDelete}},
		{"a finished order's message is deleted on the last receive too", verdict{kind: kindFinished, receiveCount: 5, last: true}, outcome{action: actDelete}},
		{"a duplicate of a message in work is deleted", verdict{kind: kindDuplicate, receiveCount: 1}, outcome{action: actDelete}},
		{"a drained attempt is put back unchanged", verdict{kind: kindDrained, receiveCount: 1}, outcome{action: actAbandon}},
		{"a drained attempt is put back unchanged on the last receive", verdict{kind: kindDrained, receiveCount: 5, last: true, read: true, unpaid: true}, outcome{action: actAbandon}},
		{"a transient error is retried after a backoff", verdict{kind: kindTransient, receiveCount: 1, read: true, unpaid: true}, retry(1)},
		{"the backoff grows with the receive count", verdict{kind: kindTransient, receiveCount: 3}, retry(3)},
		{"a poison message is retried before its last receive", verdict{kind: kindPoison, receiveCount: 2}, retry(2)},
		{"a message back while in work is retried", verdict{kind: kindBusy, receiveCount: 1}, retry(1)},
		{"a missing order is retried", verdict{kind: kindNotFound, receiveCount: 1}, retry(1)},
		{"a missing order on the last receive is left for the DLQ", verdict{kind: kindNotFound, receiveCount: 5, last: true}, deadLetter},
		{"a message back while in work on the last receive is left for the DLQ", verdict{kind: kindBusy, receiveCount: 5, last: true}, deadLetter},
		{"a poison message on the last receive fails the order it names", verdict{kind: kindPoison, receiveCount: 5, last: true}, outcome{action: actDeadLetter, fail: true}},
		{"an unpaid order's last transient error fails it", verdict{kind: kindTransient, receiveCount: 5, last: true, read: true, unpaid: true}, outcome{action: actDeadLetter, fail: true}},
		{"a charged order is never failed", verdict{kind: kindTransient, receiveCount: 5, last: true, read: true, unpaid: true, charged: true}, deadLetter},
		{"an order that could not be read is not failed", verdict{kind: kindTransient, receiveCount: 5, last: true, unpaid: true}, deadLetter},
		{"an order an earlier attempt may have paid is not failed", verdict{kind: kindTransient, receiveCount: 5, last: true, read: true}, deadLetter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.v.messageID = "m1"
			if got := decide(tt.v, base, max); got != tt.want {
				t.Errorf("decide(%+v) = %+v, want %+v", tt.v, got, tt.want)
			}
		})
	}
}
