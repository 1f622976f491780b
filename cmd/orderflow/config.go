package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/auth"
	"github.com/orderflow/orderflow/dynamostore"
	"github.com/orderflow/orderflow/httpapi"
	"github.com/orderflow/orderflow/processor"
	"github.com/orderflow/orderflow/replica"
	"github.com/orderflow/orderflow/sqlite"
	"github.com/orderflow/orderflow/sqsqueue"
)

// Insecure defaults, accepted only when ENV is local, dev or test.
const (
	devJWTSecret = "dev:orderflow-dev-jwt-secret-do-not-use-in-production"
	devURLKey    = "dev:orderflow-dev-url-signing-key-do-not-use-in-prod"
)

// config is every setting of orderflow, parsed once from the environment.
// Nothing else in the program reads the environment.
type config struct {
	Env      string
	LogLevel string

	APIAddr       string
	ProcessorAddr string
	DBPath        string
	// ReplicaURL, if set, is where the embedded mode's file is replicated
	// to (see package replica); ReplicaSyncInterval how often.
	ReplicaURL          string
	ReplicaSyncInterval time.Duration
	ReplicaNice         int    // the replicator process's niceness
	S3Endpoint          string // AWS_ENDPOINT_URL_S3, for an s3:// replica
	AWSCABundle         string // AWS_CA_BUNDLE, read by the SDK itself; checked only

	JWTSecret     string // keyring: "kid:secret,kid:secret" or a bare secret
	URLSigningKey string
	JWTKeys       *auth.Keyring // JWTSecret, parsed
	URLKeys       *auth.Keyring // URLSigningKey, parsed
	// JWTSecretFile and URLSigningKeyFile are the files the secrets were
	// read from (JWT_SECRET_FILE, ORDERFLOW_URL_SIGNING_KEY_FILE), which
	// the api follows for rotations; "" when given inline.
	JWTSecretFile     string
	URLSigningKeyFile string
	DevLogin          bool
	UsersFile         string
	TokenTTL          time.Duration
	StatusURLTTL      time.Duration
	PublicURL         string

	RateLimit          int
	LoginRateLimit     int
	RateLimitProcesses int // api processes sharing the limits (each allows 1/N alone)
	TrustedProxies     []netip.Prefix
	ClientIPHeader     httpapi.ForwardedHeader
	MaxBodyBytes       int64
	RequestTimeout     time.Duration
	MaxStreams         int
	MaxStreamsPerUser  int
	MaxBacklog         int // 0: no load shedding
	WatchInterval      time.Duration
	WatchMaxInterval   time.Duration
	CommitWindow       time.Duration // 0: commit as soon as the disk is free
	// command is the command that runs with the config (serve, api or
	// processor; empty for the operator commands), for the database
	// options that depend on which other processes write the file (see
	// sqliteOptions).
	command string

	Concurrency       int
	BatchSize         int
	VisibilityTimeout time.Duration
	MaxReceives       int
	IdempotencyTTL    time.Duration
	DrainTimeout      time.Duration
	ShutdownDelay     time.Duration // the api's time serving at /ready 503 after SIGTERM

	Stock string // "sku:qty,..." seeded when a sku is not stocked yet

	PaymentLatency         time.Duration
	PaymentDeclineCents    int
	PaymentTransientCents  int
	PaymentAlwaysFailCents int
	FraudThreshold         int
	FraudMaxAmount         int64

	// AWS mode (issue: Run on Amazon SQS and DynamoDB).
	SQSQueueURL string
	SQSDLQURL   string
	DDBTable    string
	AWSEndpoint string
	// SQSEndpoint and DynamoDBEndpoint override AWSEndpoint for one
	// service (the SDK's AWS_ENDPOINT_URL_<SERVICE>): SQS on ElasticMQ
	// with DynamoDB on moto, say.
	SQSEndpoint      string
	DynamoDBEndpoint string
	AWSRegion        string

	QueueName        string        // orderflow init: the queue to create
	DLQName          string        // orderflow init: its dead-letter queue
	TableName        string        // orderflow init: the table to create
	AWSCallTimeout   time.Duration // bound of one SQS or DynamoDB call
	SweepAfter       time.Duration // re-send the message of orders PENDING this long
	TakeoverAfter    time.Duration // a retry takes over an Idempotency-Key in flight this long
	DLQWatchInterval time.Duration // how often the processor's dead-letter watch looks
	// The AWS mode's SQS batching windows (0: none; see sqsqueue's
	// defaults for why each is what it is).
	SQSSendWindow    time.Duration
	SQSReceiveLinger time.Duration
	SQSDeleteWindow  time.Duration
	TakeoverRegions  []string // regions declared down whose PENDING orders this region takes over

	Tracing tracing // OpenTelemetry (OTEL_*; see tracing.go)
}

