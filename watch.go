package orderflow

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Watcher tells of changes to orders, so that the api can push an order's
// status to its followers without reading the store per follower.
type Watcher interface {
	// Watch returns a channel that receives a value after order id may
	// have changed, until ctx ends; then the channel is closed. Signals
	// coalesce (the channel holds at most one) and may be spurious: the
	// receiver reads the order and compares. A change committed after
	// Watch returned is never missed. Safe for concurrent use.
	Watch(ctx context.Context, id OrderID) <-chan struct{}
}

// Default intervals of a WatchHub that polls.
const (
	DefaultWatchInterval    = time.Second
	DefaultWatchMaxInterval = 5 * time.Second
)

// WatchOptions configure a WatchHub.
type WatchOptions struct {
	// Versions, if not nil, reads the current version (any string that
	// changes with each transition, such as updated_at) of the given
	// orders, in as few store reads as it can; orders it does not return
	// are left alone. The hub calls it for every watched order each
	// interval while someone watches: the source of changes written by
	// other processes. Nil: only Notify tells of changes.
	Versions func(ctx context.Context, ids []OrderID) (map[OrderID]string, error)
	// Interval is the pause between two Versions calls after a change or
	// a new watch; it doubles while nothing changes, up to MaxInterval.
	Interval, MaxInterval time.Duration
}

// WatchHub is a Watcher fed by Notify (the writes of this process) and,
// with WatchOptions.Versions, by one batched read of all watched orders
// per interval (the writes of other processes). Its poller runs only while
// someone watches. Safe for concurrent use.
type WatchHub struct {
	opts WatchOptions

	mu      sync.Mutex
	subs    map[OrderID]map[chan struct{}]struct{}
	seen    map[OrderID]string // last version read by the poller
	polling bool
	wake    chan struct{} // a new watch: poll soon

	calls atomic.Int64 // Versions calls
}

// NewWatchHub returns a hub with opts (zero intervals take the defaults).
func NewWatchHub(opts WatchOptions) *WatchHub {
	if opts.Interval <= 0 {
		opts.Interval = DefaultWatchInterval
	}
	if opts.MaxInterval < opts.Interval {
		opts.MaxInterval = max(DefaultWatchMaxInterval, opts.Interval)
	}
	return &WatchHub{
		opts: opts,
		subs: map[OrderID]map[chan struct{}]struct{}{},
		seen: map[OrderID]string{},
		wake: make(chan struct{}, 1),
	}
}

// Watch implements Watcher.
func (h *WatchHub) Watch(ctx context.Context, id OrderID) <-chan struct{} {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	set := h.subs[id]
	if set == nil {
		set = map[chan struct{}]struct{}{}
		h.subs[id] = set
	}
	set[ch] = struct{}{}
	start := h.opts.Versions != nil && !h.polling
	h.polling = h.polling || start
	h.mu.Unlock()
	if start {
		go h.poll()
	} else {
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
	context.AfterFunc(ctx, func() { h.unwatch(id, ch) })
	return ch
}

func (h *WatchHub) unwatch(id OrderID, ch chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	set := h.subs[id]
	delete(set, ch)
	if len(set) == 0 {
		delete(h.subs, id)
		delete(h.seen, id)
	}
	close(ch)
}

// Notify tells the watchers of ids that their orders changed. The store
// calls it after the write committed.
func (h *WatchHub) Notify(ids ...OrderID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range ids {
		for ch := range h.subs[id] {
			select {
			case ch <- struct{}{}:
			default: // a signal is pending already
			}
		}
	}
}

// Watched is the number of orders watched now.
func (h *WatchHub) Watched() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Polls is the number of Versions calls made so far.
func (h *WatchHub) Polls() int64 { return h.calls.Load() }

// poll calls Versions for the watched orders each interval, backing off
// while nothing changes, and returns once nobody watches.
func (h *WatchHub) poll() {
	interval := h.opts.Interval
	timer := time.NewTimer(0) // the first read at once: a new watch has no version yet
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
		case <-h.wake:
			interval = h.opts.Interval
			continue // keep the timer: a new watch is read at the next tick
		}
		ids := h.watchedIDs()
		if ids == nil {
			return
		}
		if h.pollOnce(ids) {
			interval = h.opts.Interval
		} else {
			interval = min(2*interval, h.opts.MaxInterval)
		}
		timer.Reset(interval)
	}
}

// watchedIDs returns the watched orders, or nil (and ends polling) if
// there are none.
func (h *WatchHub) watchedIDs() []OrderID {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) == 0 {
		h.polling = false
		return nil
	}
	ids := make([]OrderID, 0, len(h.subs))
	for id := range h.subs {
		ids = append(ids, id)
	}
	return ids
}

// pollOnce reads the versions of ids and signals the watchers of those
// that changed, or were read for the first time (the watcher may have
// read the order before the change). It reports whether any changed.
func (h *WatchHub) pollOnce(ids []OrderID) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h.calls.Add(1)
	versions, err := h.opts.Versions(ctx, ids)
	if err != nil {
		return false // back off; the next read tries again
	}
	var changed []OrderID
	h.mu.Lock()
	for id, v := range versions {
		if _, watched := h.subs[id]; !watched {
			continue
		}
		if old, ok := h.seen[id]; !ok || old != v {
			h.seen[id] = v
			changed = append(changed, id)
		}
	}
	h.mu.Unlock()
	h.Notify(changed...)
	return len(changed) > 0
}
