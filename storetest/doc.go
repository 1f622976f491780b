// Package storetest holds the contract suites that every Queue and Store
// adapter (sqlite, sqs, dynamodb) runs, TestQueue and TestStore, and the
// suite of accepting an order, TestIntake, that sqlite and awsintake (on
// SQS and DynamoDB) run. They rely only on the port contracts in package
// orderflow, so an implementation that passes them can stand in for any
// other.
//
// The suites wait for real time in a few places (visibility timeouts, long
// polls). Waits are generous but bounded, and visibility timeouts are whole
// seconds because SQS counts them in seconds. Nothing asserts how fast an
// operation was; performance lives in benchmarks. Subtests run in parallel,
// each on the queue or store it asked for.
package storetest
