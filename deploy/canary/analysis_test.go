package canary

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/argoproj/argo-rollouts/utils/evaluate"
	log "github.com/sirupsen/logrus"
)

func healthy(int) int { return 1000 }

// analyseUnder starts a stack under the load amount gives, runs disturb
// (if not nil) once the load runs, waits for the analysis window from
// then, and returns the analysis of it.
func analyseUnder(t *testing.T, amount func(int) int, disturb func(ctx context.Context, s *stack)) (v1alpha1.AnalysisPhase, map[string]v1alpha1.AnalysisPhase) {
	t.Helper()
	s := startStack(t)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	codes := s.load(ctx, t, amount)
	began := s.now(t)
	if disturb != nil {
		disturb(ctx, s)
	}
	s.waitWindow(t, began)
	run, phases := analyse(t, s)
	stop()
	t.Logf("answers by code: %v", codes())
	return run, phases
}

// A canary that answers well and fast, with a processor that ends its
// orders well, passes every metric.
func TestCanaryAnalysisPassesOnAHealthyRun(t *testing.T) {
	t.Parallel()
	run, phases := analyseUnder(t, healthy, nil)
	if run != v1alpha1.AnalysisPhaseSuccessful {
		t.Errorf("analysis of a healthy run: %s (%v), want Successful", run, phases)
	}
}

// A store outage turns the canary's POST /orders into 5xx: the non-5xx
// ratio fails the analysis (and the rollout aborts).
func TestCanaryAnalysisFailsOnAStoreOutage(t *testing.T) {
	t.Parallel()
	run, phases := analyseUnder(t, healthy, func(ctx context.Context, s *stack) { storeOutage(ctx, t, s.db, 0) })
	if run != v1alpha1.AnalysisPhaseFailed || phases["non-5xx-ratio"] != v1alpha1.AnalysisPhaseFailed {
		t.Errorf("analysis during a store outage: %s (%v), want Failed with non-5xx-ratio Failed", run, phases)
	}
}

// Writes held up for 1.5 s at a time answer, late: the p99 fails the
// analysis while the non-5xx ratio holds.
func TestCanaryAnalysisFailsOnSlowRequests(t *testing.T) {
	t.Parallel()
	run, phases := analyseUnder(t, healthy, func(ctx context.Context, s *stack) { storeOutage(ctx, t, s.db, 1500*time.Millisecond) })
	if run != v1alpha1.AnalysisPhaseFailed || phases["p99-latency"] != v1alpha1.AnalysisPhaseFailed {
		t.Errorf("analysis with slow writes: %s (%v), want Failed with p99-latency Failed", run, phases)
	}
	if phases["non-5xx-ratio"] != v1alpha1.AnalysisPhaseSuccessful {
		t.Errorf("non-5xx-ratio with slow writes that succeed: %s, want Successful", phases["non-5xx-ratio"])
	}
}

// Orders the processor cannot end well (a payment that always fails:
// amounts ending in 4 cents, ORDERFLOW_PAYMENT_ALWAYS_FAIL_CENTS) make its
// errors rise over the window before: the analysis fails.
func TestCanaryAnalysisFailsWhenProcessorErrorsRise(t *testing.T) {
	t.Parallel()
	run, phases := analyseUnder(t, func(i int) int {
		if i%2 == 0 {
			return 1004
		}
		return 1000
	}, nil)
	if run != v1alpha1.AnalysisPhaseFailed || phases["processor-errors-not-rising"] != v1alpha1.AnalysisPhaseFailed {
		t.Errorf("analysis with failing payments: %s (%v), want Failed with processor-errors-not-rising Failed", run, phases)
	}
}

// No request in the window (NaN) decides nothing: every metric of the
// template is Inconclusive on NaN (which pauses the rollout), never
// Successful.
func TestNoTrafficIsInconclusive(t *testing.T) {
	metrics, _ := (&stack{prom: "http://127.0.0.1:1"}).template(t)
	for _, m := range metrics {
		phase, err := evaluate.EvaluateResult([]float64{math.NaN()}, m, *log.NewEntry(log.New()))
		if err != nil || phase != v1alpha1.AnalysisPhaseInconclusive {
			t.Errorf("metric %s on NaN: %s %v, want Inconclusive", m.Name, phase, err)
		}
	}
}
