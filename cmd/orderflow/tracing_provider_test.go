package main

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// TestServiceName: the exported spans' service.name is OTEL_SERVICE_NAME,
// else a service.name of OTEL_RESOURCE_ATTRIBUTES, else orderflow-<command>
// (orderflow for serve).
func TestServiceName(t *testing.T) {
	for _, tt := range []struct {
		name, serviceName, attributes, command, want string
	}{
		{"default of api", "", "", "api", "orderflow-api"},
		{"default of serve", "", "", "serve", "orderflow"},
		{"from OTEL_RESOURCE_ATTRIBUTES", "", "service.name=shop-api,team=pay", "api", "shop-api"},
		{"OTEL_SERVICE_NAME first", "checkout", "service.name=shop-api", "api", "checkout"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("OTEL_SERVICE_NAME", tt.serviceName)
			t.Setenv("OTEL_RESOURCE_ATTRIBUTES", tt.attributes)
			cfg := tracing{Endpoint: "http://127.0.0.1:1/v1/traces", Protocol: "http/protobuf",
				Service: tt.serviceName, Sampler: sdktrace.AlwaysSample()}
			tp, shutdown, err := newTracerProvider(context.Background(), cfg, tt.command)
			if err != nil {
				t.Fatal(err)
			}
			defer shutdown(context.Background())
			_, span := tp.Tracer("test").Start(context.Background(), "s")
			span.End()
			got := ""
			for _, kv := range span.(sdktrace.ReadOnlySpan).Resource().Attributes() {
				if kv.Key == semconv.ServiceNameKey {
					got = kv.Value.AsString()
				}
			}
			if got != tt.want {
				t.Errorf("service.name %q, want %q", got, tt.want)
			}
		})
	}
}
