package processor

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/awstest"
	"github.com/orderflow/orderflow/sqsqueue"
)

// sqsRig is a Processor on a fresh SQS queue, with the fakes as its store
// and ledger, and the queue's requests counted.
type sqsRig struct {
	q    *sqsqueue.Queue
	s    *fakeStore
	p    *Processor
	reqs *awstest.Requests
}

func newSQSRig(tb testing.TB, endpoint string, vt time.Duration, cfg Config, qopts sqsqueue.Options) *sqsRig {
	tb.Helper()
	acfg, reqs := awstest.CountRequests(awstest.Config(endpoint))
	client := sqs.NewFromConfig(acfg)
	ctx := context.Background()
	name := awstest.Name("proc")
	qurl, dlq, err := sqsqueue.CreateQueues(ctx, client, sqsqueue.QueueSpec{Name: name, DLQName: name + "-dlq", VisibilityTimeout: vt, MaxReceives: 5})
	if err != nil {
		tb.Fatalf("CreateQueues: %v", err)
	}
	tb.Cleanup(func() { sqsqueue.DeleteQueues(context.Background(), client, qurl, dlq) })
	qopts.QueueURL, qopts.DLQURL = qurl, dlq
	q, err := sqsqueue.Open(ctx, client, qopts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	s := newFakeStore()
	cfg.Env = "test"
	p, err := New(cfg, Deps{
		Queue: q, Store: s, Inventory: s,
		Fraud:   NewRules(RulesConfig{Threshold: 1000}, s),
		Payment: NewSimulatedGateway(GatewayConfig{}, newFakeLedger(), time.Now),
	})
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	reqs.Reset() // the setup's requests are not the orders'
	return &sqsRig{q: q, s: s, p: p, reqs: reqs}
}

// run starts the processor; stop cancels it and waits for Run to return.
func (r *sqsRig) run(tb testing.TB) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.p.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				tb.Errorf("Run: %v", err)
			}
		})
	}
	tb.Cleanup(stop)
	return stop
}

// order stores a PENDING order of user created now and sends its message.
func (r *sqsRig) order(ctx context.Context, user string) (orderflow.OrderID, error) {
	now := time.Now()
	o := orderflow.Order{ID: orderflow.NewOrderID(now), UserID: user, Amount: 1250, Currency: "USD",
		Status: orderflow.StatusPending, CreatedAt: now, UpdatedAt: now}
	r.s.put(o)
	return o.ID, r.q.Send(ctx, orderflow.Message{OrderID: o.ID})
}

// completed counts the orders in the store that are COMPLETED.
func (r *sqsRig) completed() int {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	n := 0
	for _, o := range r.s.orders {
		if o.Status == orderflow.StatusCompleted {
			n++
		}
	}
	return n
}

