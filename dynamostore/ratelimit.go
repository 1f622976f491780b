package dynamostore

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/orderflow/orderflow"
)

const (
	skRate = "RATE"
	// rateAttempts bounds the conditional updates of one take: each
	// failed condition tells the next which case holds, so more than two
	// happen only while other processes take the same key at that moment.
	rateAttempts = 6
	// maxHints bounds the hints a RateLimiter keeps before it sweeps out
	// those that have passed.
	maxHints = 100_000
)

func ratePK(key string) string { return "RATE#" + key }

// RateLimiter is the DynamoDB table as the store of the rate limits
// (orderflow.RateLimiter) shared by every api process: an item per key
// (pk RATE#<key>, sk RATE) holding its GCRA theoretical arrival time, tat,
// in Unix ns, and expires_at, which lets TTL delete an idle key's item (an
// item whose tat has passed is the same as none). Safe for concurrent use.
//
// A take is one conditional UpdateItem in the common case, which DynamoDB
// applies to the item atomically, whichever process sends it:
//
//   - the key is idle (no item, or its tat has passed):
//     SET tat = now+interval IF attribute_not_exists(tat) OR tat <= now;
//   - the key is busy, with room for one more:
//     SET tat = tat+interval IF tat BETWEEN now AND now+window-interval.
//
// Which of the two to send first is a guess from the tat this process saw
// last for the key (a key it has not seen is guessed idle): a wrong guess
// fails its condition, and the failure returns the stored item
// (ReturnValuesOnConditionCheckFailure ALL_OLD), from which the right
// update follows, or the denial, with no read of its own. So an order
// costs one write request, two when another process moved the key since
// this one last saw it, and a denied take costs one (a failed condition is
// billed as a write). The decision is computed by orderflow.Rate from the
// tat DynamoDB returned, never from the guess.
type RateLimiter struct {
	db      *dynamodb.Client
	table   string
	timeout time.Duration

	mu        sync.Mutex
	hints     map[string]int64 // the last tat seen per key
	lastSweep time.Time
}

var _ orderflow.RateLimiter = (*RateLimiter)(nil)

// NewRateLimiter returns the rate limits' store on table, called through
// client (give it a client of its own to count its requests apart: the
// program labels them caller="rate_limiter" in aws_requests_total). Of
// opts only CallTimeout applies.
func NewRateLimiter(client *dynamodb.Client, table string, opts Options) *RateLimiter {
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = defaultTimeout
	}
	return &RateLimiter{db: client, table: table, timeout: opts.CallTimeout, hints: map[string]int64{}}
}

// Take spends one unit of key's allowance under rate at now; see
// orderflow.RateLimiter. EInvalid for an invalid key
// (orderflow.ValidateRateKey); EUnavailable when DynamoDB cannot be
// reached.
func (l *RateLimiter) Take(ctx context.Context, key string, rate orderflow.Rate, now time.Time) (orderflow.RateDecision, error) {
	if err := orderflow.ValidateRateKey(key); err != nil {
		return orderflow.RateDecision{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	t := now.UnixNano()
	idle := l.hint(key) <= t
	for range rateAttempts {
		next, old, found, err := l.update(ctx, key, rate, t, idle)
		switch {
		case err != nil:
			return orderflow.RateDecision{}, mapErr(err, "take rate limit %s", key)
		case next != 0:
			l.remember(key, next, now)
			return rate.Allowed(next, t), nil
		case !found || old <= t:
			idle = true
		case old <= rate.Ceiling(t):
			idle = false
		default:
			l.remember(key, old, now)
			return rate.Denied(old, t), nil
		}
	}
	return orderflow.RateDecision{}, orderflow.Errorf(orderflow.EUnavailable, "rate limit %s: too many concurrent takes", key)
}

// update sends one of the two conditional updates of Take (the idle one
// if idle) and returns the new tat, or 0 when the condition failed, with
// the stored tat if there is an item.
func (l *RateLimiter) update(ctx context.Context, k string, rate orderflow.Rate, now int64, idle bool) (next, old int64, found bool, err error) {
	n := func(v int64) types.AttributeValue {
		return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
	}
	in := &dynamodb.UpdateItemInput{
		TableName:                           &l.table,
		Key:                                 key(ratePK(k), skRate),
		ReturnValues:                        types.ReturnValueUpdatedNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":now": n(now),
			// The new tat is at most now+window: gone by then.
			":exp": n((now+int64(rate.Window))/int64(time.Second) + 1),
		},
	}
	if idle {
		in.UpdateExpression = aws.String("SET tat = :next, expires_at = :exp")
		in.ConditionExpression = aws.String("attribute_not_exists(tat) OR tat <= :now")
		in.ExpressionAttributeValues[":next"] = n(now + rate.Interval())
	} else {
		in.UpdateExpression = aws.String("SET tat = tat + :interval, expires_at = :exp")
		in.ConditionExpression = aws.String("tat BETWEEN :now AND :ceiling")
		in.ExpressionAttributeValues[":interval"] = n(rate.Interval())
		in.ExpressionAttributeValues[":ceiling"] = n(rate.Ceiling(now))
	}
	out, err := l.db.UpdateItem(ctx, in)
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		old, found, err = tatOf(ccf.Item)
		return 0, old, found, err
	}
	if err != nil {
		return 0, 0, false, err
	}
	next, found, err = tatOf(out.Attributes)
	if err == nil && !found {
		err = errors.New("UpdateItem returned no tat")
	}
	return next, 0, found, err
}

// tatOf reads the tat attribute of an item; found is false without one.
func tatOf(item map[string]types.AttributeValue) (tat int64, found bool, err error) {
	v, ok := item["tat"].(*types.AttributeValueMemberN)
	if !ok {
		return 0, false, nil
	}
	tat, err = strconv.ParseInt(v.Value, 10, 64)
	return tat, err == nil, err
}

// hint returns the tat this process saw last for key (0 if none).
func (l *RateLimiter) hint(key string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hints[key]
}

// remember records tat as the last seen for key; when the hints are many,
// those that have passed are swept out first (at most once a minute).
func (l *RateLimiter) remember(key string, tat int64, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.hints) >= maxHints && now.Sub(l.lastSweep) > time.Minute {
		for k, v := range l.hints {
			if v <= now.UnixNano() {
				delete(l.hints, k)
			}
		}
		l.lastSweep = now
	}
	l.hints[key] = tat
}
