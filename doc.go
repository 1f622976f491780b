// Package orderflow is the domain of the order pipeline: orders, their
// statuses and transitions, validation, error codes, and the ports (Queue,
// Store) that the embedded (SQLite) and AWS (SQS, DynamoDB) adapters
// implement. It does no I/O and imports the standard library only.
package orderflow
