package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow/sqlite"
)

// TestSpecFlow is the spec's verification flow: login, create an order,
// poll the signed URL until COMPLETED, see the processor's metric move.
func TestSpecFlow(t *testing.T) {
	in := startRun(t, testEnv(t, nil))

	var health map[string]string
	if resp := call(t, "GET", in.processor+"/health", "", nil, &health); resp.StatusCode != 200 || health["status"] != "healthy" {
		t.Fatalf("processor /health: got %d %v, want 200 healthy", resp.StatusCode, health)
	}

	token := login(t, in.api, "u123")
	var a accepted
	resp := call(t, "POST", in.api+"/orders", token, map[string]any{"user_id": "u123", "amount": 999}, &a)
	if resp.StatusCode != 202 || a.Status != "PENDING" || a.StatusURL == "" {
		t.Fatalf("create: got %d %+v, want 202 PENDING with a status URL", resp.StatusCode, a)
	}
	if loc := resp.Header.Get("Location"); loc != a.StatusURL {
		t.Errorf("Location: got %q, want the status URL %q", loc, a.StatusURL)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Error("202 without Retry-After")
	}

	doc := pollUntilTerminal(t, a.StatusURL, 20*time.Second)
	if doc.Status != "COMPLETED" || doc.OrderID != a.OrderID {
		t.Fatalf("got %+v, want order %s COMPLETED", doc, a.OrderID)
	}
	waitForMetrics(t, in.processor+"/metrics", 5*time.Second, `orders_processed_total{env="local",status="success"} 1`)
	if !strings.Contains(metricsText(t, in.api+"/metrics"), "orders_accepted_total 1") {
		t.Error("api /metrics lacks orders_accepted_total 1")
	}

	// The owner sees the order through the authenticated routes too.
	var own struct {
		Status string `json:"status"`
	}
	if resp := call(t, "GET", in.api+"/orders/"+a.OrderID, token, nil, &own); resp.StatusCode != 200 || own.Status != "COMPLETED" {
		t.Errorf("GET /orders/{id}: got %d %+v", resp.StatusCode, own)
	}
	var list struct {
		Orders []json.RawMessage `json:"orders"`
	}
	if resp := call(t, "GET", in.api+"/orders", token, nil, &list); resp.StatusCode != 200 || len(list.Orders) != 1 {
		t.Errorf("GET /orders: got %d with %d orders, want 200 with 1", resp.StatusCode, len(list.Orders))
	}
	other := login(t, in.api, "mallory")
	if resp := call(t, "GET", in.api+"/orders/"+a.OrderID, other, nil, nil); resp.StatusCode != 404 {
		t.Errorf("another user's order: got %d, want 404", resp.StatusCode)
	}
	for _, page := range []string{"/docs", "/redoc", "/openapi.json", "/health"} {
		if resp := call(t, "GET", in.api+page, "", nil, nil); resp.StatusCode != 200 {
			t.Errorf("GET %s: got %d, want 200", page, resp.StatusCode)
		}
	}
}

