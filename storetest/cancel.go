package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
)

// cancelCases are the cancel rules of orderflow.Store (RequestCancel and
// the cancellation guards of Transition), part of TestStore.
func (s storeSuite) cancelCases() []struct {
	name string
	run  func(t *testing.T)
} {
	return []struct {
		name string
		run  func(t *testing.T)
	}{
		{"cancel of a PENDING order cancels it at once and records who and when", s.cancelPending},
		{"cancel of a PROCESSING order records the request and leaves it PROCESSING", s.cancelProcessing},
		{"a second cancel changes nothing and keeps the first request", s.cancelTwice},
		{"cancel of a final order conflicts and returns it unchanged", s.cancelFinal},
		{"cancel of an unknown order is not found", s.cancelUnknown},
		{"a requested cancel forbids COMPLETED and allows CANCELLED with a refund", s.cancelGuardsCompletion},
		{"CANCELLED needs a cancel request", s.cancelNeedsRequest},
		{"a cancel racing the processor's completion: exactly one wins", s.cancelRacesCompletion},
		{"a cancel racing the processor's start: cancelled, or in work with the request", s.cancelRacesStart},
	}
}

func requestCancel(t *testing.T, st Store, id orderflow.OrderID, by string, at time.Time) (orderflow.Order, error) {
	t.Helper()
	return st.RequestCancel(testCtx(t), id, by, at)
}

func wantCancellation(t *testing.T, what string, o orderflow.Order, status orderflow.Status, by string, at time.Time, refund string) {
	t.Helper()
	c := o.Cancellation
	if o.Status != status || c == nil || c.RequestedBy != by || !c.RequestedAt.Equal(at.Truncate(time.Millisecond)) || c.RefundID != refund {
		t.Errorf("%s: got status %s, cancellation %+v; want %s, requested by %s at %v, refund %q", what, o.Status, c, status, by, at, refund)
	}
}

func (s storeSuite) cancelPending(t *testing.T) {
	st := s.newStore(t)
	o := create(t, st, newOrder(unique("user"), baseTime, 100))
	at := baseTime.Add(time.Minute)
	got, err := requestCancel(t, st, o.ID, o.UserID, at)
	if err != nil {
		t.Fatalf("RequestCancel: %v", err)
	}
	wantCancellation(t, "returned", got, orderflow.StatusCancelled, o.UserID, at, "")
	wantCancellation(t, "stored", get(t, st, o.ID), orderflow.StatusCancelled, o.UserID, at, "")
	_, err = st.Transition(testCtx(t), orderflow.Transition{ID: o.ID, From: orderflow.StatusPending, To: orderflow.StatusProcessing, At: at})
	wantCode(t, "start of a cancelled order", err, orderflow.EConflict)
}

func (s storeSuite) startOrder(t *testing.T, st Store) orderflow.Order {
	t.Helper()
	o := create(t, st, newOrder(unique("user"), baseTime, 100))
	o, err := st.Transition(testCtx(t), orderflow.Transition{ID: o.ID, From: orderflow.StatusPending, To: orderflow.StatusProcessing, At: baseTime})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	return o
}

func (s storeSuite) cancelProcessing(t *testing.T) {
	st := s.newStore(t)
	o := s.startOrder(t, st)
	at := baseTime.Add(time.Minute)
	got, err := requestCancel(t, st, o.ID, o.UserID, at)
	if err != nil {
		t.Fatalf("RequestCancel: %v", err)
	}
	wantCancellation(t, "returned", got, orderflow.StatusProcessing, o.UserID, at, "")
	wantCancellation(t, "stored", get(t, st, o.ID), orderflow.StatusProcessing, o.UserID, at, "")
}

