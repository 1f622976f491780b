package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
)

// Callers of aws_requests_total that are not orderflow's own cost or are
// shown on a line of their own.
const (
	callerGateway = "simulated_gateway" // the simulated payment gateway's ledger: a real gateway's own
	callerLimiter = "rate_limiter"      // the shared per-user rate limit
)

// awsCost is the AWS requests of a run by service and operation, split by
// who made them: the pipeline itself, the rate limiter, and the simulated
// gateway's ledger (shown apart, and left out of orderflow's cost).
type awsCost struct {
	orders    float64            // completed orders the requests are divided by
	sqs       map[string]float64 // by operation
	ddbWrite  map[string]float64 // DynamoDB write operations
	ddbRead   map[string]float64 // DynamoDB reads and the control plane (DescribeTable, ...)
	limiter   map[string]float64 // caller="rate_limiter", DynamoDB, by operation
	gatewayDB map[string]float64 // caller="simulated_gateway", DynamoDB, by operation
}

// ddbWriteOps are DynamoDB's write operations.
var ddbWriteOps = map[string]bool{"PutItem": true, "UpdateItem": true, "DeleteItem": true, "TransactWriteItems": true, "BatchWriteItem": true}

// costOf is the requests between two readings of aws_requests_total (label
// list → value, as awsRE reads them), for orders completed orders.
func costOf(before, after map[string]float64, orders float64) awsCost {
	c := awsCost{orders: orders, sqs: map[string]float64{}, ddbWrite: map[string]float64{}, ddbRead: map[string]float64{},
		limiter: map[string]float64{}, gatewayDB: map[string]float64{}}
	for labels, v := range after {
		v -= before[labels]
		if v == 0 {
			continue
		}
		op := label(labels, "operation")
		switch caller, service := label(labels, "caller"), label(labels, "service"); {
		case caller == callerGateway:
			c.gatewayDB[op] += v
		case caller == callerLimiter:
			c.limiter[op] += v
		case service == "sqs":
			c.sqs[op] += v
		case service == "dynamodb" && ddbWriteOps[op]:
			c.ddbWrite[op] += v
		case service == "dynamodb":
			c.ddbRead[op] += v
		}
	}
	return c
}

func sum(m map[string]float64) float64 {
	var s float64
	for _, v := range m {
		s += v
	}
	return s
}

// perOrder is n per completed order.
func (c awsCost) perOrder(n float64) float64 { return n / max(c.orders, 1) }

// Request units per request, for items of at most 1 KB (a write request
// unit) and 4 KB (a read request unit), as DynamoDB on-demand bills them:
// a single-item write is 1 WRU, a transaction 2 WRU per item it writes
// (orderflow's transactions write 2 items), a strongly consistent read 1
// RRU, a transactional read 2 RRU per item. The control plane
// (DescribeTable, CreateTable, ...) is not billed per request.
var (
	wruPerRequest = map[string]float64{"PutItem": 1, "UpdateItem": 1, "DeleteItem": 1, "BatchWriteItem": 1, "TransactWriteItems": 4}
	rruPerRequest = map[string]float64{"GetItem": 1, "Query": 1, "Scan": 1, "BatchGetItem": 1, "TransactGetItems": 2}
)

// prices are AWS list prices in US dollars.
type prices struct {
	sqsPerMillion float64 // SQS standard queue, per million requests (64 KB chunks)
	wruPerMillion float64 // DynamoDB on-demand, per million write request units
	rruPerMillion float64 // DynamoDB on-demand, per million read request units
	source        string
}

// listPrices are the public list prices for us-east-1 (beyond the free
// tier): SQS standard $0.40 per million requests; DynamoDB on-demand
// (standard table class) $0.625 per million write and $0.125 per million
// read request units, as AWS has published them since its on-demand price
// cut of 1 November 2024.
var listPrices = prices{sqsPerMillion: 0.40, wruPerMillion: 0.625, rruPerMillion: 0.125,
	source: "AWS list prices, us-east-1, as published since the DynamoDB on-demand price cut of 1 Nov 2024 (not re-read from aws.amazon.com from this machine, which has no internet): " +
		"SQS standard $0.40 per million requests; DynamoDB on-demand $0.625 per million WRU, $0.125 per million RRU"}

