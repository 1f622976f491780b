// Package sqsqueue implements orderflow.Queue and orderflow.DeadLetters on
// Amazon SQS (or a wire-compatible server such as LocalStack or moto),
// with github.com/aws/aws-sdk-go-v2/service/sqs.
//
// It uses SQS the way its pricing and semantics reward:
//
//   - Send coalesces concurrent calls into SendMessageBatch requests of up
//     to 10 entries, flushed when full or FlushDelay (10 ms) after the first
//     entry; each caller gets the outcome of its own entries, and entries
//     SQS failed on its side are retried.
//   - Receive long-polls (WaitTimeSeconds up to 20) for up to 10 messages
//     and asks for ApproximateReceiveCount, which the processor uses to
//     know its last attempt. After a receive that came back short, the
//     next waits ReceiveLinger (10 ms) and concurrent receives go one at a
//     time, so that a moderate load's messages share receives instead of
//     each taking one.
//   - Delete uses DeleteMessageBatch in chunks of 10 and reports the
//     entries that failed in an *orderflow.BatchError. The processor
//     gathers the deletes of concurrent orders into one call; on SQS it
//     should wait up to DefaultDeleteWindow (200 ms) for them.
//   - MaxReceives is the queue's RedrivePolicy (maxReceiveCount, set by
//     CreateQueues): SQS moves a message to the dead-letter queue itself.
//     Since no code of ours runs at that moment, WatchDead looks into the
//     dead-letter queue every interval and hands each dead message to the
//     processor's dead-letter watch, which ends its order.
//   - The dead-letter operations are built from receive, send and delete
//     (moto has no StartMessageMoveTask), which work on AWS as well. SQS
//     cannot peek, so the first receive of a dead message re-files it
//     with its order-queue receive count as an attribute (see settleDead):
//     listing and watching the dead-letter queue leave that count as it is.
//
// Every call has a bounded timeout (Options.CallTimeout, plus the wait of a
// long poll), and errors reaching the service come back as EUnavailable, so
// that the api answers 503 rather than hanging.
package sqsqueue