func (s storeSuite) cancelTwice(t *testing.T) {
	st := s.newStore(t)
	first := baseTime.Add(time.Minute)
	for _, o := range []orderflow.Order{create(t, st, newOrder(unique("user"), baseTime, 100)), s.startOrder(t, st)} {
		want := orderflow.StatusCancelled
		if o.Status == orderflow.StatusProcessing {
			want = orderflow.StatusProcessing
		}
		if _, err := requestCancel(t, st, o.ID, o.UserID, first); err != nil {
			t.Fatalf("first RequestCancel of a %s order: %v", o.Status, err)
		}
		got, err := requestCancel(t, st, o.ID, "someone-else", first.Add(time.Minute))
		if err != nil {
			t.Fatalf("second RequestCancel of a %s order: %v", o.Status, err)
		}
		wantCancellation(t, "after a second cancel of a "+string(o.Status)+" order", got, want, o.UserID, first, "")
	}
}

func (s storeSuite) cancelFinal(t *testing.T) {
	st := s.newStore(t)
	for _, to := range []orderflow.Status{orderflow.StatusCompleted, orderflow.StatusRejected, orderflow.StatusFailed} {
		o := s.startOrder(t, st)
		tr := orderflow.Transition{ID: o.ID, From: orderflow.StatusProcessing, To: to, At: baseTime}
		if to != orderflow.StatusCompleted {
			tr.Failure = &orderflow.Failure{Code: orderflow.ReasonOutOfStock, Detail: "none left"}
		}
		final, err := st.Transition(testCtx(t), tr)
		if err != nil {
			t.Fatalf("%s: %v", tr, err)
		}
		got, err := requestCancel(t, st, o.ID, o.UserID, baseTime.Add(time.Minute))
		wantCode(t, "cancel of a "+string(to)+" order", err, orderflow.EConflict)
		if got.Status != to || got.Cancellation != nil {
			t.Errorf("cancel of a %s order returned status %s, cancellation %+v; want it unchanged", to, got.Status, got.Cancellation)
		}
		diffOrder(t, "stored after a refused cancel", get(t, st, o.ID), final)
	}
}

func (s storeSuite) cancelUnknown(t *testing.T) {
	st := s.newStore(t)
	_, err := requestCancel(t, st, orderflow.NewOrderID(time.Now()), "u", baseTime)
	wantCode(t, "RequestCancel of an unknown id", err, orderflow.ENotFound)
}

func (s storeSuite) cancelGuardsCompletion(t *testing.T) {
	st := s.newStore(t)
	o := s.startOrder(t, st)
	at := baseTime.Add(time.Minute)
	if _, err := requestCancel(t, st, o.ID, o.UserID, at); err != nil {
		t.Fatalf("RequestCancel: %v", err)
	}
	cur, err := st.Transition(testCtx(t), orderflow.Transition{ID: o.ID, From: orderflow.StatusProcessing, To: orderflow.StatusCompleted, At: at})
	wantCode(t, "COMPLETED with a cancel requested", err, orderflow.EConflict)
	wantCancellation(t, "returned by the refused COMPLETED", cur, orderflow.StatusProcessing, o.UserID, at, "")
	got, err := st.Transition(testCtx(t), orderflow.Transition{ID: o.ID, From: orderflow.StatusProcessing, To: orderflow.StatusCancelled, RefundID: "re_1", At: at.Add(time.Second)})
	if err != nil {
		t.Fatalf("CANCELLED with a cancel requested: %v", err)
	}
	wantCancellation(t, "cancelled", got, orderflow.StatusCancelled, o.UserID, at, "re_1")
	wantCancellation(t, "stored", get(t, st, o.ID), orderflow.StatusCancelled, o.UserID, at, "re_1")
	if !got.UpdatedAt.Equal(at.Add(time.Second).Truncate(time.Millisecond)) {
		t.Errorf("cancelled order updated at %v, want %v (when it was cancelled)", got.UpdatedAt, at.Add(time.Second))
	}
}

