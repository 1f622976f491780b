package processor

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
)

func newTestGateway(cfg GatewayConfig) (*SimulatedGateway, *fakeLedger) {
	if cfg.Latency == 0 {
		cfg.Latency = -1
	}
	l := newFakeLedger()
	now := func() time.Time { return time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC) }
	return NewSimulatedGateway(cfg, l, now), l
}

func charge(g *SimulatedGateway, key string, amount int64) (orderflow.Charge, error) {
	return g.Charge(context.Background(), ChargeRequest{IdempotencyKey: key, OrderID: orderflow.OrderID(key), Amount: amount, Currency: "USD"})
}

func TestGatewayOutcomesByAmount(t *testing.T) {
	tests := []struct {
		name     string
		cfg      GatewayConfig
		amount   int64
		declined bool
		failed   bool
	}{
		{name: "an ordinary amount is charged", amount: 1000},
		{name: "an amount ending in 02 is declined", amount: 1002, declined: true},
		{name: "an amount ending in 04 fails transiently", amount: 1004, failed: true},
		{name: "a disabled decline rule charges 02", cfg: GatewayConfig{DeclineCents: -1}, amount: 1002},
		{name: "a configured decline cents value declines", cfg: GatewayConfig{DeclineCents: 99}, amount: 1099, declined: true},
		{name: "a disabled always-fail rule charges 04", cfg: GatewayConfig{AlwaysFailCents: -1}, amount: 1004},
		{name: "a transient rate of 1 fails every attempt", cfg: GatewayConfig{TransientRate: 1}, amount: 1000, failed: true},
		{name: "a non-positive amount is declined", amount: 0, declined: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, l := newTestGateway(tt.cfg)
			c, err := charge(g, "k1", tt.amount)
			var d *Declined
			switch {
			case tt.declined:
				if !errors.As(err, &d) {
					t.Fatalf("err = %v, want *Declined", err)
				}
			case tt.failed:
				if err == nil || errors.As(err, &d) {
					t.Fatalf("err = %v, want a transient error", err)
				}
			default:
				if err != nil {
					t.Fatalf("Charge: %v", err)
				}
				if c.Amount != tt.amount || c.IdempotencyKey != "k1" || c.OrderID != "k1" || c.ID == "" {
					t.Errorf("charge = %+v", c)
				}
			}
			if want := map[bool]int{true: 1, false: 0}[!tt.declined && !tt.failed]; l.count() != want {
				t.Errorf("ledger has %d charges, want %d", l.count(), want)
			}
		})
	}
}

func TestGatewayDeclineCode(t *testing.T) {
	g, _ := newTestGateway(GatewayConfig{})
	_, err := charge(g, "k1", 1002)
	var d *Declined
	if !errors.As(err, &d) || d.Code != "card_declined" {
		t.Fatalf("err = %v, want a card_declined decline", err)
	}
}

func TestGatewayTransientAmountSucceedsAfterTheConfiguredAttempts(t *testing.T) {
	for _, attempts := range []int{0, 1, 3} {
		g, l := newTestGateway(GatewayConfig{TransientAttempts: attempts})
		want := attempts
		if want == 0 {
			want = 2 // the default
		}
		for i := 1; i <= want; i++ {
			if _, err := charge(g, "k1", 1003); !errors.Is(err, ErrTransient) {
				t.Fatalf("attempts=%d: attempt %d: err = %v, want ErrTransient", attempts, i, err)
			}
		}
		if _, err := charge(g, "k1", 1003); err != nil {
			t.Fatalf("attempts=%d: attempt %d: %v, want success", attempts, want+1, err)
		}
		// Attempts are counted per key: another key starts over.
		if _, err := charge(g, "k2", 1003); !errors.Is(err, ErrTransient) {
			t.Errorf("attempts=%d: first attempt of another key: err = %v, want ErrTransient", attempts, err)
		}
		if l.count() != 1 {
			t.Errorf("ledger has %d charges, want 1", l.count())
		}
	}
}

func TestGatewayAlwaysFailNeverSucceeds(t *testing.T) {
	g, l := newTestGateway(GatewayConfig{})
	for i := range 10 {
		if _, err := charge(g, "k1", 2004); !errors.Is(err, ErrTransient) {
			t.Fatalf("attempt %d: err = %v, want ErrTransient", i+1, err)
		}
	}
	if l.count() != 0 {
		t.Errorf("ledger has %d charges, want 0", l.count())
	}
}

func TestGatewayRepeatedKeyReturnsTheFirstCharge(t *testing.T) {
	g, l := newTestGateway(GatewayConfig{})
	first, err := charge(g, "k1", 1000)
	if err != nil {
		t.Fatal(err)
	}
	again, err := charge(g, "k1", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Errorf("second charge = %+v, want the first %+v", again, first)
	}
	if l.count() != 1 {
		t.Errorf("ledger has %d charges, want 1", l.count())
	}
	if _, err := charge(g, "k1", 2000); err == nil {
		t.Error("reusing the key for another amount succeeded, want an error")
	}
}

func TestGatewayTransientRateIsDeterministic(t *testing.T) {
	outcomes := func() []bool {
		g, _ := newTestGateway(GatewayConfig{TransientRate: 0.5})
		var got []bool
		for i := range 40 {
			_, err := charge(g, string(rune('a'+i%20)), 1000)
			got = append(got, err == nil)
		}
		return got
	}
	a, b := outcomes(), outcomes()
	ok, failed := 0, 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("run 1 and run 2 differ at attempt %d", i)
		}
		if a[i] {
			ok++
		} else {
			failed++
		}
	}
	if ok == 0 || failed == 0 {
		t.Errorf("with rate 0.5: %d succeeded, %d failed; want some of each", ok, failed)
	}
}

