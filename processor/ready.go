package processor

import (
	"context"
	"fmt"
	"time"
)

// Ready reports whether the queue and the store can be reached. The result
// is cached for ReadyTTL so that probes cannot hammer them.
func (p *Processor) Ready(ctx context.Context) error {
	p.readyMu.Lock()
	defer p.readyMu.Unlock()
	if p.readyOK && p.now().Sub(p.readyAt) < p.cfg.ReadyTTL {
		return p.readyErr
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err := p.queue.Ping(cctx)
	if err != nil {
		err = fmt.Errorf("queue: %w", err)
	} else if err = p.store.Ping(cctx); err != nil {
		err = fmt.Errorf("store: %w", err)
	}
	if ctx.Err() != nil {
		return err // the caller gave up; don't cache its cancellation
	}
	p.readyAt, p.readyErr, p.readyOK = p.now(), err, true
	return err
}
