package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/sqlite"
)

// replicatorPIDs are the pids of the replicator processes that the JSON
// log lines of logs say were started, in order.
func replicatorPIDs(logs string) []int {
	var pids []int
	for _, l := range strings.Split(logs, "\n") {
		var r struct {
			Msg string `json:"msg"`
			PID int    `json:"pid"`
		}
		if json.Unmarshal([]byte(l), &r) == nil && r.Msg == "replicator process started" {
			pids = append(pids, r.PID)
		}
	}
	return pids
}

// waitReplicators waits, for up to 20 s, until logs name n replicator
// processes started, and returns their pids.
func waitReplicators(t *testing.T, logs func() string, n int) []int {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if pids := replicatorPIDs(logs()); len(pids) >= n {
			return pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d replicator processes started after 20s, want %d:\n%s", len(replicatorPIDs(logs())), n, logs())
		}
	}
}

// procStat reads the state (R, S, Z ...), parent pid and niceness of a
// process or thread from its stat file in /proc.
func procStat(path string) (state string, ppid, nice int, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", 0, 0, err
	}
	// The command name (field 2) may contain spaces; the fields after it
	// are plain: state is field 3, ppid 4, nice 19.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	ppid, _ = strconv.Atoi(f[1])
	nice, _ = strconv.Atoi(f[16])
	return f[0], ppid, nice, nil
}

// TestReplicaIsShippedByAChildProcessAtItsNiceness: with a replica set,
// serve replicates from a child process, every thread of it at
// ORDERFLOW_REPLICA_NICE, while none of serve's own goroutines runs
// Litestream; the lag and active gauges of serve's metrics follow what
// the child ships.
func TestReplicaIsShippedByAChildProcessAtItsNiceness(t *testing.T) {
	env := testEnv(t, map[string]string{
		"ORDERFLOW_REPLICA_URL":  "file://" + filepath.Join(t.TempDir(), "replica"),
		"ORDERFLOW_REPLICA_NICE": "7",
		"ORDERFLOW_LOG_LEVEL":    "info", // the replicator's pid
	})
	in := startRun(t, env)
	token := login(t, in.api, "nina")
	a := placeWithRequestID(t, in.api, token, "replicated", 1000)
	pollUntilTerminal(t, a.StatusURL, 20*time.Second)
	// Lag 0 after the order's last write: a sync that began after it
	// reached the replica, and the child told serve so.
	waitForMetrics(t, in.processor+"/metrics", 20*time.Second, "orderflow_replica_active 1\n", "orderflow_replica_lag_seconds 0\n")

	pids := replicatorPIDs(in.out.String())
	if len(pids) != 1 {
		t.Fatalf("replicator processes started: %v, want one", pids)
	}
	if _, ppid, _, err := procStat(fmt.Sprintf("/proc/%d/stat", pids[0])); err != nil || ppid != os.Getpid() {
		t.Fatalf("replicator process %d: parent %d (%v), want this process %d", pids[0], ppid, err, os.Getpid())
	}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pids[0]))
	for _, task := range tasks {
		if _, _, nice, err := procStat(task); err == nil && nice != 7 {
			t.Errorf("thread %s of the replicator process has niceness %d, want 7", task, nice)
		}
	}
	if len(tasks) == 0 {
		t.Errorf("the replicator process %d has no threads in /proc", pids[0])
	}
	buf := make([]byte, 16<<20)
	if stacks := buf[:runtime.Stack(buf, true)]; bytes.Contains(stacks, []byte("benbjohnson/litestream")) {
		t.Errorf("goroutines of serve's own process run Litestream:\n%s", grepLines(string(stacks), "litestream"))
	}
}

