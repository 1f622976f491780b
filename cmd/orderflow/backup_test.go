package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/awstest"
	"github.com/orderflow/orderflow/sqlite"
)

// drillRPO is the RPO docs/operations.md promises with the default
// ORDERFLOW_REPLICA_SYNC_INTERVAL; the drills report what they measure
// against it (a figure of the machine's load, not asserted).
const drillRPO = time.Second

// timedLoad has 8 clients place orders through cl until stop is called
// (which waits for them), and records when each 202 came.
type timedLoad struct {
	mu    sync.Mutex
	acked map[string]time.Time // by idempotency key
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

// startTimedLoad starts the load; each client places at most one order
// every pace (0: as fast as the server answers).
func startTimedLoad(cl *crashClient, pace time.Duration) *timedLoad {
	l := &timedLoad{acked: map[string]time.Time{}, done: make(chan struct{})}
	for w := range 8 {
		l.wg.Go(func() {
			next := time.Now()
			for n := 0; ; n++ {
				select {
				case <-l.done:
					return
				case <-time.After(time.Until(next)):
				}
				next = next.Add(pace)
				key := fmt.Sprintf("w%d-%d", w, n)
				if cl.place(key, 1000+100*n+3*(n%5/4)) != nil {
					return // the server is gone
				}
				l.mu.Lock()
				l.acked[key] = time.Now()
				l.mu.Unlock()
			}
		})
	}
	return l
}

func (l *timedLoad) stop() { l.once.Do(func() { close(l.done) }); l.wg.Wait() }

func (l *timedLoad) count() int { l.mu.Lock(); defer l.mu.Unlock(); return len(l.acked) }

// drillLoad is how long the drill's load runs before the disaster, and
// drillPace its pace: 8 clients × 50 orders/s, 1,200 orders, which the
// processor ends within a few seconds after the restore.
const (
	drillLoad = 3 * time.Second
	drillPace = 20 * time.Millisecond
)

// TestBackupOfARunningServerUnderLoad: orderflow backup, run while the
// server takes orders, writes a snapshot that holds every order
// acknowledged before it began; the server goes on taking orders while
// and after it runs.
func TestBackupOfARunningServerUnderLoad(t *testing.T) {
	env := testEnv(t, crashSettings())
	c := startChild(t, env, filepath.Join(t.TempDir(), "child.log"))
	cl := newCrashClient(t, "http://"+env["ORDERFLOW_API_ADDR"])
	load := startTimedLoad(cl, 0)
	defer load.stop()
	if !cl.waitAccepted(300, 20*time.Second) {
		t.Fatal("fewer than 300 orders accepted within 20s")
	}
	cl.mu.Lock()
	before := make(map[string]accepted, len(cl.ok))
	for k, a := range cl.ok {
		before[k] = a
	}
	cl.mu.Unlock()
	dst := filepath.Join(t.TempDir(), "snapshot.db")
	out, _ := runCmd(t, env, "backup", "--to", dst)
	if !strings.Contains(out, "backed up") {
		t.Errorf("backup printed %q", out)
	}
	if !cl.waitAccepted(len(before)+300, 20*time.Second) {
		t.Fatal("the server took no more orders after the backup")
	}
	load.stop()
	c.stop(t)

	snap, err := sqlite.Open(context.Background(), dst, sqlite.Options{MustExist: true})
	if err != nil {
		t.Fatalf("open the snapshot: %v", err)
	}
	defer snap.Close()
	for key, a := range before {
		if _, err := snap.GetOrder(context.Background(), orderflow.OrderID(a.OrderID)); err != nil {
			t.Fatalf("order %s (key %s), acknowledged before the backup, is not in it: %v", a.OrderID, key, err)
		}
	}
	if _, _, err := runCmdErr(env, "backup", "--to", dst); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("a second backup onto %s: got %v, want a refusal to overwrite", dst, err)
	}
	t.Logf("%d orders acknowledged before the backup are in it", len(before))
}

// drillResult is what a disaster drill measured.
type drillResult struct {
	acked, lost int
	rpo         time.Duration // the oldest lost acknowledgement's age at the disaster
	lag         time.Duration // orderflow_replica_lag_seconds just before the kill
	restore     time.Duration
}