// setting documents one environment variable; the README's table is made
// from this list (see TestREADMEListsEverySetting).
type setting struct {
	Name, Default, Help string
}

var settings = []setting{
	{"ENV", "local", "deployment name; the env label of metrics. Outside local/dev/test, default secrets and dev login refuse to start"},
	{"ORDERFLOW_LOG_LEVEL", "info", "debug, info, warn or error"},
	{"ORDERFLOW_API_ADDR", ":8000", "listen address of the api"},
	{"ORDERFLOW_PROCESSOR_ADDR", ":9090", "listen address of the processor's /health, /ready and /metrics"},
	{"ORDERFLOW_DB", "orderflow.db", "SQLite file of the embedded mode (queue and store)"},
	{"ORDERFLOW_REPLICA_URL", "", "continuous replica of ORDERFLOW_DB (embedded and split modes, with Litestream): file:///dir or s3://bucket/prefix; off when empty. Endpoint and credentials of S3 come from the AWS settings (AWS_ENDPOINT_URL_S3, the standard credential chain). orderflow restore rebuilds the file from it"},
	{"ORDERFLOW_REPLICA_SYNC_INTERVAL", dur(replica.DefaultSyncInterval), "how often new writes are shipped to the replica; a write is in the replica within this plus the upload's time (RPO 1s at the default)"},
	{"ORDERFLOW_REPLICA_NICE", strconv.Itoa(replica.DefaultNice), "niceness (CPU priority, 0-19) of the replicator process that serve, api and processor start for the replica; 0 is their own. Higher leaves more of saturated cores to the orders, and lets the replica lag further behind while they stay saturated"},
	{"JWT_SECRET", "(dev secret in local)", "HS256 keys as kid:secret[,kid:secret]; the first signs, all verify. Also JWT_SECRET_FILE"},
	{"ORDERFLOW_URL_SIGNING_KEY", "(dev key in local)", "HMAC keys for status URLs, same format. Also ORDERFLOW_URL_SIGNING_KEY_FILE"},
	{"ORDERFLOW_DEV_LOGIN", "true in local/dev/test", "any user_id logs in without a password"},
	{"ORDERFLOW_USERS_FILE", "", "user_id:bcrypt-hash lines, used when dev login is off"},
	{"ORDERFLOW_TOKEN_TTL", dur(auth.DefaultTokenTTL), "lifetime of access tokens"},
	{"ORDERFLOW_STATUS_URL_TTL", dur(httpapi.DefaultStatusURLTTL), "lifetime of signed status URLs"},
	{"ORDERFLOW_PUBLIC_URL", "", "base of status URLs (e.g. https://api.example.com); default: the request's host"},
	{"ORDERFLOW_RATE_LIMIT", strconv.Itoa(httpapi.DefaultRateLimit), "orders per minute per user"},
	{"ORDERFLOW_LOGIN_RATE_LIMIT", strconv.Itoa(httpapi.DefaultLoginRateLimit), "logins per minute per client IP"},
	{"ORDERFLOW_RATE_LIMIT_PROCESSES", strconv.Itoa(httpapi.DefaultRateLimitProcesses), "api processes sharing the rate limits (the limits hold across all of them through the SQLite file or DynamoDB); while that store cannot be reached, each process allows its share, limit/N, on its own"},
	{"ORDERFLOW_TRUSTED_PROXIES", "", "CIDRs or IPs of the proxies in front of the api (comma-separated); only from these is the client IP read from ORDERFLOW_CLIENT_IP_HEADER"},
	{"ORDERFLOW_CLIENT_IP_HEADER", string(httpapi.XForwardedFor), "the header the trusted proxies write the client in: X-Forwarded-For or Forwarded (RFC 7239)"},
	{"ORDERFLOW_MAX_BODY_BYTES", strconv.Itoa(httpapi.DefaultMaxBodyBytes), "largest accepted request body"},
	{"ORDERFLOW_REQUEST_TIMEOUT", dur(httpapi.DefaultRequestTimeout), "deadline of one api request, its body's arrival and dependency calls included (408 for a body still arriving)"},
	{"ORDERFLOW_MAX_STREAMS", strconv.Itoa(httpapi.DefaultMaxStreams), "status requests an api process holds open at once (event streams and long-polls); beyond it 503 with Retry-After"},
	{"ORDERFLOW_MAX_STREAMS_PER_USER", strconv.Itoa(httpapi.DefaultMaxStreamsPerUser), "held status requests per order owner in one api process; beyond it 429 with Retry-After"},
	{"ORDERFLOW_MAX_BACKLOG", strconv.Itoa(httpapi.DefaultMaxBacklog), "orders accepted and not yet terminal (the queue's waiting and in-flight messages) at which POST /orders answers 503 overloaded with Retry-After instead of accepting; 0 turns shedding off. A new order waits about this / the rate the processors complete orders: size it from the longest wait you accept (docs/operations.md#load-shedding)"},
	{"ORDERFLOW_COMMIT_WINDOW", dur(sqlite.DefaultCommitWindow), "embedded mode (orderflow serve): the shortest time between two commits of the SQLite file while writes keep coming, so that the writes of that time share one commit and one fsync: less CPU per order at moderate rates, for up to this much more latency on each write (the 202, each step of an order); a write that finds the file quiet longer than this commits at once, and there is no window while the processor has a backlog to drain; orderflow api and orderflow processor commit without one, since an open transaction holds the other processes' writes back (0: commit as soon as the disk is free; at most 100ms)"},
	{"ORDERFLOW_WATCH_INTERVAL", dur(orderflow.DefaultWatchInterval), "how often an api process reads the followed orders (all in one batched read) to learn of changes other processes wrote; doubles while nothing changes"},
	{"ORDERFLOW_WATCH_MAX_INTERVAL", dur(orderflow.DefaultWatchMaxInterval), "the longest pause between those reads, reached while nothing changes"},
	{"ORDERFLOW_CONCURRENCY", strconv.Itoa(processor.DefaultConcurrency), "orders the processor works on at once"},
	{"ORDERFLOW_BATCH_SIZE", strconv.Itoa(processor.DefaultBatchSize), "messages per receive (1-10)"},
	{"ORDERFLOW_VISIBILITY_TIMEOUT", dur(sqlite.DefaultVisibilityTimeout), "how long a received message stays hidden (extended while in work); AWS mode: the queue's VisibilityTimeout, which orderflow init sets from this"},
	{"ORDERFLOW_MAX_RECEIVES", strconv.Itoa(sqlite.DefaultMaxReceives), "receives before a message goes to the dead-letter queue; AWS mode: the queue's RedrivePolicy, which orderflow init sets from this"},
	{"ORDERFLOW_IDEMPOTENCY_TTL", dur(orderflow.MinIdempotencyTTL), "how long Idempotency-Key records are kept (at least 24h)"},
	{"ORDERFLOW_DRAIN_TIMEOUT", dur(processor.DefaultDrainTimeout), "how long SIGTERM waits for in-flight orders"},
	{"ORDERFLOW_SHUTDOWN_DELAY", "0s", "after SIGTERM the api answers /ready with 503 and goes on serving this long before it stops listening, so that load balancers drop it first (Kubernetes: 5s)"},
	{"ORDERFLOW_MEMORY_LIMIT", "", "the container's memory limit in bytes (Kubernetes' downward API); the Go soft memory limit is then 3/4 of it, unless GOMEMLIMIT is set"},
	{"ORDERFLOW_STOCK", "widget:1000000,gadget:1000000,gizmo:5", "stock seeded for SKUs not stocked yet (sku:qty,...)"},
	{"ORDERFLOW_PAYMENT_LATENCY", dur(processor.DefaultPaymentLatency), "latency of the simulated payment gateway"},
	{"ORDERFLOW_PAYMENT_DECLINE_CENTS", strconv.Itoa(processor.DefaultPaymentDeclineCents), "amounts ending in these minor units are declined (-1: never)"},
	{"ORDERFLOW_PAYMENT_TRANSIENT_CENTS", strconv.Itoa(processor.DefaultPaymentTransientCents), "amounts ending in these fail transiently twice, then succeed (-1: never)"},
	{"ORDERFLOW_PAYMENT_ALWAYS_FAIL_CENTS", strconv.Itoa(processor.DefaultPaymentAlwaysFailCents), "amounts ending in these always fail transiently, so end FAILED (-1: never)"},
	{"ORDERFLOW_FRAUD_THRESHOLD", strconv.Itoa(processor.DefaultFraudThreshold), "fraud score at which an order is rejected"},
	{"ORDERFLOW_FRAUD_MAX_AMOUNT", strconv.Itoa(processor.DefaultFraudMaxAmount), "single-order amount (minor units) that scores 60"},
	{"SQS_QUEUE_URL", "", "AWS mode: the order queue (with DDB_TABLE)"},
	{"SQS_DLQ_URL", "", "AWS mode: its dead-letter queue (default: from the queue's RedrivePolicy)"},
	{"DDB_TABLE", "", "AWS mode: the Orders table (with SQS_QUEUE_URL)"},
	{"AWS_ENDPOINT_URL", "", "AWS endpoint override (LocalStack, moto_server)"},
	{"AWS_ENDPOINT_URL_SQS", "", "SQS endpoint override, before AWS_ENDPOINT_URL (ElasticMQ, moto_server)"},
	{"AWS_ENDPOINT_URL_DYNAMODB", "", "DynamoDB endpoint override, before AWS_ENDPOINT_URL (moto_server, LocalStack)"},
	{"AWS_ENDPOINT_URL_S3", "", "S3 endpoint of an s3:// ORDERFLOW_REPLICA_URL, before AWS_ENDPOINT_URL (MinIO, moto_server; path-style addressing)"},
	{"AWS_CA_BUNDLE", "", "CA certificates for the AWS endpoints, read by the AWS SDK; an s3:// ORDERFLOW_REPLICA_URL refuses it (Litestream's S3 client cannot take it): put the CA in the system's trust store (SSL_CERT_FILE) instead"},
	{"AWS_REGION", "us-east-1", "AWS region; credentials come from the standard AWS chain"},
	{"ORDERFLOW_QUEUE_NAME", "order-queue", "orderflow init: name of the SQS queue to create"},
	{"ORDERFLOW_DLQ_NAME", "order-queue-dlq", "orderflow init: name of its dead-letter queue"},
	{"ORDERFLOW_TABLE_NAME", "Orders", "orderflow init: name of the DynamoDB table to create"},
	{"ORDERFLOW_AWS_CALL_TIMEOUT", "3s", "AWS mode: longest wait for one SQS or DynamoDB call (retries included)"},
	{"ORDERFLOW_SQS_SEND_WINDOW", dur(sqsqueue.DefaultSendWindow), "AWS mode: how long an order's message waits for others to share its SendMessageBatch (up to 10); adds up to this to the 202 and to the end-to-end latency, and sends fewer requests at moderate rates (0: no wait; at most 1s)"},
	{"ORDERFLOW_SQS_RECEIVE_LINGER", dur(sqsqueue.DefaultReceiveLinger), "AWS mode: after a receive came back with fewer messages than it asked for, the next waits this long, and the processor's receive loops go one at a time, so that messages arriving meanwhile share one ReceiveMessage; adds up to this to an order's end-to-end latency (0: no pause; at most 1s)"},
	{"ORDERFLOW_SQS_DELETE_WINDOW", dur(sqsqueue.DefaultDeleteWindow), "AWS mode: how long a finished order's message waits for others to share its DeleteMessageBatch (up to 10). The order is final before the delete, so this adds nothing to its latency; pending deletes are made before the processor stops, a crash leaves them for a harmless redelivery; capped at a third of the visibility timeout (0: no wait)"},
	{"ORDERFLOW_SWEEP_AFTER", "2m", "AWS mode: the processor re-sends the message of orders still PENDING after this long"},
	{"ORDERFLOW_TAKEOVER_AFTER", dur(dynamostore.DefaultStaleIntent), "AWS mode: a retry with an Idempotency-Key takes over a first request unfinished after this long"},
	{"ORDERFLOW_TAKEOVER_REGIONS", "", "AWS mode with a global table: regions declared down (comma-separated) whose PENDING orders this region's processor takes over and works; never this region (docs/multi-region.md)"},
	{"ORDERFLOW_DLQ_WATCH_INTERVAL", dur(processor.DefaultDeadLetterInterval), "how often the processor's dead-letter watch looks for dead messages whose orders it has not ended (embedded mode: also at once when a receive dead-letters one)"},
	{"OTEL_EXPORTER_OTLP_ENDPOINT", "", "OTLP receiver (an OpenTelemetry Collector) to export traces to, e.g. http://collector:4318; traces are exported only when this or the next is set"},
	{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "", "the receiver's URL for traces, used as it is (http/protobuf: with its /v1/traces path); overrides the above for traces"},
	{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", "http/protobuf or grpc; OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _CERTIFICATE, _COMPRESSION are read by the exporter"},
	{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "", "the protocol for traces, overriding OTEL_EXPORTER_OTLP_PROTOCOL"},
	{"OTEL_SERVICE_NAME", "(orderflow-api, orderflow-processor; orderflow for serve)", "service.name of the exported spans; OTEL_RESOURCE_ATTRIBUTES adds resource attributes"},
	{"OTEL_TRACES_SAMPLER", "parentbased_always_on", "always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio"},
	{"OTEL_TRACES_SAMPLER_ARG", "", "the ratio (0-1) of the traceidratio samplers, e.g. 0.01; default 1"},
	{"OTEL_TRACES_EXPORTER", "otlp", "otlp, or none to export nothing"},
	{"OTEL_SDK_DISABLED", "false", "true exports nothing (spans keep their ids for logs and propagation)"},
	{"ORDERFLOW_URL", "http://localhost:8000", "the api that the client commands (login, order) talk to; their tokens are kept per URL in $XDG_CONFIG_HOME/orderflow/ (default ~/.config/orderflow/)"},
}

// dur renders a default duration as the settings table shows it: 24h,
// 2m, 30s, 2ms (not time.Duration's 24h0m0s).
func dur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func defaultOf(name string) string {
	for _, s := range settings {
		if s.Name == name {
			return s.Default
		}
	}
	panic("no setting " + name) // a programming error caught by every test run
}

// loadConfig parses the environment for serve, which needs every setting.
// Errors name the variable.
func loadConfig(getenv func(string) string) (config, error) {
	return loadConfigFor(getenv, "serve")
}

// loadConfigFor parses the environment for the command cmd. Only the
// commands that serve the api (serve, api) need its keys and users: the
// processor and the operator commands are not refused for lacking them
// (they sign and verify nothing), so that they are given no secret they do
// not use.
func loadConfigFor(getenv func(string) string, cmd string) (config, error) {
	p := parser{getenv: getenv}
	c := p.config()
	local := c.Env == "local" || c.Env == "dev" || c.Env == "test"
	c.DevLogin = p.devLogin(local)
	if c.Env == "" {
		p.fail("ENV", "must not be empty")
	}
	if cmd == "serve" || cmd == "api" {
		p.keys(&c, local)
	}
	p.limits(c)
	return c, errors.Join(p.errs...)
}

// config reads every setting, each in the form its parser checks.
func (p *parser) config() config {
	return config{
		Env:                 p.str("ENV"),
		LogLevel:            p.str("ORDERFLOW_LOG_LEVEL"),
		APIAddr:             p.str("ORDERFLOW_API_ADDR"),
		ProcessorAddr:       p.str("ORDERFLOW_PROCESSOR_ADDR"),
		DBPath:              p.str("ORDERFLOW_DB"),
		ReplicaURL:          p.replicaURL("ORDERFLOW_REPLICA_URL"),
		ReplicaSyncInterval: p.duration("ORDERFLOW_REPLICA_SYNC_INTERVAL"),
		ReplicaNice:         p.nice("ORDERFLOW_REPLICA_NICE"),
		S3Endpoint:          p.str("AWS_ENDPOINT_URL_S3"),
		AWSCABundle:         p.str("AWS_CA_BUNDLE"),
		JWTSecret:           p.secret("JWT_SECRET"),
		URLSigningKey:       p.secret("ORDERFLOW_URL_SIGNING_KEY"),
		JWTSecretFile:       p.getenv("JWT_SECRET_FILE"),
		URLSigningKeyFile:   p.getenv("ORDERFLOW_URL_SIGNING_KEY_FILE"),
		UsersFile:           p.str("ORDERFLOW_USERS_FILE"),
		TokenTTL:            p.duration("ORDERFLOW_TOKEN_TTL"),
		StatusURLTTL:        p.duration("ORDERFLOW_STATUS_URL_TTL"),
		PublicURL:           strings.TrimRight(p.str("ORDERFLOW_PUBLIC_URL"), "/"),

		RateLimit:          p.positive("ORDERFLOW_RATE_LIMIT"),
		LoginRateLimit:     p.positive("ORDERFLOW_LOGIN_RATE_LIMIT"),
		RateLimitProcesses: p.positive("ORDERFLOW_RATE_LIMIT_PROCESSES"),
		TrustedProxies:     p.prefixes("ORDERFLOW_TRUSTED_PROXIES"),
		ClientIPHeader:     p.clientIPHeader("ORDERFLOW_CLIENT_IP_HEADER"),
		MaxBodyBytes:       int64(p.positive("ORDERFLOW_MAX_BODY_BYTES")),
		RequestTimeout:     p.duration("ORDERFLOW_REQUEST_TIMEOUT"),
		MaxStreams:         p.positive("ORDERFLOW_MAX_STREAMS"),
		MaxStreamsPerUser:  p.positive("ORDERFLOW_MAX_STREAMS_PER_USER"),
		MaxBacklog:         p.nonNegative("ORDERFLOW_MAX_BACKLOG"),
		WatchInterval:      p.duration("ORDERFLOW_WATCH_INTERVAL"),
		WatchMaxInterval:   p.duration("ORDERFLOW_WATCH_MAX_INTERVAL"),
		CommitWindow:       p.duration("ORDERFLOW_COMMIT_WINDOW"),

		Concurrency:       p.positive("ORDERFLOW_CONCURRENCY"),
		BatchSize:         p.positive("ORDERFLOW_BATCH_SIZE"),
		VisibilityTimeout: p.duration("ORDERFLOW_VISIBILITY_TIMEOUT"),
		MaxReceives:       p.positive("ORDERFLOW_MAX_RECEIVES"),
		IdempotencyTTL:    p.duration("ORDERFLOW_IDEMPOTENCY_TTL"),
		DrainTimeout:      p.duration("ORDERFLOW_DRAIN_TIMEOUT"),
		ShutdownDelay:     p.duration("ORDERFLOW_SHUTDOWN_DELAY"),
		Stock:             p.str("ORDERFLOW_STOCK"),

		PaymentLatency:         p.duration("ORDERFLOW_PAYMENT_LATENCY"),
		PaymentDeclineCents:    p.cents("ORDERFLOW_PAYMENT_DECLINE_CENTS"),
		PaymentTransientCents:  p.cents("ORDERFLOW_PAYMENT_TRANSIENT_CENTS"),
		PaymentAlwaysFailCents: p.cents("ORDERFLOW_PAYMENT_ALWAYS_FAIL_CENTS"),
		FraudThreshold:         p.positive("ORDERFLOW_FRAUD_THRESHOLD"),
		FraudMaxAmount:         int64(p.positive("ORDERFLOW_FRAUD_MAX_AMOUNT")),

		SQSQueueURL:      p.str("SQS_QUEUE_URL"),
		SQSDLQURL:        p.str("SQS_DLQ_URL"),
		DDBTable:         p.str("DDB_TABLE"),
		AWSEndpoint:      p.str("AWS_ENDPOINT_URL"),
		SQSEndpoint:      p.str("AWS_ENDPOINT_URL_SQS"),
		DynamoDBEndpoint: p.str("AWS_ENDPOINT_URL_DYNAMODB"),
		AWSRegion:        p.str("AWS_REGION"),

		QueueName:        p.str("ORDERFLOW_QUEUE_NAME"),
		DLQName:          p.str("ORDERFLOW_DLQ_NAME"),
		TableName:        p.str("ORDERFLOW_TABLE_NAME"),
		AWSCallTimeout:   p.duration("ORDERFLOW_AWS_CALL_TIMEOUT"),
		SweepAfter:       p.duration("ORDERFLOW_SWEEP_AFTER"),
		TakeoverAfter:    p.duration("ORDERFLOW_TAKEOVER_AFTER"),
		TakeoverRegions:  strings.FieldsFunc(p.str("ORDERFLOW_TAKEOVER_REGIONS"), func(r rune) bool { return r == ',' || r == ' ' }),
		DLQWatchInterval: p.duration("ORDERFLOW_DLQ_WATCH_INTERVAL"),
		SQSSendWindow:    p.duration("ORDERFLOW_SQS_SEND_WINDOW"),
		SQSReceiveLinger: p.duration("ORDERFLOW_SQS_RECEIVE_LINGER"),
		SQSDeleteWindow:  p.duration("ORDERFLOW_SQS_DELETE_WINDOW"),

		Tracing: p.tracing(),
	}
}

// devLogin reads ORDERFLOW_DEV_LOGIN, which defaults to on in a local
// environment.
func (p *parser) devLogin(local bool) bool {
	v := p.getenv("ORDERFLOW_DEV_LOGIN")
	if v == "" {
		return local
	}
	on, err := strconv.ParseBool(v)
	if err != nil {
		p.fail("ORDERFLOW_DEV_LOGIN", "must be true or false, got %q", v)
	}
	return on
}

// keys parses the JWT and URL-signing keyrings of c (the built-in ones if
// unset) and, outside a local environment, refuses the built-in secrets,
// a secret shared by both, and dev login. It checks them before anything
// connects anywhere, so that a bad key is reported as such and not as a
// later failure.
func (p *parser) keys(c *config, local bool) {
	if c.JWTSecret == "" {
		c.JWTSecret = devJWTSecret
	}
	if c.URLSigningKey == "" {
		c.URLSigningKey = devURLKey
	}
	var err error
	if c.JWTKeys, err = auth.ParseKeyring(c.JWTSecret); err != nil {
		p.fail("JWT_SECRET", "%v", err)
	}
	if c.URLKeys, err = auth.ParseKeyring(c.URLSigningKey); err != nil {
		p.fail("ORDERFLOW_URL_SIGNING_KEY", "%v", err)
	}
	if !local {
		p.refuseBuiltInSecrets("JWT_SECRET", c.JWTKeys, c.Env)
		p.refuseBuiltInSecrets("ORDERFLOW_URL_SIGNING_KEY", c.URLKeys, c.Env)
		if c.JWTKeys != nil && c.URLKeys != nil && c.JWTKeys.SharesSecretWith(c.URLKeys) {
			p.fail("ORDERFLOW_URL_SIGNING_KEY", "shares a secret with JWT_SECRET; when ENV=%s each needs its own, so that a leak of one cannot forge the other", c.Env)
		}
		if c.DevLogin {
			p.fail("ORDERFLOW_DEV_LOGIN", "dev login is refused when ENV=%s; use ORDERFLOW_USERS_FILE", c.Env)
		}
	}
	if !c.DevLogin && c.UsersFile == "" {
		p.fail("ORDERFLOW_USERS_FILE", "must be set when dev login is off")
	}
}

// limits checks the bounds that settings have beyond their form, and that
// the AWS mode's settings come together.
func (p *parser) limits(c config) {
	if c.BatchSize > 10 {
		p.fail("ORDERFLOW_BATCH_SIZE", "must be 1-10 (the SQS limit), got %d", c.BatchSize)
	}
	if c.IdempotencyTTL < orderflow.MinIdempotencyTTL {
		p.fail("ORDERFLOW_IDEMPOTENCY_TTL", "must be at least 24h, got %s", c.IdempotencyTTL)
	}
	if c.VisibilityTimeout < time.Second {
		p.fail("ORDERFLOW_VISIBILITY_TIMEOUT", "must be at least 1s, got %s", c.VisibilityTimeout)
	}
	if (c.SQSQueueURL == "") != (c.DDBTable == "") {
		p.fail("SQS_QUEUE_URL", "SQS_QUEUE_URL and DDB_TABLE must be set together (AWS mode) or not at all (embedded mode)")
	}
	if c.AWSCallTimeout <= 0 {
		p.fail("ORDERFLOW_AWS_CALL_TIMEOUT", "must be positive, got %s", c.AWSCallTimeout)
	}
	for name, d := range map[string]time.Duration{"ORDERFLOW_SQS_SEND_WINDOW": c.SQSSendWindow, "ORDERFLOW_SQS_RECEIVE_LINGER": c.SQSReceiveLinger} {
		if d > time.Second {
			p.fail(name, "must be at most 1s (it adds to every order's latency), got %s", d)
		}
	}
	if c.ReplicaURL != "" && c.awsMode() {
		p.fail("ORDERFLOW_REPLICA_URL", "replicates the embedded mode's SQLite file; the AWS mode keeps its data in SQS and DynamoDB (use DynamoDB's point-in-time recovery)")
	}
	if strings.HasPrefix(c.ReplicaURL, "s3://") && c.AWSCABundle != "" {
		p.fail("ORDERFLOW_REPLICA_URL", "an s3:// replica cannot be used with AWS_CA_BUNDLE set (the AWS SDK cannot add the bundle to Litestream's S3 client); put the CA in the system's trust store (SSL_CERT_FILE) and unset AWS_CA_BUNDLE")
	}
	if c.CommitWindow > 100*time.Millisecond {
		p.fail("ORDERFLOW_COMMIT_WINDOW", "must be at most 100ms (it adds to every write's latency), got %s", c.CommitWindow)
	}
	if c.ReplicaSyncInterval < 10*time.Millisecond {
		p.fail("ORDERFLOW_REPLICA_SYNC_INTERVAL", "must be at least 10ms, got %s", c.ReplicaSyncInterval)
	}
	if slices.Contains(c.TakeoverRegions, c.AWSRegion) {
		p.fail("ORDERFLOW_TAKEOVER_REGIONS", "lists this region (AWS_REGION %s); it names the other regions, declared down", c.AWSRegion)
	}
	if c.SweepAfter < time.Second || c.TakeoverAfter < time.Second || c.DLQWatchInterval < 100*time.Millisecond {
		p.fail("ORDERFLOW_SWEEP_AFTER", "ORDERFLOW_SWEEP_AFTER and ORDERFLOW_TAKEOVER_AFTER must be at least 1s, ORDERFLOW_DLQ_WATCH_INTERVAL at least 100ms")
	}
}

// builtInSecrets are the secrets of devJWTSecret and devURLKey: public, since
// they are in this file.
var builtInSecrets = [][]byte{
	[]byte(devJWTSecret[strings.IndexByte(devJWTSecret, ':')+1:]),
	[]byte(devURLKey[strings.IndexByte(devURLKey, ':')+1:]),
}

// refuseBuiltInSecrets fails if any key of kr, under any id and in any
// position (a verify-only rotation key too), holds a built-in secret. The
// keyring has trimmed each secret already. The message names the key's
// position, never a part of a secret.
func (p *parser) refuseBuiltInSecrets(name string, kr *auth.Keyring, env string) {
	if kr == nil {
		return // already reported as unparsable
	}
	for _, s := range builtInSecrets {
		if n := kr.Contains(s); n > 0 {
			p.fail(name, "key %d is a built-in development secret, which is public; set your own secrets when ENV=%s (the built-in ones are for local/dev/test only)", n, env)
			return
		}
	}
}

// replicaURL reads a replica URL (file:///dir or s3://bucket/prefix).
func (p *parser) replicaURL(name string) string {
	s := p.str(name)
	if s == "" {
		return ""
	}
	if err := replica.CheckURL(s); err != nil {
		p.fail(name, "%v", err)
	}
	return s
}

// replicaConfig is the replica's configuration of c, logging to log.
func (c config) replicaConfig(log *slog.Logger) replica.Config {
	endpoint := c.S3Endpoint
	if endpoint == "" {
		endpoint = c.AWSEndpoint
	}
	return replica.Config{URL: c.ReplicaURL, S3Endpoint: endpoint, Region: c.AWSRegion, SyncInterval: c.ReplicaSyncInterval, Logger: log}
}

// awsMode reports whether the queue and store are SQS and DynamoDB.
func (c config) awsMode() bool { return c.SQSQueueURL != "" }

// deleteDelay is the processor's DeleteDelay: ORDERFLOW_SQS_DELETE_WINDOW
// in the AWS mode; the processor's default in the embedded mode, whose
// deletes are rows of the SQLite file that its group commit batches anyway.
func (c config) deleteDelay() time.Duration {
	if !c.awsMode() {
		return 0
	}
	return window(c.SQSDeleteWindow)
}

// region is the region this process serves: the AWS mode's AWS_REGION,
// whose tag the api's new order ids carry and whose orders the processor
// works; none in the embedded mode (its orders have none).
func (c config) region() string {
	if c.awsMode() {
		return c.AWSRegion
	}
	return ""
}

type parser struct {
	getenv func(string) string
	errs   []error
}

func (p *parser) fail(name, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: "+format, append([]any{name}, args...)...))
}

func (p *parser) str(name string) string {
	if v := p.getenv(name); v != "" {
		return v
	}
	d := defaultOf(name)
	if strings.HasPrefix(d, "(") {
		return ""
	}
	return d
}

// secret reads NAME, or the file named by NAME_FILE (as Vault Agent and
// Kubernetes render secrets); setting both is an error.
func (p *parser) secret(name string) string {
	v, file := p.getenv(name), p.getenv(name+"_FILE")
	if file == "" {
		return v
	}
	if v != "" {
		p.fail(name, "set either %s or %s_FILE, not both", name, name)
		return ""
	}
	b, err := os.ReadFile(file)
	if err != nil {
		p.fail(name+"_FILE", "%v", err)
		return ""
	}
	return strings.TrimSpace(string(b))
}

func (p *parser) duration(name string) time.Duration {
	s := p.str(name)
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		p.fail(name, "must be a duration such as 30s or 2m, got %q", s)
	}
	return d
}