// TestKilledReplicatorIsStartedAgain: when the replicator process dies,
// serve counts an error, starts another, and the replica goes on getting
// the writes.
func TestKilledReplicatorIsStartedAgain(t *testing.T) {
	env := testEnv(t, map[string]string{"ORDERFLOW_REPLICA_URL": "file://" + filepath.Join(t.TempDir(), "replica"), "ORDERFLOW_LOG_LEVEL": "info"})
	in := startRun(t, env)
	metrics := in.processor + "/metrics"
	waitForMetrics(t, metrics, 20*time.Second, "orderflow_replica_active 1\n", "orderflow_replica_errors_total 0\n")
	first := waitReplicators(t, in.out.String, 1)[0]
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	second := waitReplicators(t, in.out.String, 2)[1]
	if second == first {
		t.Fatalf("the replicator process started again has the pid of the one killed, %d", first)
	}
	waitForMetricRE(t, metrics, `(?m)^orderflow_replica_errors_total [1-9]`)
	token := login(t, in.api, "otto")
	a := placeWithRequestID(t, in.api, token, "after-the-kill", 1000)
	pollUntilTerminal(t, a.StatusURL, 20*time.Second)
	waitForMetrics(t, metrics, 20*time.Second, "orderflow_replica_active 1\n", "orderflow_replica_lag_seconds 0\n")
}

// TestShutdownShipsEveryWriteToTheReplica: after a SIGTERM, the replica
// holds every write the server made, its last ones included: with a sync
// interval of an hour, the orders placed after the first sync get to the
// replica only by the replicator's last sync, after the server closed the
// database. The database restored from the replica has each order in its
// final state.
func TestShutdownShipsEveryWriteToTheReplica(t *testing.T) {
	replicaURL := "file://" + filepath.Join(t.TempDir(), "replica")
	env := testEnv(t, map[string]string{"ORDERFLOW_REPLICA_URL": replicaURL, "ORDERFLOW_REPLICA_SYNC_INTERVAL": "1h"})
	logPath := filepath.Join(t.TempDir(), "serve.log")
	c := startChild(t, env, logPath)
	api := "http://" + env["ORDERFLOW_API_ADDR"]
	token := login(t, api, "paula")
	final := map[string]string{}
	for i := range 20 {
		a := placeWithRequestID(t, api, token, fmt.Sprintf("last-%d", i), 1000+i)
		final[a.OrderID] = pollUntilTerminal(t, a.StatusURL, 20*time.Second).Status
	}
	c.stop(t)

	restored := filepath.Join(t.TempDir(), "restored.db")
	runCmd(t, map[string]string{"ORDERFLOW_DB": restored, "ORDERFLOW_REPLICA_URL": replicaURL}, "restore")
	db, err := sqlite.Open(context.Background(), restored, sqlite.Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for id, status := range final {
		o, err := db.GetOrder(context.Background(), orderflow.OrderID(id))
		if err != nil {
			t.Errorf("order %s (%s at the shutdown) is not in the replica: %v", id, status, err)
			continue
		}
		if string(o.Status) != status {
			t.Errorf("order %s is %s in the replica, want %s", id, o.Status, status)
		}
	}
}

// TestReplicatorDiesWithItsParent: kill -9 of the server kills its
// replicator process too, even one that would never see its stdin end
// (stopped here; hung in an upload, say), so that no orphan holds the
// replica lock against the server started next.
func TestReplicatorDiesWithItsParent(t *testing.T) {
	env := testEnv(t, map[string]string{"ORDERFLOW_REPLICA_URL": "file://" + filepath.Join(t.TempDir(), "replica"), "ORDERFLOW_LOG_LEVEL": "info"})
	logPath := filepath.Join(t.TempDir(), "serve.log")
	c := startChild(t, env, logPath)
	logs := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	rp := waitReplicators(t, logs, 1)[0]
	// Killed at the end only if it was not seen gone: once it is, its pid
	// may soon be another process's (pids wrap at 32768 here), which a
	// late SIGKILL would kill instead (a test's ElasticMQ, say).
	gone := false
	t.Cleanup(func() {
		if !gone {
			syscall.Kill(rp, syscall.SIGKILL)
		}
	})
	if err := syscall.Kill(rp, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	c.kill9(t)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		state, _, _, err := procStat(fmt.Sprintf("/proc/%d/stat", rp))
		if err != nil || state == "Z" {
			gone = true // or dead and not yet reaped
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replicator process %d is still there (state %s) 20s after its parent was killed", rp, state)
		}
	}
}
