package dynamostore

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/orderflow/orderflow"
)

// pendingShards spreads the sparse by_pending index over this many
// partition keys, so that it has no hot partition.
const pendingShards = 8

// orderItem is an order as stored.
type orderItem struct {
	PK            string     `dynamodbav:"pk"`
	SK            string     `dynamodbav:"sk"`
	GSI1PK        string     `dynamodbav:"gsi1pk"`
	GSI1SK        string     `dynamodbav:"gsi1sk"`
	PendingPK     string     `dynamodbav:"pending_pk,omitempty"`
	PendingSK     string     `dynamodbav:"pending_sk,omitempty"`
	ID            string     `dynamodbav:"order_id"`
	UserID        string     `dynamodbav:"user_id"`
	Amount        int64      `dynamodbav:"amount"`
	Currency      string     `dynamodbav:"currency"`
	Items         []lineItem `dynamodbav:"items,omitempty"`
	Status        string     `dynamodbav:"status"`
	FailureCode   string     `dynamodbav:"failure_code,omitempty"`
	FailureDetail string     `dynamodbav:"failure_detail,omitempty"`
	RequestID     string     `dynamodbav:"request_id,omitempty"`
	TraceParent   string     `dynamodbav:"traceparent,omitempty"`
	CreatedAt     int64      `dynamodbav:"created_at"`
	UpdatedAt     int64      `dynamodbav:"updated_at"`
	// The cancellation (orderflow.Cancellation), absent until requested.
	CancelBy string `dynamodbav:"cancel_requested_by,omitempty"`
	CancelAt int64  `dynamodbav:"cancel_requested_at,omitempty"`
	RefundID string `dynamodbav:"refund_id,omitempty"`
	// Region is the order's home region (orderflow.Order.Region).
	Region string `dynamodbav:"region,omitempty"`
}

type lineItem struct {
	SKU      string `dynamodbav:"sku"`
	Quantity int    `dynamodbav:"quantity"`
}

func toItem(o orderflow.Order) orderItem {
	it := orderItem{
		PK: orderPK(o.ID), SK: skOrder, GSI1PK: userPK(o.UserID), GSI1SK: string(o.ID),
		ID: string(o.ID), UserID: o.UserID, Amount: o.Amount, Currency: o.Currency, Status: string(o.Status),
		RequestID: o.RequestID, TraceParent: o.TraceParent, CreatedAt: ms(o.CreatedAt), UpdatedAt: ms(o.UpdatedAt),
		Region: o.Region,
	}
	for _, l := range o.Items {
		it.Items = append(it.Items, lineItem(l))
	}
	if o.Failure != nil {
		it.FailureCode, it.FailureDetail = o.Failure.Code, o.Failure.Detail
	}
	if c := o.Cancellation; c != nil {
		it.CancelBy, it.CancelAt, it.RefundID = c.RequestedBy, ms(c.RequestedAt), c.RefundID
	}
	if o.Status == orderflow.StatusPending {
		it.PendingPK, it.PendingSK = pendingPK(o.ID), string(o.ID)
	}
	return it
}

func (it orderItem) order() orderflow.Order {
	o := orderflow.Order{
		ID: orderflow.OrderID(it.ID), UserID: it.UserID, Amount: it.Amount, Currency: it.Currency,
		Status: orderflow.Status(it.Status), RequestID: it.RequestID, TraceParent: it.TraceParent,
		CreatedAt: fromMS(it.CreatedAt), UpdatedAt: fromMS(it.UpdatedAt), Region: it.Region,
	}
	for _, l := range it.Items {
		o.Items = append(o.Items, orderflow.Item(l))
	}
	if it.FailureCode != "" {
		o.Failure = &orderflow.Failure{Code: it.FailureCode, Detail: it.FailureDetail}
	}
	if it.CancelAt != 0 {
		o.Cancellation = &orderflow.Cancellation{RequestedBy: it.CancelBy, RequestedAt: fromMS(it.CancelAt), RefundID: it.RefundID}
	}
	return o
}

func decodeOrder(av map[string]types.AttributeValue) (orderflow.Order, error) {
	var it orderItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return orderflow.Order{}, &orderflow.Error{Code: orderflow.EInternal, Detail: "stored order is corrupt", Err: err}
	}
	return it.order(), nil
}

