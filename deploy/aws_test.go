package deploy

import (
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/awstest"
)

// composeEnv returns a compose service's environment as it would run on
// an emulator at endpoint instead of http://aws:4566, with the queue, DLQ
// and table renamed (fresh names per test) and no fixed listen addresses.
func composeEnv(t *testing.T, s composeService, endpoint string, rename map[string]string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for k, v := range s.Environment {
		v = strings.ReplaceAll(interpolate(v), "http://aws:4566", endpoint)
		env[k] = v
	}
	for _, k := range []string{"ORDERFLOW_QUEUE_NAME", "ORDERFLOW_DLQ_NAME"} {
		old, ok := env[k]
		if !ok {
			continue
		}
		for _, urlKey := range []string{"SQS_QUEUE_URL", "SQS_DLQ_URL"} {
			if u, ok := env[urlKey]; ok && strings.HasSuffix(u, "/"+old) {
				env[urlKey] = strings.TrimSuffix(u, "/"+old) + "/" + rename[k]
			}
		}
		env[k] = rename[k]
	}
	if old, ok := env["ORDERFLOW_TABLE_NAME"]; ok {
		if env["DDB_TABLE"] == old {
			env["DDB_TABLE"] = rename["ORDERFLOW_TABLE_NAME"]
		}
		env["ORDERFLOW_TABLE_NAME"] = rename["ORDERFLOW_TABLE_NAME"]
	}
	delete(env, "ORDERFLOW_API_ADDR")
	delete(env, "ORDERFLOW_PROCESSOR_ADDR")
	delete(env, "ORDERFLOW_PUBLIC_URL")
	env["ORDERFLOW_LOG_LEVEL"] = "warn"
	return env
}

var awsRequest = regexp.MustCompile(`^aws_requests_total\{.*\}`)

// awsOperations returns the service:operation pairs a /metrics scrape
// counted in aws_requests_total.
func awsOperations(t *testing.T, url string) []string {
	t.Helper()
	body := scrapeBody(t, url)
	label := func(line, name string) string {
		m := regexp.MustCompile(name + `="([^"]*)"`).FindStringSubmatch(line)
		if m == nil {
			return ""
		}
		return m[1]
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(body, "\n") {
		if awsRequest.MatchString(line) {
			seen[label(line, "service")+":"+label(line, "operation")] = true
		}
	}
	return sortedKeys(seen)
}

// iamActions maps an SDK operation to the IAM actions it needs.
func iamActions(op string) []string {
	service, name, _ := strings.Cut(op, ":")
	switch op {
	case "dynamodb:TransactWriteItems":
		return []string{"dynamodb:ConditionCheckItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}
	case "dynamodb:TransactGetItems", "dynamodb:BatchGetItem":
		return []string{"dynamodb:GetItem"}
	case "dynamodb:BatchWriteItem":
		return []string{"dynamodb:PutItem"}
	}
	if service == "sqs" {
		name = strings.TrimSuffix(name, "Batch") // SendMessageBatch needs sqs:SendMessage
	}
	return []string{service + ":" + name}
}

// The compose stack's init, api and processor, with their environments
// from compose.yaml pointed at moto_server, pass smoke.sh; what they call
// on AWS is allowed by Terraform's policies; and every metric the rules
// and dashboard use exists in the AWS mode too.
func TestSmokeAWSModeOnMoto(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	bin := orderflowBinary(t)
	svcs := loadCompose(t)
	queue := awstest.Name("smoke")
	rename := map[string]string{
		"ORDERFLOW_QUEUE_NAME": queue,
		"ORDERFLOW_DLQ_NAME":   queue + "-dlq",
		"ORDERFLOW_TABLE_NAME": awstest.Name("Orders"),
	}

	initEnv := composeEnv(t, svcs["init"], endpoint, rename)
	cmd := exec.Command(bin, svcs["init"].Command...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range initEnv {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("orderflow %v: %v\n%s", svcs["init"].Command, err, out)
	}
	made := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "export "); ok {
			for _, kv := range strings.Fields(rest) {
				k, v, _ := strings.Cut(kv, "=")
				made[k] = v
			}
		}
	}

	apiEnv := composeEnv(t, svcs["api"], endpoint, rename)
	procEnv := composeEnv(t, svcs["processor"], endpoint, rename)
	// What init made is what compose tells the api and processor to use.
	for _, k := range []string{"SQS_QUEUE_URL", "SQS_DLQ_URL", "DDB_TABLE"} {
		last := func(s string) string { return s[strings.LastIndex(s, "/")+1:] }
		if made[k] == "" || last(made[k]) != last(apiEnv[k]) || last(made[k]) != last(procEnv[k]) {
			t.Errorf("init made %s=%s; compose gives the api %s and the processor %s", k, made[k], apiEnv[k], procEnv[k])
		}
	}

	api := startOrderflow(t, apiEnv, svcs["api"].Command...)
	proc := startOrderflow(t, procEnv, svcs["processor"].Command...)
	smoke, code := runScript(t, nil, "smoke.sh", api.api, proc.processor)
	if code != 0 || !strings.Contains(smoke, "smoke: all checks passed") {
		t.Fatalf("smoke.sh against the AWS mode exited %d:\n%s\napi:\n%s\nprocessor:\n%s", code, smoke, api.out, proc.out)
	}

	// The metrics only the AWS mode has.
	apiNames, procNames := scrape(t, api.api+"/metrics"), scrape(t, proc.processor+"/metrics")
	for name, where := range usedMetrics(t) {
		if !awsOnly[name] {
			continue
		}
		if _, ok := apiNames[name]; !ok {
			t.Errorf("%s (used by %s) is not exported by the api in the AWS mode", name, strings.Join(where, ", "))
		}
		if _, ok := procNames[name]; !ok {
			t.Errorf("%s (used by %s) is not exported by the processor in the AWS mode", name, strings.Join(where, ", "))
		}
	}

	// Least privilege that still works: each call made is allowed.
	m := loadTerraform(t)
	for role, url := range map[string]string{"api": api.api, "processor": proc.processor} {
		allowed := map[string]bool{}
		for _, s := range m.iamStatements(t, role) {
			for _, a := range regexp.MustCompile(`"([a-z0-9]+:[A-Za-z]+)"`).FindAllStringSubmatch(s[0], -1) {
				allowed[a[1]] = true
			}
		}
		ops := awsOperations(t, url+"/metrics")
		if len(ops) == 0 {
			t.Errorf("the %s counted no AWS call in aws_requests_total", role)
		}
		var missing []string
		for _, op := range ops {
			for _, a := range iamActions(op) {
				if !allowed[a] {
					missing = append(missing, a+" (for "+op+")")
				}
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Errorf("Terraform's %s policy lacks %v; the %s called %v", role, missing, role, ops)
		}
		t.Logf("%s called %v", role, ops)
	}
}
