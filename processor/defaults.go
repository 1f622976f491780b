package processor

import "time"

// Defaults of the settings an operator tunes (the program's settings
// table refers to these); a zero Config, GatewayConfig or RulesConfig
// field takes them.
const (
	DefaultConcurrency  = 64
	DefaultBatchSize    = 10 // the SQS limit
	DefaultDrainTimeout = 25 * time.Second
	// DefaultDeadLetterInterval is how often WatchDeadLetters looks at
	// the dead-letter queue at the least.
	DefaultDeadLetterInterval = 10 * time.Second

	DefaultPaymentLatency         = 2 * time.Millisecond
	DefaultPaymentDeclineCents    = 2
	DefaultPaymentTransientCents  = 3
	DefaultPaymentAlwaysFailCents = 4

	DefaultFraudThreshold = 50
	DefaultFraudMaxAmount = 500_000
)