func (p *parser) positive(name string) int {
	s := p.str(name)
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		p.fail(name, "must be a positive integer, got %q", s)
	}
	return n
}

func (p *parser) nonNegative(name string) int {
	s := p.str(name)
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		p.fail(name, "must be a non-negative integer (0: off), got %q", s)
	}
	return n
}

// nice reads a niceness, 0-19: lower priorities than the server's only,
// which need no privilege.
func (p *parser) nice(name string) int {
	s := p.str(name)
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 19 {
		p.fail(name, "must be a niceness of 0 (the server's priority) to 19 (the lowest), got %q", s)
	}
	return n
}

// prefixes parses a comma-separated list of CIDRs; a bare IP is a prefix of
// that one address.
func (p *parser) prefixes(name string) []netip.Prefix {
	var out []netip.Prefix
	for _, f := range strings.Split(p.str(name), ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if a, err := netip.ParseAddr(f); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		pr, err := netip.ParsePrefix(f)
		if err != nil {
			p.fail(name, "must be CIDRs or IPs separated by commas (10.0.0.0/8,2001:db8::/32), got %q", f)
			continue
		}
		out = append(out, pr.Masked())
	}
	return out
}

func (p *parser) clientIPHeader(name string) httpapi.ForwardedHeader {
	s := p.str(name)
	for _, h := range []httpapi.ForwardedHeader{httpapi.XForwardedFor, httpapi.Forwarded} {
		if strings.EqualFold(s, string(h)) {
			return h
		}
	}
	p.fail(name, "must be X-Forwarded-For or Forwarded, got %q", s)
	return httpapi.XForwardedFor
}

