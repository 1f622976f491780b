//go:build linux

package main

import (
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/orderflow/orderflow/storetest"
)

// With the disk full, /ready on the api and on the processor answers 503
// (as every POST /orders does: no traffic is sent to a store that cannot
// take it), and once space
// is freed both answer 200 again by themselves, without an order being
// posted or the program restarted, and orders go through.
func TestReadyFollowsWhetherTheStoreCanWrite(t *testing.T) {
	dir := storetest.SmallDisk(t, 16<<20)
	in := startRun(t, testEnv(t, map[string]string{"ORDERFLOW_DB": filepath.Join(dir, "orderflow.db")}))
	token := login(t, in.api, "disk")
	var a accepted
	if resp := call(t, "POST", in.api+"/orders", token, map[string]any{"amount": 1250}, &a); resp.StatusCode != 202 {
		t.Fatalf("create before the disk is full: got %d", resp.StatusCode)
	}

	fillers := []*storetest.Filler{storetest.FillDisk(t, dir)}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp := call(t, "POST", in.api+"/orders", token, map[string]any{"amount": 1250}, nil)
		if resp.StatusCode == 503 {
			break
		}
		if resp.StatusCode != 202 || time.Now().After(deadline) {
			t.Fatalf("create on a full disk: got %d, want 503 in the end", resp.StatusCode)
		}
	}
	// A failed write makes the store checkpoint and truncate its WAL, which
	// gives space back, and small writes reuse the WAL in place: while
	// /ready says 200 the store can indeed write. Take the space it gives
	// back, and post orders (which need new pages) until it cannot.
	for !bothAnswer(in, 503, 3*time.Second) {
		if time.Now().After(deadline) {
			t.Fatalf("/ready does not answer 503 on both ports while the disk is full\n%s", in.out)
		}
		fillers = append(fillers, storetest.FillDisk(t, dir))
		for range 20 {
			call(t, "POST", in.api+"/orders", token, map[string]any{"amount": 1250}, nil)
		}
	}

	for _, f := range fillers {
		f.Free(t, 1<<30)
	}
	for _, base := range []string{in.api, in.processor} {
		waitStatus(t, base+"/ready", 200)
	}
	if resp := call(t, "POST", in.api+"/orders", token, map[string]any{"amount": 1250}, &a); resp.StatusCode != 202 {
		t.Fatalf("create after space was freed: got %d", resp.StatusCode)
	}
	if doc := pollUntilTerminal(t, a.StatusURL, 30*time.Second); doc.Status != "COMPLETED" {
		t.Errorf("order after space was freed ended %s, want COMPLETED", doc.Status)
	}
}

// bothAnswer reports whether /ready on the api and on the processor both
// answer status within d (each caches its check for a second or two).
func bothAnswer(in *instance, status int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for _, base := range []string{in.api, in.processor} {
		for {
			resp, err := http.Get(base + "/ready")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == status {
					break
				}
			}
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return true
}