// runDrill is the disaster drill with env's replica: under a bounded load
// (drillLoad at drillPace),
// kill -9 the server, delete its database directory (file, WAL, shared
// memory, Litestream's local state), orderflow restore, start again, and
// check that every order acknowledged before the replica's lag, read just
// before the kill, is there (the replica said it held it), ends terminal
// and is charged once; and that the replica held some of the load.
func runDrill(t *testing.T, env map[string]string) drillResult {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "child.log")
	c := startChild(t, env, logPath)
	cl := newCrashClient(t, "http://"+env["ORDERFLOW_API_ADDR"])
	load := startTimedLoad(cl, drillPace)
	loadStart := time.Now()
	for time.Since(loadStart) < drillLoad {
		time.Sleep(10 * time.Millisecond)
		select {
		case <-c.done:
			t.Fatalf("the server exited under load: %v", c.err)
		default:
		}
	}
	// The replicator, a child process at a lower priority, may not have
	// shipped anything yet on a busy machine: wait until the replica holds
	// part of the load (its lag is shorter than the load is old), so that
	// there is something to restore.
	metrics := "http://" + env["ORDERFLOW_PROCESSOR_ADDR"] + "/metrics"
	for deadline := time.Now().Add(30 * time.Second); replicaLag(t, metrics) >= time.Since(loadStart); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the replica held none of the load %s after it began", time.Since(loadStart).Round(time.Second))
		}
	}
	lagAt := time.Now()
	res := drillResult{lag: replicaLag(t, metrics)}
	c.kill9(t)
	disaster := time.Now()
	load.stop()
	covered := lagAt.Add(-res.lag) // every write before this is in the replica

	dbDir := filepath.Dir(env["ORDERFLOW_DB"])
	entries, _ := os.ReadDir(dbDir)
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dbDir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	out, errOut, err := runCmdErr(env, "restore")
	if err != nil {
		logs, _ := os.ReadFile(logPath)
		t.Fatalf("orderflow restore: %v\n%s%s\nthe server's replica lines (lag %s at the kill, load began %s before it):\n%s",
			err, out, errOut, res.lag, disaster.Sub(loadStart).Round(time.Millisecond), grepLines(string(logs), "replica"))
	}
	res.restore, res.acked = time.Since(start), load.count()
	t.Logf("orderflow restore: %s", strings.TrimSpace(out))
	c = startChild(t, env, logPath)

	var lostAt []time.Time
	final := map[string]statusDoc{}
	for key, at := range load.acked {
		a := cl.ok[key]
		if statusCode(t, a.StatusURL) == http.StatusNotFound {
			if at.Before(covered) {
				t.Errorf("order %s (key %s), acknowledged %s before the disaster and %s before the replica's lag (%s), is not in the restored database",
					a.OrderID, key, disaster.Sub(at).Round(time.Millisecond), covered.Sub(at).Round(time.Millisecond), res.lag.Round(time.Millisecond))
			}
			lostAt = append(lostAt, at)
			continue
		}
		final[key] = pollUntilTerminal(t, a.StatusURL, 60*time.Second)
	}
	if len(final) == 0 {
		t.Errorf("the replica held none of the %d orders acknowledged (lag %s at the kill)", res.acked, res.lag)
	}
	c.stop(t)
	sort.Slice(lostAt, func(i, j int) bool { return lostAt[i].Before(lostAt[j]) })
	if res.lost = len(lostAt); res.lost > 0 {
		res.rpo = disaster.Sub(lostAt[0])
	}
	checkChargedOnce(t, sqliteBooks(t, env), final)
	return res
}

// replicaLag reads orderflow_replica_lag_seconds off the metrics at url.
func replicaLag(t *testing.T, url string) time.Duration {
	t.Helper()
	m := regexp.MustCompile(`(?m)^orderflow_replica_lag_seconds (\S+)$`).FindStringSubmatch(metricsText(t, url))
	if m == nil {
		t.Fatalf("%s has no orderflow_replica_lag_seconds", url)
	}
	secs, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return time.Duration(secs * float64(time.Second))
}

