package dynamostore

import (
	"context"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/orderflow/orderflow"
)

// chargeItem is one charge of the simulated gateway's ledger.
type chargeItem struct {
	PK       string `dynamodbav:"pk"`
	SK       string `dynamodbav:"sk"`
	GSI1PK   string `dynamodbav:"gsi1pk"`
	GSI1SK   string `dynamodbav:"gsi1sk"`
	ID       string `dynamodbav:"charge_id"`
	Key      string `dynamodbav:"idempotency_key"`
	OrderID  string `dynamodbav:"order_id"`
	Amount   int64  `dynamodbav:"amount"`
	Currency string `dynamodbav:"currency"`
	At       int64  `dynamodbav:"at"`
	// The refund of the key (RecordRefund), on the same item so that a
	// charge and a refund of one key are ordered by DynamoDB's per-item
	// atomicity. An item with a refund and no charge_id voids its key.
	RefundID   string `dynamodbav:"refund_id,omitempty"`
	RefundedAt int64  `dynamodbav:"refunded_at,omitempty"`
}

// voided reports whether the item is a refund with no charge under its key.
func (c chargeItem) voided() bool { return c.ID == "" }

func (c chargeItem) refund() orderflow.Refund {
	r := orderflow.Refund{ID: c.RefundID, IdempotencyKey: c.Key, OrderID: orderflow.OrderID(c.OrderID), At: fromMS(c.RefundedAt)}
	if !c.voided() {
		r.ChargeID, r.Amount, r.Currency = c.ID, c.Amount, c.Currency
	}
	return r
}

func (c chargeItem) charge() orderflow.Charge {
	return orderflow.Charge{ID: c.ID, IdempotencyKey: c.Key, OrderID: orderflow.OrderID(c.OrderID), Amount: c.Amount, Currency: c.Currency, At: fromMS(c.At)}
}

// RecordCharge is the ledger of the simulated payment gateway: it stores c
// unless a charge with c.IdempotencyKey exists (a conditional put), and
// returns the stored charge, with duplicate=true when it was already there.
// A key voided by RecordRefund takes no charge: EConflict.
func (s *Store) RecordCharge(ctx context.Context, c orderflow.Charge) (orderflow.Charge, bool, error) {
	if c.IdempotencyKey == "" || c.ID == "" {
		return orderflow.Charge{}, false, orderflow.Errorf(orderflow.EInvalid, "a charge needs an id and an idempotency key")
	}
	if c.At.IsZero() {
		c.At = s.opts.Now()
	}
	it := chargeItem{
		PK: chargePK(c.IdempotencyKey), SK: skCharge, GSI1PK: chargesPK(c.OrderID), GSI1SK: c.IdempotencyKey,
		ID: c.ID, Key: c.IdempotencyKey, OrderID: string(c.OrderID), Amount: c.Amount, Currency: c.Currency, At: ms(c.At),
	}
	av, err := attributevalue.MarshalMap(it)
	if err != nil {
		return orderflow.Charge{}, false, orderflow.Errorf(orderflow.EInvalid, "charge cannot be encoded: %v", err)
	}
	cond, _ := expression.NewBuilder().WithCondition(expression.AttributeNotExists(expression.Name("pk"))).Build()
	cctx, cancel := s.callCtx(ctx)
	_, err = s.db.PutItem(cctx, &dynamodb.PutItemInput{
		TableName: &s.table, Item: av, ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names(),
	})
	cancel()
	if err == nil {
		return it.charge(), false, nil
	}
	if !isConditionFailed(err) {
		return orderflow.Charge{}, false, mapErr(err, "record charge %s", c.IdempotencyKey)
	}
	stored, ok, err := s.chargeItemByKey(ctx, c.IdempotencyKey)
	switch {
	case err != nil:
		return orderflow.Charge{}, false, err
	case !ok:
		return orderflow.Charge{}, false, orderflow.Errorf(orderflow.EConflict, "charge %s changed concurrently", c.IdempotencyKey)
	case stored.voided():
		return orderflow.Charge{}, false, orderflow.Errorf(orderflow.EConflict, "idempotency key %s was refunded; it takes no charge", c.IdempotencyKey)
	}
	return stored.charge(), true, nil
}