// until waits for cond, failing after a generous deadline (a safety net,
// not a timing assertion).
func until(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestDeletesOnSQSShareBatchesAndAreMadeAtStop: on SQS (ElasticMQ and
// moto), the messages of orders finished at about the same time are
// deleted in DeleteMessageBatch requests of 10, the rest wait for the
// delete window (here longer than the test), and stopping the processor
// deletes them: nothing finished stays in the queue.
func TestDeletesOnSQSShareBatchesAndAreMadeAtStop(t *testing.T) {
	awstest.ForEachSQS(t, func(t *testing.T, b awstest.Backend) {
		t.Parallel()
		r := newSQSRig(t, b.SQS, time.Hour, Config{Concurrency: 64, DeleteDelay: time.Hour}, sqsqueue.Options{})
		ctx := testContext(t)
		const n = 25
		for i := range n {
			if _, err := r.order(ctx, fmt.Sprintf("u%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		stop := r.run(t)
		until(t, "every order to complete", func() bool { return r.completed() == n })
		until(t, "the two full delete batches", func() bool { return r.reqs.Count("DeleteMessageBatch") == 2 })
		stop()
		if got := r.reqs.Count("DeleteMessageBatch"); got != 3 {
			t.Errorf("%d DeleteMessageBatch requests for %d messages, want 3 (10, 10, and 5 at the stop)", got, n)
		}
		if got := r.reqs.Count("DeleteMessage"); got != 0 {
			t.Errorf("%d DeleteMessage requests, want none", got)
		}
		d, err := r.q.Depth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d.Visible != 0 || d.InFlight != 0 {
			t.Errorf("after the stop the queue holds %d visible and %d in-flight messages, want none", d.Visible, d.InFlight)
		}
	})
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

var (
	sqsBenchRates   = flag.String("sqsbench.rates", "20,100,1000", "BenchmarkSQSRequestsPerOrder: offered rates, orders/s")
	sqsBenchFor     = flag.Duration("sqsbench.for", 10*time.Second, "BenchmarkSQSRequestsPerOrder: how long each rate is offered")
	sqsBenchWindows = flag.String("sqsbench.windows", "default,none", "BenchmarkSQSRequestsPerOrder: the batching windows of each run: default, none, or one window alone (send, linger, delete)")
)

// sqsBenchVariants are the batching windows BenchmarkSQSRequestsPerOrder
// compares: the defaults, none, and each alone.
var sqsBenchVariants = map[string]struct {
	del   time.Duration
	qopts sqsqueue.Options
}{
	"default": {sqsqueue.DefaultDeleteWindow, sqsqueue.Options{}},
	"none":    {-1, sqsqueue.Options{FlushDelay: -1, ReceiveLinger: -1}},
	"send":    {-1, sqsqueue.Options{ReceiveLinger: -1}},
	"linger":  {-1, sqsqueue.Options{FlushDelay: -1}},
	"delete":  {sqsqueue.DefaultDeleteWindow, sqsqueue.Options{FlushDelay: -1, ReceiveLinger: -1}},
}

// BenchmarkSQSRequestsPerOrder offers orders at fixed rates (open loop,
// Poisson arrivals: each order is stored and its message sent on a
// schedule, as independent clients' api requests would) to a Processor on SQS (ElasticMQ), its store and
// ledger the in-memory fakes, so that SQS alone bounds the rate: with the
// default batching windows, and with none (send window, receive linger and
// delete window off). It reports SQS requests per order, by operation,
// and the end-to-end latency (message sent → COMPLETED written).
//
//	go test -run - -bench SQSRequestsPerOrder -benchtime 1x ./processor [-args -sqsbench.rates 20,100,1000 -sqsbench.for 10s]
func BenchmarkSQSRequestsPerOrder(b *testing.B) {
	endpoint := awstest.ElasticMQ(b)
	var rates []int
	for _, f := range splitComma(*sqsBenchRates) {
		var r int
		if _, err := fmt.Sscan(f, &r); err != nil || r <= 0 {
			b.Fatalf("-sqsbench.rates: %q is not a rate", f)
		}
		rates = append(rates, r)
	}
	for _, rate := range rates {
		for _, name := range splitComma(*sqsBenchWindows) {
			w, ok := sqsBenchVariants[name]
			if !ok {
				b.Fatalf("-sqsbench.windows: no variant %q", name)
			}
			b.Run(fmt.Sprintf("rate=%d/windows=%s", rate, name), func(b *testing.B) {
				for range b.N {
					benchmarkRate(b, endpoint, rate, Config{DeleteDelay: w.del}, w.qopts)
				}
			})
		}
	}
}

func splitComma(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func benchmarkRate(b *testing.B, endpoint string, rate int, cfg Config, qopts sqsqueue.Options) {
	r := newSQSRig(b, endpoint, 30*time.Second, cfg, qopts)
	stop := r.run(b)
	ctx := context.Background()
	n := int(float64(rate) * sqsBenchFor.Seconds())
	var sends sync.WaitGroup
	errs := make(chan error, n)
	// Arrivals of a Poisson process (as independent clients make), the
	// same for every run at a rate.
	gaps := rand.New(rand.NewPCG(uint64(rate), 1))
	start := time.Now()
	var at float64 // seconds after start
	for i := range n {
		at += gaps.ExpFloat64() / float64(rate)
		time.Sleep(time.Until(start.Add(time.Duration(at * float64(time.Second)))))
		sends.Go(func() {
			if _, err := r.order(ctx, fmt.Sprintf("u%d", i%200)); err != nil {
				errs <- err
			}
		})
	}
	sends.Wait()
	offered := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	until(b, "every order to complete", func() bool { return r.completed() == n })
	stop()
	reqs := r.reqs.Snapshot()
	var e2e []time.Duration
	r.s.mu.Lock()
	for _, o := range r.s.orders {
		e2e = append(e2e, o.UpdatedAt.Sub(o.CreatedAt))
	}
	r.s.mu.Unlock()
	slices.Sort(e2e)
	total := 0
	for op, c := range reqs {
		total += c
		b.ReportMetric(float64(c)/float64(n), op+"/order")
	}
	b.ReportMetric(float64(total)/float64(n), "sqs-requests/order")
	b.ReportMetric(float64(n)/offered.Seconds(), "offered-orders/s")
	b.ReportMetric(float64(e2e[len(e2e)/2].Microseconds())/1000, "e2e-p50-ms")
	b.ReportMetric(float64(e2e[(len(e2e)-1)*99/100].Microseconds())/1000, "e2e-p99-ms")
}
