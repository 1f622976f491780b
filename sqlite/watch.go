package sqlite

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow"
)

// watchBatch bounds the ids of one watch read (SQLite's default limit of
// host parameters is 32766).
const watchBatch = 500

// watcher is the DB's orderflow.Watcher. The writer notifies it of the
// orders each transaction moved, once the transaction has committed; with
// Options.WatchOtherWriters it also reads the watched orders' updated_at
// each interval, in one query per 500 orders, skipped when PRAGMA
// data_version says that no connection committed since the last read.
// Reads per watched order per second: at most 1/(500·interval) queries;
// none while the file is unchanged.
type watcher struct {
	hub   *orderflow.WatchHub
	reads atomic.Int64 // queries of orders made for watching

	mu      sync.Mutex
	conn    *sql.Conn // held: data_version is per connection
	version int64
}

func (db *DB) newWatcher() *watcher {
	w := &watcher{}
	opts := orderflow.WatchOptions{Interval: db.opts.WatchInterval, MaxInterval: db.opts.WatchMaxInterval}
	if db.opts.WatchOtherWriters {
		opts.Versions = func(ctx context.Context, ids []orderflow.OrderID) (map[orderflow.OrderID]string, error) {
			return db.watchVersions(ctx, w, ids)
		}
	}
	w.hub = orderflow.NewWatchHub(opts)
	return w
}

// Watch implements orderflow.Watcher.
func (db *DB) Watch(ctx context.Context, id orderflow.OrderID) <-chan struct{} {
	return db.watch.hub.Watch(ctx, id)
}

var _ orderflow.Watcher = (*DB)(nil)

// watchVersions returns the updated_at of those of ids that exist, or nil
// when no connection committed since the last call.
func (db *DB) watchVersions(ctx context.Context, w *watcher, ids []orderflow.OrderID) (map[orderflow.OrderID]string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn == nil {
		c, err := db.rdb.Conn(ctx)
		if err != nil {
			return nil, err
		}
		w.conn = c
		w.version = -1
	}
	var v int64
	if err := w.conn.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
		w.conn.Close()
		w.conn = nil
		return nil, err
	}
	if v == w.version {
		return nil, nil
	}
	out := make(map[orderflow.OrderID]string, len(ids))
	for len(ids) > 0 {
		n := min(len(ids), watchBatch)
		if err := w.readVersions(ctx, ids[:n], out); err != nil {
			return nil, err
		}
		ids = ids[n:]
	}
	w.version = v
	return out, nil
}

// readVersions reads the updated_at of ids into out, in one query.
func (w *watcher) readVersions(ctx context.Context, ids []orderflow.OrderID, out map[orderflow.OrderID]string) error {
	w.reads.Add(1)
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = string(id)
	}
	q := "SELECT id, status, updated_at FROM orders WHERE id IN (?" + strings.Repeat(",?", len(ids)-1) + ")"
	rows, err := w.conn.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, status string
		var at int64
		if err := rows.Scan(&id, &status, &at); err != nil {
			return err
		}
		out[orderflow.OrderID(id)] = status + "-" + strconv.FormatInt(at, 10)
	}
	return rows.Err()
}

// close gives back the watcher's held connection.
func (w *watcher) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
}

// collectors are the watcher's metrics.
func (w *watcher) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "order_watch_reads_total",
			Help: "Store reads made to learn of order changes written by other processes (one read covers many watched orders).",
		}, func() float64 { return float64(w.reads.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "order_watch_orders",
			Help: "Orders whose status someone follows (status streams and long-polls).",
		}, func() float64 { return float64(w.hub.Watched()) }),
	}
}