// RecordRefund is the simulated gateway's ledger of refunds: one
// UpdateItem on the charge item of r.IdempotencyKey sets the refund unless
// one is set (if_not_exists), creating the item when nothing was charged
// (which voids the key for RecordCharge), and returns the refund as stored:
// the first one on a repeat, with the charge it gave back.
func (s *Store) RecordRefund(ctx context.Context, r orderflow.Refund) (orderflow.Refund, error) {
	if r.IdempotencyKey == "" || r.ID == "" {
		return orderflow.Refund{}, orderflow.Errorf(orderflow.EInvalid, "a refund needs an id and an idempotency key")
	}
	if r.At.IsZero() {
		r.At = s.opts.Now()
	}
	ifNew := func(name string, v any) expression.SetValueBuilder {
		return expression.IfNotExists(expression.Name(name), expression.Value(v))
	}
	upd := expression.Set(expression.Name("refund_id"), ifNew("refund_id", r.ID)).
		Set(expression.Name("refunded_at"), ifNew("refunded_at", ms(r.At))).
		Set(expression.Name("idempotency_key"), expression.Value(r.IdempotencyKey)).
		Set(expression.Name("order_id"), ifNew("order_id", string(r.OrderID)))
	expr, _ := expression.NewBuilder().WithUpdate(upd).Build()
	cctx, cancel := s.callCtx(ctx)
	defer cancel()
	out, err := s.db.UpdateItem(cctx, &dynamodb.UpdateItemInput{
		TableName: &s.table, Key: key(chargePK(r.IdempotencyKey), skCharge),
		UpdateExpression: expr.Update(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		ReturnValues: types.ReturnValueAllNew,
	})
	if err != nil {
		return orderflow.Refund{}, mapErr(err, "record refund %s", r.IdempotencyKey)
	}
	var it chargeItem
	if err := attributevalue.UnmarshalMap(out.Attributes, &it); err != nil {
		return orderflow.Refund{}, &orderflow.Error{Code: orderflow.EInternal, Detail: "stored refund is corrupt", Err: err}
	}
	return it.refund(), nil
}

// CountAttempt is the simulated payment gateway's count of charge
// attempts: one UpdateItem that adds one to the attempts of idempotency
// key k (an atomic counter on the item beside its charge) and returns the
// new count (1 on the first).
func (s *Store) CountAttempt(ctx context.Context, k string) (int, error) {
	if k == "" {
		return 0, orderflow.Errorf(orderflow.EInvalid, "an attempt needs an idempotency key")
	}
	upd, _ := expression.NewBuilder().WithUpdate(expression.Add(expression.Name("attempts"), expression.Value(1))).Build()
	cctx, cancel := s.callCtx(ctx)
	defer cancel()
	out, err := s.db.UpdateItem(cctx, &dynamodb.UpdateItemInput{
		TableName: &s.table, Key: key(chargePK(k), skAttempts),
		UpdateExpression: upd.Update(), ExpressionAttributeNames: upd.Names(), ExpressionAttributeValues: upd.Values(),
		ReturnValues: types.ReturnValueUpdatedNew,
	})
	if err != nil {
		return 0, mapErr(err, "count attempt of charge %s", k)
	}
	var v struct {
		Attempts int `dynamodbav:"attempts"`
	}
	if err := attributevalue.UnmarshalMap(out.Attributes, &v); err != nil || v.Attempts < 1 {
		return 0, &orderflow.Error{Code: orderflow.EInternal, Detail: "stored attempt count is corrupt", Err: err}
	}
	return v.Attempts, nil
}

// LookupCharge returns the charge recorded under idempotency key k, if any
// (a strongly consistent read).
func (s *Store) LookupCharge(ctx context.Context, k string) (orderflow.Charge, bool, error) {
	return s.chargeByKey(ctx, k)
}

// chargeByKey reads the charge with idempotency key k (strongly
// consistent); a voided key has none.
func (s *Store) chargeByKey(ctx context.Context, k string) (orderflow.Charge, bool, error) {
	it, ok, err := s.chargeItemByKey(ctx, k)
	if err != nil || !ok || it.voided() {
		return orderflow.Charge{}, false, err
	}
	return it.charge(), true, nil
}

// chargeItemByKey reads the charge item of idempotency key k (strongly
// consistent).
func (s *Store) chargeItemByKey(ctx context.Context, k string) (chargeItem, bool, error) {
	ctx, cancel := s.callCtx(ctx)
	defer cancel()
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(chargePK(k), skCharge), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return chargeItem{}, false, mapErr(err, "read charge %s", k)
	}
	if out.Item == nil {
		return chargeItem{}, false, nil
	}
	var it chargeItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return chargeItem{}, false, &orderflow.Error{Code: orderflow.EInternal, Detail: "stored charge is corrupt", Err: err}
	}
	return it, true, nil
}

// Charges returns the charges recorded for order id, oldest first: the one
// whose idempotency key is the order id (what the processor sends), read
// strongly consistent, and any others from the by_user index.
func (s *Store) Charges(ctx context.Context, id orderflow.OrderID) ([]orderflow.Charge, error) {
	var out []orderflow.Charge
	if c, ok, err := s.chargeByKey(ctx, string(id)); err != nil {
		return nil, err
	} else if ok && c.OrderID == id {
		out = append(out, c)
	}
	kc := expression.Key("gsi1pk").Equal(expression.Value(chargesPK(id)))
	expr, _ := expression.NewBuilder().WithKeyCondition(kc).Build()
	in := &dynamodb.QueryInput{
		TableName: &s.table, IndexName: aws.String(indexByUser),
		KeyConditionExpression: expr.KeyCondition(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	}
	for {
		cctx, cancel := s.callCtx(ctx)
		page, err := s.db.Query(cctx, in)
		cancel()
		if err != nil {
			return nil, mapErr(err, "list charges of order %s", id)
		}
		var items []chargeItem
		if err := attributevalue.UnmarshalListOfMaps(page.Items, &items); err != nil {
			return nil, &orderflow.Error{Code: orderflow.EInternal, Detail: "stored charge is corrupt", Err: err}
		}
		for _, it := range items {
			if !slices.ContainsFunc(out, func(c orderflow.Charge) bool { return c.IdempotencyKey == it.Key }) {
				out = append(out, it.charge())
			}
		}
		if page.LastEvaluatedKey == nil {
			break
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
	slices.SortFunc(out, func(a, b orderflow.Charge) int { return a.At.Compare(b.At) })
	return out, nil
}
