package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/logtest"

	"golang.org/x/crypto/bcrypt"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/auth"
	"github.com/orderflow/orderflow/dynamostore"
	"github.com/orderflow/orderflow/httpapi"
	"github.com/orderflow/orderflow/processor"
	"github.com/orderflow/orderflow/replica"
	"github.com/orderflow/orderflow/sqlite"
	"github.com/orderflow/orderflow/sqsqueue"
)

func TestConfigDefaults(t *testing.T) {
	c, err := loadConfig(getenvOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Env != "local" || c.APIAddr != ":8000" || c.ProcessorAddr != ":9090" || !c.DevLogin || c.RateLimit != 100 || c.awsMode() {
		t.Fatalf("got %+v, want the documented defaults", c)
	}
}

func TestConfigRefusesInsecureSettingsOutsideLocal(t *testing.T) {
	users := filepath.Join(t.TempDir(), "users")
	os.WriteFile(users, []byte("ada:$2a$04$abcdefghijklmnopqrstuuZ5WjJmV1rM1xG7yqQeQy9r3U6sMmv2K\n"), 0o600)
	good := map[string]string{
		"ENV":                       "prod",
		"JWT_SECRET":                "k1:0123456789abcdef0123456789abcdef",
		"ORDERFLOW_URL_SIGNING_KEY": "u1:fedcba9876543210fedcba9876543210",
		"ORDERFLOW_USERS_FILE":      users,
	}
	if _, err := loadConfig(getenvOf(good)); err != nil {
		t.Fatalf("a secure prod config is refused: %v", err)
	}
	tests := []struct {
		name    string
		change  map[string]string
		wantVar string
	}{
		{"default JWT secret is refused in prod", map[string]string{"JWT_SECRET": ""}, "JWT_SECRET"},
		{"default URL key is refused in prod", map[string]string{"ORDERFLOW_URL_SIGNING_KEY": ""}, "ORDERFLOW_URL_SIGNING_KEY"},
		{"dev login is refused in prod", map[string]string{"ORDERFLOW_DEV_LOGIN": "true"}, "ORDERFLOW_DEV_LOGIN"},
		{"no users file without dev login", map[string]string{"ORDERFLOW_USERS_FILE": ""}, "ORDERFLOW_USERS_FILE"},
		{"a queue without a table is refused", map[string]string{"SQS_QUEUE_URL": "http://q"}, "SQS_QUEUE_URL and DDB_TABLE"},
		{"a table without a queue is refused", map[string]string{"DDB_TABLE": "Orders"}, "SQS_QUEUE_URL and DDB_TABLE"},
		{"a bad duration names its variable", map[string]string{"ORDERFLOW_TOKEN_TTL": "soon"}, "ORDERFLOW_TOKEN_TTL"},
		{"a bad number names its variable", map[string]string{"ORDERFLOW_RATE_LIMIT": "-1"}, "ORDERFLOW_RATE_LIMIT"},
		{"batch size above the SQS limit", map[string]string{"ORDERFLOW_BATCH_SIZE": "11"}, "ORDERFLOW_BATCH_SIZE"},
		{"idempotency kept less than a day", map[string]string{"ORDERFLOW_IDEMPOTENCY_TTL": "1h"}, "ORDERFLOW_IDEMPOTENCY_TTL"},
		{"a region taking over its own orders", map[string]string{"AWS_REGION": "eu-west-1", "ORDERFLOW_TAKEOVER_REGIONS": "us-east-1,eu-west-1"}, "ORDERFLOW_TAKEOVER_REGIONS"},
		{"a secret and its file both set", map[string]string{"JWT_SECRET_FILE": users}, "JWT_SECRET"},
		{"a missing secret file", map[string]string{"JWT_SECRET": "", "JWT_SECRET_FILE": "/nonexistent/secret"}, "JWT_SECRET_FILE"},
		{"bad cents", map[string]string{"ORDERFLOW_PAYMENT_DECLINE_CENTS": "100"}, "ORDERFLOW_PAYMENT_DECLINE_CENTS"},
		{"zero cents (would mean the default)", map[string]string{"ORDERFLOW_PAYMENT_TRANSIENT_CENTS": "0"}, "ORDERFLOW_PAYMENT_TRANSIENT_CENTS"},
		{"bad bool", map[string]string{"ORDERFLOW_DEV_LOGIN": "maybe"}, "ORDERFLOW_DEV_LOGIN"},
		{"a JWT secret shorter than 32 bytes", map[string]string{"JWT_SECRET": "k1:short"}, "JWT_SECRET"},
		{"a URL key shorter than 32 bytes", map[string]string{"ORDERFLOW_URL_SIGNING_KEY": "too-short"}, "ORDERFLOW_URL_SIGNING_KEY"},
		{"the built-in JWT secret as a verify-only rotation key", map[string]string{"JWT_SECRET": "new:0123456789abcdef0123456789abcdef," + devJWTSecret}, "JWT_SECRET: key 2 is a built-in"},
		{"the built-in JWT secret under another key id", map[string]string{"JWT_SECRET": "prod:" + builtIn(devJWTSecret)}, "JWT_SECRET: key 1 is a built-in"},
		{"the built-in JWT secret as a bare value", map[string]string{"JWT_SECRET": builtIn(devJWTSecret)}, "JWT_SECRET: key 1 is a built-in"},
		{"the built-in JWT secret with surrounding spaces", map[string]string{"JWT_SECRET": "  " + devJWTSecret + " \n"}, "JWT_SECRET: key 1 is a built-in"},
		{"the built-in JWT secret with spaces inside its entry", map[string]string{"JWT_SECRET": "k1:0123456789abcdef0123456789abcdef , dev : " + builtIn(devJWTSecret) + " "}, "JWT_SECRET: key 2 is a built-in"},
		{"the built-in URL key as a rotation key", map[string]string{"ORDERFLOW_URL_SIGNING_KEY": "u1:fedcba9876543210fedcba9876543210," + devURLKey}, "ORDERFLOW_URL_SIGNING_KEY: key 2 is a built-in"},
		{"the built-in URL key under another key id", map[string]string{"ORDERFLOW_URL_SIGNING_KEY": "u9:" + builtIn(devURLKey)}, "ORDERFLOW_URL_SIGNING_KEY: key 1 is a built-in"},
		{"the built-in URL key as a bare value", map[string]string{"ORDERFLOW_URL_SIGNING_KEY": " " + builtIn(devURLKey) + " "}, "ORDERFLOW_URL_SIGNING_KEY: key 1 is a built-in"},
		{"the built-in JWT secret as a URL key", map[string]string{"ORDERFLOW_URL_SIGNING_KEY": devJWTSecret}, "ORDERFLOW_URL_SIGNING_KEY: key 1 is a built-in"},
		{"the built-in URL key as a JWT secret", map[string]string{"JWT_SECRET": "k1:" + builtIn(devURLKey)}, "JWT_SECRET: key 1 is a built-in"},
		{"an unknown client IP header", map[string]string{"ORDERFLOW_CLIENT_IP_HEADER": "X-Real-IP"}, "ORDERFLOW_CLIENT_IP_HEADER"},
		{"a trusted proxy that is not a CIDR", map[string]string{"ORDERFLOW_TRUSTED_PROXIES": "10.0.0.0/8, lb.internal"}, "ORDERFLOW_TRUSTED_PROXIES"},
		{"one secret for JWT and URL signing", map[string]string{"ORDERFLOW_URL_SIGNING_KEY": "u1:0123456789abcdef0123456789abcdef"}, "shares a secret with JWT_SECRET"},
		{"one secret for JWT verification and URL signing", map[string]string{"JWT_SECRET": "k2:abcdefabcdefabcdefabcdefabcdefab,k1:fedcba9876543210fedcba9876543210"}, "shares a secret with JWT_SECRET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range good {
				env[k] = v
			}
			for k, v := range tt.change {
				env[k] = v
			}
			_, err := loadConfig(getenvOf(env))
			if err == nil || !strings.Contains(err.Error(), tt.wantVar) {
				t.Fatalf("got %v, want an error naming %s", err, tt.wantVar)
			}
			if leak := secretIn(err.Error(), env["JWT_SECRET"], env["ORDERFLOW_URL_SIGNING_KEY"], builtIn(devJWTSecret), builtIn(devURLKey)); leak != "" {
				t.Errorf("error %q shows %q, a part of a secret", err, leak)
			}
			// run refuses to start, before opening anything.
			if err := run(context.Background(), []string{"serve"}, getenvOf(env), nil, &logtest.Buffer{}, &logtest.Buffer{}); err == nil {
				t.Fatal("run started with an insecure or broken configuration")
			}
		})
	}
}

