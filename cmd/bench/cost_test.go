package main

import (
	"math"
	"strings"
	"testing"
)

// series builds an aws_requests_total label list as metricsPage.series keys it.
func series(caller, service, op, outcome string) string {
	return `caller="` + caller + `",operation="` + op + `",outcome="` + outcome + `",service="` + service + `"`
}

func TestCostOfSplitsByServiceOperationAndCaller(t *testing.T) {
	before := map[string]float64{
		series("orderflow", "sqs", "SendMessageBatch", "success"):     5, // start-up, not the orders'
		series("orderflow", "dynamodb", "PutItem", "success"):         2,
		series("orderflow", "dynamodb", "DescribeTable", "success"):   1,
		series("simulated_gateway", "dynamodb", "PutItem", "success"): 0,
	}
	after := map[string]float64{
		series("orderflow", "sqs", "SendMessageBatch", "success"):                15,
		series("orderflow", "sqs", "ReceiveMessage", "success"):                  20,
		series("orderflow", "dynamodb", "PutItem", "success"):                    102,
		series("orderflow", "dynamodb", "UpdateItem", "success"):                 150,
		series("orderflow", "dynamodb", "UpdateItem", "condition_failed"):        50,
		series("orderflow", "dynamodb", "GetItem", "success"):                    10,
		series("orderflow", "dynamodb", "DescribeTable", "success"):              1,
		series("rate_limiter", "dynamodb", "UpdateItem", "success"):              100,
		series("simulated_gateway", "dynamodb", "PutItem", "success"):            100,
		series("simulated_gateway", "dynamodb", "TransactWriteItems", "success"): 3,
	}
	c := costOf(before, after, 100)
	check := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("%s: got %v, want %v", what, got, want)
		}
	}
	check("SQS per order", c.perOrder(sum(c.sqs)), 0.3)
	check("SendMessageBatch per order", c.perOrder(c.sqs["SendMessageBatch"]), 0.1)
	check("ReceiveMessage per order", c.perOrder(c.sqs["ReceiveMessage"]), 0.2)
	// A failed condition is a write DynamoDB bills: outcomes add up.
	check("UpdateItem per order", c.perOrder(c.ddbWrite["UpdateItem"]), 2)
	check("writes per order", c.perOrder(sum(c.ddbWrite)), 3)
	check("reads per order", c.perOrder(sum(c.ddbRead)), 0.1)
	if _, ok := c.ddbRead["DescribeTable"]; ok {
		t.Error("an operation with no requests between the readings is listed")
	}
	check("rate limiter per order", c.perOrder(sum(c.limiter)), 1)
	check("gateway per order", c.perOrder(sum(c.gatewayDB)), 1.03)
	if c.ddbWrite["PutItem"] != 100 || c.limiter["UpdateItem"] != 100 {
		t.Errorf("the gateway's or the limiter's requests are counted as orderflow's: writes %v", c.ddbWrite)
	}
}

func TestDollarsPerMillionOrders(t *testing.T) {
	p := prices{sqsPerMillion: 0.40, wruPerMillion: 0.625, rruPerMillion: 0.125}
	c := awsCost{orders: 10,
		sqs:       map[string]float64{"SendMessage": 10, "ReceiveMessage": 5, "DeleteMessage": 10}, // 2.5 per order
		ddbWrite:  map[string]float64{"PutItem": 10, "TransactWriteItems": 5},                      // 1 + 0.5×4 WRU
		ddbRead:   map[string]float64{"GetItem": 20, "DescribeTable": 7},                           // 2 RRU; control plane free
		limiter:   map[string]float64{"UpdateItem": 10},                                            // 1 WRU
		gatewayDB: map[string]float64{"PutItem": 1000, "GetItem": 1000},                            // not orderflow's
	}
	sqs, ddb, limiter := c.dollarsPerMillion(p)
	for _, tt := range []struct {
		what      string
		got, want float64
	}{
		// A million orders at 2.5 requests each are 2.5 million requests.
		{"SQS", sqs, 2.5 * 0.40},
		{"rate limiter", limiter, 1 * 0.625},
		{"DynamoDB with the limiter", ddb, 3*0.625 + 2*0.125 + 0.625},
	} {
		if math.Abs(tt.got-tt.want) > 1e-9 {
			t.Errorf("%s: got $%v per million orders, want $%v", tt.what, tt.got, tt.want)
		}
	}
	if s, d, l := (awsCost{}).dollarsPerMillion(p); s != 0 || d != 0 || l != 0 {
		t.Errorf("no orders and no requests cost %v %v %v, want 0", s, d, l)
	}
}

func TestPrintCostsSideBySide(t *testing.T) {
	ours := awsCost{orders: 100, sqs: map[string]float64{"SendMessageBatch": 10}, ddbWrite: map[string]float64{"PutItem": 100},
		ddbRead: map[string]float64{}, limiter: map[string]float64{}, gatewayDB: map[string]float64{"PutItem": 100}}
	base := awsCost{orders: 50, sqs: map[string]float64{"SendMessage": 50, "DeleteMessage": 50}, ddbWrite: map[string]float64{"PutItem": 50},
		ddbRead: map[string]float64{}, limiter: map[string]float64{}, gatewayDB: map[string]float64{}}
	var b strings.Builder
	printCosts(&b, listPrices, column{"orderflow", ours}, column{"seed's design", base})
	out := b.String()
	for _, want := range []string{
		"orderflow       seed's design",
		// An operation only one design uses has a row, 0 for the other.
		"    DeleteMessage                                    0.000               1.000",
		"    SendMessageBatch                                 0.100               0.000",
		"  SQS requests                                       0.100               2.000",
		"  rate limiter (DynamoDB)                            0.000               0.000",
		"per million orders: SQS                            $0.04               $0.80",
		"SQS + DynamoDB                                   $0.67               $1.43",
		"$0.40 per million requests",
		"$0.625 per million WRU",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output has no %q:\n%s", want, out)
		}
	}
}
