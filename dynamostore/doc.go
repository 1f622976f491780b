// Package dynamostore implements orderflow.Store on one Amazon DynamoDB
// table (or a wire-compatible server such as LocalStack or moto), with
// github.com/aws/aws-sdk-go-v2/service/dynamodb and its attributevalue and
// expression helpers.
//
// # Single-table design
//
// Every item has a string partition key pk and sort key sk:
//
//	pk                    sk            what
//	ORDER#<id>            ORDER         an order (gsi1pk=USER#<user>, gsi1sk=<id>;
//	                                    pending_pk/pending_sk while PENDING)
//	ORDER#<id>            RESERVATION   the stock Reserve took for the order, or its decline
//	IDEM#<user>#<key>     IDEM          an Idempotency-Key record (TTL expires_at)
//	SKU#<sku>             STOCK         available quantity of a SKU
//	CHARGE#<key>          CHARGE        the simulated gateway's ledger, by idempotency key
//	                                    (gsi1pk=CHARGES#<order id>)
//	CHARGE#<key>          ATTEMPTS      the simulated gateway's count of charge attempts
//	RATE#<key>            RATE          a rate limit's GCRA state (tat, TTL expires_at;
//	                                    see RateLimiter)
//
// User ids cannot contain '#', so IDEM#<user>#<key> is unambiguous.
//
// Two global secondary indexes: by_user (gsi1pk, gsi1sk) lists a user's
// orders newest first, since order ids sort by creation time, and also
// finds the charges of an order; by_pending (pending_pk, pending_sk) is
// sparse: an order is in it only while PENDING (spread over a few shards),
// so that a sweeper can find orders whose queue message was never sent
// (SweepPending) without scanning the table. Both attributes are written
// with the order and removed by the first transition, so the index costs no
// extra write request.
//
// # Writes
//
// Every status change is an UpdateItem conditioned on the current status,
// so a duplicate or late transition is a no-op that reports EConflict.
// Reserve is one TransactWriteItems: a conditional decrement per SKU and a
// reservation item that must not exist yet, so a second Reserve for the
// same order changes nothing. Release flips the reservation's released flag
// under a condition in the same transaction that gives the stock back.
//
// Every call has a bounded timeout (Options.CallTimeout) and errors
// reaching DynamoDB come back as EUnavailable.
package dynamostore
