package processor

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
)

// activityFunc adapts a function to Activity.
type activityFunc func(since time.Time) (int, int64, error)

func (f activityFunc) UserActivity(_ context.Context, _ string, since time.Time) (int, int64, error) {
	return f(since)
}

func TestRules(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	// activity answers the velocity window (1m) with count and the spend
	// window (24h) with total.
	activity := func(count int, total int64) Activity {
		return activityFunc(func(since time.Time) (int, int64, error) {
			if now.Sub(since) <= time.Minute {
				return count, 0, nil
			}
			return 0, total, nil
		})
	}
	tests := []struct {
		name     string
		cfg      RulesConfig
		amount   int64
		count    int
		total    int64
		rejected bool
		fired    []string
	}{
		{name: "a small order of a quiet user passes", amount: 1000, count: 1, total: 1000},
		{name: "an amount just below the limit passes", amount: 499_999, count: 1, total: 499_999},
		{name: "an amount at the limit scores 60 and is rejected", amount: 500_000, count: 1, total: 500_000, rejected: true, fired: []string{"amount 500000"}},
		{name: "50 orders in a minute pass", amount: 100, count: 50, total: 5000},
		{name: "more than 50 orders in a minute score 40 only, below the threshold", amount: 100, count: 51, total: 5100},
		{name: "spend above 2,000,000 in 24h alone scores 40 and passes", amount: 100, count: 1, total: 2_000_001},
		{name: "velocity and spend together score 80 and are rejected", amount: 100, count: 51, total: 2_000_001, rejected: true, fired: []string{"51 orders", "spend 2000001"}},
		{name: "a lower threshold rejects on velocity alone", cfg: RulesConfig{Threshold: 40}, amount: 100, count: 51, total: 100, rejected: true, fired: []string{"51 orders"}},
		{name: "a higher max amount lets a large order pass", cfg: RulesConfig{MaxAmount: 1_000_000}, amount: 500_000, count: 1, total: 500_000},
		{name: "a configured velocity limit applies", cfg: RulesConfig{VelocityLimit: 5, VelocityScore: 50}, amount: 100, count: 6, total: 600, rejected: true, fired: []string{"6 orders"}},
		{name: "a configured spend limit applies", cfg: RulesConfig{SpendLimit: 1000, SpendScore: 55}, amount: 100, count: 2, total: 1001, rejected: true, fired: []string{"spend 1001"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Now = func() time.Time { return now }
			r := NewRules(cfg, activity(tt.count, tt.total))
			f, err := r.Check(context.Background(), orderflow.Order{ID: "o1", UserID: "u1", Amount: tt.amount})
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if got := f != nil; got != tt.rejected {
				t.Fatalf("rejected = %v (%+v), want %v", got, f, tt.rejected)
			}
			if f == nil {
				return
			}
			if f.Code != orderflow.ReasonFraudSuspected {
				t.Errorf("code = %q, want %q", f.Code, orderflow.ReasonFraudSuspected)
			}
			for _, want := range tt.fired {
				if !strings.Contains(f.Detail, want) {
					t.Errorf("detail %q does not name the rule %q", f.Detail, want)
				}
			}
		})
	}
}

func TestRulesAskForTheConfiguredWindows(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	var windows []time.Duration
	r := NewRules(RulesConfig{VelocityWindow: 5 * time.Minute, SpendWindow: time.Hour, Now: func() time.Time { return now }},
		activityFunc(func(since time.Time) (int, int64, error) {
			windows = append(windows, now.Sub(since))
			return 51, 0, nil // a fast user: the spend window matters too
		}))
	if _, err := r.Check(context.Background(), orderflow.Order{UserID: "u1", Amount: 1}); err != nil {
		t.Fatal(err)
	}
	if len(windows) != 2 || windows[0] != 5*time.Minute || windows[1] != time.Hour {
		t.Errorf("windows = %v, want [5m0s 1h0m0s]", windows)
	}
}

func TestRulesReturnActivityErrors(t *testing.T) {
	boom := errors.New("store down")
	for _, failOn := range []int{1, 2} {
		calls := 0
		r := NewRules(RulesConfig{}, activityFunc(func(time.Time) (int, int64, error) {
			calls++
			if calls == failOn {
				return 0, 0, boom
			}
			return 51, 0, nil // a fast user: the spend window matters too
		}))
		f, err := r.Check(context.Background(), orderflow.Order{UserID: "u1", Amount: 1})
		if !errors.Is(err, boom) || f != nil {
			t.Errorf("failing call %d: got %v, %v; want nil, %v", failOn, f, err, boom)
		}
	}
}

func TestRulesReadOnlyWindowsThatCanMatter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name      string
		cfg       RulesConfig
		amount    int64
		count     int
		wantReads int
		rejected  bool
	}{
		{"a threshold no score can reach needs no reads", RulesConfig{Threshold: 1000}, 100, 99, 0, false},
		{"a quiet user's order skips the spend window", RulesConfig{}, 100, 1, 1, false},
		{"a fast user's order also reads the spend window", RulesConfig{}, 100, 51, 2, false},
		{"a large order reads both, to report every reason", RulesConfig{}, 500_000, 1, 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reads := 0
			act := activityFunc(func(since time.Time) (int, int64, error) {
				reads++
				if now.Sub(since) <= time.Minute {
					return tt.count, 0, nil
				}
				return 0, 100, nil
			})
			cfg := tt.cfg
			cfg.Now = func() time.Time { return now }
			f, err := NewRules(cfg, act).Check(context.Background(), orderflow.Order{ID: "o1", UserID: "u1", Amount: tt.amount})
			if err != nil || (f != nil) != tt.rejected {
				t.Fatalf("got %v, %v; want rejected=%v", f, err, tt.rejected)
			}
			if reads != tt.wantReads {
				t.Errorf("activity reads = %d, want %d", reads, tt.wantReads)
			}
		})
	}
}
