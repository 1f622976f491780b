package sqlite

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics tell an operator where a write's time goes: how long callers
// wait, how long the WAL's fsync takes, and how many operations share a
// transaction. See docs/operations.md.
type metrics struct {
	waitCommit prometheus.Observer // sqlite_write_wait_seconds{until="commit"}
	waitFsync  prometheus.Observer // sqlite_write_wait_seconds{until="fsync"}
	fsync      prometheus.Histogram
	txWrites   prometheus.Histogram
}

// newMetrics makes the DB's metrics and registers them with reg (none if
// reg is nil).
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	wait := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "sqlite_write_wait_seconds",
		Help: "How long a write to the SQLite file kept its caller waiting, from submission until it was released: " +
			`at commit (until="commit": the processor's own bookkeeping) or once the WAL holding it was fsynced ` +
			`(until="fsync": accepted orders, receives, operator commands; with Synchronous NORMAL, at commit).`,
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"until"})
	m := &metrics{
		waitCommit: wait.WithLabelValues("commit"),
		waitFsync:  wait.WithLabelValues("fsync"),
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sqlite_wal_fsync_seconds",
			Help:    "Duration of each fsync of the SQLite WAL; one fsync releases every transaction committed before it.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		txWrites: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sqlite_transaction_writes",
			Help:    "Write operations (an accepted order, a receive, a status transition, ...) committed together in one SQLite transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10), // 1 … 512 (maxBatch)
		}),
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{wait, m.fsync, m.txWrites} {
		errs = append(errs, reg.Register(c))
	}
	return m, errors.Join(errs...)
}
