// Package awstest gives tests an SQS- and DynamoDB-compatible endpoint:
// moto_server (PyPI moto[server]) on 127.0.0.1. Tests call Endpoint(t) and
// create their own uniquely named queues and tables on it.
//
// Tests talk to moto through an in-process proxy that serializes DynamoDB
// requests: moto's DynamoDB is not thread-safe (two concurrent conditional
// writes can both pass their condition, and concurrent transactions can
// fail with a 500), whereas DynamoDB itself applies conditional writes to
// an item atomically. SQS requests, long polls included, pass concurrently.
//
// The endpoint is ORDERFLOW_TEST_AWS_ENDPOINT when set (scripts/test.sh
// starts one moto_server for the whole run). Otherwise the first call in a
// test binary starts moto_server itself, from $ORDERFLOW_MOTO_SERVER, the
// pinned virtualenv ~/.cache/orderflow/moto-5.2.5, or PATH, on a free port,
// and the server dies with the test binary. If none can be started the test
// is skipped, except under CI=true, where it fails: there the AWS mode must
// be tested, not silently left out.
//
// SQS has a second implementation, ElasticMQ (elasticmq.go): ForEachSQS
// runs a test once on moto and once with SQS on ElasticMQ and DynamoDB on
// moto, so that orderflow relies on no one server's quirks.
package awstest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
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

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Region is the region tests use; moto accepts any.
const Region = "us-east-1"

var (
	once     sync.Once
	endpoint string
	startErr error
)

// Endpoint returns the base URL of a running moto_server, starting one if
// needed (see the package comment). It skips t, or fails it under CI=true,
// when there is none.
func Endpoint(t testing.TB) string {
	t.Helper()
	once.Do(func() { endpoint, startErr = findOrStart() })
	need(t, "moto_server", "set ORDERFLOW_TEST_AWS_ENDPOINT or install moto[server]", startErr)
	return endpoint
}

// need skips t when server could not be had (err), or fails it under
// CI=true, where a skipped test would pass unseen.
func need(t testing.TB, server, hint string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("these tests need %s under CI=true: %v", server, err)
	}
	t.Skipf("no %s (%s): %v", server, hint, err)
}

// Config returns an aws.Config for endpoint with static test credentials,
// so that no credential chain (and no network beyond 127.0.0.1) is used.
func Config(endpoint string) aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(endpoint),
		HTTPClient:   &http.Client{Timeout: 30 * time.Second},
	}
}

// Name returns prefix with a random suffix, for queue and table names no
// other test (or earlier run against the same server) uses. The result is
// a valid SQS queue name and DynamoDB table name.
func Name(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

func findOrStart() (string, error) {
	target := strings.TrimRight(os.Getenv("ORDERFLOW_TEST_AWS_ENDPOINT"), "/")
	if target == "" {
		bin, err := motoBinary()
		if err != nil {
			return "", err
		}
		if target, err = start(bin); err != nil {
			return "", err
		}
	}
	return serialize(target)
}

// motoBinary finds moto_server: $ORDERFLOW_MOTO_SERVER, the pinned
// virtualenv of scripts/test.sh, then PATH.
func motoBinary() (string, error) {
	if p := os.Getenv("ORDERFLOW_MOTO_SERVER"); p != "" {
		return p, nil
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".cache", "orderflow", "moto-5.2.5", "bin", "moto_server")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("moto_server")
	if err != nil {
		return "", fmt.Errorf("moto_server not found: %w", err)
	}
	return p, nil
}

// start runs bin on a free loopback port and waits until it answers. The
// server gets SIGKILL when the test binary exits (Pdeathsig), so no run
// leaves one behind.
func start(bin string) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	exited, err := startServer(cmd)
	if err != nil {
		return "", fmt.Errorf("start %s: %w", bin, err)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", url+"/moto-api/", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			return url, nil
		}
		select {
		case <-exited:
			return "", fmt.Errorf("%s exited: %s", bin, out.String())
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			return "", fmt.Errorf("%s did not answer within 30s", bin)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