// builtIn is the secret of a built-in kid:secret key.
func builtIn(key string) string {
	_, secret, _ := strings.Cut(key, ":")
	return secret
}

// secretIn returns the first run of 8 characters of a secret of one of the
// keyrings that appears in msg ("" if none does).
func secretIn(msg string, keyrings ...string) string {
	for _, kr := range keyrings {
		for _, entry := range strings.Split(kr, ",") {
			_, secret, ok := strings.Cut(entry, ":")
			if !ok {
				secret = entry
			}
			secret = strings.TrimSpace(secret)
			for i := 0; i+8 <= len(secret); i++ {
				if strings.Contains(msg, secret[i:i+8]) {
					return secret[i : i+8]
				}
			}
		}
	}
	return ""
}

func TestConfigErrorsShowNoPartOfASecret(t *testing.T) {
	// A bare secret with a colon in it parses as kid:secret; what comes
	// before the colon is a part of the secret, not a key id.
	for _, v := range []string{"Zm9vYmFy/c2VjcmV0:aGVsbG8gd29ybGQgaGVsbG8gd29ybGQ=", "sh0rt:x", "s3cr3tpart:" + strings.Repeat("y", 40) + ",s3cr3tpart:" + strings.Repeat("z", 40)} {
		_, err := loadConfig(getenvOf(map[string]string{"JWT_SECRET": v}))
		if err == nil {
			t.Fatalf("JWT_SECRET=<%d bytes> accepted, want an error", len(v))
		}
		before, _, _ := strings.Cut(v, ":")
		if strings.Contains(err.Error(), before) || secretIn(err.Error(), v) != "" {
			t.Errorf("error %q shows a part of the secret", err)
		}
	}
}

