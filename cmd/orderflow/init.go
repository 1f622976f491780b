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

// initAWS runs "orderflow init": it creates the SQS queue, its dead-letter
// queue with the RedrivePolicy (maxReceiveCount = ORDERFLOW_MAX_RECEIVES),
// and the DynamoDB table with its indexes and TTL, on AWS_ENDPOINT_URL or
// the per-service endpoints (or AWS itself), idempotently, and prints the
// settings to export.
func initAWS(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	fs.SetOutput(stdout)
	queue := fs.String("queue", cfg.QueueName, "name of the SQS queue")
	dlqName := fs.String("dlq", cfg.DLQName, "name of its dead-letter queue")
	table := fs.String("table", cfg.TableName, "name of the DynamoDB table")
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