// statusCode is the status of a GET of url.
func statusCode(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// checkChargedOnce checks that every order of final has exactly one charge
// if COMPLETED and none otherwise (the drill cancels nothing).
func checkChargedOnce(t *testing.T, st books, final map[string]statusDoc) {
	t.Helper()
	for key, doc := range final {
		charges, err := st.Charges(context.Background(), orderflow.OrderID(doc.OrderID))
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		if doc.Status == "COMPLETED" {
			want = 1
		}
		if len(charges) != want {
			t.Errorf("order %s (key %s) is %s with %d charges, want %d", doc.OrderID, key, doc.Status, len(charges), want)
		}
	}
}

// drillEnv is the crash tests' settings with the replica at url.
func drillEnv(t *testing.T, url string, more map[string]string) map[string]string {
	t.Helper()
	s := crashSettings()
	s["ORDERFLOW_REPLICA_URL"] = url
	for k, v := range more {
		s[k] = v
	}
	return testEnv(t, s)
}

func TestDisasterDrillWithAFileReplica(t *testing.T) {
	env := drillEnv(t, "file://"+filepath.Join(t.TempDir(), "replica"), nil)
	r := runDrill(t, env)
	t.Logf("drill (file): %d orders acknowledged, %d lost; measured RPO %s (documented: %s), replica lag at the kill %s; restore took %s",
		r.acked, r.lost, r.rpo.Round(time.Millisecond), drillRPO, r.lag.Round(time.Millisecond), r.restore.Round(time.Millisecond))
}

// TestRestoreRefusesToOverwriteAndRestoresAPointInTime: restore finds no
// backup in an empty replica, refuses to replace a database without
// --force and while a server runs on it, and restores the latest state or
// the state at --timestamp.
func TestRestoreRefusesToOverwriteAndRestoresAPointInTime(t *testing.T) {
	env := testEnv(t, map[string]string{"ORDERFLOW_REPLICA_URL": "file://" + filepath.Join(t.TempDir(), "replica")})
	if _, _, err := runCmdErr(env, "restore"); err == nil || !strings.Contains(err.Error(), "holds no backup") {
		t.Fatalf("restore from an empty replica: got %v, want no backup", err)
	}
	if out, _ := runCmd(t, env, "restore", "--if-missing"); !strings.Contains(out, "no backup yet") {
		t.Errorf("restore --if-missing from an empty replica printed %q", out)
	}
	c := startChild(t, env, filepath.Join(t.TempDir(), "child.log"))
	api := "http://" + env["ORDERFLOW_API_ADDR"]
	token := login(t, api, "rita")
	first := placeWithRequestID(t, api, token, "first", 1000)
	waitForMetrics(t, "http://"+env["ORDERFLOW_PROCESSOR_ADDR"]+"/metrics", 20*time.Second, "orderflow_replica_lag_seconds 0\n")
	between := time.Now()
	second := placeWithRequestID(t, api, token, "second", 1100)
	for _, args := range [][]string{{"restore"}, {"restore", "--force"}} {
		if _, _, err := runCmdErr(env, args...); err == nil {
			t.Errorf("orderflow %s while the server runs: got no error", strings.Join(args, " "))
		}
	}
	c.stop(t) // ships the last writes

	has := func(id string) bool {
		db, err := sqlite.Open(context.Background(), env["ORDERFLOW_DB"], sqlite.Options{MustExist: true})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		_, err = db.GetOrder(context.Background(), orderflow.OrderID(id))
		return err == nil
	}
	runCmd(t, env, "restore", "--force", "--timestamp", between.UTC().Format(time.RFC3339Nano))
	if !has(first.OrderID) || has(second.OrderID) {
		t.Errorf("restore --timestamp between the orders: first present %v, second present %v; want true, false", has(first.OrderID), has(second.OrderID))
	}
	runCmd(t, env, "restore", "--force")
	if !has(first.OrderID) || !has(second.OrderID) {
		t.Errorf("restore of the latest state: first present %v, second present %v; want both", has(first.OrderID), has(second.OrderID))
	}
	if _, _, err := runCmdErr(env, "restore"); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("restore onto an existing database without --force: got %v", err)
	}
	if out, _ := runCmd(t, env, "restore", "--if-missing"); !strings.Contains(out, "nothing to restore") {
		t.Errorf("restore --if-missing onto an existing database printed %q", out)
	}
	for _, p := range []string{env["ORDERFLOW_DB"], env["ORDERFLOW_DB"] + "-wal", env["ORDERFLOW_DB"] + "-shm"} {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	runCmd(t, env, "restore", "--if-missing")
	if !has(first.OrderID) || !has(second.OrderID) {
		t.Errorf("restore --if-missing of a deleted database: first present %v, second present %v; want both", has(first.OrderID), has(second.OrderID))
	}
}

// TestDisasterDrillWithAnS3ReplicaOnMoto is the drill with the replica in
// a bucket of moto's S3, reached through AWS_ENDPOINT_URL_S3 (with
// AWS_ENDPOINT_URL on a closed port: the replica must take its service's
// endpoint) with path-style addressing.
func TestDisasterDrillWithAnS3ReplicaOnMoto(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	// The SDK cannot add a CA bundle to Litestream's S3 client (the
	// configuration refuses the two together); moto is plain HTTP.
	t.Setenv("AWS_CA_BUNDLE", "")
	bucket := awstest.Name("orderflow-replica")
	s3c := s3.NewFromConfig(awstest.Config(endpoint), func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := s3c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	env := drillEnv(t, "s3://"+bucket+"/shop/orderflow", map[string]string{
		"AWS_ENDPOINT_URL_S3": endpoint,
		"AWS_ENDPOINT_URL":    closedEndpoint,
		"AWS_REGION":          awstest.Region,
		"AWS_CA_BUNDLE":       "",
	})
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		objects, err := s3c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &bucket})
		if err != nil {
			t.Logf("list the bucket: %v", err)
			return
		}
		for _, o := range objects.Contents {
			t.Logf("in the bucket: %s (%d bytes, %s)", *o.Key, *o.Size, o.LastModified.Format(time.RFC3339Nano))
		}
	})
	r := runDrill(t, env)
	objects, err := s3c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String("shop/orderflow/")})
	if err != nil || len(objects.Contents) == 0 {
		t.Errorf("the bucket holds nothing under shop/orderflow/: %v", err)
	}
	t.Logf("drill (S3 on moto): %d orders acknowledged, %d lost; measured RPO %s (documented: %s), replica lag at the kill %s; restore took %s",
		r.acked, r.lost, r.rpo.Round(time.Millisecond), drillRPO, r.lag.Round(time.Millisecond), r.restore.Round(time.Millisecond))
}

