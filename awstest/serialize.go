package awstest

import (
	"bytes"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
)

// serialize starts a reverse proxy to target that lets one DynamoDB request
// at a time through (see the package comment) and returns its URL. It runs
// for the life of the test binary.
func serialize(target string) (string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	base := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &oneDynamo{base: base}
	rp.ErrorLog = log.New(io.Discard, "", 0) // canceled long polls are routine
	go func() { _ = http.Serve(ln, rp) }()
	return "http://" + ln.Addr().String(), nil
}

// oneDynamo is a RoundTripper that holds a lock across each DynamoDB round
// trip, response body included.
type oneDynamo struct {
	base http.RoundTripper
	mu   sync.Mutex
}

func (t *oneDynamo) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.HasPrefix(req.Header.Get("X-Amz-Target"), "DynamoDB") {
		return t.base.RoundTrip(req)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}