func (s storeSuite) cancelNeedsRequest(t *testing.T) {
	st := s.newStore(t)
	o := s.startOrder(t, st)
	_, err := st.Transition(testCtx(t), orderflow.Transition{ID: o.ID, From: orderflow.StatusProcessing, To: orderflow.StatusCancelled, At: baseTime})
	wantCode(t, "CANCELLED without a request", err, orderflow.EConflict)
	_, err = st.Transition(testCtx(t), orderflow.Transition{ID: o.ID, From: orderflow.StatusProcessing, To: orderflow.StatusCompleted, RefundID: "re_1", At: baseTime})
	wantCode(t, "a refund on COMPLETED", err, orderflow.EInvalid)
	if got := get(t, st, o.ID); got.Status != orderflow.StatusProcessing {
		t.Errorf("status %s after refused transitions, want PROCESSING", got.Status)
	}
}

// cancelRacesCompletion: whichever of the cancel and the processor's
// COMPLETED write lands first, the other sees it: never COMPLETED with a
// cancel that was accepted as recorded.
func (s storeSuite) cancelRacesCompletion(t *testing.T) {
	st := s.newStore(t)
	for range 10 {
		o := s.startOrder(t, st)
		var (
			wg        sync.WaitGroup
			cancelled orderflow.Order
			cerr, err error
		)
		wg.Add(2)
		go func() {
			defer wg.Done()
			cancelled, cerr = st.RequestCancel(testCtx(t), o.ID, o.UserID, baseTime)
		}()
		go func() {
			defer wg.Done()
			_, err = st.Transition(testCtx(t), orderflow.Transition{ID: o.ID, From: orderflow.StatusProcessing, To: orderflow.StatusCompleted, At: baseTime})
		}()
		wg.Wait()
		final := get(t, st, o.ID)
		switch {
		case err == nil && cerr == nil:
			t.Fatalf("both the completion and the cancel (%s) were accepted; stored %s %+v", cancelled.Status, final.Status, final.Cancellation)
		case err == nil:
			wantCode(t, "cancel after completion", cerr, orderflow.EConflict)
			if final.Status != orderflow.StatusCompleted || final.Cancellation != nil {
				t.Errorf("completed first: stored %s %+v", final.Status, final.Cancellation)
			}
		default:
			wantCode(t, "completion after cancel", err, orderflow.EConflict)
			if final.Status != orderflow.StatusProcessing || final.Cancellation == nil {
				t.Errorf("cancel first: stored %s %+v, want PROCESSING with the request", final.Status, final.Cancellation)
			}
		}
	}
}

// cancelRacesStart: a cancel and the processor's start of a PENDING order
// at once end either CANCELLED (the start refused) or PROCESSING with the
// request recorded (the start first): the request is never lost.
func (s storeSuite) cancelRacesStart(t *testing.T) {
	st := s.newStore(t)
	for range 10 {
		o := create(t, st, newOrder(unique("user"), baseTime, 100))
		var (
			wg         sync.WaitGroup
			cerr, serr error
		)
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, cerr = st.RequestCancel(testCtx(t), o.ID, o.UserID, baseTime)
		}()
		go func() {
			defer wg.Done()
			_, serr = st.Transition(testCtx(t), orderflow.Transition{ID: o.ID, From: orderflow.StatusPending, To: orderflow.StatusProcessing, At: baseTime})
		}()
		wg.Wait()
		if cerr != nil {
			t.Fatalf("RequestCancel: %v", cerr)
		}
		final := get(t, st, o.ID)
		switch {
		case final.Cancellation == nil:
			t.Fatalf("the cancel request was lost: stored %s", final.Status)
		case serr == nil && final.Status != orderflow.StatusProcessing:
			t.Errorf("started, then cancelled: stored %s, want PROCESSING with the request", final.Status)
		case serr != nil && final.Status != orderflow.StatusCancelled:
			t.Errorf("start refused (%v), but stored %s, want CANCELLED", serr, final.Status)
		}
	}
}