// TestReadyDoesNotDependOnTheReplica: with a replica that cannot be
// reached, the server is ready and takes orders; the replica's errors are
// counted and its lag grows past the RPO, for the alert.
func TestReadyDoesNotDependOnTheReplica(t *testing.T) {
	t.Setenv("AWS_CA_BUNDLE", "") // see TestDisasterDrillWithAnS3ReplicaOnMoto
	env := testEnv(t, map[string]string{
		"ORDERFLOW_REPLICA_URL": "s3://nowhere/orderflow",
		"AWS_ENDPOINT_URL_S3":   closedEndpoint,
		"AWS_CA_BUNDLE":         "",
	})
	in := startRun(t, env) // waits for /ready of the api and the processor
	token := login(t, in.api, "una")
	a := placeWithRequestID(t, in.api, token, "unreplicated", 1000)
	if doc := pollUntilTerminal(t, a.StatusURL, 20*time.Second); doc.Status != "COMPLETED" {
		t.Errorf("order ended %s, want COMPLETED", doc.Status)
	}
	waitForMetricRE(t, in.processor+"/metrics", `(?m)^orderflow_replica_errors_total [1-9]`)
	waitForMetricRE(t, in.processor+"/metrics", `(?m)^orderflow_replica_lag_seconds ([1-9]|\d\d)`)
	if code := statusCode(t, in.processor+"/ready"); code != http.StatusOK {
		t.Errorf("processor /ready with the replica down: %d, want 200", code)
	}
	if code := statusCode(t, in.api+"/ready"); code != http.StatusOK {
		t.Errorf("api /ready with the replica down: %d, want 200", code)
	}
}

// waitForMetricRE polls url's metrics until a line matches re (20 s).
func waitForMetricRE(t *testing.T, url, re string) {
	t.Helper()
	waitForMetricREOn(t, []string{url}, re)
}

// waitForMetricREOn polls the metrics at urls until a line of one of them
// matches re (20 s), and returns that one's index.
func waitForMetricREOn(t *testing.T, urls []string, re string) int {
	t.Helper()
	rx := regexp.MustCompile(re)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var seen []string
		for i, url := range urls {
			m := metricsText(t, url)
			if rx.MatchString(m) {
				return i
			}
			seen = append(seen, url+":\n"+grepLines(m, "orderflow_replica"))
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line matching %s after 20s in the metrics of\n%s", re, strings.Join(seen, "\n"))
		}
	}
}

// TestSplitModeReplicatesFromOneProcess: the api and the processor on one
// file, both with the replica set, replicate it from one process at a
// time; when that one is killed, the other takes over.
func TestSplitModeReplicatesFromOneProcess(t *testing.T) {
	env := testEnv(t, map[string]string{"ORDERFLOW_REPLICA_URL": "file://" + filepath.Join(t.TempDir(), "replica")})
	logs := t.TempDir()
	procs := []*child{
		startChildCommand(t, env, filepath.Join(logs, "api.log"), "api"),
		startChildCommand(t, env, filepath.Join(logs, "processor.log"), "processor"),
	}
	metrics := []string{"http://" + env["ORDERFLOW_API_ADDR"] + "/metrics", "http://" + env["ORDERFLOW_PROCESSOR_ADDR"] + "/metrics"}
	// Either may replicate: the api started first, but its replicator
	// process, at a lower priority, may take the lock after the
	// processor's on a busy machine.
	active := waitForMetricREOn(t, metrics, `(?m)^orderflow_replica_active 1$`)
	other := 1 - active
	if m := metricsText(t, metrics[other]); !strings.Contains(m, "orderflow_replica_active 0\n") {
		t.Fatalf("the %s replicates too:\n%s", procs[other].command, grepLines(m, "orderflow_replica"))
	}
	// The one standing by says so: no lag of its own (the replica's lag
	// alert is on every process).
	waitForMetricRE(t, metrics[other], `(?m)^orderflow_replica_lag_seconds 0$`)
	procs[active].kill9(t)
	waitForMetricRE(t, metrics[other], `(?m)^orderflow_replica_active 1$`)
	procs[other].stop(t)
}
