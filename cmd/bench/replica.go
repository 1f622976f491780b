package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// replicaWatch samples, every 250 ms while a phase runs, the server's
// orderflow_replica_lag_seconds and the size of its WAL: with -replica,
// how far the replica falls behind while the server is saturated.
type replicaWatch struct {
	proc, wal string
	stop      chan struct{}
	done      chan struct{}

	mu             sync.Mutex
	maxLag, lag    float64 // seconds: the most, and the last sample
	maxWAL, wal0   int64   // bytes: the most, and at the start
	sampled, wals0 bool
}

const replicaSample = 250 * time.Millisecond

// watchReplica starts sampling the server whose processor is at proc and
// whose database is db.
func watchReplica(proc, db string) *replicaWatch {
	w := &replicaWatch{proc: proc, wal: db + "-wal", stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(replicaSample)
		defer t.Stop()
		for {
			w.sample()
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

func (w *replicaWatch) sample() {
	page, err := scrape(w.proc)
	var size int64
	if fi, err := os.Stat(w.wal); err == nil {
		size = fi.Size()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.wals0 {
		w.wal0, w.wals0 = size, true
	}
	w.maxWAL = max(w.maxWAL, size)
	if err == nil {
		w.lag, w.sampled = page.sum("orderflow_replica_lag_seconds", nil), true
		w.maxLag = max(w.maxLag, w.lag)
	}
}

// end stops the sampling and returns the largest lag and WAL seen, and
// the WAL's size at the start.
func (w *replicaWatch) end() (maxLag float64, maxWAL, wal0 int64) {
	close(w.stop)
	<-w.done
	return w.maxLag, w.maxWAL, w.wal0
}

// caughtUp waits, for up to 5 minutes, until the replica's lag is under
// 1 s (the documented RPO) and returns how long that took.
func caughtUp(proc string) time.Duration {
	start := time.Now()
	for time.Since(start) < 5*time.Minute {
		if page, err := scrape(proc); err == nil && page.sum("orderflow_replica_lag_seconds", nil) < 1 {
			break
		}
		time.Sleep(replicaSample)
	}
	return time.Since(start)
}

// replicaNice is the niceness the server's replicator runs at, as the
// bench's environment sets it (the server's default if unset).
func replicaNice() string {
	if n := os.Getenv("ORDERFLOW_REPLICA_NICE"); n != "" {
		return n
	}
	return "default"
}

// printReplica prints what a replicaWatch saw in a phase.
func printReplica(phase string, maxLag float64, maxWAL, wal0 int64, caught time.Duration) {
	say("  replica (nice %s) %s: lag max %.1f s; WAL %.1f MB at the start, %.1f MB max",
		replicaNice(), phase, maxLag, float64(wal0)/(1<<20), float64(maxWAL)/(1<<20))
	if caught >= 0 {
		say("; lag under 1 s %.1f s after the load ended", caught.Seconds())
	}
	say("\n")
}

// treeCPU is the CPU time of the process pid and of its children (the
// server's replicator process) so far.
func treeCPU(pid int) time.Duration {
	d := cpuTime(pid)
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, s := range stats {
		b, err := os.ReadFile(s)
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(b), ')')
		if f := strings.Fields(string(b[i+1:])); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			child, _ := strconv.Atoi(filepath.Base(filepath.Dir(s)))
			d += cpuTime(child)
		}
	}
	return d
}