// TestOutcomes drives each way an order can end through the real stages.
func TestOutcomes(t *testing.T) {
	in := startRun(t, testEnv(t, map[string]string{
		"ORDERFLOW_MAX_RECEIVES":       "3", // the gateway's "03" amounts fail twice
		"ORDERFLOW_VISIBILITY_TIMEOUT": "1s",
		"ORDERFLOW_STOCK":              "widget:10,gizmo:1",
	}))
	token := login(t, in.api, "ada")
	tests := []struct {
		name       string
		order      map[string]any
		status     string
		reasonCode string
	}{
		{"a plain order completes", map[string]any{"amount": 1250}, "COMPLETED", ""},
		{"an order with stocked items completes", map[string]any{"amount": 1250, "items": []map[string]any{{"sku": "widget", "quantity": 2}}}, "COMPLETED", ""},
		{"more than the stock is rejected", map[string]any{"amount": 1250, "items": []map[string]any{{"sku": "gizmo", "quantity": 3}}}, "REJECTED", "out_of_stock"},
		{"an unknown sku is rejected", map[string]any{"amount": 1250, "items": []map[string]any{{"sku": "nope", "quantity": 1}}}, "REJECTED", "unknown_sku"},
		{"a large amount is rejected as fraud", map[string]any{"amount": 600000}, "REJECTED", "fraud_suspected"},
		{"a declined card is rejected", map[string]any{"amount": 1002}, "REJECTED", "payment_declined"},
		{"transient gateway errors are retried until success", map[string]any{"amount": 1003}, "COMPLETED", ""},
		{"a gateway that always fails ends FAILED", map[string]any{"amount": 1004}, "FAILED", "processing_failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var a accepted
			if resp := call(t, "POST", in.api+"/orders", token, tt.order, &a); resp.StatusCode != 202 {
				t.Fatalf("create: got %d", resp.StatusCode)
			}
			doc := pollUntilTerminal(t, a.StatusURL, 30*time.Second)
			if doc.Status != tt.status {
				t.Fatalf("got %s, want %s", doc.Status, tt.status)
			}
			if tt.reasonCode == "" {
				if doc.Failure != nil {
					t.Fatalf("got failure %+v on a completed order", doc.Failure)
				}
				return
			}
			if doc.Failure == nil || doc.Failure.Code != tt.reasonCode || doc.Failure.Detail == "" {
				t.Fatalf("got failure %+v, want code %s with a detail", doc.Failure, tt.reasonCode)
			}
		})
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestSplitModeProcessesStartTogetherOnANewFile: two apis and two
// processors started at the same moment on a file that does not exist
// yet (as a service manager starts its units) all come up ready: one
// creates and migrates the file, the others wait for it.
func TestSplitModeProcessesStartTogetherOnANewFile(t *testing.T) {
	logs := t.TempDir()
	for round := range 4 {
		db := filepath.Join(t.TempDir(), "orderflow.db")
		var children []*child
		for i, command := range []string{"api", "api", "processor", "processor"} {
			env := testEnv(t, map[string]string{"ORDERFLOW_DB": db})
			logPath := filepath.Join(logs, fmt.Sprintf("%d-%d-%s.log", round, i, command))
			children = append(children, launchChild(t, env, logPath, command))
		}
		for _, c := range children {
			c.waitReady(t)
		}
		for _, c := range children {
			c.stop(t)
		}
	}
}

// TestSplitModeSharesOneFile runs `orderflow api` and `orderflow processor`
// as two processes on one SQLite file: every order the api accepts is
// completed by the other process, and charged once.
func TestSplitModeSharesOneFile(t *testing.T) {
	env := testEnv(t, nil)
	logs := t.TempDir()
	startChildCommand(t, env, filepath.Join(logs, "api.log"), "api")
	startChildCommand(t, env, filepath.Join(logs, "processor.log"), "processor")
	api, proc := "http://"+env["ORDERFLOW_API_ADDR"], "http://"+env["ORDERFLOW_PROCESSOR_ADDR"]

	token := login(t, api, "split")
	const n = 20
	urls := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			var a accepted
			if resp := call(t, "POST", api+"/orders", token, map[string]any{"amount": 1250}, &a); resp.StatusCode != 202 {
				t.Errorf("create: got %d", resp.StatusCode)
				return
			}
			urls <- a.StatusURL
		})
	}
	wg.Wait()
	close(urls)
	for u := range urls {
		if doc := pollUntilTerminal(t, u, 30*time.Second); doc.Status != "COMPLETED" {
			t.Errorf("order %s ended %s, want COMPLETED", doc.OrderID, doc.Status)
		}
	}
	waitForMetrics(t, proc+"/metrics", 5*time.Second, fmt.Sprintf(`orders_processed_total{env="local",status="success"} %d`, n))
	db, err := sqlite.Open(context.Background(), env["ORDERFLOW_DB"], sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	orders, err := db.ListOrders(context.Background(), "split", "", 100)
	if err != nil || len(orders) != n {
		t.Fatalf("stored orders: %d, %v; want %d", len(orders), err, n)
	}
	for _, o := range orders {
		if charges, err := db.Charges(context.Background(), o.ID); err != nil || len(charges) != 1 {
			t.Errorf("order %s has %d charges (%v), want 1", o.ID, len(charges), err)
		}
	}
}
