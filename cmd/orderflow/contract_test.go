package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/httpapi/openapitest"
)

// The tests talk to a running orderflow through testClient, which checks
// every exchange with its ports: the api's against httpapi/openapi.json
// (the document the binary serves), the processor's against the rules it
// shares with the api (X-Request-ID on every answer, errors as problems
// naming it). A violation is an error of the test that made the request.

// portKind says which rules a port's answers follow.
type portKind int

const (
	apiPort portKind = iota + 1
	processorPort
)

// ports maps the addresses testEnv hands out to their kind.
var ports sync.Map

// registerPorts records the api and processor addresses of env.
func registerPorts(env map[string]string) {
	ports.Store(env["ORDERFLOW_API_ADDR"], apiPort)
	ports.Store(env["ORDERFLOW_PROCESSOR_ADDR"], processorPort)
}

// apiContract is httpapi/openapi.json as a checker, read once.
var apiContract = sync.OnceValues(func() (*openapitest.Contract, error) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "httpapi", "openapi.json"))
	if err != nil {
		return nil, err
	}
	return openapitest.New(doc)
})

// testClient returns a client whose exchanges with orderflow's ports are
// checked as above; other hosts are reached unchecked.
func testClient(t testing.TB) *http.Client {
	return &http.Client{Transport: checkingTransport{t: t}}
}

type checkingTransport struct{ t testing.TB }

func (c checkingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	kind, _ := ports.Load(req.URL.Host)
	switch kind {
	case apiPort:
		contract, err := apiContract()
		if err != nil {
			return nil, fmt.Errorf("load openapi.json: %w", err)
		}
		return contract.Transport(c.t, nil).RoundTrip(req)
	case processorPort:
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("read response body: %w", err)
		}
		if v := processorViolation(resp, body); v != "" {
			c.t.Errorf("processor port: %s %s: %s", req.Method, req.URL.Path, v)
		}
		return resp, nil
	}
	return http.DefaultTransport.RoundTrip(req)
}

// processorViolation returns how an answer of the processor's port breaks
// its rules, or "".
func processorViolation(resp *http.Response, body []byte) string {
	rid := resp.Header.Get("X-Request-ID")
	if !orderflow.ValidRequestID(rid) {
		return fmt.Sprintf("%d answer has X-Request-ID %q", resp.StatusCode, rid)
	}
	if resp.StatusCode < 400 {
		return ""
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/problem+json" {
		return fmt.Sprintf("%d answer is %q, not a problem", resp.StatusCode, mt)
	}
	var p struct {
		Status    int    `json:"status"`
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(body, &p); err != nil || p.Status != resp.StatusCode || p.RequestID != rid {
		return fmt.Sprintf("%d problem %s does not carry its status and request_id %q", resp.StatusCode, body, rid)
	}
	return ""
}
