package main

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/logtest"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/sqlite"
)

// runCmd runs one short command (such as "dlq list") against env and
// returns what it printed on stdout and on stderr.
func runCmd(t *testing.T, env map[string]string, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, err := runCmdErr(env, args...)
	if err != nil {
		t.Fatalf("orderflow %s: %v\n%s%s", strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout, stderr
}

// runCmdErr is runCmd for a command that may fail. Its stdin is not a
// terminal.
func runCmdErr(env map[string]string, args ...string) (stdout, stderr string, err error) {
	var out, errOut logtest.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = run(ctx, args, getenvOf(env), strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), err
}

// TestDeadLetterPath: an order whose payment always fails ends FAILED with
// a reason, its message lands in the DLQ with a poison message beside it,
// and redrive puts both back without changing the FAILED order.
func TestDeadLetterPath(t *testing.T) {
	env := testEnv(t, map[string]string{
		"ORDERFLOW_MAX_RECEIVES":       "2",
		"ORDERFLOW_VISIBILITY_TIMEOUT": "1s",
	})
	in := startRun(t, env)

	// A poison message, as someone with send rights to the queue could write.
	db, err := sqlite.Open(context.Background(), env["ORDERFLOW_DB"], sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SendRaw(context.Background(), []byte("not an order")); err != nil {
		t.Fatal(err)
	}
	db.Close()

	token := login(t, in.api, "ada")
	var a accepted
	if resp := call(t, "POST", in.api+"/orders", token, map[string]any{"amount": 2004}, &a); resp.StatusCode != 202 {
		t.Fatalf("create: got %d", resp.StatusCode)
	}
	doc := pollUntilTerminal(t, a.StatusURL, 30*time.Second)
	if doc.Status != "FAILED" || doc.Failure == nil || doc.Failure.Code != "processing_failed" {
		t.Fatalf("got %+v, want FAILED processing_failed", doc)
	}

	var list, count string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		list, count = runCmd(t, env, "dlq", "list")
		if strings.Contains(count, "2 dead-letter message(s)") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(list, a.OrderID) || !strings.Contains(list, "not an order") {
		t.Fatalf("dlq list: got\n%s\nwant the failed order %s and the poison body", list, a.OrderID)
	}
	// Received twice on its way to the DLQ, counted once: one message.
	waitForMetrics(t, in.processor+"/metrics", 5*time.Second, "processor_poison_messages_total 1\n")

	if out, _ := runCmd(t, env, "dlq", "redrive"); !strings.Contains(out, "redrove 2 message(s)") {
		t.Fatalf("dlq redrive: got %q", out)
	}
	// The redriven message of the FAILED order is deleted as a duplicate;
	// the poison message goes round again into the DLQ.
	for time.Now().Before(deadline) {
		list, count = runCmd(t, env, "dlq", "list")
		if strings.Contains(count, "1 dead-letter message(s)") && !strings.Contains(list, a.OrderID) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Contains(list, a.OrderID) || !strings.Contains(count, "1 dead-letter message(s)") {
		t.Fatalf("after redrive: got\n%s\nwant only the poison message back in the DLQ", list)
	}
	if again := pollUntilTerminal(t, a.StatusURL, time.Second); again.Status != "FAILED" {
		t.Fatalf("after redrive the order is %s, want it to stay FAILED", again.Status)
	}
	if out, _ := runCmd(t, env, "dlq", "purge", "--yes"); !strings.Contains(out, "purged 1 message(s)") {
		t.Fatalf("dlq purge: got %q", out)
	}
	waitForMetrics(t, in.processor+"/metrics", 5*time.Second, `orders_processed_total{env="local",status="error"} 1`)
}

// TestDLQCommandsForOperators: list prints only JSON lines on stdout (the
// count goes to stderr), purge wants --yes when there is no terminal to
// ask on, and no dlq command creates a database that is not there.
func TestDLQCommandsForOperators(t *testing.T) {
	env := testEnv(t, nil)
	path := env["ORDERFLOW_DB"]

	for _, args := range [][]string{{"dlq", "list"}, {"dlq", "redrive"}, {"dlq", "purge", "--yes"}} {
		_, _, err := runCmdErr(env, args...)
		if err == nil || !strings.Contains(err.Error(), "no database at "+path) {
			t.Errorf("orderflow %s without a database: got %v, want \"no database at %s\"", strings.Join(args, " "), err, path)
		}
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("orderflow %s created %s (stat: %v)", strings.Join(args, " "), path, err)
		}
	}

	// Two dead messages: an order's and a poison one.
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{MaxReceives: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Send(context.Background(), orderflow.Message{OrderID: orderflow.NewOrderID(time.Now()), RequestID: "req-1"}); err != nil {
		t.Fatal(err)
	}
	if err := db.SendRaw(context.Background(), []byte("not an order")); err != nil {
		t.Fatal(err)
	}
	// Received once (the most they get) and made visible again, the next
	// receive moves both to the dead-letter table.
	for _, d := range mustReceive(t, db) {
		if err := db.ChangeVisibility(context.Background(), d.Receipt, 0); err != nil {
			t.Fatal(err)
		}
	}
	if ds := mustReceive(t, db); len(ds) != 0 {
		t.Fatalf("received %d messages, want both dead-lettered", len(ds))
	}
	db.Close()

	stdout, stderr := runCmd(t, env, "dlq", "list")
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("dlq list printed %d lines on stdout, want the 2 messages:\n%s", len(lines), stdout)
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["message_id"] == nil {
			t.Errorf("dlq list stdout line %q is not a message's JSON object (%v)", l, err)
		}
	}
	if !strings.Contains(stderr, "2 dead-letter message(s)") {
		t.Errorf("dlq list stderr = %q, want the count", stderr)
	}

	_, _, err = runCmdErr(env, "dlq", "purge")
	if err == nil || !strings.Contains(err.Error(), "--yes") {
		t.Errorf("dlq purge without --yes and without a terminal: got %v, want a refusal naming --yes", err)
	}
	if _, stderr := runCmd(t, env, "dlq", "list"); !strings.Contains(stderr, "2 dead-letter message(s)") {
		t.Errorf("after a refused purge dlq list says %q, want both messages still there", stderr)
	}
	if out, _ := runCmd(t, env, "dlq", "purge", "--yes"); !strings.Contains(out, "purged 2 message(s)") {
		t.Errorf("dlq purge --yes: got %q", out)
	}
}

// mustReceive receives whatever is visible in db at once.
func mustReceive(t *testing.T, db *sqlite.DB) []orderflow.Delivery {
	t.Helper()
	ds, err := db.Receive(context.Background(), 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// Under cron or systemd stdin is /dev/null, a character device that nobody
// answers on: purge must want --yes there as on a pipe.
func TestIsTerminalIsFalseForDevNullAndPipes(t *testing.T) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for name, f := range map[string]*os.File{"/dev/null": null, "a pipe": r} {
		if isTerminal(f) {
			t.Errorf("isTerminal(%s) = true, want false", name)
		}
	}
}
