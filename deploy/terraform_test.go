package deploy

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

const tfDir = "terraform"

// tfModule is the parsed deploy/terraform module.
type tfModule struct {
	src    map[string][]byte
	bodies map[string]*hclsyntax.Body // by file name
}

func loadTerraform(t *testing.T) *tfModule {
	t.Helper()
	m := &tfModule{src: map[string][]byte{}, bodies: map[string]*hclsyntax.Body{}}
	p := hclparse.NewParser()
	names, err := filepath.Glob(filepath.Join(tfDir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range names {
		name := filepath.Base(path)
		if !strings.HasSuffix(name, ".tf") && !strings.HasSuffix(name, ".tfvars") {
			continue
		}
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, diags := p.ParseHCL(src, name)
		if diags.HasErrors() {
			t.Fatalf("%s does not parse: %s", name, diags.Error())
		}
		m.src[name] = src
		m.bodies[name] = f.Body.(*hclsyntax.Body)
	}
	if len(m.bodies) < 5 {
		t.Fatalf("found %d Terraform files in deploy/terraform, want the module", len(m.bodies))
	}
	return m
}

// blocks returns the top-level blocks of the .tf files of a type, by
// their labels joined with ".".
func (m *tfModule) blocks(typ string) map[string]*hclsyntax.Block {
	out := map[string]*hclsyntax.Block{}
	for name, b := range m.bodies {
		if !strings.HasSuffix(name, ".tf") {
			continue
		}
		for _, blk := range b.Blocks {
			if blk.Type == typ {
				out[strings.Join(blk.Labels, ".")] = blk
			}
		}
	}
	return out
}

// text is the source text of a range.
func (m *tfModule) text(r hcl.Range) string {
	return string(r.SliceBytes(m.src[r.Filename]))
}

// attr returns the source text of an attribute of body, or "" if absent.
func (m *tfModule) attr(b *hclsyntax.Body, name string) string {
	a, ok := b.Attributes[name]
	if !ok {
		return ""
	}
	return m.text(a.Expr.Range())
}

// literal evaluates a constant attribute (a literal, no references).
func literal(t *testing.T, b *hclsyntax.Body, name string) cty.Value {
	t.Helper()
	a, ok := b.Attributes[name]
	if !ok {
		t.Fatalf("attribute %s missing", name)
	}
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() {
		t.Fatalf("attribute %s is not a constant: %s", name, diags.Error())
	}
	return v
}

func nested(b *hclsyntax.Body, typ string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, blk := range b.Blocks {
		if blk.Type == typ {
			out = append(out, blk)
		}
	}
	return out
}

func TestTerraformFilesAreFormatted(t *testing.T) {
	m := loadTerraform(t)
	for name, src := range m.src {
		if got := hclwrite.Format(src); !bytes.Equal(got, src) {
			t.Errorf("%s is not formatted: run terraform fmt deploy/terraform", name)
		}
	}
}

func TestTerraformDeclaresEveryVariableItUses(t *testing.T) {
	m := loadTerraform(t)
	declared := m.blocks("variable")
	for _, want := range []string{"region", "global_tables", "kms_key_arn", "aws_endpoint_url",
		"skip_credentials_validation", "skip_metadata_api_check", "skip_requesting_account_id",
		"queue_name", "dlq_name", "table_name", "max_receives"} {
		if declared[want] == nil {
			t.Errorf("variable %q is not declared", want)
		}
	}
	for name, blk := range declared {
		if blk.Body.Attributes["description"] == nil || blk.Body.Attributes["type"] == nil {
			t.Errorf("variable %q needs a type and a description", name)
		}
	}
	for name, body := range m.bodies {
		if strings.HasSuffix(name, ".tfvars") {
			for key := range body.Attributes {
				if declared[key] == nil {
					t.Errorf("%s sets %q, which no variable declares", name, key)
				}
			}
			continue
		}
		hclsyntax.VisitAll(body, func(n hclsyntax.Node) hcl.Diagnostics {
			if e, ok := n.(*hclsyntax.ScopeTraversalExpr); ok && e.Traversal.RootName() == "var" && len(e.Traversal) > 1 {
				if a, ok := e.Traversal[1].(hcl.TraverseAttr); ok && declared[a.Name] == nil {
					t.Errorf("%s uses var.%s, which is not declared", name, a.Name)
				}
			}
			return nil
		})
	}
}

// The names the app uses by default must be the module's defaults, so that
// `orderflow init` and Terraform make the same queue, DLQ and table.
func TestTerraformDefaultsAreTheAppsNames(t *testing.T) {
	m := loadTerraform(t)
	vars := m.blocks("variable")
	settings := appSettings(t)
	for _, c := range []struct{ variable, setting, want string }{
		{"queue_name", "ORDERFLOW_QUEUE_NAME", "order-queue"},
		{"dlq_name", "ORDERFLOW_DLQ_NAME", "order-queue-dlq"},
		{"table_name", "ORDERFLOW_TABLE_NAME", "Orders"},
		{"max_receives", "ORDERFLOW_MAX_RECEIVES", settings["ORDERFLOW_MAX_RECEIVES"]},
		{"region", "AWS_REGION", settings["AWS_REGION"]},
	} {
		blk := vars[c.variable]
		if blk == nil {
			t.Errorf("variable %q missing", c.variable)
			continue
		}
		v := literal(t, blk.Body, "default")
		got := ""
		switch v.Type() {
		case cty.String:
			got = v.AsString()
		case cty.Number:
			got = v.AsBigFloat().Text('f', -1)
		}
		if got != c.want {
			t.Errorf("variable %s defaults to %q, want %q", c.variable, got, c.want)
		}
		if def, ok := settings[c.setting]; ok && def != c.want {
			t.Errorf("setting %s defaults to %q, Terraform's %s to %q", c.setting, def, c.variable, got)
		}
		if !strings.Contains(m.text(blk.Body.Attributes["description"].Expr.Range()), c.setting) {
			t.Errorf("variable %s's description should name the app's setting %s", c.variable, c.setting)
		}
	}
}

func TestTerraformQueuesHaveRedriveAndEncryption(t *testing.T) {
	m := loadTerraform(t)
	res := m.blocks("resource")
	q, dlq := res["aws_sqs_queue.orders"], res["aws_sqs_queue.dlq"]
	if q == nil || dlq == nil {
		t.Fatalf("want resources aws_sqs_queue.orders and aws_sqs_queue.dlq, have %v", sortedKeys(res))
	}
	if got := m.attr(q.Body, "name"); got != "var.queue_name" {
		t.Errorf("queue name is %s, want var.queue_name", got)
	}
	if got := m.attr(dlq.Body, "name"); got != "var.dlq_name" {
		t.Errorf("dlq name is %s, want var.dlq_name", got)
	}
	redrive := m.attr(q.Body, "redrive_policy")
	for _, want := range []string{"deadLetterTargetArn", "aws_sqs_queue.dlq.arn", "maxReceiveCount", "var.max_receives"} {
		if !strings.Contains(redrive, want) {
			t.Errorf("redrive_policy %q lacks %s", redrive, want)
		}
	}
	for name, blk := range map[string]*hclsyntax.Block{"orders": q, "dlq": dlq} {
		if m.attr(blk.Body, "sqs_managed_sse_enabled") == "" || m.attr(blk.Body, "kms_master_key_id") != "var.kms_key_arn" {
			t.Errorf("queue %s must be encrypted: SQS-managed SSE, or var.kms_key_arn", name)
		}
	}
	allow := res["aws_sqs_queue_redrive_allow_policy.dlq"]
	if allow == nil || !strings.Contains(m.attr(allow.Body, "redrive_allow_policy"), "aws_sqs_queue.orders.arn") {
		t.Errorf("the DLQ should accept dead letters from the order queue only (aws_sqs_queue_redrive_allow_policy.dlq)")
	}
}

func TestTerraformTableMatchesTheStore(t *testing.T) {
	m := loadTerraform(t)
	tbl := m.blocks("resource")["aws_dynamodb_table.orders"]
	if tbl == nil {
		t.Fatal("resource aws_dynamodb_table.orders missing")
	}
	b := tbl.Body
	for attr, want := range map[string]string{"billing_mode": "PAY_PER_REQUEST", "hash_key": "pk", "range_key": "sk"} {
		if got := literal(t, b, attr).AsString(); got != want {
			t.Errorf("%s = %q, want %q", attr, got, want)
		}
	}
	if got := m.attr(b, "name"); got != "var.table_name" {
		t.Errorf("table name is %s, want var.table_name", got)
	}
	attrs := map[string]string{}
	for _, a := range nested(b, "attribute") {
		attrs[literal(t, a.Body, "name").AsString()] = literal(t, a.Body, "type").AsString()
	}
	if want := map[string]string{"pk": "S", "sk": "S", "gsi1pk": "S", "gsi1sk": "S", "pending_pk": "S", "pending_sk": "S"}; !mapsEqual(attrs, want) {
		t.Errorf("attributes %v, want %v", attrs, want)
	}
	wantGSIs := map[string]map[string]string{
		"by_user":    {"hash_key": "gsi1pk", "range_key": "gsi1sk", "projection_type": "ALL"},
		"by_pending": {"hash_key": "pending_pk", "range_key": "pending_sk", "projection_type": "ALL"},
	}
	gsis := nested(b, "global_secondary_index")
	if len(gsis) != len(wantGSIs) {
		t.Fatalf("%d global secondary indexes, want by_user and by_pending", len(gsis))
	}
	for _, gsi := range gsis {
		name := literal(t, gsi.Body, "name").AsString()
		want, ok := wantGSIs[name]
		if !ok {
			t.Errorf("unexpected index %q", name)
			continue
		}
		for attr, v := range want {
			if got := literal(t, gsi.Body, attr).AsString(); got != v {
				t.Errorf("index %s: %s = %q, want %q", name, attr, got, v)
			}
		}
	}
	ttl := nested(b, "ttl")
	if len(ttl) != 1 || literal(t, ttl[0].Body, "attribute_name").AsString() != "expires_at" || !literal(t, ttl[0].Body, "enabled").True() {
		t.Error("want ttl { attribute_name = \"expires_at\", enabled = true }")
	}
	if pitr := nested(b, "point_in_time_recovery"); len(pitr) != 1 || m.attr(pitr[0].Body, "enabled") != "var.point_in_time_recovery" {
		t.Error("want point_in_time_recovery { enabled = var.point_in_time_recovery }")
	}
	if sse := nested(b, "server_side_encryption"); len(sse) != 1 || !literal(t, sse[0].Body, "enabled").True() {
		t.Error("want server_side_encryption { enabled = true }")
	}
	// global_tables adds one replica per region, which needs a stream.
	var replica *hclsyntax.Block
	for _, d := range nested(b, "dynamic") {
		if len(d.Labels) == 1 && d.Labels[0] == "replica" {
			replica = d
		}
	}
	if replica == nil || !strings.Contains(m.attr(replica.Body, "for_each"), "var.global_tables") {
		t.Error("want dynamic \"replica\" { for_each = var.global_tables }")
	}
	if !strings.Contains(m.attr(b, "stream_enabled"), "var.global_tables") {
		t.Error("stream_enabled must follow var.global_tables (replicas need the stream)")
	}
	if d := literal(t, m.blocks("variable")["global_tables"].Body, "default"); d.LengthInt() != 0 {
		t.Errorf("global_tables defaults to %v, want no replicas", d)
	}

	// The store must use the same key and index names.
	src := goSource(t, "dynamostore")
	for _, name := range []string{"pk", "sk", "gsi1pk", "gsi1sk", "pending_pk", "pending_sk", "by_user", "by_pending", "expires_at"} {
		if !strings.Contains(src, `"`+name+`"`) {
			t.Errorf("dynamostore never names %q; Terraform's table and the store disagree", name)
		}
	}
}

func TestTerraformOutputsAreTheAppsSettings(t *testing.T) {
	m := loadTerraform(t)
	outs := m.blocks("output")
	settings := appSettings(t)
	for _, c := range []struct{ output, value, setting string }{
		{"sqs_queue_url", "aws_sqs_queue.orders.", "SQS_QUEUE_URL"},
		{"sqs_dlq_url", "aws_sqs_queue.dlq.", "SQS_DLQ_URL"},
		{"dynamodb_table", "local.table_name", "DDB_TABLE"},
		{"dynamodb_table_name", "local.table_name", "DDB_TABLE"},
	} {
		o := outs[c.output]
		if o == nil {
			t.Errorf("output %q missing", c.output)
			continue
		}
		if v := m.attr(o.Body, "value"); !strings.HasPrefix(v, c.value) {
			t.Errorf("output %s = %s, want %s…", c.output, v, c.value)
		}
		if _, ok := settings[c.setting]; !ok {
			t.Errorf("the app has no setting %s for output %s", c.setting, c.output)
		}
		if !strings.Contains(m.attr(o.Body, "description"), c.setting) {
			t.Errorf("output %s's description should name %s", c.output, c.setting)
		}
	}
	appEnv := m.attr(outs["app_env"].Body, "value")
	for _, s := range []string{"SQS_QUEUE_URL", "SQS_DLQ_URL", "DDB_TABLE", "AWS_REGION"} {
		if _, ok := settings[s]; !ok {
			t.Errorf("app_env exports %s, which is no setting", s)
		}
		if !strings.Contains(appEnv, "export "+s+"=") {
			t.Errorf("app_env does not export %s", s)
		}
	}
}

func TestTerraformDevTargetsLocalStackAndProdUsesTheCredentialChain(t *testing.T) {
	m := loadTerraform(t)
	dev, prod := m.bodies["dev.tfvars"], m.bodies["prod.tfvars"]
	if dev == nil || prod == nil {
		t.Fatal("want dev.tfvars and prod.tfvars")
	}
	if got := literal(t, dev, "aws_endpoint_url").AsString(); got != "http://localhost:4566" {
		t.Errorf("dev.tfvars aws_endpoint_url = %q, want LocalStack's http://localhost:4566", got)
	}
	for _, flag := range []string{"skip_credentials_validation", "skip_metadata_api_check", "skip_requesting_account_id"} {
		if !literal(t, dev, flag).True() {
			t.Errorf("dev.tfvars must set %s = true for LocalStack", flag)
		}
	}
	for _, key := range []string{"aws_endpoint_url", "aws_access_key", "aws_secret_key"} {
		if _, ok := prod.Attributes[key]; ok {
			t.Errorf("prod.tfvars sets %s: production uses real endpoints and the credential chain", key)
		}
	}
	provider := m.blocks("provider")["aws"]
	if provider == nil {
		t.Fatal("no provider \"aws\" block")
	}
	eps := nested(provider.Body, "endpoints")
	if len(eps) != 1 {
		t.Fatal("provider aws needs an endpoints block for emulators")
	}
	for _, svc := range []string{"sqs", "dynamodb", "iam", "sts"} {
		if got := m.attr(eps[0].Body, svc); got != "var.aws_endpoint_url" {
			t.Errorf("endpoints.%s = %q, want var.aws_endpoint_url", svc, got)
		}
	}
}

// iamStatements returns, per policy document, its statements as
// sid → (actions, resources source text).
func (m *tfModule) iamStatements(t *testing.T, doc string) map[string][2]string {
	t.Helper()
	d := m.blocks("data")["aws_iam_policy_document."+doc]
	if d == nil {
		t.Fatalf("data aws_iam_policy_document.%s missing", doc)
	}
	out := map[string][2]string{}
	for _, s := range nested(d.Body, "statement") {
		out[literal(t, s.Body, "sid").AsString()] = [2]string{m.resolve(m.attr(s.Body, "actions")), m.resolve(m.attr(s.Body, "resources"))}
	}
	return out
}

// resolve replaces an expression that is only a reference to a local
// value by that value's source text.
func (m *tfModule) resolve(expr string) string {
	name, ok := strings.CutPrefix(expr, "local.")
	if !ok {
		return expr
	}
	for file, b := range m.bodies { // every locals block (blocks keys them all by "")
		if !strings.HasSuffix(file, ".tf") {
			continue
		}
		for _, blk := range b.Blocks {
			if a, ok := blk.Body.Attributes[name]; ok && blk.Type == "locals" {
				return m.text(a.Expr.Range())
			}
		}
	}
	return expr
}

func TestTerraformPoliciesAreLeastPrivilege(t *testing.T) {
	m := loadTerraform(t)
	res := m.blocks("resource")
	for _, role := range []string{"api", "processor"} {
		p := res["aws_iam_policy."+role]
		if p == nil || m.attr(p.Body, "policy") != "data.aws_iam_policy_document."+role+".json" {
			t.Errorf("want aws_iam_policy.%s with the policy document %s", role, role)
		}
	}
	for _, c := range []struct {
		doc           string
		mustNot       []string // on any resource
		mustNotOnDLQ  []string
		mustOnQueue   []string
		mustNotOnMain []string
	}{
		{doc: "api",
			mustNot:     []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:PurgeQueue", "sqs:SetQueueAttributes", "dynamodb:Scan", "dynamodb:DeleteTable", "dynamodb:CreateTable", "*"},
			mustOnQueue: []string{"sqs:SendMessage"}},
		{doc: "processor",
			mustNot:      []string{"sqs:PurgeQueue", "sqs:SetQueueAttributes", "dynamodb:Scan", "dynamodb:DeleteTable", "dynamodb:CreateTable", "*"},
			mustNotOnDLQ: []string{"sqs:DeleteMessage", "sqs:SendMessage"},
			mustOnQueue:  []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"}},
	} {
		stmts := m.iamStatements(t, c.doc)
		var onQueue string
		if len(stmts) < 3 {
			t.Errorf("%s has statements %v, want its queue, table and KMS statements", c.doc, sortedKeys(stmts))
		}
		for sid, s := range stmts {
			if !strings.Contains(s[0], `"sqs:`) && !strings.Contains(s[0], `"dynamodb:`) && !strings.Contains(s[0], `"kms:`) {
				t.Errorf("%s statement %s has actions %s: not a list of sqs, dynamodb or kms actions", c.doc, sid, s[0])
			}
			actions, resources := s[0], s[1]
			if strings.Contains(resources, `"*"`) {
				t.Errorf("%s statement %s grants on every resource", c.doc, sid)
			}
			for _, a := range c.mustNot {
				if strings.Contains(actions, `"`+a+`"`) {
					t.Errorf("%s statement %s grants %s", c.doc, sid, a)
				}
			}
			if strings.Contains(resources, "aws_sqs_queue.dlq.arn") {
				for _, a := range c.mustNotOnDLQ {
					if strings.Contains(actions, `"`+a+`"`) {
						t.Errorf("%s statement %s grants %s on the DLQ", c.doc, sid, a)
					}
				}
			}
			if strings.Contains(resources, "aws_sqs_queue.orders.arn") {
				onQueue += actions
			}
		}
		for _, a := range c.mustOnQueue {
			if !strings.Contains(onQueue, `"`+a+`"`) {
				t.Errorf("%s is not allowed %s on the order queue", c.doc, a)
			}
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// goSource returns the non-test Go source of a package of the module.
func goSource(t *testing.T, pkg string) string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(root, pkg, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	names = slices.DeleteFunc(names, func(n string) bool { return strings.HasSuffix(n, "_test.go") })
	if len(names) == 0 {
		t.Fatalf("package %s has no Go files", pkg)
	}
	var b strings.Builder
	for _, n := range names {
		src, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(src)
	}
	return b.String()
}
