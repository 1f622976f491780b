// Package processor is the worker of the order pipeline: it takes order
// messages off an orderflow.Queue, runs each order through its stages
// (inventory, fraud, payment) and records the outcome in an
// orderflow.Store with conditional writes. It also serves the worker's
// /health, /ready and /metrics.
//
// # Acknowledgement
//
// Like a Watermill handler, the outcome of one message decides what
// happens to it:
//
//   - The order reached a terminal state (COMPLETED or REJECTED), or it
//     already was in one (a redelivery or a duplicate): the message is
//     deleted, in batches.
//   - A transient error (a dependency down, a payment gateway timeout): the
//     message is kept and hidden for an exponential backoff with jitter
//     (ChangeVisibility), so that it comes back later.
//   - A transient error on the last receive (ReceiveCount ≥ the queue's
//     MaxReceives, which Run reads from the queue, Queue.Policy, with its
//     visibility timeout):
//     the stock is released and the order moves to FAILED with reason
//     processing_failed. The message is not deleted but made visible at
//     once, so the queue moves it to the dead-letter queue promptly: the
//     DLQ is the operator's record of what failed.
//   - An undecodable (poison) message: kept, with the same backoff, until
//     the queue dead-letters it; never deleted. Each is counted once, on
//     its first receive, in processor_poison_messages_total, not in
//     orders_processed_total, which counts orders. On the last receive, if
//     the body still names an order that was never started (PENDING:
//     nothing reserved, nothing charged), that order moves to FAILED with
//     reason dead_lettered and counts as status="error".
//   - An order that does not exist (yet): kept with backoff, as in the AWS
//     mode the store write may lag the queue send; on the last receive it
//     is left to the DLQ.
//
// FAILED is final for the customer: they were told the order failed, and a
// silent later charge would be worse than asking them to order again. A
// message redriven from the DLQ whose order is already terminal is simply
// deleted; redrive is for messages whose orders are not terminal (for
// instance the store was down when the last attempt tried to record FAILED).
//
// # Dead letters
//
// A message the queue moved to the dead-letter queue has an order whose
// last attempt never finished it (the processor died in it, or the
// message could not be handled). WatchDeadLetters, a loop beside Run, ends
// such orders by the one dead-letter policy, for both queues, with what it
// asks of the payment gateway and the stock: an order
// PROCESSING whose payment the gateway holds (Payment.Charged) passed
// every stage, payment being the last, and is COMPLETED; any other order
// not yet final is FAILED with reason dead_lettered and its stock
// released (Inventory.Release), so that no customer is charged for a
// FAILED order and no accepted order is left hanging (a crash between the
// two writes is repaired when the message is handed out again). Its source
// (Deps.DeadLetters, a DeadLetterSource) hands out the dead messages: the
// embedded SQLite queue as its receive dead-letters them, and those a
// crash left unhandled when the watch starts; SQS every
// Config.DeadLetterInterval. Each order the watch ends is logged and
// counted in orders_processed_total like the orders Run ends, so that
// every FAILED order counts as status="error"; the messages stay in the
// dead-letter queue for the operator.
//
// # Effects once
//
// Delivery is at least once, so every stage is safe to repeat: Reserve and
// Release are idempotent per order, and every charge carries the order id
// as its idempotency key, so a repeated charge returns the first one. Every
// status change is a conditional write (Store.Transition); losing such a
// race to another worker is not an error. Within one process an order is
// worked by one message at a time: another message for an order in work is
// deleted (the one in work stays queued until the order is final), and the
// same message coming back while still in work is put back with backoff.
// Across processes (a re-sent message, the dead-letter watch beside an
// attempt) one worker may release an order's stock and end it while
// another reserves or charges between those writes; so whoever finds an
// order ended other than COMPLETED releases its stock and refunds any
// charge again, and an ended order never keeps stock or money.
//
// After a successful charge, the order is never moved to FAILED: if the
// COMPLETED write fails on the last receive, the message is left for the
// DLQ, where the dead-letter watch completes the order (the charge is not
// repeated).
//
// # Starting an order
//
// The processor starts each order with Store.StartOrder, one conditional
// write (PENDING → PROCESSING) that returns the order as stored, instead of
// a read followed by a write; an order found further on comes back with
// EConflict and its current state. The transition is logged like any
// other. The embedded database's work queue (sqlite.WorkQueue) is the
// queue and the store in one: its receive starts the orders of the
// messages it hands out in the same write, and its StartOrder answers for
// those from what the receive did; to the processor it is a queue and a
// store like any other.
//
// # Pending sweep
//
// Where an order and its message are written to two services (SQS and
// DynamoDB), an api that dies between the two leaves an order PENDING
// with no message. A Sweeper, a loop beside Run in that mode, re-sends the
// message of every order still PENDING after SweeperConfig.After; the
// processor drops the duplicates this can make.
//
// # Shutdown
//
// When Run's context is cancelled the processor stops receiving, lets the
// orders in work finish (their visibility is still extended), deletes what
// finished and returns. Orders still unfinished after DrainTimeout are
// abandoned without any state change and their messages made visible again
// for another worker.
//
// # Tracing
//
// Each message carries the W3C traceparent of the api request that
// accepted its order (Message.TraceParent; the order keeps it too, for the
// pending sweep's re-sends and the dead-letter watch). The order's
// processing, the span "process order", is a child of that remote span:
// one order has one message and one accepting request, so the request and
// the processing form one trace. Its children are "start order", one span
// per stage ("stage inventory", "stage fraud", "stage payment") and each
// "transition", and under them the store's writes. A receive or a batch
// delete touches messages of many traces; it cannot be a child of them
// all, so it is a root span ("receive orders", "delete messages") with a
// link to each message's trace, recorded only when the batch held
// messages. The dead-letter watch's "end dead-lettered order" continues
// the order's trace the same way. Deps.TracerProvider makes the spans;
// without one there are none.
package processor