// pendingPK is the by_pending shard of order id.
func pendingPK(id orderflow.OrderID) string {
	h := fnv.New32a()
	h.Write([]byte(id))
	return "PENDING#" + strconv.Itoa(int(h.Sum32()%pendingShards))
}

// idemItem is an Idempotency-Key record. State is "pending" from
// BeginOrder until FinishOrder, "done" after.
type idemItem struct {
	PK          string `dynamodbav:"pk"`
	SK          string `dynamodbav:"sk"`
	RequestHash string `dynamodbav:"request_hash"`
	OrderID     string `dynamodbav:"order_id"`
	State       string `dynamodbav:"state"`
	StartedAt   int64  `dynamodbav:"started_at"`
	ExpiresAt   int64  `dynamodbav:"expires_at"` // TTL, epoch seconds
}

const (
	statePending = "pending"
	stateDone    = "done"
)

// checkNew validates an order about to be created and fills its times.
func (s *Store) checkNew(o orderflow.Order) (orderflow.Order, error) {
	if !o.ID.Valid() || o.Status != orderflow.StatusPending {
		return o, orderflow.Errorf(orderflow.EInvalid, "order %q: a new order needs a valid id and status PENDING, got %q", o.ID, o.Status)
	}
	if o.CreatedAt.IsZero() {
		o.CreatedAt = s.opts.Now()
	}
	if o.UpdatedAt.IsZero() {
		o.UpdatedAt = o.CreatedAt
	}
	if o.Region == "" {
		o.Region = s.opts.Region
	}
	return normalize(o), nil
}

// normalize makes an order look like one read back: UTC milliseconds, nil
// for no items.
func normalize(o orderflow.Order) orderflow.Order {
	o.CreatedAt, o.UpdatedAt = fromMS(ms(o.CreatedAt)), fromMS(ms(o.UpdatedAt))
	if len(o.Items) == 0 {
		o.Items = nil
	}
	return o
}

// Begun is the outcome of BeginOrder.
type Begun struct {
	// Order is the order as stored: o itself when Created, else the
	// order the key was first used for.
	Order orderflow.Order
	// Created: o was written now.
	Created bool
	// Resumed: an earlier request with the key wrote Order but never
	// finished (its process died, or its message send failed); this
	// caller has taken its place and must send the order's message.
	Resumed bool
	// token identifies this caller's claim on the key's record.
	token int64
}

// NeedsMessage reports whether the caller must send the order's message:
// for a new or resumed order, not for a replay.
func (b Begun) NeedsMessage() bool { return b.Created || b.Resumed }

// BeginOrder is the first half of the AWS write path (the api's Accept):
// it writes o (PENDING) and, with a key, the key's record in state
// "pending", in one transaction. The caller then sends the order's message
// and calls FinishOrder. If the key was used before:
//
//   - with another request hash: EMismatch;
//   - finished ("done"): a replay; Begun.Order is the original order;
//   - pending for less than Options.StaleIntent: EConflict (the first
//     request is still in flight);
//   - pending for longer: the first request died between its write and
//     its send; this call takes the record over (a conditional write, so
//     only one retry wins) and returns Resumed with the original order.
func (s *Store) BeginOrder(ctx context.Context, o orderflow.Order, k orderflow.IdempotencyKey) (Begun, error) {
	o, err := s.checkNew(o)
	if err != nil {
		return Begun{}, err
	}
	item, err := attributevalue.MarshalMap(toItem(o))
	if err != nil {
		return Begun{}, orderflow.Errorf(orderflow.EInvalid, "order %s cannot be encoded: %v", o.ID, err)
	}
	notExists := expression.AttributeNotExists(expression.Name("pk"))
	cond, _ := expression.NewBuilder().WithCondition(notExists).Build()
	if k.Key == "" {
		cctx, cancel := s.callCtx(ctx)
		defer cancel()
		_, err := s.db.PutItem(cctx, &dynamodb.PutItemInput{
			TableName: &s.table, Item: item,
			ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names(),
		})
		if isConditionFailed(err) {
			return Begun{}, orderflow.Errorf(orderflow.EConflict, "order %s already exists", o.ID)
		}
		if err != nil {
			return Begun{}, mapErr(err, "put order %s", o.ID)
		}
		return Begun{Order: o, Created: true}, nil
	}

	now := s.opts.Now()
	rec := idemItem{
		PK: idemPK(k), SK: skIdem, RequestHash: k.RequestHash, OrderID: string(o.ID), State: statePending,
		StartedAt: ms(now), ExpiresAt: now.Add(s.opts.IdempotencyTTL).Unix(),
	}
	recAV, err := attributevalue.MarshalMap(rec)
	if err != nil {
		return Begun{}, orderflow.Errorf(orderflow.EInvalid, "idempotency key cannot be encoded: %v", err)
	}
	cctx, cancel := s.callCtx(ctx)
	_, err = s.db.TransactWriteItems(cctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: &s.table, Item: recAV, ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names()}},
		{Put: &types.Put{TableName: &s.table, Item: item, ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names()}},
	}})
	cancel()
	if err == nil {
		return Begun{Order: o, Created: true, token: rec.StartedAt}, nil
	}
	reasons, cancelled := cancellation(err)
	if !cancelled {
		return Begun{}, mapErr(err, "put order %s with idempotency key", o.ID)
	}
	if len(reasons) == 2 && reasons[0] != "ConditionalCheckFailed" && reasons[1] == "ConditionalCheckFailed" {
		return Begun{}, orderflow.Errorf(orderflow.EConflict, "order %s already exists", o.ID)
	}
	return s.existingKey(ctx, k, now)
}

