package processor

import (
	"errors"
	"fmt"
	"time"

	"github.com/orderflow/orderflow"
)

// Config tunes a Processor. A zero field takes its default.
type Config struct {
	// Env is the env label of the metrics.
	Env string
	// Concurrency is how many orders are in work at once (default 64).
	Concurrency int
	// BatchSize is the most messages one Receive asks for (1-10, default 10).
	BatchSize int
	// Receivers is how many receive loops run (default: enough to keep
	// Concurrency busy with BatchSize messages each, at most 4).
	Receivers int
	// WaitTime is the long-poll wait of Receive (default 1s).
	WaitTime time.Duration
	// BackoffBase and BackoffMax bound the retry delay of a message after
	// a transient error (defaults 1s and 30s).
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// ReceiveBackoffBase and ReceiveBackoffMax bound the pause between
	// failed Receive calls (defaults 100ms and 10s).
	ReceiveBackoffBase time.Duration
	ReceiveBackoffMax  time.Duration
	// DrainTimeout is how long Run waits for orders in work after its
	// context ends (default 25s).
	DrainTimeout time.Duration
	// StageTimeout bounds each call to a stage or the store (default 10s).
	// A call that times out is a transient error.
	StageTimeout time.Duration
	// DeleteDelay is how long a finished message waits for others to be
	// deleted in the same batch of up to 10 (default 5ms; negative: no
	// wait, only the messages finished at the same moment share a batch).
	// The order is final before its message is deleted, so the wait adds
	// nothing to its latency, and Run deletes what waits before it
	// returns; the wait is capped at a third of the queue's visibility
	// timeout, well before a finished message could be received again.
	// On SQS a long window pays (sqsqueue.DefaultDeleteWindow).
	DeleteDelay time.Duration
	// GatherDelay is how long a receive loop that found fewer than
	// BatchSize free work slots waits for more to free up before it
	// receives (default 5ms). While the processor is saturated, slots
	// free one at a time; without it every Receive would fetch one or two
	// messages, and a Receive costs about as much for one message as for
	// ten. With free slots to spare it never waits.
	GatherDelay time.Duration
	// ReadyTTL is how long Ready caches its result (default 2s).
	ReadyTTL time.Duration
	// DepthTTL is how long the queue_messages gauge caches Depth (default 1s).
	DepthTTL time.Duration
	// DeadLetterInterval is how often WatchDeadLetters looks for dead
	// messages at the least (default DefaultDeadLetterInterval).
	DeadLetterInterval time.Duration
	// Region is the region this processor works in (the AWS mode's
	// AWS_REGION; empty in the embedded mode). A message of an order whose
	// home region is another (orderflow.Order.Region: its api accepted it
	// there, or a processor there took it over) is deleted unworked: that
	// region's processor works the order, and two regions writing one
	// order would be resolved by last writer wins.
	Region string
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.BatchSize > c.Concurrency {
		c.BatchSize = c.Concurrency
	}
	if c.Receivers == 0 {
		c.Receivers = min(max(c.Concurrency/c.BatchSize, 1), 4)
	}
	def(&c.WaitTime, time.Second)
	def(&c.BackoffBase, time.Second)
	def(&c.BackoffMax, 30*time.Second)
	def(&c.ReceiveBackoffBase, 100*time.Millisecond)
	def(&c.ReceiveBackoffMax, 10*time.Second)
	def(&c.DrainTimeout, DefaultDrainTimeout)
	def(&c.StageTimeout, 10*time.Second)
	def(&c.DeleteDelay, 5*time.Millisecond)
	def(&c.GatherDelay, 5*time.Millisecond)
	def(&c.ReadyTTL, 2*time.Second)
	def(&c.DepthTTL, time.Second)
	def(&c.DeadLetterInterval, DefaultDeadLetterInterval)
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("concurrency must be positive, got %d", c.Concurrency))
	}
	if c.BatchSize < 1 || c.BatchSize > 10 {
		errs = append(errs, fmt.Errorf("batch size must be 1-10, got %d", c.BatchSize))
	}
	if c.Receivers < 1 {
		errs = append(errs, fmt.Errorf("receivers must be positive, got %d", c.Receivers))
	}
	if c.BackoffMax < c.BackoffBase {
		errs = append(errs, fmt.Errorf("backoff max %s is below backoff base %s", c.BackoffMax, c.BackoffBase))
	}
	if c.ReceiveBackoffMax < c.ReceiveBackoffBase {
		errs = append(errs, fmt.Errorf("receive backoff max %s is below its base %s", c.ReceiveBackoffMax, c.ReceiveBackoffBase))
	}
	for name, d := range map[string]time.Duration{
		"wait time": c.WaitTime, "backoff base": c.BackoffBase,
		"receive backoff base": c.ReceiveBackoffBase, "drain timeout": c.DrainTimeout,
		"stage timeout": c.StageTimeout, "gather delay": c.GatherDelay,
		"dead-letter interval": c.DeadLetterInterval,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative, got %s", name, d))
		}
	}
	return errors.Join(errs...)
}

// validatePolicy checks the queue's redelivery policy, which the processor
// follows: the attempt with ReceiveCount ≥ MaxReceives is the last, and
// the visibility of a message in work is extended every third of
// VisibilityTimeout.
func validatePolicy(qp orderflow.QueuePolicy) error {
	var errs []error
	if qp.MaxReceives < 1 {
		errs = append(errs, fmt.Errorf("max receives must be positive, got %d", qp.MaxReceives))
	}
	if qp.VisibilityTimeout < 0 {
		errs = append(errs, fmt.Errorf("visibility timeout must not be negative, got %s", qp.VisibilityTimeout))
	}
	return errors.Join(errs...)
}
