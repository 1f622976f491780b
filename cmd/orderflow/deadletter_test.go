package main

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/awstest"
	"github.com/orderflow/orderflow/logtest"
	"github.com/orderflow/orderflow/processor"
)

// TestAWSDeadLetterWatch: on SQS and DynamoDB, the processor's dead-letter
// watch completes the order that was charged, fails (and releases the
// stock of) any other unfinished one, leaves final orders, unknown orders
// and poison messages alone, leaves every message in the dead-letter
// queue, and counts and logs each order it ended; on each SQS backend.
func TestAWSDeadLetterWatch(t *testing.T) {
	awstest.ForEachSQS(t, testAWSDeadLetterWatch)
}

func testAWSDeadLetterWatch(t *testing.T, b awstest.Backend) {
	p := newAWSParts(t, b)
	ctx := context.Background()
	create := func(o orderflow.Order) orderflow.Order {
		t.Helper()
		if _, err := p.store.BeginOrder(ctx, o, orderflow.IdempotencyKey{}); err != nil {
			t.Fatal(err)
		}
		return o
	}
	start := func(o orderflow.Order) {
		t.Helper()
		if _, err := p.store.StartOrder(ctx, o.ID, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	sku := awstest.Name("sku")
	if err := p.store.SetStock(ctx, sku, 5); err != nil {
		t.Fatal(err)
	}
	pending := create(p.order("eve", 1))
	charged := create(p.order("eve", 2))
	start(charged)
	if _, _, err := p.store.RecordCharge(ctx, orderflow.Charge{ID: "ch_1", IdempotencyKey: string(charged.ID), OrderID: charged.ID, Amount: 2, Currency: "USD"}); err != nil {
		t.Fatal(err)
	}
	reservedOrder := p.order("eve", 3)
	reservedOrder.Items = []orderflow.Item{{SKU: sku, Quantity: 2}}
	reserved := create(reservedOrder)
	start(reserved)
	if f, err := p.store.Reserve(ctx, reserved.ID, reserved.Items); f != nil || err != nil {
		t.Fatalf("Reserve: %v %v", f, err)
	}
	done := create(p.order("eve", 4))
	if _, err := p.store.Transition(ctx, orderflow.Transition{ID: done.ID, From: orderflow.StatusPending, To: orderflow.StatusRejected,
		Failure: &orderflow.Failure{Code: orderflow.ReasonFraudSuspected, Detail: "x"}, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	ids := []orderflow.OrderID{pending.ID, charged.ID, reserved.ID, done.ID, orderflow.NewOrderID(time.Now())}
	for _, id := range ids {
		p.sendDead(t, orderflow.EncodeMessage(orderflow.Message{OrderID: id}))
	}
	p.sendDead(t, []byte("poison"))

	var logs logtest.Buffer
	reg := prometheus.NewRegistry()
	proc, err := processor.New(processor.Config{Env: "test", DeadLetterInterval: 100 * time.Millisecond}, processor.Deps{
		Queue: p.queue, Store: p.store, Inventory: p.store,
		Fraud:       processor.NewRules(processor.RulesConfig{}, p.store),
		Payment:     processor.NewSimulatedGateway(processor.GatewayConfig{Latency: -1}, p.store, time.Now),
		DeadLetters: p.queue,
		Logger:      slog.New(orderflow.LogHandler(slog.NewJSONHandler(&logs, nil))),
		Registerer:  reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	watched := make(chan error, 1)
	go func() { watched <- proc.WatchDeadLetters(wctx) }()
	want := map[orderflow.OrderID]orderflow.Status{
		pending.ID: orderflow.StatusFailed, charged.ID: orderflow.StatusCompleted,
		reserved.ID: orderflow.StatusFailed, done.ID: orderflow.StatusRejected,
	}
	deadline := time.Now().Add(20 * time.Second)
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for {
		ok := processedCount(t, reg, "error") == 2 && processedCount(t, reg, "success") == 1
		for id, st := range want {
			o, err := p.store.GetOrder(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			ok = ok && o.Status == st
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("orders did not reach %v, counted, within 20s; logs:\n%s", want, logs.String())
		}
		<-poll.C
	}
	cancel()
	if err := <-watched; err != nil {
		t.Errorf("WatchDeadLetters after cancel: %v, want nil", err)
	}
	if o, _ := p.store.GetOrder(ctx, pending.ID); o.Failure == nil || o.Failure.Code != orderflow.ReasonDeadLettered {
		t.Errorf("dead-lettered PENDING order has failure %+v, want %s", o.Failure, orderflow.ReasonDeadLettered)
	}
	if n, err := p.store.Stock(ctx, sku); err != nil || n != 5 {
		t.Errorf("stock after failing the reserved order: %d, %v; want 5 (given back)", n, err)
	}
	dead, err := p.queue.ListDead(ctx, 20)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != len(ids)+1 {
		t.Errorf("dead-letter queue holds %d messages after the watch, want all %d left there", len(dead), len(ids)+1)
	}
	// One transition line per order ended, with the order's user.
	got := map[orderflow.OrderID]string{}
	for _, l := range logs.Messages("order transition") {
		if l["user_id"] != "eve" {
			t.Errorf("transition line %v, want user_id eve", l)
		}
		got[orderflow.OrderID(fmt.Sprint(l["order_id"]))] += fmt.Sprintf("%s→%s ", l["from"], l["to"])
	}
	wantLines := map[orderflow.OrderID]string{
		pending.ID: "PENDING→FAILED ", charged.ID: "PROCESSING→COMPLETED ", reserved.ID: "PROCESSING→FAILED ",
	}
	if fmt.Sprint(got) != fmt.Sprint(wantLines) {
		t.Errorf("transitions logged %v, want %v", got, wantLines)
	}
}

// sendDead puts body straight into the dead-letter queue.
func (p *awsParts) sendDead(t *testing.T, body []byte) {
	t.Helper()
	if _, err := p.sqs.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(p.dlqURL), MessageBody: aws.String(string(body))}); err != nil {
		t.Fatal(err)
	}
}

// processedCount reads orders_processed_total{status} from reg.
func processedCount(t *testing.T, reg prometheus.Gatherer, status string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "orders_processed_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "status" && l.GetValue() == status {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