// existingKey decides what a request with a key used before gets.
func (s *Store) existingKey(ctx context.Context, k orderflow.IdempotencyKey, now time.Time) (Begun, error) {
	cctx, cancel := s.callCtx(ctx)
	out, err := s.db.GetItem(cctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(idemPK(k), skIdem), ConsistentRead: aws.Bool(true)})
	cancel()
	if err != nil {
		return Begun{}, mapErr(err, "read idempotency key")
	}
	if out.Item == nil {
		// The record vanished (TTL) between the two calls: a conflict the
		// client resolves by retrying.
		return Begun{}, orderflow.Errorf(orderflow.EConflict, "idempotency key %q changed concurrently; retry", k.Key)
	}
	var rec idemItem
	if err := attributevalue.UnmarshalMap(out.Item, &rec); err != nil {
		return Begun{}, &orderflow.Error{Code: orderflow.EInternal, Detail: "stored idempotency key is corrupt", Err: err}
	}
	if rec.RequestHash != k.RequestHash {
		return Begun{}, orderflow.Errorf(orderflow.EMismatch, "idempotency key %q was used with a different request", k.Key)
	}
	inFlight := orderflow.Errorf(orderflow.EConflict, "the first request with idempotency key %q has not finished", k.Key)
	var b Begun
	switch {
	case rec.State == stateDone:
	case now.Sub(fromMS(rec.StartedAt)) < s.opts.StaleIntent:
		return Begun{}, inFlight
	default:
		// Take over the stale record: only if nobody else did since we read it.
		token := ms(now)
		if token == rec.StartedAt {
			token++
		}
		upd := expression.Set(expression.Name("started_at"), expression.Value(token))
		cond := expression.Name("started_at").Equal(expression.Value(rec.StartedAt)).
			And(expression.Name("state").Equal(expression.Value(statePending)))
		expr, _ := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
		cctx, cancel := s.callCtx(ctx)
		_, err := s.db.UpdateItem(cctx, &dynamodb.UpdateItemInput{
			TableName: &s.table, Key: key(idemPK(k), skIdem),
			UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
			ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		})
		cancel()
		if isConditionFailed(err) {
			return Begun{}, inFlight
		}
		if err != nil {
			return Begun{}, mapErr(err, "take over idempotency key")
		}
		b.Resumed, b.token = true, token
	}
	o, err := s.GetOrder(ctx, orderflow.OrderID(rec.OrderID))
	if orderflow.ErrorCode(err) == orderflow.ENotFound {
		return Begun{}, inFlight
	}
	if err != nil {
		return Begun{}, err
	}
	b.Order = o
	return b, nil
}

// FinishOrder marks the key of a BeginOrder done, after the order's message
// was sent: later requests with the key are replays. It does nothing
// without a key, for a replay, or if another request took the key over
// meanwhile (that one finishes it).
func (s *Store) FinishOrder(ctx context.Context, k orderflow.IdempotencyKey, b Begun) error {
	return s.settle(ctx, k, b, expression.Set(expression.Name("state"), expression.Value(stateDone)))
}

