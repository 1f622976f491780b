package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/orderflow/orderflow/dynamostore"
	"github.com/orderflow/orderflow/sqsqueue"
)

// initFlags are the flags of init; their defaults are the values they
// hold when defined (the settings ORDERFLOW_QUEUE_NAME, _DLQ_NAME and
// _TABLE_NAME).
type initFlags struct{ queue, dlq, table string }

func (f *initFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&f.queue, "queue", f.queue, "`NAME` of the SQS queue")
	fs.StringVar(&f.dlq, "dlq", f.dlq, "`NAME` of its dead-letter queue")
	fs.StringVar(&f.table, "table", f.table, "`NAME` of the DynamoDB table")
}

// initAWS runs "orderflow init": it creates the SQS queue, its dead-letter
// queue with the RedrivePolicy (maxReceiveCount = ORDERFLOW_MAX_RECEIVES),
// and the DynamoDB table with its indexes and TTL, on AWS_ENDPOINT_URL or
// the per-service endpoints (or AWS itself), idempotently, and prints the
// settings to export.
func initAWS(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	f := initFlags{queue: cfg.QueueName, dlq: cfg.DLQName, table: cfg.TableName}
	fs := newFlagSet("init", stdout, f.define)
	queue, dlqName, table := &f.queue, &f.dlq, &f.table
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("init takes flags only, got %q", fs.Args())
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	clients, err := awsClients(ctx, cfg, nil, nil)
	if err != nil {
		return err
	}
	qurl, dlqURL, err := sqsqueue.CreateQueues(ctx, clients.sqs, sqsqueue.QueueSpec{
		Name: *queue, DLQName: *dlqName, VisibilityTimeout: cfg.VisibilityTimeout, MaxReceives: cfg.MaxReceives,
	})
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	if err := dynamostore.CreateTable(ctx, clients.ddb, *table); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "export SQS_QUEUE_URL=%s SQS_DLQ_URL=%s DDB_TABLE=%s\n", qurl, dlqURL, *table)
	return err
}