// units is the request units of the requests in m, priced by perRequest.
func units(m map[string]float64, perRequest map[string]float64) float64 {
	var u float64
	for op, n := range m {
		u += n * perRequest[op]
	}
	return u
}

// dollarsPerMillion is what a million orders cost at p: SQS, DynamoDB,
// and the rate limiter's DynamoDB requests (a part of the DynamoDB figure,
// also given alone). The simulated gateway's ledger is not counted. A
// million orders at n requests per order are n million requests, so each
// figure is the units per order times the price per million units.
func (c awsCost) dollarsPerMillion(p prices) (sqs, ddb, limiter float64) {
	sqs = c.perOrder(sum(c.sqs)) * p.sqsPerMillion
	limiter = c.perOrder(units(c.limiter, wruPerRequest))*p.wruPerMillion + c.perOrder(units(c.limiter, rruPerRequest))*p.rruPerMillion
	ddb = c.perOrder(units(c.ddbWrite, wruPerRequest))*p.wruPerMillion + c.perOrder(units(c.ddbRead, rruPerRequest))*p.rruPerMillion + limiter
	return sqs, ddb, limiter
}

// column is one design's figures in the side-by-side table.
type column struct {
	name string
	cost awsCost
}

// printCosts prints the designs side by side: requests per completed order
// by service and operation, then the price of a million orders at p.
func printCosts(w io.Writer, p prices, cols ...column) {
	row := func(name string, f func(c awsCost) string) {
		fmt.Fprintf(w, "  %-36s", name)
		for _, c := range cols {
			fmt.Fprintf(w, "%20s", f(c.cost))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "  %-36s", "per completed order")
	for _, c := range cols {
		fmt.Fprintf(w, "%20s", c.name)
	}
	fmt.Fprintln(w)
	row("orders completed", func(c awsCost) string { return fmt.Sprintf("%.0f", c.orders) })
	section := func(title string, m func(c awsCost) map[string]float64) {
		row(title, func(c awsCost) string { return fmt.Sprintf("%.3f", c.perOrder(sum(m(c)))) })
		ops := map[string]bool{}
		for _, c := range cols {
			for op := range m(c.cost) {
				ops[op] = true
			}
		}
		for _, op := range slices.Sorted(maps.Keys(ops)) {
			row("  "+op, func(c awsCost) string { return fmt.Sprintf("%.3f", c.perOrder(m(c)[op])) })
		}
	}
	section("SQS requests", func(c awsCost) map[string]float64 { return c.sqs })
	section("DynamoDB writes", func(c awsCost) map[string]float64 { return c.ddbWrite })
	section("DynamoDB reads and control plane", func(c awsCost) map[string]float64 { return c.ddbRead })
	section("rate limiter (DynamoDB)", func(c awsCost) map[string]float64 { return c.limiter })
	section("simulated gateway (not counted)", func(c awsCost) map[string]float64 { return c.gatewayDB })
	dollars := func(f func(s, d, l float64) float64) func(c awsCost) string {
		return func(c awsCost) string { return fmt.Sprintf("$%.2f", f(c.dollarsPerMillion(p))) }
	}
	row("per million orders: SQS", dollars(func(s, _, _ float64) float64 { return s }))
	row("  DynamoDB (rate limiter included)", dollars(func(_, d, _ float64) float64 { return d }))
	row("  of which the rate limiter", dollars(func(_, _, l float64) float64 { return l }))
	row("  SQS + DynamoDB", dollars(func(s, d, _ float64) float64 { return s + d }))
	fmt.Fprintf(w, "  prices: %s\n", p.source)
	fmt.Fprintln(w, "  request units: 1 WRU per single-item write, 4 per TransactWriteItems (2 items at 2 WRU), 1 RRU per read (items ≤ 1 KB)")
}