// AbandonOrder makes the key of a BeginOrder whose message could not be
// sent stale at once, so that the client's retry takes it over without
// waiting for Options.StaleIntent.
func (s *Store) AbandonOrder(ctx context.Context, k orderflow.IdempotencyKey, b Begun) error {
	return s.settle(ctx, k, b, expression.Set(expression.Name("started_at"), expression.Value(int64(0))))
}

func (s *Store) settle(ctx context.Context, k orderflow.IdempotencyKey, b Begun, upd expression.UpdateBuilder) error {
	if k.Key == "" || !b.NeedsMessage() {
		return nil
	}
	cond := expression.Name("started_at").Equal(expression.Value(b.token)).
		And(expression.Name("state").Equal(expression.Value(statePending)))
	expr, _ := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	ctx, cancel := s.callCtx(ctx)
	defer cancel()
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.table, Key: key(idemPK(k), skIdem),
		UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	if isConditionFailed(err) {
		return nil
	}
	return mapErr(err, "update idempotency key")
}

// GetOrder returns the order with id (a strongly consistent read), or
// ENotFound.
func (s *Store) GetOrder(ctx context.Context, id orderflow.OrderID) (orderflow.Order, error) {
	ctx, cancel := s.callCtx(ctx)
	defer cancel()
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(orderPK(id), skOrder), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return orderflow.Order{}, mapErr(err, "get order %s", id)
	}
	if out.Item == nil {
		return orderflow.Order{}, orderflow.Errorf(orderflow.ENotFound, "order not found")
	}
	return decodeOrder(out.Item)
}

