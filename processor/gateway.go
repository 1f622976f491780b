package processor

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/orderflow/orderflow"
)

// Ledger is the simulated gateway's own database of charges and charge
// attempts, which survives restarts of the processor as a real gateway's
// would. RecordCharge stores c under c.IdempotencyKey unless a charge with
// that key exists, in which case it returns the stored charge and
// duplicate=true. LookupCharge returns the charge stored under key, if any.
// CountAttempt adds one to the attempts counted for key, atomically, and
// returns the new count (1 on the first). RecordRefund stores a refund of
// the charge under r.IdempotencyKey unless one exists (then it returns the
// first), atomically with respect to RecordCharge: a key refunded before
// any charge is voided, and RecordCharge of it fails with EConflict.
type Ledger interface {
	RecordCharge(ctx context.Context, c orderflow.Charge) (stored orderflow.Charge, duplicate bool, err error)
	LookupCharge(ctx context.Context, key string) (orderflow.Charge, bool, error)
	CountAttempt(ctx context.Context, key string) (int, error)
	RecordRefund(ctx context.Context, r orderflow.Refund) (orderflow.Refund, error)
}

// GatewayConfig configures a SimulatedGateway. Rules look at the last two
// digits of the amount in minor units (1002 ends in 02). A zero field takes
// its default; set a cents field to -1 to disable its rule.
type GatewayConfig struct {
	// Latency of every call (default 2ms; negative for none).
	Latency time.Duration
	// DeclineCents: such amounts are declined with "card_declined"
	// (default 2).
	DeclineCents int
	// TransientCents: such amounts fail transiently on the first
	// TransientAttempts attempts of an idempotency key, then succeed
	// (default 3).
	TransientCents int
	// TransientAttempts is how many attempts TransientCents fails
	// (default 2).
	TransientAttempts int
	// AlwaysFailCents: such amounts always fail transiently (default 4).
	AlwaysFailCents int
	// TransientRate is the share (0..1) of attempts that fail transiently,
	// chosen by a hash of the idempotency key and the attempt number, so
	// runs repeat exactly (default 0).
	TransientRate float64
}

func (c GatewayConfig) withDefaults() GatewayConfig {
	if c.Latency == 0 {
		c.Latency = DefaultPaymentLatency
	}
	if c.DeclineCents == 0 {
		c.DeclineCents = DefaultPaymentDeclineCents
	}
	if c.TransientCents == 0 {
		c.TransientCents = DefaultPaymentTransientCents
	}
	if c.TransientAttempts == 0 {
		c.TransientAttempts = 2
	}
	if c.AlwaysFailCents == 0 {
		c.AlwaysFailCents = DefaultPaymentAlwaysFailCents
	}
	return c
}

// SimulatedGateway is a payment gateway that behaves like a real one,
// deterministically: it takes time, declines some amounts, fails
// transiently on others, and never charges an idempotency key twice. The
// Ledger keeps the charges and the attempt counts, so a restart of the
// processor changes no outcome: an amount that fails twice then succeeds
// does so however many restarts fall between its attempts. It is safe for
// concurrent use.
type SimulatedGateway struct {
	cfg    GatewayConfig
	ledger Ledger
	now    func() time.Time
}

// ErrTransient is the error of a simulated transient gateway failure.
var ErrTransient = errors.New("payment gateway unavailable (simulated)")

// NewSimulatedGateway returns a gateway with the given rules that records
// charges in ledger and stamps them with now.
func NewSimulatedGateway(cfg GatewayConfig, ledger Ledger, now func() time.Time) *SimulatedGateway {
	if now == nil {
		now = time.Now
	}
	return &SimulatedGateway{cfg: cfg.withDefaults(), ledger: ledger, now: now}
}

// Charge takes the payment of req, or returns the charge already taken
// with req.IdempotencyKey. It returns a *Declined for a business decline
// and other errors for transient failures; it returns ctx's error if ctx
// ends during the simulated latency.
func (g *SimulatedGateway) Charge(ctx context.Context, req ChargeRequest) (orderflow.Charge, error) {
	if req.IdempotencyKey == "" {
		return orderflow.Charge{}, errors.New("charge: idempotency key is required")
	}
	if req.Amount <= 0 {
		return orderflow.Charge{}, &Declined{Code: "invalid_amount", Detail: fmt.Sprintf("amount %d must be positive", req.Amount)}
	}
	if err := sleep(ctx, g.cfg.Latency); err != nil {
		return orderflow.Charge{}, err
	}
	failure, err := g.simulate(ctx, req)
	if err != nil {
		return orderflow.Charge{}, err
	}
	if failure != nil {
		// A key that was charged before gets its first charge back, whatever
		// the simulated failure rules say now, as a real gateway's does.
		// Only a failing attempt needs to look: on success RecordCharge
		// returns the first charge itself, which saves a read per charge.
		if first, ok, err := g.ledger.LookupCharge(ctx, req.IdempotencyKey); err != nil {
			return orderflow.Charge{}, fmt.Errorf("look up charge %s: %w", req.IdempotencyKey, err)
		} else if ok {
			return g.replay(first, req)
		}
		return orderflow.Charge{}, failure
	}
	c, _, err := g.ledger.RecordCharge(ctx, orderflow.Charge{
		ID:             newChargeID(),
		IdempotencyKey: req.IdempotencyKey,
		OrderID:        req.OrderID,
		Amount:         req.Amount,
		Currency:       req.Currency,
		At:             g.now().UTC(),
	})
	if orderflow.ErrorCode(err) == orderflow.EConflict {
		return orderflow.Charge{}, &Declined{Code: "refunded", Detail: "the payment was voided: the order is cancelled"}
	}
	if err != nil {
		return orderflow.Charge{}, fmt.Errorf("record charge %s: %w", req.IdempotencyKey, err)
	}
	return g.replay(c, req)
}