func TestGatewayLatencyRespectsCancel(t *testing.T) {
	g, l := newTestGateway(GatewayConfig{Latency: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := g.Charge(ctx, ChargeRequest{IdempotencyKey: "k1", Amount: 1000, Currency: "USD"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if l.count() != 0 {
		t.Errorf("ledger has %d charges, want 0", l.count())
	}
}

func TestGatewayWaitsForItsLatency(t *testing.T) {
	g, l := newTestGateway(GatewayConfig{Latency: time.Millisecond})
	if _, err := charge(g, "k1", 1000); err != nil {
		t.Fatal(err)
	}
	if l.count() != 1 {
		t.Errorf("ledger has %d charges, want 1", l.count())
	}
}

func TestGatewayErrors(t *testing.T) {
	g, l := newTestGateway(GatewayConfig{})
	if _, err := charge(g, "", 1000); err == nil {
		t.Error("a charge without idempotency key succeeded")
	}
	l.err = errors.New("disk full")
	if _, err := charge(g, "k1", 1000); err == nil {
		t.Error("a charge the ledger could not record succeeded")
	}
	if got := (&Declined{Code: "x"}).Error(); got != "payment declined: x" {
		t.Errorf("Declined.Error() = %q", got)
	}
}

// TestGatewayAttemptsSurviveARestart: the attempt counts are kept in the
// ledger, so a gateway restarted between the attempts of an amount that
// fails twice then succeeds continues the same sequence: a restart does
// not change the outcome.
func TestGatewayAttemptsSurviveARestart(t *testing.T) {
	g, l := newTestGateway(GatewayConfig{})
	if _, err := charge(g, "k1", 1003); !errors.Is(err, ErrTransient) {
		t.Fatalf("first attempt: %v, want ErrTransient", err)
	}
	restarted := NewSimulatedGateway(GatewayConfig{Latency: -1}, l, time.Now)
	if _, err := charge(restarted, "k1", 1003); !errors.Is(err, ErrTransient) {
		t.Fatalf("second attempt, after a restart: %v, want ErrTransient", err)
	}
	again := NewSimulatedGateway(GatewayConfig{Latency: -1}, l, time.Now)
	if _, err := charge(again, "k1", 1003); err != nil {
		t.Fatalf("third attempt, after another restart: %v, want success", err)
	}
	if l.count() != 1 {
		t.Errorf("ledger has %d charges, want 1", l.count())
	}
	l.err = errors.New("ledger down")
	if _, err := charge(again, "k2", 1003); err == nil || errors.Is(err, ErrTransient) {
		t.Fatalf("ledger down: got %v, want the ledger's error (the attempt cannot be counted)", err)
	}
}

// TestGatewayChargedKeySurvivesARestart: a key that was charged gets its
// charge back after a restart instead of a fresh simulated failure (which
// would let the processor fail an order whose money was taken).
func TestGatewayChargedKeySurvivesARestart(t *testing.T) {
	g, l := newTestGateway(GatewayConfig{TransientAttempts: 1})
	if _, err := charge(g, "k1", 1003); !errors.Is(err, ErrTransient) {
		t.Fatalf("first attempt: %v, want ErrTransient", err)
	}
	first, err := charge(g, "k1", 1003)
	if err != nil {
		t.Fatalf("second attempt: %v", err)
	}
	restarted := NewSimulatedGateway(GatewayConfig{TransientAttempts: 1, Latency: -1}, l, time.Now)
	again, err := charge(restarted, "k1", 1003)
	if err != nil || again != first {
		t.Fatalf("after a restart: got %+v, %v; want the first charge %+v", again, err, first)
	}
	if _, err := charge(restarted, "k1", 2003); err == nil {
		t.Fatal("a charged key reused with another amount was accepted")
	}
	l.err = errors.New("ledger down")
	if _, err := charge(restarted, "k2", 1000); err == nil || errors.Is(err, ErrTransient) {
		t.Fatalf("ledger down: got %v, want the ledger's error", err)
	}
	if l.count() != 1 {
		t.Errorf("ledger has %d charges, want 1", l.count())
	}
}

func TestGatewayRefundGivesBackTheChargeOnceAndVoidsTheKey(t *testing.T) {
	ctx := context.Background()
	g, _ := newTestGateway(GatewayConfig{})
	c, err := charge(g, "o-paid", 1250)
	if err != nil {
		t.Fatal(err)
	}
	first, err := g.Refund(ctx, "o-paid", "o-paid")
	if err != nil || !first.Refunded() || first.ChargeID != c.ID || first.Amount != 1250 {
		t.Fatalf("refund of a charged key = %+v, %v; want charge %s of 1250 given back", first, err, c.ID)
	}
	again, err := g.Refund(ctx, "o-paid", "o-paid")
	if err != nil || again.ID != first.ID {
		t.Errorf("second refund = %+v, %v; want the first, %s", again, err, first.ID)
	}

	void, err := g.Refund(ctx, "o-unpaid", "o-unpaid")
	if err != nil || void.Refunded() {
		t.Fatalf("refund of an uncharged key = %+v, %v; want nothing given back", void, err)
	}
	_, err = charge(g, "o-unpaid", 1250)
	var declined *Declined
	if !errors.As(err, &declined) || declined.Code != "refunded" {
		t.Errorf("charge of a voided key: %v, want a decline (refunded)", err)
	}
	if paid, err := g.Charged(ctx, "o-unpaid"); err != nil || paid {
		t.Errorf("Charged of a voided key = %v, %v; want false", paid, err)
	}
	if _, err := g.Refund(ctx, "", "x"); err == nil {
		t.Error("a refund without an idempotency key was accepted")
	}
}
