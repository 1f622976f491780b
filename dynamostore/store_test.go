package dynamostore_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/awstest"
	"github.com/orderflow/orderflow/dynamostore"
	"github.com/orderflow/orderflow/storetest"
)

// newTable creates a fresh table on moto and deletes it after the test.
func newTable(t *testing.T) (*dynamodb.Client, string) {
	t.Helper()
	client := dynamodb.NewFromConfig(awstest.Config(awstest.Endpoint(t)))
	name := awstest.Name("orders")
	if err := dynamostore.CreateTable(context.Background(), client, name); err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	t.Cleanup(func() {
		if err := dynamostore.DeleteTable(context.Background(), client, name); err != nil {
			t.Errorf("DeleteTable: %v", err)
		}
	})
	return client, name
}

func TestStoreContract(t *testing.T) {
	t.Parallel()
	client, table := newTable(t)
	st := dynamostore.New(client, table, dynamostore.Options{})
	storetest.TestStore(t, func(t *testing.T) orderflow.Store { return st })
}

func TestLedgerContract(t *testing.T) {
	t.Parallel()
	client, table := newTable(t)
	st := dynamostore.New(client, table, dynamostore.Options{})
	storetest.TestLedger(t, func(t *testing.T) storetest.Ledger { return st })
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}
