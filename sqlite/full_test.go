package sqlite_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/sqlite"
)

func TestFullDiskFailsWritesAsUnavailableAndKeepsCommittedData(t *testing.T) {
	t.Parallel()
	db, path := open(t, sqlite.Options{MaxReceives: 1})
	kept := order("pia", t0)
	accept(t, db, kept, orderflow.IdempotencyKey{})
	if err := db.SetStock(ctx(t), "widget", 5); err != nil {
		t.Fatal(err)
	}
	if f, err := db.Reserve(ctx(t), kept.ID, []orderflow.Item{{SKU: "widget", Quantity: 1}}); err != nil || f != nil {
		t.Fatalf("Reserve = %v, %v", f, err)
	}
	// The file may not grow any more: every write that needs a new page fails.
	if err := db.ExecOnWriter(ctx(t), "PRAGMA max_page_count = 1"); err != nil {
		t.Fatalf("limit the file: %v", err)
	}
	big := strings.Repeat("x", 3000) // each order needs pages of its own
	var wg sync.WaitGroup
	errs := make([]error, 40)
	for i := range errs {
		wg.Go(func() {
			o := order("pia", t0.Add(time.Duration(i+1)*time.Millisecond))
			o.RequestID = big
			key := orderflow.IdempotencyKey{UserID: "pia", Key: fmt.Sprint("full-", i), RequestHash: big}
			_, _, errs[i] = db.Accept(context.Background(), o, key)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if orderflow.ErrorCode(err) != orderflow.EUnavailable {
			t.Errorf("accept %d on a full disk: got %v, want %s", i, err, orderflow.EUnavailable)
		}
	}
	c := ctx(t)
	big1 := []byte(big)
	for name, err := range map[string]error{
		"Send":    db.Send(c, orderflow.Message{OrderID: orderflow.NewOrderID(t0), RequestID: big}, orderflow.Message{OrderID: orderflow.NewOrderID(t0), RequestID: big}),
		"SendRaw": db.SendRaw(c, append(big1, big1...)),
		"SetStock": func() error {
			for i := range 200 {
				if err := db.SetStock(c, fmt.Sprintf("%s-%d", big[:60], i), 1); err != nil {
					return err
				}
			}
			return nil
		}(),
		"RecordCharge": func() error {
			_, _, err := db.RecordCharge(c, orderflow.Charge{ID: big, IdempotencyKey: big, OrderID: kept.ID, Amount: 1, Currency: "USD"})
			return err
		}(),
	} {
		if orderflow.ErrorCode(err) != orderflow.EUnavailable {
			t.Errorf("%s on a full disk: got %v, want %s", name, err, orderflow.EUnavailable)
		}
	}

	// What was committed before is intact and readable.
	if got, err := db.GetOrder(ctx(t), kept.ID); err != nil || got.ID != kept.ID {
		t.Errorf("GetOrder of a committed order = %v, %v", got.ID, err)
	}
	if n, err := db.Stock(ctx(t), "widget"); err != nil || n != 4 {
		t.Errorf("Stock = %d, %v; want 4", n, err)
	}

	// Once there is room again, writes work. The full disk made the DB
	// refuse writes until the checkpointer has truncated the WAL.
	if err := retryWhileRefused(t, func() error {
		return db.ExecOnWriter(ctx(t), "PRAGMA max_page_count = 1073741823")
	}); err != nil {
		t.Fatalf("lift the limit: %v", err)
	}
	o := order("pia", t0.Add(time.Minute))
	o.RequestID = big
	if _, created, err := db.Accept(ctx(t), o, orderflow.IdempotencyKey{UserID: "pia", Key: "full-0", RequestHash: big}); err != nil || !created {
		t.Errorf("Accept after the disk has room = %v, %v; want a new order (the failed one left no key)", created, err)
	}
	if got, want := depth(t, db).Visible, 2; got != want {
		t.Errorf("queue holds %d messages, want %d (failed accepts enqueue nothing)", got, want)
	}
	checkIntegrity(t, path)
}

// The processor's bookkeeping returns once committed; writes acknowledged
// to someone outside (SetStock, Accept), and a Receive that hands out a
// message whose Accept is not fsynced yet (the processor may act on it
// outside), wait for the fsync that covers them.
func TestProcessorWritesReturnAtCommitAcknowledgedWritesAfterFsync(t *testing.T) {
	t.Parallel()
	db, _ := open(t, sqlite.Options{})
	if err := db.Send(ctx(t), orderflow.Message{OrderID: orderflow.NewOrderID(t0)}); err != nil {
		t.Fatal(err)
	}
	gate, entered := make(chan struct{}), make(chan struct{}, 8)
	db.SetBeforeSync(func() {
		entered <- struct{}{}
		<-gate
	})
	released := false
	release := func() {
		if !released {
			released = true
			close(gate)
		}
	}
	t.Cleanup(release)
	wait := func(what string, errc <-chan error) {
		t.Helper()
		select {
		case err := <-errc:
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s did not return", what)
		}
	}
	held := func(what string, errc <-chan error) {
		t.Helper()
		select {
		case err := <-errc:
			t.Fatalf("%s returned (%v) while the fsync covering it was held", what, err)
		case <-time.After(200 * time.Millisecond):
		}
	}

	stocked := make(chan error, 1)
	go func() { stocked <- db.SetStock(context.Background(), "widget", 5) }()
	<-entered // SetStock is committed; its fsync is held
	held("SetStock", stocked)

	charged := make(chan error, 1)
	go func() {
		_, _, err := db.RecordCharge(context.Background(), orderflow.Charge{ID: "ch_1", IdempotencyKey: "k1", OrderID: orderflow.NewOrderID(t0), Amount: 1, Currency: "USD"})
		charged <- err
	}()
	gate <- struct{}{} // the first fsync ends
	wait("SetStock", stocked)
	<-entered // the charge's batch is committed; its fsync is held
	wait("RecordCharge", charged)

	// A receive of a message enqueued before the last fsync (the Send at
	// the start) returns at commit: nothing it hands out is at risk.
	receivedOld := make(chan error, 1)
	go func() {
		ds, err := db.Receive(context.Background(), 1, 0)
		if err == nil && len(ds) != 1 {
			err = fmt.Errorf("received %+v, want the message sent at the start", ds)
		}
		receivedOld <- err
	}()
	gate <- struct{}{} // the charge's fsync ends
	<-entered          // the receive is committed; its fsync is held
	wait("Receive of a message fsynced before", receivedOld)

	// An Accept (run in the transaction kept open while the older
	// receive's fsync is held) and a Receive of its message, which sees it
	// once that transaction commits: both wait for the fsync covering the
	// Accept.
	accepted, received := make(chan error, 1), make(chan error, 1)
	go func() {
		_, _, err := db.Accept(context.Background(), order("pia", t0), orderflow.IdempotencyKey{})
		accepted <- err
	}()
	held("Accept", accepted) // meanwhile it ran in the open transaction
	go func() {
		ds, err := db.Receive(context.Background(), 1, 10*time.Second)
		if err == nil && len(ds) != 1 {
			err = fmt.Errorf("received %d messages, want 1", len(ds))
		}
		received <- err
	}()
	held("Receive", received)
	gate <- struct{}{} // the older receive's fsync ends
	<-entered          // the Accept is committed and its fsync held; the Receive follows it
	held("Accept", accepted)
	held("Receive", received)
	release()
	wait("Accept", accepted)
	wait("Receive", received)
}

// In the split mode the api and the processor are two processes with one
// file: a message the other one enqueued is not known to be fsynced, so a
// receive of it waits for its own fsync (which covers the other's frames
// too), however old the message.
func TestReceiveOfAnotherWritersMessageWaitsForTheFsync(t *testing.T) {
	t.Parallel()
	api, path := open(t, sqlite.Options{})
	proc, err := sqlite.Open(ctx(t), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer proc.Close()
	// Give the processor's counters a head start on the api's, so that
	// comparing transaction numbers across the two would say "fsynced".
	for range 5 {
		if err := proc.SetStock(ctx(t), "widget", 1); err != nil {
			t.Fatal(err)
		}
	}
	accept(t, api, order("sam", t0), orderflow.IdempotencyKey{})

	entered, release := holdSyncs(proc)
	defer release() // before proc.Close, even when the test fails
	received := make(chan error, 1)
	go func() {
		ds, err := proc.WorkQueue().Receive(context.Background(), 1, 5*time.Second)
		if err == nil && len(ds) != 1 {
			err = fmt.Errorf("received %d messages, want 1", len(ds))
		}
		received <- err
	}()
	<-entered // the receive is committed; its fsync is held
	select {
	case err := <-received:
		t.Fatalf("the receive returned (%v) while its fsync was held", err)
	case <-time.After(200 * time.Millisecond):
	}
	release()
	if err := <-received; err != nil {
		t.Fatal(err)
	}
}

// holdSyncs makes db's syncer wait before each fsync of the WAL until
// release is called; entered receives when an fsync is held (without
// blocking the syncer when nobody listens). Defer release before db.Close,
// so that a failing test cannot hang.
func holdSyncs(db *sqlite.DB) (entered <-chan struct{}, release func()) {
	gate, ent := make(chan struct{}), make(chan struct{}, 1)
	db.SetBeforeSync(func() {
		select {
		case ent <- struct{}{}:
		default:
		}
		<-gate
	})
	var once sync.Once
	return ent, func() { once.Do(func() { close(gate) }) }
}

// retryWhileRefused calls write until it no longer fails with EUnavailable
// (writes refused for a full disk until the checkpointer has truncated the
// WAL), for at most 30 s, and returns its last error.
func retryWhileRefused(t *testing.T, write func() error) error {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := write()
		if orderflow.ErrorCode(err) != orderflow.EUnavailable || time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}
