package dynamostore

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/orderflow/orderflow"
)

// txRetries bounds how often a transaction cancelled only by a conflict
// with another transaction (not by a condition) is tried again.
const txRetries = 8

// reservationItem records what Reserve did for an order: the lines it took
// from stock, or the decline (OutcomeCode set, nothing taken).
type reservationItem struct {
	PK            string     `dynamodbav:"pk"`
	SK            string     `dynamodbav:"sk"`
	Lines         []lineItem `dynamodbav:"lines,omitempty"`
	OutcomeCode   string     `dynamodbav:"outcome_code,omitempty"`
	OutcomeDetail string     `dynamodbav:"outcome_detail,omitempty"`
	Released      bool       `dynamodbav:"released"`
}

func (r reservationItem) failure() *orderflow.Failure {
	if r.OutcomeCode == "" {
		return nil
	}
	return &orderflow.Failure{Code: r.OutcomeCode, Detail: r.OutcomeDetail}
}

// Reserve takes items from stock for order id, all or nothing, once per
// order; see orderflow.Store. It is one TransactWriteItems: a decrement of
// each SKU conditioned on enough stock, and the order's reservation item
// conditioned on not existing, so that a second call takes nothing. A
// decline is recorded in the reservation item too, so that a repeated call
// returns the first outcome.
func (s *Store) Reserve(ctx context.Context, id orderflow.OrderID, items []orderflow.Item) (*orderflow.Failure, error) {
	if id == "" {
		return nil, orderflow.Errorf(orderflow.EInvalid, "reserve needs an order id")
	}
	lines := make([]lineItem, 0, len(items))
	for _, it := range items {
		if it.Quantity <= 0 {
			return nil, orderflow.Errorf(orderflow.EInvalid, "reserve %s: quantity of %s must be positive, got %d", id, it.SKU, it.Quantity)
		}
		lines = append(lines, lineItem(it))
	}
	resAV, err := attributevalue.MarshalMap(reservationItem{PK: orderPK(id), SK: skReservation, Lines: lines})
	if err != nil {
		return nil, orderflow.Errorf(orderflow.EInvalid, "reservation cannot be encoded: %v", err)
	}
	notExists, _ := expression.NewBuilder().WithCondition(expression.AttributeNotExists(expression.Name("pk"))).Build()
	tx := make([]types.TransactWriteItem, 0, len(lines)+1)
	for _, l := range lines {
		tx = append(tx, s.takeLine(l))
	}
	tx = append(tx, types.TransactWriteItem{Put: &types.Put{
		TableName: &s.table, Item: resAV, ConditionExpression: notExists.Condition(), ExpressionAttributeNames: notExists.Names(),
	}})
	for attempt := 0; ; attempt++ {
		cctx, cancel := s.callCtx(ctx)
		_, err := s.db.TransactWriteItems(cctx, &dynamodb.TransactWriteItemsInput{TransactItems: tx})
		cancel()
		if err == nil {
			return nil, nil
		}
		reasons, cancelled := cancellation(err)
		if !cancelled {
			return nil, mapErr(err, "reserve stock for order %s", id)
		}
		if len(reasons) == len(tx) && reasons[len(tx)-1] == "ConditionalCheckFailed" {
			return s.retake(ctx, id)
		}
		f, err := s.decline(ctx, id, lines)
		if err != nil {
			return nil, err
		}
		if f != nil {
			return s.recordDecline(ctx, id, *f)
		}
		// Cancelled by a conflicting transaction, not by a condition.
		if attempt == txRetries {
			return nil, orderflow.Unavailable(err, "dynamodb: reserve stock for order %s: too much contention", id)
		}
		if err := sleep(ctx, time.Duration(attempt+1)*10*time.Millisecond); err != nil {
			return nil, orderflow.Unavailable(err, "dynamodb: reserve stock for order %s", id)
		}
	}
}

// decline reads the stock of lines and says which one cannot be served.
func (s *Store) decline(ctx context.Context, id orderflow.OrderID, lines []lineItem) (*orderflow.Failure, error) {
	if f, err := s.reservationOutcome(ctx, id); err == nil || orderflow.ErrorCode(err) != orderflow.ENotFound {
		// Reserved (or declined) meanwhile by another call.
		return f, err
	}
	for _, l := range lines {
		have, err := s.Stock(ctx, l.SKU)
		switch {
		case orderflow.ErrorCode(err) == orderflow.ENotFound:
			return &orderflow.Failure{Code: orderflow.ReasonUnknownSKU, Detail: fmt.Sprintf("sku %s is not stocked", l.SKU)}, nil
		case err != nil:
			return nil, err
		case have < l.Quantity:
			return &orderflow.Failure{Code: orderflow.ReasonOutOfStock, Detail: fmt.Sprintf("sku %s: %d wanted, %d in stock", l.SKU, l.Quantity, have)}, nil
		}
	}
	return nil, nil
}

// recordDecline stores f as the order's reservation outcome, unless another
// call recorded an outcome first, which is returned instead.
func (s *Store) recordDecline(ctx context.Context, id orderflow.OrderID, f orderflow.Failure) (*orderflow.Failure, error) {
	av, err := attributevalue.MarshalMap(reservationItem{PK: orderPK(id), SK: skReservation, OutcomeCode: f.Code, OutcomeDetail: f.Detail})
	if err != nil {
		return nil, orderflow.Errorf(orderflow.EInvalid, "reservation cannot be encoded: %v", err)
	}
	cond, _ := expression.NewBuilder().WithCondition(expression.AttributeNotExists(expression.Name("pk"))).Build()
	cctx, cancel := s.callCtx(ctx)
	_, err = s.db.PutItem(cctx, &dynamodb.PutItemInput{
		TableName: &s.table, Item: av, ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names(),
	})
	cancel()
	if isConditionFailed(err) {
		return s.reservationOutcome(ctx, id)
	}
	if err != nil {
		return nil, mapErr(err, "record reservation of order %s", id)
	}
	return &f, nil
}

// reservation reads the reservation item of order id; ENotFound if none.
func (s *Store) reservation(ctx context.Context, id orderflow.OrderID) (reservationItem, error) {
	cctx, cancel := s.callCtx(ctx)
	defer cancel()
	out, err := s.db.GetItem(cctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(orderPK(id), skReservation), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return reservationItem{}, mapErr(err, "read reservation of order %s", id)
	}
	if out.Item == nil {
		return reservationItem{}, orderflow.Errorf(orderflow.ENotFound, "order %s has no reservation", id)
	}
	var r reservationItem
	if err := attributevalue.UnmarshalMap(out.Item, &r); err != nil {
		return reservationItem{}, &orderflow.Error{Code: orderflow.EInternal, Detail: "stored reservation is corrupt", Err: err}
	}
	return r, nil
}

func (s *Store) reservationOutcome(ctx context.Context, id orderflow.OrderID) (*orderflow.Failure, error) {
	r, err := s.reservation(ctx, id)
	if err != nil {
		return nil, err
	}
	return r.failure(), nil
}

// retake answers a Reserve of order id, which has a reservation item: its
// decline, nothing for a held reservation, and for a released one the
// stock taken again, all or nothing (an attempt that released it and died
// before its final write left the order to go on): one transaction of the
// decrements, each conditioned on enough stock, and the flag unset,
// conditioned on it being set. A line that cannot be served now is an
// out-of-stock failure, not recorded.
func (s *Store) retake(ctx context.Context, id orderflow.OrderID) (*orderflow.Failure, error) {
	r, err := s.reservation(ctx, id)
	if err != nil || r.OutcomeCode != "" || !r.Released || len(r.Lines) == 0 {
		return r.failure(), err
	}
	tx := []types.TransactWriteItem{s.setReleased(id, false)}
	for _, l := range r.Lines {
		tx = append(tx, s.takeLine(l))
	}
	cctx, cancel := s.callCtx(ctx)
	_, err = s.db.TransactWriteItems(cctx, &dynamodb.TransactWriteItemsInput{TransactItems: tx})
	cancel()
	reasons, cancelled := cancellation(err)
	switch {
	case err == nil:
		return nil, nil
	case !cancelled:
		return nil, mapErr(err, "reserve stock for order %s again", id)
	case len(reasons) > 0 && reasons[0] == "ConditionalCheckFailed":
		return nil, nil // taken again by another call
	}
	for i, reason := range reasons[1:] {
		if reason == "ConditionalCheckFailed" {
			l := r.Lines[i]
			return &orderflow.Failure{Code: orderflow.ReasonOutOfStock, Detail: fmt.Sprintf("sku %s: %d wanted, not that many in stock", l.SKU, l.Quantity)}, nil
		}
	}
	return nil, orderflow.Unavailable(err, "dynamodb: reserve stock for order %s again: contention", id)
}

// takeLine is the transaction item that takes l from its SKU's stock,
// conditioned on enough of it.
func (s *Store) takeLine(l lineItem) types.TransactWriteItem {
	upd := expression.Set(expression.Name("qty"), expression.Name("qty").Minus(expression.Value(l.Quantity)))
	cond := expression.AttributeExists(expression.Name("pk")).And(expression.Name("qty").GreaterThanEqual(expression.Value(l.Quantity)))
	expr, _ := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	return types.TransactWriteItem{Update: &types.Update{
		TableName: &s.table, Key: key(skuPK(l.SKU), skStock),
		UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	}}
}

// setReleased is the transaction item that sets the released flag of
// order id's reservation to released, conditioned on it being the other.
func (s *Store) setReleased(id orderflow.OrderID, released bool) types.TransactWriteItem {
	flag, _ := expression.NewBuilder().
		WithUpdate(expression.Set(expression.Name("released"), expression.Value(released))).
		WithCondition(expression.Name("released").Equal(expression.Value(!released))).Build()
	return types.TransactWriteItem{Update: &types.Update{
		TableName: &s.table, Key: key(orderPK(id), skReservation),
		UpdateExpression: flag.Update(), ConditionExpression: flag.Condition(),
		ExpressionAttributeNames: flag.Names(), ExpressionAttributeValues: flag.Values(),
	}}
}

// Release gives back what Reserve took for order id: one transaction that
// sets the reservation's released flag, conditioned on it being unset, and
// adds each line back to its SKU. Idempotent; a no-op without a
// reservation or after a decline.
func (s *Store) Release(ctx context.Context, id orderflow.OrderID) error {
	r, err := s.reservation(ctx, id)
	if orderflow.ErrorCode(err) == orderflow.ENotFound {
		return nil
	}
	if err != nil {
		return err
	}
	if r.Released || r.OutcomeCode != "" || len(r.Lines) == 0 {
		return nil
	}
	tx := []types.TransactWriteItem{s.setReleased(id, true)}
	for _, l := range r.Lines {
		give, _ := expression.NewBuilder().WithUpdate(expression.Add(expression.Name("qty"), expression.Value(l.Quantity))).Build()
		tx = append(tx, types.TransactWriteItem{Update: &types.Update{
			TableName: &s.table, Key: key(skuPK(l.SKU), skStock),
			UpdateExpression: give.Update(), ExpressionAttributeNames: give.Names(), ExpressionAttributeValues: give.Values(),
		}})
	}
	for attempt := 0; ; attempt++ {
		cctx, cancel := s.callCtx(ctx)
		_, err := s.db.TransactWriteItems(cctx, &dynamodb.TransactWriteItemsInput{TransactItems: tx})
		cancel()
		if err == nil {
			return nil
		}
		reasons, cancelled := cancellation(err)
		if !cancelled {
			return mapErr(err, "release stock of order %s", id)
		}
		if len(reasons) > 0 && reasons[0] == "ConditionalCheckFailed" {
			return nil // released by another call
		}
		if attempt == txRetries {
			return orderflow.Unavailable(err, "dynamodb: release stock of order %s: too much contention", id)
		}
		if err := sleep(ctx, time.Duration(attempt+1)*10*time.Millisecond); err != nil {
			return orderflow.Unavailable(err, "dynamodb: release stock of order %s", id)
		}
	}
}

// SetStock sets the available quantity of sku.
func (s *Store) SetStock(ctx context.Context, sku string, quantity int) error {
	if sku == "" || quantity < 0 {
		return orderflow.Errorf(orderflow.EInvalid, "stock needs a sku and a quantity of at least 0, got %q and %d", sku, quantity)
	}
	item := key(skuPK(sku), skStock)
	item["qty"] = &types.AttributeValueMemberN{Value: fmt.Sprint(quantity)}
	ctx, cancel := s.callCtx(ctx)
	defer cancel()
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item})
	return mapErr(err, "set stock of %s", sku)
}

// Stock returns the available quantity of sku (a strongly consistent
// read), or ENotFound.
func (s *Store) Stock(ctx context.Context, sku string) (int, error) {
	ctx, cancel := s.callCtx(ctx)
	defer cancel()
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(skuPK(sku), skStock), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return 0, mapErr(err, "read stock of %s", sku)
	}
	if out.Item == nil {
		return 0, orderflow.Errorf(orderflow.ENotFound, "sku %s is not stocked", sku)
	}
	var v struct {
		Qty int `dynamodbav:"qty"`
	}
	if err := attributevalue.UnmarshalMap(out.Item, &v); err != nil {
		return 0, &orderflow.Error{Code: orderflow.EInternal, Detail: "stored stock is corrupt", Err: err}
	}
	return v.Qty, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
