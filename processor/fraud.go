package processor

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/orderflow/orderflow"
)

// Activity reports a user's recent orders (orderflow.Store implements it).
type Activity interface {
	UserActivity(ctx context.Context, userID string, since time.Time) (count int, total int64, err error)
}

// RulesConfig configures the fraud rules. A zero field takes its default.
type RulesConfig struct {
	// Threshold: an order whose score reaches it is rejected (default 50).
	Threshold int

	// MaxAmount: an order of at least this many minor units scores
	// AmountScore (defaults 500000 and 60).
	MaxAmount   int64
	AmountScore int

	// VelocityLimit: a user who placed more than this many orders in the
	// last VelocityWindow scores VelocityScore (defaults 50, 1m, 40).
	VelocityLimit  int
	VelocityWindow time.Duration
	VelocityScore  int

	// SpendLimit: a user who spent more than this many minor units in the
	// last SpendWindow scores SpendScore (defaults 2000000, 24h, 40).
	SpendLimit  int64
	SpendWindow time.Duration
	SpendScore  int

	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c RulesConfig) withDefaults() RulesConfig {
	if c.Threshold == 0 {
		c.Threshold = DefaultFraudThreshold
	}
	if c.MaxAmount == 0 {
		c.MaxAmount = DefaultFraudMaxAmount
	}
	if c.AmountScore == 0 {
		c.AmountScore = 60
	}
	if c.VelocityLimit == 0 {
		c.VelocityLimit = 50
	}
	if c.VelocityWindow == 0 {
		c.VelocityWindow = time.Minute
	}
	if c.VelocityScore == 0 {
		c.VelocityScore = 40
	}
	if c.SpendLimit == 0 {
		c.SpendLimit = 2_000_000
	}
	if c.SpendWindow == 0 {
		c.SpendWindow = 24 * time.Hour
	}
	if c.SpendScore == 0 {
		c.SpendScore = 40
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Rules is the default Fraud stage: a score made of the order's amount,
// the user's order velocity and the user's spend, compared with a
// threshold. The user's activity includes the order being checked, as it
// was stored before it was queued. Rules is safe for concurrent use.
type Rules struct {
	cfg      RulesConfig
	activity Activity
}

// NewRules returns the fraud rules of cfg reading the user's recent orders
// from activity.
func NewRules(cfg RulesConfig, activity Activity) *Rules {
	return &Rules{cfg: cfg.withDefaults(), activity: activity}
}

// Check scores o and returns a ReasonFraudSuspected failure naming the
// rules that fired when the score reaches the threshold. Errors reading
// the activity are returned as they are (transient).
func (r *Rules) Check(ctx context.Context, o orderflow.Order) (*orderflow.Failure, error) {
	now := r.cfg.Now()
	score := 0
	var fired []string
	if o.Amount >= r.cfg.MaxAmount {
		score += r.cfg.AmountScore
		fired = append(fired, fmt.Sprintf("amount %d ≥ %d (+%d)", o.Amount, r.cfg.MaxAmount, r.cfg.AmountScore))
	}
	// Each window is read only when it can change the verdict or the
	// reported reasons: the spend window (a scan of the user's last 24h of
	// orders) is skipped for an order that passes whatever it holds.
	if score+r.cfg.VelocityScore+r.cfg.SpendScore < r.cfg.Threshold {
		return nil, nil
	}
	count, _, err := r.activity.UserActivity(ctx, o.UserID, now.Add(-r.cfg.VelocityWindow))
	if err != nil {
		return nil, fmt.Errorf("fraud velocity of %s: %w", o.UserID, err)
	}
	if count > r.cfg.VelocityLimit {
		score += r.cfg.VelocityScore
		fired = append(fired, fmt.Sprintf("%d orders in %s > %d (+%d)", count, r.cfg.VelocityWindow, r.cfg.VelocityLimit, r.cfg.VelocityScore))
	}
	if score+r.cfg.SpendScore < r.cfg.Threshold {
		return nil, nil
	}
	_, total, err := r.activity.UserActivity(ctx, o.UserID, now.Add(-r.cfg.SpendWindow))
	if err != nil {
		return nil, fmt.Errorf("fraud spend of %s: %w", o.UserID, err)
	}
	if total > r.cfg.SpendLimit {
		score += r.cfg.SpendScore
		fired = append(fired, fmt.Sprintf("spend %d in %s > %d (+%d)", total, r.cfg.SpendWindow, r.cfg.SpendLimit, r.cfg.SpendScore))
	}
	if score < r.cfg.Threshold {
		return nil, nil
	}
	return &orderflow.Failure{
		Code:   orderflow.ReasonFraudSuspected,
		Detail: fmt.Sprintf("fraud score %d ≥ %d: %s", score, r.cfg.Threshold, strings.Join(fired, "; ")),
	}, nil
}
