package awstest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// ElasticMQVersion is the ElasticMQ release scripts/test.sh installs (Maven
// Central org.elasticmq:elasticmq-server_2.13) into
// ~/.cache/orderflow/elasticmq-<version>/lib.
const ElasticMQVersion = "1.6.16"

// Backend is one SQS implementation the SQS tests run against. DynamoDB is
// moto's in every backend (ElasticMQ speaks only SQS), so a backend whose
// SQS is not moto also exercises the per-service endpoints
// AWS_ENDPOINT_URL_SQS and AWS_ENDPOINT_URL_DYNAMODB.
type Backend struct {
	Name     string // "moto" or "elasticmq": the subtest's name
	SQS      string // base URL of the SQS endpoint
	DynamoDB string // base URL of the DynamoDB endpoint (moto)
}

// ForEachSQS runs test as one subtest per SQS backend, named after it:
// "moto", and "elasticmq" with DynamoDB on moto. Each subtest finds or
// starts its servers as Endpoint and ElasticMQ do, and is skipped (failed
// under CI=true) on its own when they cannot be had: a run without
// ElasticMQ shows a skipped elasticmq subtest, never a pass on moto alone.
func ForEachSQS(t *testing.T, test func(t *testing.T, b Backend)) {
	t.Helper()
	t.Run("moto", func(t *testing.T) {
		moto := Endpoint(t)
		test(t, Backend{Name: "moto", SQS: moto, DynamoDB: moto})
	})
	t.Run("elasticmq", func(t *testing.T) {
		test(t, Backend{Name: "elasticmq", SQS: ElasticMQ(t), DynamoDB: Endpoint(t)})
	})
}

var (
	emqOnce     sync.Once
	emqEndpoint string
	emqErr      error
)

// ElasticMQ returns the base URL of a running ElasticMQ: the one at
// ORDERFLOW_TEST_SQS_ENDPOINT, or else one this test binary starts on a
// free loopback port from the classpath ORDERFLOW_ELASTICMQ_CLASSPATH
// (scripts/test.sh sets it to what it installs) or the jars of
// ~/.cache/orderflow/elasticmq-<ElasticMQVersion>/lib, with java from
// PATH. It skips t, or fails it under CI=true, when there is none.
func ElasticMQ(t testing.TB) string {
	t.Helper()
	emqOnce.Do(func() { emqEndpoint, emqErr = findOrStartElasticMQ() })
	need(t, "ElasticMQ", "set ORDERFLOW_TEST_SQS_ENDPOINT or ORDERFLOW_ELASTICMQ_CLASSPATH, or run scripts/test.sh once", emqErr)
	return emqEndpoint
}

func findOrStartElasticMQ() (string, error) {
	if u := strings.TrimRight(os.Getenv("ORDERFLOW_TEST_SQS_ENDPOINT"), "/"); u != "" {
		return u, nil
	}
	cp, err := ElasticMQClasspath()
	if err != nil {
		return "", err
	}
	url, _, err := StartElasticMQ(cp, 0)
	return url, err
}

// ElasticMQClasspath returns ORDERFLOW_ELASTICMQ_CLASSPATH, or the jars
// scripts/test.sh installs, or an error if neither is there.
func ElasticMQClasspath() (string, error) {
	if cp := os.Getenv("ORDERFLOW_ELASTICMQ_CLASSPATH"); cp != "" {
		return cp, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	lib := filepath.Join(home, ".cache", "orderflow", "elasticmq-"+ElasticMQVersion, "lib")
	if jars, _ := filepath.Glob(filepath.Join(lib, "elasticmq-server_*.jar")); len(jars) == 0 {
		return "", fmt.Errorf("ElasticMQ %s is not installed in %s", ElasticMQVersion, lib)
	}
	return filepath.Join(lib, "*"), nil
}

// elasticMQConf is ElasticMQ's HOCON configuration: the SQS REST server
// alone on 127.0.0.1:%[1]d; ARNs of region us-east-1 (ElasticMQ's default
// region is "elasticmq") and account 000000000000; queue URLs
// http://127.0.0.1:PORT/000000000000/NAME, built from node-address, not
// from the request's Host header as moto does; strict SQS limits (10
// messages a batch, 256 KiB a message) as AWS has them; no statistics UI.
// Queues are made by the tests, as by orderflow init.
const elasticMQConf = `include classpath("application.conf")
node-address { protocol = http, host = "127.0.0.1", port = %[1]d, context-path = "" }
rest-sqs { enabled = true, bind-port = %[1]d, bind-hostname = "127.0.0.1", sqs-limits = strict }
rest-stats { enabled = false }
aws { region = us-east-1, accountId = 000000000000 }
`

// StartElasticMQ runs ElasticMQ from classpath on port (0: a free one) and
// waits until it answers; its log goes to elasticmq-PORT.log in the
// temporary directory. The server gets SIGKILL when the calling process
// exits (Pdeathsig), so no run leaves one behind. It returns the server's
// base URL and a function that stops it (cmd/bench uses it; tests leave
// the server to die with the test binary).
func StartElasticMQ(classpath string, port int) (url string, stop func(), err error) {
	if port == 0 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", nil, err
		}
		port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	conf, err := os.CreateTemp("", "elasticmq-*.conf")
	if err != nil {
		return "", nil, err
	}
	defer os.Remove(conf.Name()) // read once, at start
	if _, err := fmt.Fprintf(conf, elasticMQConf, port); err != nil {
		return "", nil, err
	}
	conf.Close()
	// A small heap and the client VM's quick start: the server holds a
	// few test queues, and the whole suite shares two cores.
	cmd := exec.Command("java", "-Xmx256m", "-XX:TieredStopAtLevel=1", "-Dconfig.file="+conf.Name(),
		"-cp", classpath, "org.elasticmq.server.Main")
	logPath := filepath.Join(os.TempDir(), fmt.Sprintf("elasticmq-%d.log", port))
	logFile, err := os.Create(logPath)
	if err != nil {
		return "", nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	cmd.Stdout, cmd.Stderr = logFile, logFile
	exited, err := startServer(cmd)
	if err != nil {
		return "", nil, fmt.Errorf("start ElasticMQ: %w", err)
	}
	url = fmt.Sprintf("http://127.0.0.1:%d", port)
	stop = func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", url+"/?Action=ListQueues", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			return url, stop, nil
		}
		select {
		case <-exited:
			return "", nil, fmt.Errorf("ElasticMQ exited (log %s): %s", logPath, tail(logPath))
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			return "", nil, fmt.Errorf("ElasticMQ did not answer within 60s (log %s): %s", logPath, tail(logPath))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// tail returns the last 2 KiB of the file at path.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2048 {
		b = b[len(b)-2048:]
	}
	return string(b)
}
