package dynamostore

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/orderflow/orderflow"
)

// batchGetMax is the most keys one BatchGetItem takes.
const batchGetMax = 100

var _ orderflow.Watcher = (*Store)(nil)

// Watch implements orderflow.Watcher. Transitions this Store writes are
// told at once; those of other processes (the processor, other api
// processes) are found by one strongly consistent BatchGetItem of up to
// 100 watched orders (status and updated_at only) every
// Options.WatchInterval, doubling while nothing changes up to
// WatchMaxInterval: at most 1/(100·interval) calls per watched order per
// second, each read costing 1 RCU per order (items under 4 KB). Keys
// DynamoDB leaves unprocessed are read at the next interval.
func (s *Store) Watch(ctx context.Context, id orderflow.OrderID) <-chan struct{} {
	return s.watch.Watch(ctx, id)
}

// watchVersions reads the status and updated_at of ids.
func (s *Store) watchVersions(ctx context.Context, ids []orderflow.OrderID) (map[orderflow.OrderID]string, error) {
	out := make(map[orderflow.OrderID]string, len(ids))
	for len(ids) > 0 {
		n := min(len(ids), batchGetMax)
		if err := s.readVersions(ctx, ids[:n], out); err != nil {
			return nil, err
		}
		ids = ids[n:]
	}
	return out, nil
}

func (s *Store) readVersions(ctx context.Context, ids []orderflow.OrderID, out map[orderflow.OrderID]string) error {
	keys := make([]map[string]types.AttributeValue, len(ids))
	for i, id := range ids {
		keys[i] = key(orderPK(id), skOrder)
	}
	ctx, cancel := s.callCtx(ctx)
	defer cancel()
	res, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
		s.table: {
			Keys:                     keys,
			ConsistentRead:           aws.Bool(true),
			ProjectionExpression:     aws.String("order_id, #s, updated_at"),
			ExpressionAttributeNames: map[string]string{"#s": "status"},
		},
	}})
	if err != nil {
		return mapErr(err, "read %d watched orders", len(ids))
	}
	for _, item := range res.Responses[s.table] {
		id, _ := item["order_id"].(*types.AttributeValueMemberS)
		st, _ := item["status"].(*types.AttributeValueMemberS)
		at, _ := item["updated_at"].(*types.AttributeValueMemberN)
		if id == nil || st == nil || at == nil {
			continue
		}
		out[orderflow.OrderID(id.Value)] = st.Value + "-" + at.Value
	}
	return nil
}
