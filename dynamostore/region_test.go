package dynamostore_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/dynamostore"
)

// The two regions of these tests share one table, as a global table's
// replicas share their items; moto has no Global Tables replication, so
// this is a global table without replication lag (docs/multi-region.md
// discusses the lag).
const (
	east = "us-east-1"
	west = "eu-west-1"
)

func acceptIn(t *testing.T, st *dynamostore.Store) orderflow.Order {
	t.Helper()
	now := time.Now().Add(-time.Minute) // old enough for a sweep
	b, err := st.BeginOrder(testCtx(t), orderflow.Order{ID: orderflow.NewOrderID(now), UserID: "u1", Amount: 100, Currency: "USD",
		Status: orderflow.StatusPending, CreatedAt: now}, orderflow.IdempotencyKey{})
	if err != nil {
		t.Fatal(err)
	}
	return b.Order
}

func sweepIDs(t *testing.T, st *dynamostore.Store) map[orderflow.OrderID]orderflow.Order {
	t.Helper()
	got, err := st.SweepPending(testCtx(t), time.Now(), 100)
	if err != nil {
		t.Fatal(err)
	}
	out := map[orderflow.OrderID]orderflow.Order{}
	for _, o := range got {
		out[o.ID] = o
	}
	return out
}

// An order is its accepting region's: it says so, and another region
// neither starts, cancels nor sweeps it.
func TestAnOrderIsWrittenOnlyFromItsHomeRegion(t *testing.T) {
	t.Parallel()
	client, table := newTable(t)
	a := dynamostore.New(client, table, dynamostore.Options{Region: east})
	b := dynamostore.New(client, table, dynamostore.Options{Region: west})
	ctx := testCtx(t)
	o := acceptIn(t, a)
	if o.Region != east {
		t.Fatalf("new order's region %q, want %s", o.Region, east)
	}
	if got, err := b.GetOrder(ctx, o.ID); err != nil || got.Region != east {
		t.Fatalf("read in %s: region %q, %v; want %s", west, got.Region, err, east)
	}
	got, err := b.StartOrder(ctx, o.ID, time.Now())
	if orderflow.ErrorCode(err) != orderflow.EConflict || !strings.Contains(err.Error(), "belongs to region "+east) || got.Status != orderflow.StatusPending {
		t.Errorf("start in %s: %v, %v; want EConflict naming %s, the order still PENDING", west, got.Status, err, east)
	}
	if _, err := b.RequestCancel(ctx, o.ID, "u1", time.Now()); orderflow.ErrorCode(err) != orderflow.EConflict {
		t.Errorf("cancel in %s: %v, want EConflict", west, err)
	}
	if swept := sweepIDs(t, b); len(swept) != 0 {
		t.Errorf("%s's sweep took %v, orders of %s", west, swept, east)
	}
	if _, ok := sweepIDs(t, a)[o.ID]; !ok {
		t.Errorf("%s's sweep did not find its own PENDING order", east)
	}
	if got, err := a.StartOrder(ctx, o.ID, time.Now()); err != nil || got.Status != orderflow.StatusProcessing {
		t.Errorf("start in %s: %v, %v; want PROCESSING", east, got.Status, err)
	}
	// An order stored before regions were recorded is anyone's.
	legacy := acceptIn(t, dynamostore.New(client, table, dynamostore.Options{}))
	if got, err := b.StartOrder(ctx, legacy.ID, time.Now()); err != nil || got.Status != orderflow.StatusProcessing {
		t.Errorf("start of an order without region in %s: %v, %v; want PROCESSING", west, got.Status, err)
	}
}

// A region declared down (ORDERFLOW_TAKEOVER_REGIONS) has its PENDING
// orders taken over: each exactly once among concurrent sweepers, made the
// taker's with the same write; the region, when it returns, can no longer
// start them; orders it had started stay its own.
func TestTakeoverClaimsADownRegionsPendingOrdersOnce(t *testing.T) {
	t.Parallel()
	client, table := newTable(t)
	a := dynamostore.New(client, table, dynamostore.Options{Region: east})
	ctx := testCtx(t)
	var pending []orderflow.Order
	for range 6 {
		pending = append(pending, acceptIn(t, a))
	}
	started := acceptIn(t, a)
	if _, err := a.StartOrder(ctx, started.ID, time.Now()); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	claims := map[orderflow.OrderID]int{}
	var wg sync.WaitGroup
	for range 3 {
		b := dynamostore.New(client, table, dynamostore.Options{Region: west, TakeOver: []string{east}})
		wg.Go(func() {
			got, err := b.SweepPending(ctx, time.Now(), 100)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, o := range got {
				claims[o.ID]++
				if o.Region != west {
					t.Errorf("taken over order %s returned with region %q, want %s", o.ID, o.Region, west)
				}
			}
		})
	}
	wg.Wait()
	for _, o := range pending {
		if claims[o.ID] != 1 {
			t.Errorf("order %s claimed %d times, want once", o.ID, claims[o.ID])
		}
		stored, err := a.GetOrder(ctx, o.ID)
		if err != nil || stored.Region != west || stored.Status != orderflow.StatusPending {
			t.Errorf("order %s after the takeover: %s in %q, %v; want PENDING in %s", o.ID, stored.Status, stored.Region, err, west)
		}
		if _, err := a.StartOrder(ctx, o.ID, time.Now()); orderflow.ErrorCode(err) != orderflow.EConflict {
			t.Errorf("%s back: start of taken-over order %s: %v, want EConflict", east, o.ID, err)
		}
	}
	if claims[started.ID] != 0 {
		t.Errorf("the PROCESSING order %s was taken over", started.ID)
	}
	if swept := sweepIDs(t, a); len(swept) != 0 {
		t.Errorf("%s back: its sweep found %v, now %s's", east, swept, west)
	}
	b := dynamostore.New(client, table, dynamostore.Options{Region: west})
	if got, err := b.StartOrder(ctx, pending[0].ID, time.Now()); err != nil || got.Status != orderflow.StatusProcessing {
		t.Errorf("start of a taken-over order in %s: %v, %v; want PROCESSING", west, got.Status, err)
	}
}

// Another region's PENDING orders at the head of a shard (a region down
// for long, not taken over) do not hide this region's own behind them
// from its sweep, however small the sweep's limit.
func TestSweepFindsItsOwnOrdersBehindAnotherRegions(t *testing.T) {
	t.Parallel()
	client, table := newTable(t)
	a := dynamostore.New(client, table, dynamostore.Options{Region: east})
	b := dynamostore.New(client, table, dynamostore.Options{Region: west})
	ctx := testCtx(t)
	own := acceptIn(t, b)
	older := 0
	for at := own.CreatedAt.Add(-time.Hour); older < 3; at = at.Add(time.Millisecond) {
		id := orderflow.NewOrderID(at)
		if dynamostore.PendingShard(id) != dynamostore.PendingShard(own.ID) {
			continue
		}
		if _, err := a.BeginOrder(ctx, orderflow.Order{ID: id, UserID: "u1", Amount: 100, Currency: "USD",
			Status: orderflow.StatusPending, CreatedAt: at}, orderflow.IdempotencyKey{}); err != nil {
			t.Fatal(err)
		}
		older++
	}
	got, err := b.SweepPending(ctx, time.Now(), 1)
	if err != nil || len(got) != 1 || got[0].ID != own.ID {
		t.Errorf("sweep of %s with limit 1: %v %v, want its own order %s behind %d of %s's", west, got, err, own.ID, older, east)
	}
}