// ListOrders returns up to limit (see orderflow.Store) orders of
// userID, newest first, after cursor, from the by_user index (eventually
// consistent: an order created a moment ago may be missing).
func (s *Store) ListOrders(ctx context.Context, userID string, cursor orderflow.OrderID, limit int) ([]orderflow.Order, error) {
	if limit <= 0 {
		limit = orderflow.DefaultListLimit
	}
	limit = min(limit, orderflow.MaxListLimit)
	kc := expression.Key("gsi1pk").Equal(expression.Value(userPK(userID)))
	if cursor != "" {
		kc = kc.And(expression.Key("gsi1sk").LessThan(expression.Value(string(cursor))))
	}
	expr, _ := expression.NewBuilder().WithKeyCondition(kc).Build()
	in := &dynamodb.QueryInput{
		TableName: &s.table, IndexName: aws.String(indexByUser),
		KeyConditionExpression: expr.KeyCondition(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		ScanIndexForward: aws.Bool(false),
	}
	var out []orderflow.Order
	for len(out) < limit {
		in.Limit = aws.Int32(int32(limit - len(out)))
		cctx, cancel := s.callCtx(ctx)
		page, err := s.db.Query(cctx, in)
		cancel()
		if err != nil {
			return nil, mapErr(err, "list orders")
		}
		for _, av := range page.Items {
			o, err := decodeOrder(av)
			if err != nil {
				return nil, err
			}
			out = append(out, o)
		}
		if page.LastEvaluatedKey == nil {
			break
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
	return out, nil
}

// idPrefix is the start of the ids of orders created at t: NewOrderID puts
// the creation time in milliseconds in the first 12 hex digits.
func idPrefix(t time.Time) string { return fmt.Sprintf("%012x", uint64(t.UnixMilli())&(1<<48-1)) }

// UserActivity counts the orders userID created at or after since and adds
// up their amounts, from the by_user index: ids sort by creation time, so
// the key condition gsi1sk >= the id prefix of since selects them.
func (s *Store) UserActivity(ctx context.Context, userID string, since time.Time) (int, int64, error) {
	kc := expression.Key("gsi1pk").Equal(expression.Value(userPK(userID))).
		And(expression.Key("gsi1sk").GreaterThanEqual(expression.Value(idPrefix(since))))
	proj := expression.NamesList(expression.Name("amount"), expression.Name("created_at"))
	expr, _ := expression.NewBuilder().WithKeyCondition(kc).WithProjection(proj).Build()
	in := &dynamodb.QueryInput{
		TableName: &s.table, IndexName: aws.String(indexByUser),
		KeyConditionExpression: expr.KeyCondition(), ProjectionExpression: expr.Projection(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	}
	var (
		n     int
		total int64
	)
	for {
		cctx, cancel := s.callCtx(ctx)
		page, err := s.db.Query(cctx, in)
		cancel()
		if err != nil {
			return 0, 0, mapErr(err, "read activity of user %s", userID)
		}
		var rows []struct {
			Amount    int64 `dynamodbav:"amount"`
			CreatedAt int64 `dynamodbav:"created_at"`
		}
		if err := attributevalue.UnmarshalListOfMaps(page.Items, &rows); err != nil {
			return 0, 0, &orderflow.Error{Code: orderflow.EInternal, Detail: "stored order is corrupt", Err: err}
		}
		for _, r := range rows {
			if r.CreatedAt >= ms(since) {
				n++
				total += r.Amount
			}
		}
		if page.LastEvaluatedKey == nil {
			return n, total, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// Transition applies t if the order is in t.From (a conditional
// UpdateItem) and returns the order as stored afterwards; see
// orderflow.Store. Leaving PENDING also takes the order out of the
// by_pending index.
func (s *Store) Transition(ctx context.Context, t orderflow.Transition) (orderflow.Order, error) {
	if err := t.Validate(); err != nil {
		return orderflow.Order{}, err
	}
	at := t.At
	if at.IsZero() {
		at = s.opts.Now()
	}
	upd := expression.Set(expression.Name("status"), expression.Value(string(t.To))).
		Set(expression.Name("updated_at"), expression.Value(ms(at))).
		Remove(expression.Name("pending_pk")).Remove(expression.Name("pending_sk"))
	if t.Failure != nil {
		upd = upd.Set(expression.Name("failure_code"), expression.Value(t.Failure.Code))
		if t.Failure.Detail != "" {
			upd = upd.Set(expression.Name("failure_detail"), expression.Value(t.Failure.Detail))
		}
	}
	if t.RefundID != "" {
		upd = upd.Set(expression.Name("refund_id"), expression.Value(t.RefundID))
	}
	cond := expression.AttributeExists(expression.Name("pk")).
		And(expression.Name("status").Equal(expression.Value(string(t.From))))
	switch t.To {
	case orderflow.StatusCompleted:
		cond = cond.And(expression.AttributeNotExists(expression.Name("cancel_requested_at")))
	case orderflow.StatusCancelled:
		cond = cond.And(expression.AttributeExists(expression.Name("cancel_requested_at")))
	}
	if s.opts.Region != "" {
		cond = cond.And(s.ours())
	}
	expr, _ := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	cctx, cancel := s.callCtx(ctx)
	out, err := s.db.UpdateItem(cctx, &dynamodb.UpdateItemInput{
		TableName: &s.table, Key: key(orderPK(t.ID), skOrder),
		UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		ReturnValues: types.ReturnValueAllNew,
	})
	cancel()
	if err == nil {
		s.watch.Notify(t.ID)
		return decodeOrder(out.Attributes)
	}
	if !isConditionFailed(err) {
		return orderflow.Order{}, mapErr(err, "transition %s", t)
	}
	cur, err := s.GetOrder(ctx, t.ID)
	if err != nil {
		return orderflow.Order{}, err
	}
	if err := s.foreign(cur); err != nil {
		return cur, err
	}
	return cur, orderflow.Errorf(orderflow.EConflict, "order %s is %s, not %s", t.ID, cur.Status, t.From)
}

// ours is the condition that an order is this store's region's, or has no
// region (stored before regions were recorded).
func (s *Store) ours() expression.ConditionBuilder {
	return expression.Name("region").Equal(expression.Value(s.opts.Region)).
		Or(expression.AttributeNotExists(expression.Name("region")))
}

// foreign returns EConflict if o is another region's order, which this
// store must not change.
func (s *Store) foreign(o orderflow.Order) error {
	if s.opts.Region == "" || o.Region == "" || o.Region == s.opts.Region {
		return nil
	}
	return orderflow.Errorf(orderflow.EConflict, "order %s belongs to region %s (this is %s): it is changed there only", o.ID, o.Region, s.opts.Region)
}

// SweepPending finds up to limit orders that are still PENDING and were
// created (or last swept) before before, and claims each with a
// conditional write that moves it to the end of the by_pending index, so
// that concurrent sweepers never both return it and it comes up again
// only a whole sweep period later. The caller re-sends their messages:
// an order whose message was lost (the api died between writing the order
// and sending it) is then processed; one whose message is merely waiting
// gets a duplicate, which the processor deletes.
func (s *Store) SweepPending(ctx context.Context, before time.Time, limit int) ([]orderflow.Order, error) {
	var out []orderflow.Order
	for shard := 0; shard < pendingShards && len(out) < limit; shard++ {
		kc := expression.Key("pending_pk").Equal(expression.Value("PENDING#" + strconv.Itoa(shard))).
			And(expression.Key("pending_sk").LessThan(expression.Value(idPrefix(before))))
		b := expression.NewBuilder().WithKeyCondition(kc)
		filter, filtered := s.sweepable()
		if filtered {
			b = b.WithFilter(filter)
		}
		expr, _ := b.Build()
		// With a region's filter, Limit counts the items read before the
		// filter: another region's orders at the head of a shard (a region
		// down for long) must not hide this region's behind them, so the
		// shard is read on, page by page.
		var start map[string]types.AttributeValue
		for {
			cctx, cancel := s.callCtx(ctx)
			page, err := s.db.Query(cctx, &dynamodb.QueryInput{
				TableName: &s.table, IndexName: aws.String(indexByPending),
				KeyConditionExpression: expr.KeyCondition(), FilterExpression: expr.Filter(),
				ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
				Limit: aws.Int32(int32(limit - len(out))), ExclusiveStartKey: start,
			})
			cancel()
			if err != nil {
				return out, mapErr(err, "query pending orders")
			}
			for _, av := range page.Items {
				var it orderItem
				if err := attributevalue.UnmarshalMap(av, &it); err != nil {
					continue
				}
				ok, err := s.claimPending(ctx, it)
				if err != nil {
					return out, err
				}
				if ok {
					o := it.order()
					if s.opts.Region != "" && o.Region != "" {
						o.Region = s.opts.Region // taken over, if it was another's
					}
					out = append(out, o)
				}
			}
			if !filtered || page.LastEvaluatedKey == nil || len(out) >= limit {
				break
			}
			start = page.LastEvaluatedKey
		}
	}
	return out, nil
}

// sweepable is the filter of SweepPending with a region: this region's
// orders, those with none, and those of the regions it takes over.
func (s *Store) sweepable() (expression.ConditionBuilder, bool) {
	if s.opts.Region == "" {
		return expression.ConditionBuilder{}, false
	}
	f := s.ours()
	for _, r := range s.opts.TakeOver {
		f = f.Or(expression.Name("region").Equal(expression.Value(r)))
	}
	return f, true
}

// claimPending moves a pending order to now in the by_pending index, if it
// is still PENDING and nobody else moved it. An order of a region this
// store takes over becomes this region's in the same write (the
// pending_sk condition already fences it: every transition removes it).
func (s *Store) claimPending(ctx context.Context, it orderItem) (bool, error) {
	upd := expression.Set(expression.Name("pending_sk"), expression.Value(idPrefix(s.opts.Now())+"#"+it.ID))
	cond := expression.Name("status").Equal(expression.Value(string(orderflow.StatusPending))).
		And(expression.Name("pending_sk").Equal(expression.Value(it.PendingSK)))
	if s.opts.Region != "" && it.Region != "" && it.Region != s.opts.Region {
		if !slices.Contains(s.opts.TakeOver, it.Region) {
			return false, nil
		}
		upd = upd.Set(expression.Name("region"), expression.Value(s.opts.Region))
	}
	expr, _ := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	ctx, cancel := s.callCtx(ctx)
	defer cancel()
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.table, Key: key(it.PK, skOrder),
		UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	if isConditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, mapErr(err, "claim pending order %s", it.ID)
	}
	return true, nil
}

// StartOrder moves order id from PENDING to PROCESSING with one
// conditional write and returns it as stored afterwards (the processor's
// start: no read before the first transition). An order in another status
// is returned unchanged with EConflict; ENotFound if there is none.
func (s *Store) StartOrder(ctx context.Context, id orderflow.OrderID, at time.Time) (orderflow.Order, error) {
	return s.Transition(ctx, orderflow.Transition{ID: id, From: orderflow.StatusPending, To: orderflow.StatusProcessing, At: at})
}
