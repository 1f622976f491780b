package processor

import (
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderflow/orderflow"
)

// An order's processing continues the trace of its message as the child
// of the api's span; the stages are its children; a receive and a delete
// of messages of two traces are roots linked to both.
func TestProcessingContinuesTheMessagesTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	h := newHarness(t, func(h *harness) { h.deps.TracerProvider = tp })
	parents := map[orderflow.OrderID]string{
		h.order(1000, orderflow.Item{SKU: "widget", Quantity: 1}).ID: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		h.order(2000, orderflow.Item{SKU: "widget", Quantity: 1}).ID: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	}
	var msgs []string
	for id, tp := range parents {
		msgs = append(msgs, h.q.SendRaw(orderflow.EncodeMessage(orderflow.Message{OrderID: id, TraceParent: tp})))
	}
	h.start()
	for _, m := range msgs {
		h.waitDeleted(m)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}

	spans := rec.Ended()
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byID[s.SpanContext().SpanID()] = s
	}
	linked := map[string]map[trace.TraceID]bool{spanReceive: {}, spanDelete: {}}
	processes := 0
	for _, s := range spans {
		switch s.Name() {
		case spanProcess:
			processes++
			var id orderflow.OrderID
			for _, a := range s.Attributes() {
				if a.Key == "orderflow.order_id" {
					id = orderflow.OrderID(a.Value.AsString())
				}
			}
			want := orderflow.SpanContextOf(parents[id])
			if s.Parent().TraceID() != want.TraceID() || s.Parent().SpanID() != want.SpanID() || !s.Parent().IsRemote() {
				t.Errorf("process order of %s has parent %v, want the message's %v", id, s.Parent(), want)
			}
		case "stage inventory", "stage fraud", "stage payment", spanStart, spanTransition:
			if p, ok := byID[s.Parent().SpanID()]; !ok || p.Name() != spanProcess {
				t.Errorf("%s is not a child of process order (parent %v)", s.Name(), s.Parent())
			}
		case spanReceive, spanDelete:
			if s.Parent().IsValid() {
				t.Errorf("%s has parent %v, want a root", s.Name(), s.Parent())
			}
			for _, l := range s.Links() {
				linked[s.Name()][l.SpanContext.TraceID()] = true
			}
		}
	}
	if processes != 2 {
		t.Errorf("%d process order spans, want 2", processes)
	}
	for name, traces := range linked {
		for _, tp := range parents {
			if !traces[orderflow.SpanContextOf(tp).TraceID()] {
				t.Errorf("no %s span links to trace %s", name, tp)
			}
		}
	}
}
