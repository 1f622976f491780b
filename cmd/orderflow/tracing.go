package main

import (
	"context"
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// tracing is the OpenTelemetry trace settings of cfg (the standard OTEL_*
// variables that config.go reads).
type tracing struct {
	// Endpoint is the OTLP receiver's URL for traces; "" turns exporting
	// off (also OTEL_SDK_DISABLED=true, OTEL_TRACES_EXPORTER=none).
	Endpoint string
	Protocol string // http/protobuf or grpc
	Service  string // OTEL_SERVICE_NAME; "" for orderflow-<command>
	Sampler  sdktrace.Sampler
}

// exporting reports whether spans are recorded and exported; without, the
// tracer provider only gives spans their ids.
func (t tracing) exporting() bool { return t.Endpoint != "" }

// tracing reads the OTEL_* settings of the tracer provider.
func (p *parser) tracing() tracing {
	t := tracing{Protocol: p.str("OTEL_EXPORTER_OTLP_PROTOCOL"), Service: p.str("OTEL_SERVICE_NAME")}
	if v := p.str("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"); v != "" {
		t.Protocol = v
	}
	switch t.Protocol {
	case "http/protobuf", "grpc":
	default:
		p.fail("OTEL_EXPORTER_OTLP_PROTOCOL", "must be http/protobuf or grpc, got %q", t.Protocol)
	}
	switch base, traces := p.str("OTEL_EXPORTER_OTLP_ENDPOINT"), p.str("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); {
	case traces != "":
		t.Endpoint = traces
	case base != "" && t.Protocol == "grpc":
		t.Endpoint = base
	case base != "":
		// The signal's path is appended to the base URL (OTLP exporter
		// specification).
		t.Endpoint = strings.TrimRight(base, "/") + "/v1/traces"
	}
	exporter := p.str("OTEL_TRACES_EXPORTER")
	switch exporter {
	case "otlp", "none":
	default:
		p.fail("OTEL_TRACES_EXPORTER", "must be otlp or none, got %q", exporter)
	}
	if disabled := strings.EqualFold(p.str("OTEL_SDK_DISABLED"), "true"); disabled || exporter == "none" {
		t.Endpoint = ""
	}
	t.Sampler = p.sampler()
	return t
}

// sampler is the OTEL_TRACES_SAMPLER (and _ARG) of the specification.
func (p *parser) sampler() sdktrace.Sampler {
	name, arg := p.str("OTEL_TRACES_SAMPLER"), p.str("OTEL_TRACES_SAMPLER_ARG")
	ratio := 1.0
	if strings.HasSuffix(name, "traceidratio") && arg != "" {
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			p.fail("OTEL_TRACES_SAMPLER_ARG", "must be a ratio from 0 to 1, got %q", arg)
		}
		ratio = r
	}
	switch name {
	case "always_on":
		return sdktrace.AlwaysSample()
	case "always_off":
		return sdktrace.NeverSample()
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio)
	case "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample())
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample())
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))
	}
	p.fail("OTEL_TRACES_SAMPLER", "must be always_on, always_off, traceidratio or parentbased_{always_on,always_off,traceidratio}, got %q", name)
	return sdktrace.AlwaysSample()
}

// newTracerProvider is the process's tracer provider, made once per
// process. With exporting off it samples nothing, so that spans cost next
// to nothing, yet every span still has ids: log lines carry trace_id and
// span_id, a client's trace id is continued and each order's message
// carries a traceparent. With an endpoint, spans go through a batch span
// processor to the OTLP exporter of the protocol; the exporter reads the
// rest of its OTEL_EXPORTER_OTLP_* settings (headers, timeout,
// certificates, compression) itself. shutdown flushes what is queued.
func newTracerProvider(ctx context.Context, t tracing, command string) (tp *sdktrace.TracerProvider, shutdown func(context.Context) error, err error) {
	if !t.exporting() {
		tp = sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
		return tp, tp.Shutdown, nil
	}
	var exp sdktrace.SpanExporter
	if t.Protocol == "grpc" {
		exp, err = otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(t.Endpoint))
	} else {
		exp, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(t.Endpoint))
	}
	if err != nil {
		return nil, nil, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT %s: %w", t.Endpoint, err)
	}
	service := t.Service
	if service == "" {
		service = "orderflow-" + command
		if command == "serve" {
			service = "orderflow"
		}
	}
	// Later detectors win: a service.name in OTEL_RESOURCE_ATTRIBUTES
	// beats the default, and OTEL_SERVICE_NAME beats both.
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(service), semconv.ServiceVersion(buildVersion())),
		resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		return nil, nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	tp = sdktrace.NewTracerProvider(sdktrace.WithSampler(t.Sampler), sdktrace.WithResource(res), sdktrace.WithBatcher(exp))
	return tp, tp.Shutdown, nil
}

// buildVersion is the module version the binary was built from, or
// "(devel)".
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