func (p *parser) cents(name string) int {
	s := p.str(name)
	n, err := strconv.Atoi(s)
	if err != nil || n < -1 || n == 0 || n > 99 {
		p.fail(name, "must be 1-99, or -1 to disable, got %q", s)
	}
	return n
}

// clientConfig is the settings of the client commands (login, order),
// which talk to a running api and need none of the server's.
type clientConfig struct {
	URL      string // ORDERFLOW_URL, without a trailing slash
	TokenDir string // $XDG_CONFIG_HOME/orderflow, else ~/.config/orderflow
}

// loadClientConfig parses the client's settings. The token directory
// follows the XDG base directory spec; HOME is its fallback.
func loadClientConfig(getenv func(string) string) (clientConfig, error) {
	p := parser{getenv: getenv}
	c := clientConfig{URL: strings.TrimRight(p.str("ORDERFLOW_URL"), "/")}
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		p.fail("ORDERFLOW_URL", "must be an http(s) URL such as http://localhost:8000, got %q", c.URL)
	}
	switch base := getenv("XDG_CONFIG_HOME"); {
	case filepath.IsAbs(base):
		c.TokenDir = filepath.Join(base, "orderflow")
	case filepath.IsAbs(getenv("HOME")):
		c.TokenDir = filepath.Join(getenv("HOME"), ".config", "orderflow")
	default:
		p.fail("XDG_CONFIG_HOME", "neither it nor HOME is an absolute path: there is nowhere to keep the login token")
	}
	return c, errors.Join(p.errs...)
}
