package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// syncedFile is a syncWriter that keeps what was written apart from what
// was synced.
type syncedFile struct {
	mu              sync.Mutex
	written, synced []byte
	failWrite       bool
	syncs           int
	// flush, when set, runs at the start of each Sync: the disk's flush,
	// while appends pile up.
	flush func()
}

func (f *syncedFile) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failWrite {
		return 0, errors.New("disk full")
	}
	f.written = append(f.written, b...)
	return len(b), nil
}

func (f *syncedFile) Sync() error {
	if f.flush != nil {
		f.flush()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.synced = append(f.synced[:0], f.written...)
	f.syncs++
	return nil
}

func (f *syncedFile) holds(line string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return bytes.Contains(f.synced, []byte(line+"\n"))
}

func TestGroupLogReturnsOnceTheAppendIsSynced(t *testing.T) {
	f := &syncedFile{}
	g := &groupLog{f: f, kick: make(chan struct{}, 1)}
	// Each flush lasts until another append waits for the next round, or
	// until every append has begun (or 10 s pass): appends pile up
	// meanwhile, as they do during a disk's flush.
	var begun atomic.Int64
	f.flush = func() {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); runtime.Gosched() {
			g.mu.Lock()
			pending := len(g.waiting)
			g.mu.Unlock()
			if pending > 0 || begun.Load() == 200 {
				return
			}
		}
	}
	go g.run()
	defer close(g.kick)

	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			line := fmt.Sprintf("order %d", i)
			begun.Add(1)
			if err := g.append([]byte(line)); err != nil {
				t.Errorf("append %q: %v", line, err)
				return
			}
			if !f.holds(line) {
				t.Errorf("append %q returned before its line was synced", line)
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(string(f.synced), "\n"), "\n")
	slices.Sort(lines)
	want := make([]string, 200)
	for i := range want {
		want[i] = fmt.Sprintf("order %d", i)
	}
	slices.Sort(want)
	if !slices.Equal(lines, want) {
		t.Errorf("synced %d lines, want each of the 200 appends once", len(lines))
	}
	if f.syncs >= 200 {
		t.Errorf("%d syncs for 200 concurrent appends: no group commit", f.syncs)
	}
}

func TestGroupLogReportsAFailedWrite(t *testing.T) {
	g := &groupLog{f: &syncedFile{failWrite: true}, kick: make(chan struct{}, 1)}
	go g.run()
	defer close(g.kick)
	if err := g.append([]byte("order")); err == nil {
		t.Fatal("append returned nil although the write failed")
	}
}

func TestGroupLogOnAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g := &groupLog{f: f, kick: make(chan struct{}, 1)}
	go g.run()
	defer close(g.kick)
	for _, line := range []string{"a", "b"} {
		if err := g.append([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	if b, _ := os.ReadFile(path); string(b) != "a\nb\n" {
		t.Errorf("file holds %q, want \"a\\nb\\n\"", b)
	}
}

func TestWaitProcessedReturnsOnceTheProcessorHasDoneTheOrders(t *testing.T) {
	var scrapes atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		// 10 orders processed before, then one more on every scrape, in
		// two series.
		n := scrapes.Add(1)
		fmt.Fprintf(w, "orders_processed_total{status=\"success\"} %d\norders_processed_total{status=\"error\"} 10\n", n)
	}))
	defer srv.Close()
	done, err := waitProcessed(srv.URL, 10, 3)
	if err != nil {
		t.Fatal(err)
	}
	if done != 3 || scrapes.Load() != 3 {
		t.Errorf("waitProcessed returned %g after %d scrapes, want 3 after 3", done, scrapes.Load())
	}
	srv.Close()
	if _, err := waitProcessed(srv.URL, 0, 1); err == nil {
		t.Error("waitProcessed on a stopped server returned nil, want its error")
	}
}