// Refund gives back the charge under idempotencyKey once, or voids the key
// when nothing was charged (see Payment). It takes the configured latency.
func (g *SimulatedGateway) Refund(ctx context.Context, idempotencyKey string, id orderflow.OrderID) (orderflow.Refund, error) {
	if idempotencyKey == "" {
		return orderflow.Refund{}, errors.New("refund: idempotency key is required")
	}
	if err := sleep(ctx, g.cfg.Latency); err != nil {
		return orderflow.Refund{}, err
	}
	r, err := g.ledger.RecordRefund(ctx, orderflow.Refund{ID: newID("re_"), IdempotencyKey: idempotencyKey, OrderID: id, At: g.now().UTC()})
	if err != nil {
		return orderflow.Refund{}, fmt.Errorf("record refund %s: %w", idempotencyKey, err)
	}
	return r, nil
}

// Charged reports whether a charge is stored under idempotencyKey. It takes
// the configured latency, as a real gateway's look-up would.
func (g *SimulatedGateway) Charged(ctx context.Context, idempotencyKey string) (bool, error) {
	if err := sleep(ctx, g.cfg.Latency); err != nil {
		return false, err
	}
	_, ok, err := g.ledger.LookupCharge(ctx, idempotencyKey)
	if err != nil {
		return false, fmt.Errorf("look up charge %s: %w", idempotencyKey, err)
	}
	return ok, nil
}

// simulate applies the failure rules to this attempt of req: failure is a
// *Declined, a transient error, or nil for success; err is the ledger's
// failure to count the attempt.
func (g *SimulatedGateway) simulate(ctx context.Context, req ChargeRequest) (failure, err error) {
	cents := int(req.Amount % 100)
	if cents == g.cfg.DeclineCents {
		return &Declined{Code: "card_declined", Detail: "the card was declined (simulated)"}, nil
	}
	if cents == g.cfg.AlwaysFailCents {
		return fmt.Errorf("charge %s: %w", req.IdempotencyKey, ErrTransient), nil
	}
	transientByAmount := cents == g.cfg.TransientCents
	if !transientByAmount && g.cfg.TransientRate <= 0 {
		return nil, nil // no rule looks at the attempt: no count to keep
	}
	attempt, err := g.ledger.CountAttempt(ctx, req.IdempotencyKey)
	if err != nil {
		return nil, fmt.Errorf("count attempt of charge %s: %w", req.IdempotencyKey, err)
	}
	if transientByAmount && attempt <= g.cfg.TransientAttempts {
		return fmt.Errorf("charge %s attempt %d: %w", req.IdempotencyKey, attempt, ErrTransient), nil
	}
	if g.cfg.TransientRate > 0 && unitHash(req.IdempotencyKey, attempt) < g.cfg.TransientRate {
		return fmt.Errorf("charge %s attempt %d: %w", req.IdempotencyKey, attempt, ErrTransient), nil
	}
	return nil, nil
}

// replay returns the stored charge c for req, refusing (as a real gateway
// does) a key reused with other parameters.
func (g *SimulatedGateway) replay(c orderflow.Charge, req ChargeRequest) (orderflow.Charge, error) {
	if c.Amount != req.Amount || c.Currency != req.Currency {
		return orderflow.Charge{}, fmt.Errorf("charge %s: idempotency key already used for %d %s", req.IdempotencyKey, c.Amount, c.Currency)
	}
	return c, nil
}

// unitHash maps (key, attempt) to [0, 1) deterministically.
func unitHash(key string, attempt int) float64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(attempt))
	h.Write(b[:])
	return float64(h.Sum64()>>11) / (1 << 53)
}

func newChargeID() string { return newID("ch_") }

func newID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return prefix + hex.EncodeToString(b[:])
}

// sleep waits for d or until ctx ends, and then returns ctx's error.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
