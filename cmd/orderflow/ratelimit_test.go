package main

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/orderflow/orderflow/awstest"
	"github.com/orderflow/orderflow/sqlite"
)

// TestSplitModeRateLimitHoldsAcrossAPIs runs two `orderflow api` processes
// on one SQLite file with a limit of 5 orders per minute: one user's
// orders, sent to both at once, are accepted 5 times in total, and the
// rest are 429 problems with Retry-After.
func TestSplitModeRateLimitHoldsAcrossAPIs(t *testing.T) {
	db := filepath.Join(t.TempDir(), "orderflow.db")
	env := testEnv(t, map[string]string{"ORDERFLOW_DB": db, "ORDERFLOW_RATE_LIMIT": "5"})
	limitAcrossAPIs(t, env)
	st, err := sqlite.Open(context.Background(), db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if orders, err := st.ListOrders(context.Background(), "limited", "", 100); err != nil || len(orders) != 5 {
		t.Errorf("stored orders: %d, %v; want 5", len(orders), err)
	}
}

// TestAWSModeRateLimitHoldsAcrossAPIs: the same with two api processes on
// one DynamoDB table (moto).
func TestAWSModeRateLimitHoldsAcrossAPIs(t *testing.T) {
	limitAcrossAPIs(t, awsEnv(t, awstest.Endpoint(t), map[string]string{"ORDERFLOW_RATE_LIMIT": "5"}))
}

// limitAcrossAPIs starts two `orderflow api` processes with env (each on
// addresses of its own), sends 16 orders of one user to both at once and
// checks that 5 were accepted and the rest refused with 429.
func limitAcrossAPIs(t *testing.T, env map[string]string) {
	t.Helper()
	logs := t.TempDir()
	var apis []string
	for i := range 2 {
		e := maps.Clone(env)
		if i > 0 {
			e["ORDERFLOW_API_ADDR"], e["ORDERFLOW_PROCESSOR_ADDR"] = freeAddr(t), freeAddr(t)
			registerPorts(e)
		}
		startChildCommand(t, e, filepath.Join(logs, fmt.Sprintf("api-%d.log", i)), "api")
		apis = append(apis, "http://"+e["ORDERFLOW_API_ADDR"])
	}
	token := login(t, apis[0], "limited")

	const n = 16
	var accepted, limited atomic.Int64
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var p struct {
				Type string `json:"type"`
			}
			resp := call(t, "POST", apis[i%2]+"/orders", token, map[string]any{"amount": 100}, &p)
			switch resp.StatusCode {
			case 202:
				accepted.Add(1)
			case 429:
				limited.Add(1)
				secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
				if err != nil || secs < 1 || resp.Header.Get("Content-Type") != "application/problem+json" || p.Type == "" {
					t.Errorf("429 with Retry-After %q, Content-Type %q, type %q; want whole seconds >= 1 and a problem",
						resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type"), p.Type)
				}
			default:
				t.Errorf("order: status %d, want 202 or 429", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if accepted.Load() != 5 || limited.Load() != n-5 {
		t.Errorf("%d orders of one user on two apis: %d accepted, %d limited; want 5 and %d", n, accepted.Load(), limited.Load(), n-5)
	}
}