func TestTrustedProxies(t *testing.T) {
	c, err := loadConfig(getenvOf(map[string]string{"ORDERFLOW_TRUSTED_PROXIES": " 10.1.2.3/8, 192.0.2.7 ,2001:db8::/32,"}))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range c.TrustedProxies {
		got = append(got, p.String())
	}
	if want := "10.0.0.0/8 192.0.2.7/32 2001:db8::/32"; strings.Join(got, " ") != want {
		t.Errorf("got %v, want %s", got, want)
	}
	if c, _ := loadConfig(getenvOf(nil)); len(c.TrustedProxies) != 0 || c.ClientIPHeader != httpapi.XForwardedFor {
		t.Errorf("by default: trusted proxies %v, header %q; want none, X-Forwarded-For", c.TrustedProxies, c.ClientIPHeader)
	}
	if c, err := loadConfig(getenvOf(map[string]string{"ORDERFLOW_CLIENT_IP_HEADER": "forwarded"})); err != nil || c.ClientIPHeader != httpapi.Forwarded {
		t.Errorf("ORDERFLOW_CLIENT_IP_HEADER=forwarded: %q, %v; want Forwarded", c.ClientIPHeader, err)
	}
}

func TestSecretFromFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "jwt")
	os.WriteFile(f, []byte("k9:0123456789abcdef0123456789abcdef\n"), 0o600)
	c, err := loadConfig(getenvOf(map[string]string{"JWT_SECRET_FILE": f}))
	if err != nil || c.JWTSecret != "k9:0123456789abcdef0123456789abcdef" {
		t.Fatalf("got %q, %v", c.JWTSecret, err)
	}
}

