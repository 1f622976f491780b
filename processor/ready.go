package processor

import (
	"context"
	"fmt"
)

// Ready reports whether the queue and the store can be reached. The result
// is cached for ReadyTTL so that probes cannot hammer them.
func (p *Processor) Ready(ctx context.Context) error { return p.ready.Check(ctx) }

// ping checks the queue, then the store.
func (p *Processor) ping(ctx context.Context) error {
	if err := p.queue.Ping(ctx); err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	if err := p.store.Ping(ctx); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}
