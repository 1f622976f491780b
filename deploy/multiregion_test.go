package deploy

import (
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// What moto cannot emulate is checked here statically, against the HCL:
// DynamoDB Global Tables replication (their consistency mode) and Route 53
// (latency records and health checks). Named as such in
// docs/multi-region.md.

// The table is a global table with eventual consistency (MREC), made by
// one region's stack and used as a replica by the others'. MRSC would
// refuse the store's transactions.
func TestTerraformGlobalTableIsEventuallyConsistentAndMadeOnce(t *testing.T) {
	m := loadTerraform(t)
	tbl := m.blocks("resource")["aws_dynamodb_table.orders"]
	if tbl == nil {
		t.Fatal("resource aws_dynamodb_table.orders missing")
	}
	if got := m.attr(tbl.Body, "count"); got != "var.table_home_region == null ? 1 : 0" {
		t.Errorf("table count = %q, want it made only where table_home_region is null", got)
	}
	replica := m.blocks("data")["aws_dynamodb_table.replica"]
	if replica == nil || m.attr(replica.Body, "count") != "var.table_home_region == null ? 0 : 1" || m.attr(replica.Body, "name") != "var.table_name" {
		t.Error("want data aws_dynamodb_table.replica (name var.table_name) where table_home_region is set")
	}
	var content *hclsyntax.Block
	for _, d := range nested(tbl.Body, "dynamic") {
		if len(d.Labels) == 1 && d.Labels[0] == "replica" {
			if c := nested(d.Body, "content"); len(c) == 1 {
				content = c[0]
			}
		}
	}
	if content == nil {
		t.Fatal("no dynamic replica { content { … } }")
	}
	mode := literal(t, content.Body, "consistency_mode").AsString()
	if mode != "EVENTUAL" {
		t.Errorf("replica consistency_mode = %q, want EVENTUAL", mode)
	}
	if strings.Contains(goSource(t, "dynamostore"), "TransactWriteItems") && mode == "STRONG" {
		t.Error("MRSC tables refuse TransactWriteItems, which dynamostore uses")
	}
	// The policies and outputs name the table through the locals that pick
	// the table or its replica.
	for _, doc := range []string{"api", "processor"} {
		found := false
		for _, s := range m.iamStatements(t, doc) {
			found = found || strings.Contains(s[1], "local.table_arn")
		}
		if !found {
			t.Errorf("policy %s does not grant on local.table_arn (the table or this region's replica)", doc)
		}
	}
	for name, src := range m.src {
		if strings.Contains(string(src), "aws_dynamodb_table.orders.") {
			t.Errorf("%s names aws_dynamodb_table.orders without [0]: the replica regions' stacks have none", name)
		}
	}
	if v := m.attr(m.blocks("terraform")[""].Body.Blocks[0].Body, "aws"); !strings.Contains(v, `">= 6.3`) {
		t.Errorf("required aws provider %s, want >= 6.3 (replica.consistency_mode)", v)
	}
}

// Each region's stack adds a latency record for the shared name, answered
// only while that region's /ready passes its health check.
func TestTerraformRoute53RoutesByLatencyToHealthyRegions(t *testing.T) {
	m := loadTerraform(t)
	res := m.blocks("resource")
	hc := res["aws_route53_health_check.api"]
	rec := res["aws_route53_record.api"]
	if hc == nil || rec == nil {
		t.Fatal("want aws_route53_health_check.api and aws_route53_record.api")
	}
	for attr, want := range map[string]string{"type": "HTTPS", "resource_path": "/ready"} {
		if got := literal(t, hc.Body, attr).AsString(); got != want {
			t.Errorf("health check %s = %q, want %q", attr, got, want)
		}
	}
	if !strings.Contains(goSource(t, "httpapi"), `"GET /ready"`) {
		t.Error("the api serves no GET /ready, which the health check probes")
	}
	if p, _ := literal(t, hc.Body, "port").AsBigFloat().Int64(); p != 443 {
		t.Errorf("health check port %d, want 443", p)
	}
	if f, _ := literal(t, hc.Body, "failure_threshold").AsBigFloat().Int64(); f < 1 || f > 3 {
		t.Errorf("failure_threshold %d: a region that is down must leave the answers within 3 checks", f)
	}
	if got := m.attr(hc.Body, "fqdn"); got != "var.regional_hostname" {
		t.Errorf("health check probes %s, want this region's own host var.regional_hostname", got)
	}
	if got := m.attr(rec.Body, "set_identifier"); got != "var.region" {
		t.Errorf("record set_identifier %s, want var.region", got)
	}
	if got := m.attr(rec.Body, "name"); got != "var.api_hostname" {
		t.Errorf("record name %s, want the shared var.api_hostname", got)
	}
	lat := nested(rec.Body, "latency_routing_policy")
	if len(lat) != 1 || m.attr(lat[0].Body, "region") != "var.region" {
		t.Error("want latency_routing_policy { region = var.region }")
	}
	if got := m.attr(rec.Body, "health_check_id"); got != "aws_route53_health_check.api[0].id" {
		t.Errorf("record health_check_id %q, want this region's health check", got)
	}
	alias := nested(rec.Body, "alias")
	if len(alias) != 1 || !literal(t, alias[0].Body, "evaluate_target_health").True() {
		t.Error("want alias { evaluate_target_health = true }")
	}
	if m.attr(hc.Body, "count") != "local.dns ? 1 : 0" || m.attr(rec.Body, "count") != "local.dns ? 1 : 0" {
		t.Error("the record and the health check must follow dns_zone_id (local.dns)")
	}
}

// The two production stacks: us-east-1 makes the table with its replica in
// eu-west-1, eu-west-1 uses it; both publish the same name.
func TestTerraformProductionRegionsShareOneTableAndOneName(t *testing.T) {
	m := loadTerraform(t)
	vars := func(file string) map[string]string {
		b := m.bodies[file]
		if b == nil {
			t.Fatalf("no %s", file)
		}
		out := map[string]string{}
		for name, a := range b.Attributes {
			out[name] = m.text(a.Expr.Range())
		}
		return out
	}
	use1, euw1 := vars("prod-us-east-1.tfvars"), vars("prod-eu-west-1.tfvars")
	if use1["global_tables"] != `["eu-west-1"]` || use1["table_home_region"] != "" {
		t.Errorf("prod-us-east-1: global_tables %s, table_home_region %s; want the table made there with a replica in eu-west-1", use1["global_tables"], use1["table_home_region"])
	}
	if euw1["table_home_region"] != `"us-east-1"` || euw1["global_tables"] != "" {
		t.Errorf("prod-eu-west-1: table_home_region %s, global_tables %s; want the us-east-1 table's replica", euw1["table_home_region"], euw1["global_tables"])
	}
	for _, k := range []string{"api_hostname", "table_name", "queue_name", "dlq_name", "dns_zone_id"} {
		if use1[k] != euw1[k] || use1[k] == "" {
			t.Errorf("%s: %s in us-east-1, %s in eu-west-1; want one value", k, use1[k], euw1[k])
		}
	}
	if use1["regional_hostname"] == euw1["regional_hostname"] {
		t.Errorf("both regions' health checks probe %s", use1["regional_hostname"])
	}
}