var updateDocs = flag.Bool("update-docs", false, "rewrite docs/configuration.md's settings table from the settings list")

// settingsTable is docs/configuration.md's table, made from the settings
// list: one row per setting, its default and its help.
func settingsTable() string {
	var b strings.Builder
	b.WriteString("| variable | default | what it does |\n|---|---|---|\n")
	for _, s := range settings {
		def := "—"
		switch {
		case strings.ContainsAny(s.Default, " ("):
			def = s.Default
		case s.Default != "":
			def = "`" + s.Default + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", s.Name, def, strings.ReplaceAll(s.Help, "|", "\\|"))
	}
	return b.String()
}

// TestConfigurationDocListsEverySetting keeps docs/configuration.md's
// settings table what the settings list makes (go test ./cmd/orderflow
// -run TestConfigurationDoc -update-docs rewrites it).
func TestConfigurationDocListsEverySetting(t *testing.T) {
	const path = "../../docs/configuration.md"
	const begin, end = "<!-- settings table: generated from cmd/orderflow's settings list -->\n", "<!-- end of the settings table -->\n"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("%s has no settings table between %q and %q", path, begin, end)
	}
	want := settingsTable()
	if got := doc[i+len(begin) : j]; got != want {
		if *updateDocs {
			if err := os.WriteFile(path, []byte(doc[:i+len(begin)]+want+doc[j:]), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Errorf("%s's settings table is not the settings list's; run go test ./cmd/orderflow -run TestConfigurationDoc -update-docs. It should be:\n%s", path, want)
	}
}

// The defaults come from the packages that own the settings, and survive
// their rendering in the settings table.
func TestConfigDefaultsAreTheirOwnersConstants(t *testing.T) {
	c, err := loadConfig(getenvOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		got, want any
	}{
		{"ORDERFLOW_TOKEN_TTL", c.TokenTTL, auth.DefaultTokenTTL},
		{"ORDERFLOW_STATUS_URL_TTL", c.StatusURLTTL, httpapi.DefaultStatusURLTTL},
		{"ORDERFLOW_RATE_LIMIT", c.RateLimit, httpapi.DefaultRateLimit},
		{"ORDERFLOW_LOGIN_RATE_LIMIT", c.LoginRateLimit, httpapi.DefaultLoginRateLimit},
		{"ORDERFLOW_CLIENT_IP_HEADER", c.ClientIPHeader, httpapi.XForwardedFor},
		{"ORDERFLOW_MAX_BODY_BYTES", c.MaxBodyBytes, int64(httpapi.DefaultMaxBodyBytes)},
		{"ORDERFLOW_REQUEST_TIMEOUT", c.RequestTimeout, httpapi.DefaultRequestTimeout},
		{"ORDERFLOW_CONCURRENCY", c.Concurrency, processor.DefaultConcurrency},
		{"ORDERFLOW_BATCH_SIZE", c.BatchSize, processor.DefaultBatchSize},
		{"ORDERFLOW_VISIBILITY_TIMEOUT", c.VisibilityTimeout, sqlite.DefaultVisibilityTimeout},
		{"ORDERFLOW_MAX_RECEIVES", c.MaxReceives, sqlite.DefaultMaxReceives},
		{"ORDERFLOW_IDEMPOTENCY_TTL", c.IdempotencyTTL, orderflow.MinIdempotencyTTL},
		{"ORDERFLOW_DRAIN_TIMEOUT", c.DrainTimeout, processor.DefaultDrainTimeout},
		{"ORDERFLOW_PAYMENT_LATENCY", c.PaymentLatency, processor.DefaultPaymentLatency},
		{"ORDERFLOW_PAYMENT_DECLINE_CENTS", c.PaymentDeclineCents, processor.DefaultPaymentDeclineCents},
		{"ORDERFLOW_PAYMENT_TRANSIENT_CENTS", c.PaymentTransientCents, processor.DefaultPaymentTransientCents},
		{"ORDERFLOW_PAYMENT_ALWAYS_FAIL_CENTS", c.PaymentAlwaysFailCents, processor.DefaultPaymentAlwaysFailCents},
		{"ORDERFLOW_FRAUD_THRESHOLD", c.FraudThreshold, processor.DefaultFraudThreshold},
		{"ORDERFLOW_FRAUD_MAX_AMOUNT", c.FraudMaxAmount, int64(processor.DefaultFraudMaxAmount)},
		{"ORDERFLOW_TAKEOVER_AFTER", c.TakeoverAfter, dynamostore.DefaultStaleIntent},
		{"ORDERFLOW_REPLICA_SYNC_INTERVAL", c.ReplicaSyncInterval, replica.DefaultSyncInterval},
		{"ORDERFLOW_COMMIT_WINDOW", c.CommitWindow, sqlite.DefaultCommitWindow},
		{"ORDERFLOW_SQS_SEND_WINDOW", c.SQSSendWindow, sqsqueue.DefaultSendWindow},
		{"ORDERFLOW_SQS_RECEIVE_LINGER", c.SQSReceiveLinger, sqsqueue.DefaultReceiveLinger},
		{"ORDERFLOW_SQS_DELETE_WINDOW", c.SQSDeleteWindow, sqsqueue.DefaultDeleteWindow},
	} {
		if tt.got != tt.want {
			t.Errorf("%s defaults to %v, want its owner's %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestSettingsTableDurations(t *testing.T) {
	for d, want := range map[time.Duration]string{
		24 * time.Hour: "24h", time.Hour + 30*time.Minute: "1h30m", 2 * time.Minute: "2m",
		30 * time.Second: "30s", 2 * time.Millisecond: "2ms", 90 * time.Second: "1m30s",
	} {
		if got := dur(d); got != want {
			t.Errorf("dur(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestCommands(t *testing.T) {
	var out logtest.Buffer
	if err := run(context.Background(), []string{"help"}, getenvOf(nil), nil, &out, &out); err != nil || !strings.Contains(out.String(), "dlq redrive") {
		t.Fatalf("help: %v %q", err, out.String())
	}
	if err := run(context.Background(), []string{"frobnicate"}, getenvOf(nil), nil, &out, &out); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Fatalf("unknown command: got %v", err)
	}
	env := testEnv(t, nil)
	for _, args := range [][]string{{"dlq"}, {"dlq", "shred"}, {"dlq", "list", "-max", "0"}, {"serve", "extra"}} {
		if err := run(context.Background(), args, getenvOf(env), nil, &out, &out); err == nil {
			t.Errorf("orderflow %v: got no error", args)
		}
	}
	var hash logtest.Buffer
	if err := run(context.Background(), []string{"hash-password"}, getenvOf(nil), strings.NewReader("s3cret\n"), &hash, &hash); err != nil {
		t.Fatal(err)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(strings.TrimSpace(hash.String())), []byte("s3cret")); err != nil {
		t.Fatalf("hash-password printed %q, which does not match: %v", hash.String(), err)
	}
	if err := run(context.Background(), []string{"hash-password"}, getenvOf(nil), strings.NewReader(""), &out, &out); err == nil {
		t.Fatal("hash-password with no input: got no error")
	}
}

func TestTuneGCRespectsTheOperatorsSettings(t *testing.T) {
	prevPercent := debug.SetGCPercent(100)
	prevLimit := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetGCPercent(prevPercent); debug.SetMemoryLimit(prevLimit) })

	tuneGC(getenvOf(map[string]string{"GOGC": "100", "GOMEMLIMIT": "1GiB"}))
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set: GC percent %d, want it left at 100", got)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("with GOMEMLIMIT set: limit %d, want it left alone", got)
	}
	tuneGC(getenvOf(nil))
	if got := debug.SetGCPercent(100); got != 400 {
		t.Errorf("by default: GC percent %d, want 400", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 192<<20 {
		t.Errorf("by default: limit %d, want 192 MiB", got)
	}
	tuneGC(getenvOf(map[string]string{"ORDERFLOW_MEMORY_LIMIT": "536870912"}))
	if got := debug.SetMemoryLimit(-1); got != 384<<20 {
		t.Errorf("in a 512 MiB container: limit %d, want 384 MiB (3/4)", got)
	}
	tuneGC(getenvOf(map[string]string{"ORDERFLOW_MEMORY_LIMIT": "512Mi"}))
	if got := debug.SetMemoryLimit(-1); got != 192<<20 {
		t.Errorf("with a limit that is not bytes: limit %d, want the default 192 MiB", got)
	}
}

// The processor signs and verifies nothing: outside local it starts
// without the api's JWT secret, URL key and users file, which the api (and
// serve) still demand.
func TestOnlyTheCommandsServingTheAPINeedItsSecrets(t *testing.T) {
	env := getenvOf(map[string]string{"ENV": "prod"})
	for _, cmd := range []string{"processor", "init", "dlq"} {
		if _, err := loadConfigFor(env, cmd); err != nil {
			t.Errorf("%s with ENV=prod and no secrets: %v, want no error", cmd, err)
		}
	}
	for _, cmd := range []string{"api", "serve"} {
		_, err := loadConfigFor(env, cmd)
		for _, name := range []string{"JWT_SECRET", "ORDERFLOW_URL_SIGNING_KEY", "ORDERFLOW_USERS_FILE"} {
			if err == nil || !strings.Contains(err.Error(), name+":") {
				t.Errorf("%s with ENV=prod and no secrets: %v, want an error naming %s", cmd, err, name)
			}
		}
	}
}

func TestConfigTracing(t *testing.T) {
	tests := []struct {
		name         string
		env          map[string]string
		wantEndpoint string
		wantProtocol string
		wantErr      string
	}{
		{"off without an endpoint", nil, "", "http/protobuf", ""},
		{"the base endpoint gets the traces path", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}, "http://c:4318/v1/traces", "http/protobuf", ""},
		{"the traces endpoint is used as it is", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:9/x"}, "http://t:9/x", "http/protobuf", ""},
		{"grpc takes the base endpoint as it is", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "http://c:4317", "grpc", ""},
		{"the traces protocol overrides", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}, "http://c:4317", "grpc", ""},
		{"the SDK disabled exports nothing", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, "", "http/protobuf", ""},
		{"exporter none exports nothing", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, "", "http/protobuf", ""},
		{"an unknown protocol is refused", map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "", "", "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{"an unknown sampler is refused", map[string]string{"OTEL_TRACES_SAMPLER": "jaeger_remote"}, "", "", "OTEL_TRACES_SAMPLER"},
		{"a ratio above 1 is refused", map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "5"}, "", "", "OTEL_TRACES_SAMPLER_ARG"},
		{"an unknown exporter is refused", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, "", "", "OTEL_TRACES_EXPORTER"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(getenvOf(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Tracing.Endpoint != tt.wantEndpoint || c.Tracing.Protocol != tt.wantProtocol {
				t.Errorf("endpoint %q protocol %q, want %q %q", c.Tracing.Endpoint, c.Tracing.Protocol, tt.wantEndpoint, tt.wantProtocol)
			}
		})
	}
	c, err := loadConfig(getenvOf(map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Tracing.Sampler.Description(); got != "TraceIDRatioBased{0.25}" {
		t.Errorf("sampler %s, want TraceIDRatioBased{0.25}", got)
	}
}

func TestConfigCommitWindow(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  time.Duration // the sqlite option; 0 for a refusal
	}{
		{"", sqlite.DefaultCommitWindow},
		{"5ms", 5 * time.Millisecond},
		{"0", -1}, // commit as soon as the disk is free
		{"0s", -1},
		{"100ms", 100 * time.Millisecond},
		{"101ms", 0},
		{"-1ms", 0},
		{"soon", 0},
	} {
		env := map[string]string{}
		if tt.value != "" {
			env["ORDERFLOW_COMMIT_WINDOW"] = tt.value
		}
		c, err := loadConfig(getenvOf(env))
		switch {
		case tt.want == 0 && (err == nil || !strings.Contains(err.Error(), "ORDERFLOW_COMMIT_WINDOW")):
			t.Errorf("ORDERFLOW_COMMIT_WINDOW=%q: got %v, want an error naming it", tt.value, err)
		case tt.want != 0 && err != nil:
			t.Errorf("ORDERFLOW_COMMIT_WINDOW=%q: %v", tt.value, err)
		case tt.want != 0:
			for _, command := range []string{"api", "processor", ""} { // "": the operator commands
				c.command = command
				if got := sqliteOptions(c, nil, nil).CommitWindow; got != -1 {
					t.Errorf("ORDERFLOW_COMMIT_WINDOW=%q, command %q beside others on the file: the database's CommitWindow is %v, want none (-1)", tt.value, command, got)
				}
			}
			c.command = "serve"
			if got := sqliteOptions(c, nil, nil).CommitWindow; got != tt.want {
				t.Errorf("ORDERFLOW_COMMIT_WINDOW=%q: the database's CommitWindow is %v, want %v", tt.value, got, tt.want)
			}
		}
	}
}

func TestConfigReplica(t *testing.T) {
	for _, tt := range []struct {
		name    string
		env     map[string]string
		wantErr string // "" for none
	}{
		{"off by default", nil, ""},
		{"a file replica", map[string]string{"ORDERFLOW_REPLICA_URL": "file:///var/backups/orderflow"}, ""},
		{"an S3 replica", map[string]string{"ORDERFLOW_REPLICA_URL": "s3://shop/orderflow", "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000"}, ""},
		{"a relative directory is refused", map[string]string{"ORDERFLOW_REPLICA_URL": "file:backups"}, "ORDERFLOW_REPLICA_URL"},
		{"another scheme is refused", map[string]string{"ORDERFLOW_REPLICA_URL": "gs://bucket/x"}, "ORDERFLOW_REPLICA_URL"},
		{"the AWS mode has no SQLite file to replicate", map[string]string{"ORDERFLOW_REPLICA_URL": "s3://shop/x", "SQS_QUEUE_URL": "http://q", "DDB_TABLE": "T"}, "ORDERFLOW_REPLICA_URL"},
		{"an S3 replica refuses AWS_CA_BUNDLE", map[string]string{"ORDERFLOW_REPLICA_URL": "s3://shop/x", "AWS_CA_BUNDLE": "/etc/ca.pem"}, "AWS_CA_BUNDLE"},
		{"a file replica ignores AWS_CA_BUNDLE", map[string]string{"ORDERFLOW_REPLICA_URL": "file:///b", "AWS_CA_BUNDLE": "/etc/ca.pem"}, ""},
		{"a sync interval below 10ms is refused", map[string]string{"ORDERFLOW_REPLICA_SYNC_INTERVAL": "1ms"}, "ORDERFLOW_REPLICA_SYNC_INTERVAL"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(getenvOf(tt.env))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got %v, want an error naming %s", err, tt.wantErr)
			case err == nil && c.ReplicaURL != tt.env["ORDERFLOW_REPLICA_URL"]:
				t.Errorf("ReplicaURL = %q, want %q", c.ReplicaURL, tt.env["ORDERFLOW_REPLICA_URL"])
			}
		})
	}
}

// help settings lists every setting with its default, one a line, for the
// tools that check a deployment's environment (deploy/check).
func TestHelpSettingsListsEverySetting(t *testing.T) {
	var out strings.Builder
	if err := run(context.Background(), []string{"help", "settings"}, getenvOf(nil), strings.NewReader(""), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != len(settings) {
		t.Fatalf("help settings printed %d lines, want %d", len(lines), len(settings))
	}
	for i, s := range settings {
		if want := s.Name + "\t" + s.Default + "\t" + s.Help; lines[i] != want {
			t.Errorf("line %d: got %q, want %q", i+1, lines[i], want)
		}
	}
}
