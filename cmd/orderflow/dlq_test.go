package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/sqlite"
)

// runCmd runs one short command (such as "dlq list") against env.
func runCmd(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	var out syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := run(ctx, args, getenvOf(env), strings.NewReader(""), &out); err != nil {
		t.Fatalf("orderflow %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
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

	var list string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		list = runCmd(t, env, "dlq", "list")
		if strings.Contains(list, "2 dead-letter message(s)") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(list, a.OrderID) || !strings.Contains(list, "not an order") {
		t.Fatalf("dlq list: got\n%s\nwant the failed order %s and the poison body", list, a.OrderID)
	}
	// Received twice on its way to the DLQ, counted once: one message.
	waitForMetrics(t, in.processor+"/metrics", 5*time.Second, "processor_poison_messages_total 1\n")

	if out := runCmd(t, env, "dlq", "redrive"); !strings.Contains(out, "redrove 2 message(s)") {
		t.Fatalf("dlq redrive: got %q", out)
	}
	// The redriven message of the FAILED order is deleted as a duplicate;
	// the poison message goes round again into the DLQ.
	for time.Now().Before(deadline) {
		list = runCmd(t, env, "dlq", "list")
		if strings.Contains(list, "1 dead-letter message(s)") && !strings.Contains(list, a.OrderID) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Contains(list, a.OrderID) || !strings.Contains(list, "1 dead-letter message(s)") {
		t.Fatalf("after redrive: got\n%s\nwant only the poison message back in the DLQ", list)
	}
	if again := pollUntilTerminal(t, a.StatusURL, time.Second); again.Status != "FAILED" {
		t.Fatalf("after redrive the order is %s, want it to stay FAILED", again.Status)
	}
	if out := runCmd(t, env, "dlq", "purge"); !strings.Contains(out, "purged 1 message(s)") {
		t.Fatalf("dlq purge: got %q", out)
	}
	waitForMetrics(t, in.processor+"/metrics", 5*time.Second, `orders_processed_total{env="local",status="error"} 1`)
}
