package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/orderflow/orderflow"
)

// DefaultStaleIntent is Options.StaleIntent's default.
const DefaultStaleIntent = 30 * time.Second

// defaultTimeout is Options.CallTimeout's default.
const defaultTimeout = 5 * time.Second

// Options configures a Store.
type Options struct {
	// CallTimeout bounds every DynamoDB call. Default 5s.
	CallTimeout time.Duration
	// IdempotencyTTL is how long idempotency records are kept (their
	// expires_at); at least and by default orderflow.MinIdempotencyTTL.
	IdempotencyTTL time.Duration
	// StaleIntent is how long a request with an Idempotency-Key may take
	// between BeginOrder and FinishOrder before a retry with the same key
	// takes over (see BeginOrder). Default 30s.
	StaleIntent time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// WriteFailureWindow is how long a failed write makes Ping fail,
	// unless a later write succeeds. Default 5s.
	WriteFailureWindow time.Duration
	// Region is the region this store writes from (AWS_REGION): a new
	// order gets it as its home region (orderflow.Order.Region), and the
	// store changes only the orders of its region (and those with none,
	// stored before regions were recorded). An order of another region is
	// refused with EConflict: on a global table, two regions writing one
	// item would be resolved by last writer wins. Empty: no region.
	Region string
	// TakeOver lists regions declared down whose PENDING orders this
	// store's SweepPending takes over: a conditional write makes each this
	// region's (only while it is still PENDING and still the other
	// region's), so that this region's processor works it. See
	// docs/multi-region.md.
	TakeOver []string
	// WatchInterval and WatchMaxInterval pace Watch's reads of the
	// watched orders (see Watch); defaults 1 s and 5 s.
	WatchInterval, WatchMaxInterval time.Duration
}

// Store is an orderflow.Store on one DynamoDB table. It is safe for
// concurrent use.
type Store struct {
	db     *dynamodb.Client
	table  string
	opts   Options
	writes *writeOutcomes
	watch  *orderflow.WatchHub
}

var _ orderflow.Store = (*Store)(nil)

// New returns a Store on table. It makes its calls through a copy of
// client that also records the outcome of each write (see Ping).
func New(client *dynamodb.Client, table string, opts Options) *Store {
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = defaultTimeout
	}
	if opts.IdempotencyTTL < orderflow.MinIdempotencyTTL {
		opts.IdempotencyTTL = orderflow.MinIdempotencyTTL
	}
	if opts.StaleIntent <= 0 {
		opts.StaleIntent = DefaultStaleIntent
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.WriteFailureWindow <= 0 {
		opts.WriteFailureWindow = defaultWriteFailureWindow
	}
	w := &writeOutcomes{}
	co := client.Options()
	co.APIOptions = append(slices.Clip(co.APIOptions), w.add)
	s := &Store{db: dynamodb.New(co), table: table, opts: opts, writes: w}
	s.watch = orderflow.NewWatchHub(orderflow.WatchOptions{
		Versions: s.watchVersions, Interval: opts.WatchInterval, MaxInterval: opts.WatchMaxInterval,
	})
	return s
}

// Table returns the table's name.
func (s *Store) Table() string { return s.table }

func (s *Store) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opts.CallTimeout)
}

// Ping reads one item of the table (a data-plane call, unlike
// DescribeTable, whose rate is limited), and fails while the last write
// failed less than Options.WriteFailureWindow ago: a table that can be
// read can still refuse writes, and Ping writes nothing itself, since
// readiness probes would pay a write request each.
//
// The window is judged when Ping is asked, before its read: a read that
// takes longer than the window (a slow or throttled table) must not let a
// failure the probe was asked about expire meanwhile.
func (s *Store) Ping(ctx context.Context) error {
	ago, werr := s.writes.failed(s.opts.WriteFailureWindow)
	ctx, cancel := s.callCtx(ctx)
	defer cancel()
	_, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key("PING", "PING")})
	if err != nil {
		return mapErr(err, "reach table %s", s.table)
	}
	if werr != nil {
		return mapErr(werr, "the last write to table %s failed %s ago", s.table, ago.Round(time.Millisecond))
	}
	return nil
}

// key returns the primary key of an item.
func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: pk},
		"sk": &types.AttributeValueMemberS{Value: sk},
	}
}

// Key prefixes and sort keys.
const (
	skOrder       = "ORDER"
	skReservation = "RESERVATION"
	skIdem        = "IDEM"
	skStock       = "STOCK"
	skCharge      = "CHARGE"
	skAttempts    = "ATTEMPTS"
)

func orderPK(id orderflow.OrderID) string      { return "ORDER#" + string(id) }
func userPK(user string) string                { return "USER#" + user }
func idemPK(k orderflow.IdempotencyKey) string { return "IDEM#" + k.UserID + "#" + k.Key }
func skuPK(sku string) string                  { return "SKU#" + sku }
func chargePK(key string) string               { return "CHARGE#" + key }
func chargesPK(id orderflow.OrderID) string    { return "CHARGES#" + string(id) }

// Index names.
const (
	indexByUser    = "by_user"
	indexByPending = "by_pending"
)

// mapErr turns an SDK error into an *orderflow.Error: EInternal for a
// request DynamoDB refuses as malformed (a bug), EUnavailable for the rest:
// the network, timeouts, throttling, DynamoDB's own faults and a missing
// table (which an operator fixes).
func mapErr(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	detail := fmt.Sprintf(format, args...)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return orderflow.Unavailable(err, "dynamodb: %s: timed out or canceled", detail)
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code := ae.ErrorCode()
		switch {
		case code == "ResourceNotFoundException":
			return orderflow.Unavailable(err, "dynamodb: %s: the table does not exist (run orderflow init?)", detail)
		case code == "ValidationException" || code == "SerializationException":
			return &orderflow.Error{Code: orderflow.EInternal, Detail: "dynamodb: " + detail + ": request refused", Err: err}
		}
	}
	return orderflow.Unavailable(err, "dynamodb: %s", detail)
}

// isConditionFailed reports whether err is a failed ConditionExpression.
func isConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// cancellation returns the reasons of a cancelled transaction (codes such
// as "ConditionalCheckFailed", "TransactionConflict", "None"), or nil if
// err is not one.
func cancellation(err error) ([]string, bool) {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return nil, false
	}
	codes := make([]string, len(tce.CancellationReasons))
	for i, r := range tce.CancellationReasons {
		codes[i] = aws.ToString(r.Code)
	}
	if len(codes) == 0 {
		// Some servers put the reasons only in the message:
		// "Transaction cancelled, please refer cancellation reasons for
		// specific reasons [None, ConditionalCheckFailed]".
		msg := tce.ErrorMessage()
		if i := strings.LastIndex(msg, "["); i >= 0 && strings.HasSuffix(msg, "]") {
			for _, c := range strings.Split(msg[i+1:len(msg)-1], ",") {
				codes = append(codes, strings.TrimSpace(c))
			}
		}
	}
	return codes, true
}

// ms is t in Unix milliseconds, as items keep times.
func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }
