package dynamostore

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/orderflow/orderflow"
)

// cancelRounds bounds RequestCancel's read-then-write rounds: an order
// moves forward at most twice, so a third read finds it where no
// conditional write can lose any more.
const cancelRounds = 3

// RequestCancel records by's request to cancel order id (see
// orderflow.Store): a strongly consistent read, then one conditional
// UpdateItem chosen by the status read (PENDING: CANCELLED at once, out of
// the by_pending index; PROCESSING: the request kept for the processor),
// read again if the order moved in between.
func (s *Store) RequestCancel(ctx context.Context, id orderflow.OrderID, by string, at time.Time) (orderflow.Order, error) {
	if at.IsZero() {
		at = s.opts.Now()
	}
	for range cancelRounds {
		o, err := s.GetOrder(ctx, id)
		if err != nil {
			return orderflow.Order{}, err
		}
		if err := s.foreign(o); err != nil {
			return o, err
		}
		switch {
		case o.Status == orderflow.StatusCancelled, o.Status == orderflow.StatusProcessing && o.Cancellation != nil:
			return o, nil
		case !o.Status.Cancellable():
			return o, orderflow.Errorf(orderflow.EConflict, "order %s is %s and can no longer be cancelled", id, o.Status)
		}
		stored, moved, err := s.writeCancel(ctx, o, by, at)
		if err != nil || moved {
			return stored, err
		}
	}
	return orderflow.Order{}, orderflow.Errorf(orderflow.EUnavailable, "order %s kept changing while its cancel was recorded", id)
}

// writeCancel records the cancel request on o, if o is still in its
// status without a request; moved=false when the condition failed.
func (s *Store) writeCancel(ctx context.Context, o orderflow.Order, by string, at time.Time) (orderflow.Order, bool, error) {
	upd := expression.Set(expression.Name("cancel_requested_by"), expression.Value(by)).
		Set(expression.Name("cancel_requested_at"), expression.Value(ms(at))).
		Set(expression.Name("updated_at"), expression.Value(ms(at)))
	if o.Status == orderflow.StatusPending {
		upd = upd.Set(expression.Name("status"), expression.Value(string(orderflow.StatusCancelled))).
			Remove(expression.Name("pending_pk")).Remove(expression.Name("pending_sk"))
	}
	cond := expression.Name("status").Equal(expression.Value(string(o.Status))).
		And(expression.AttributeNotExists(expression.Name("cancel_requested_at")))
	if s.opts.Region != "" {
		cond = cond.And(s.ours())
	}
	expr, _ := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	cctx, cancel := s.callCtx(ctx)
	defer cancel()
	out, err := s.db.UpdateItem(cctx, &dynamodb.UpdateItemInput{
		TableName: &s.table, Key: key(orderPK(o.ID), skOrder),
		UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		ReturnValues: types.ReturnValueAllNew,
	})
	if isConditionFailed(err) {
		return orderflow.Order{}, false, nil
	}
	if err != nil {
		return orderflow.Order{}, false, mapErr(err, "request cancel of order %s", o.ID)
	}
	s.watch.Notify(o.ID) // a new document for the order's watchers
	stored, err := decodeOrder(out.Attributes)
	return stored, true, err
}
