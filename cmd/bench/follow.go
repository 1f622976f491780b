package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// runFollow is -follow: what following orders costs. It starts `orderflow
// api` and `orderflow processor` as two processes (split mode on one
// SQLite file, or with -aws on SQS and DynamoDB), places -orders orders
// whose payment takes -latency, and follows every one to its terminal
// status, first by polling the status URL (Retry-After, If-None-Match),
// then by server-sent events. For each way it prints the status requests
// per order and the api's store reads per followed order per second:
// GetItem/GetOrder reads of polls, and the batched watch reads
// (order_watch_reads_total, or BatchGetItem calls).
func runFollow(o options, dir, bin string) error {
	env := []string{"ENV=local", "ORDERFLOW_LOG_LEVEL=warn",
		"ORDERFLOW_DB=" + filepath.Join(dir, "orderflow.db"),
		"ORDERFLOW_PAYMENT_LATENCY=" + o.latency.String(),
		"ORDERFLOW_RATE_LIMIT=1000000",
		"ORDERFLOW_MAX_STREAMS_PER_USER=" + strconv.Itoa(o.orders),
		"ORDERFLOW_VISIBILITY_TIMEOUT=" + (o.latency + 30*time.Second).String()}
	mode := "split mode (SQLite)"
	if o.aws {
		s := &served{}
		defer s.stop()
		awsEnv, err := startAWS(o, s, dir, bin)
		if err != nil {
			return err
		}
		env = append(env, awsEnv...)
		mode = "AWS mode"
	}
	say("%s: %d orders followed at once, payment latency %s\n", mode, o.orders, o.latency)
	for _, how := range []string{"polling", "sse"} {
		if err := measureFollow(o, how, env, dir, bin); err != nil {
			return err
		}
	}
	return nil
}

// measureFollow starts the two processes, follows the orders one way and
// prints the figures.
func measureFollow(o options, how string, env []string, dir, bin string) error {
	api, proc := "http://"+freeAddr(), "http://"+freeAddr()
	env = append(env, "ORDERFLOW_API_ADDR="+strings.TrimPrefix(api, "http://"), "ORDERFLOW_PROCESSOR_ADDR="+strings.TrimPrefix(proc, "http://"))
	for _, c := range []string{"api", "processor"} {
		ready := api
		if c == "processor" {
			ready = proc
		}
		child, err := startChildArgs(bin, []string{c}, env, filepath.Join(dir, how+"-"+c+".log"), ready+"/ready")
		if err != nil {
			return err
		}
		defer child.stop()
	}
	before, err := readCounters(api)
	if err != nil {
		return err
	}
	tokens, err := logins(api, 1)
	if err != nil {
		return err
	}
	// Each order is followed from its 202 on, as the page does.
	var requests, followed atomic.Int64 // status requests; order-nanoseconds followed
	var wg sync.WaitGroup
	errs := make(chan error, o.orders)
	for range o.orders {
		u, err := place(api, tokens[0])
		if err != nil {
			return err
		}
		wg.Go(func() {
			start := time.Now()
			n, err := follow(how, u)
			requests.Add(int64(n))
			followed.Add(int64(time.Since(start)))
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	after, err := readCounters(api)
	if err != nil {
		return err
	}
	secs := time.Duration(followed.Load()).Seconds()
	f := followFig{How: how, Orders: o.orders, RequestsPerOrder: float64(requests.Load()) / float64(o.orders),
		StoreReads: after.total() - before.total(), WatchReads: after.watch - before.watch,
		SingleOrderReads: after.single - before.single, OrderSeconds: secs}
	f.ReadsPerOrderSecond = f.StoreReads / secs
	rep.Follow = append(rep.Follow, f)
	say("%-8s status requests per order %.1f; api store reads %.0f (watch %.0f, single-order %.0f) over %.0f order-seconds followed: %.3f reads per followed order per second\n",
		how, f.RequestsPerOrder, f.StoreReads, f.WatchReads, f.SingleOrderReads, secs, f.ReadsPerOrderSecond)
	return nil
}

// follow follows one status URL to its terminal status and returns the
// number of requests it made.
func follow(how, url string) (int, error) {
	if how == "sse" {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 1, err
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "data: ") && terminal(line[6:]) {
				return 1, nil
			}
		}
		return 1, fmt.Errorf("stream of %s ended before the terminal status: %v", url, sc.Err())
	}
	etag := ""
	for n := 1; ; n++ {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return n, err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			etag = resp.Header.Get("ETag")
			if terminal(string(body)) {
				return n, nil
			}
		}
		wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		time.Sleep(time.Duration(max(wait, 1)) * time.Second)
	}
}

func terminal(doc string) bool {
	var d struct {
		Status string `json:"status"`
	}
	_ = json.Unmarshal([]byte(doc), &d)
	switch d.Status {
	case "COMPLETED", "REJECTED", "FAILED", "CANCELLED":
		return true
	}
	return false
}

// place places an order and returns its status URL.
func place(api, token string) (string, error) {
	req, _ := http.NewRequest(http.MethodPost, api+"/orders", strings.NewReader(`{"amount":1250}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var a struct {
		StatusURL string `json:"status_url"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || a.StatusURL == "" {
		return "", fmt.Errorf("place order: %d %v", resp.StatusCode, err)
	}
	return a.StatusURL, nil
}

// counters are the api's store reads: batched watch reads and
// single-order reads (status polls, the streams' re-reads).
type counters struct{ watch, single float64 }

func (c counters) total() float64 { return c.watch + c.single }

// readCounters scrapes the api's /metrics. In split mode each status
// request and each stream re-read is one GetOrder; in the AWS mode the
// GetItem and BatchGetItem calls are counted as AWS counts them (GetItem
// includes /ready's probe).
func readCounters(api string) (counters, error) {
	b, err := scrape(api)
	if err != nil {
		return counters{}, err
	}
	var c counters
	c.watch = b.sum("order_watch_reads_total", nil)
	aws := b["aws_requests_total"]
	c.watch += b.sum("aws_requests_total", func(l map[string]string) bool { return l["operation"] == "BatchGetItem" })
	c.single += b.sum("aws_requests_total", func(l map[string]string) bool { return l["operation"] == "GetItem" })
	if aws == nil {
		// One GetOrder per status request and per stream re-read.
		c.single += b.sum("http_requests_total", func(l map[string]string) bool { return l["route"] == "/orders/{id}/status" })
		c.single += b.sum("status_stream_reads_total", nil)
	}
	return c, nil
}
