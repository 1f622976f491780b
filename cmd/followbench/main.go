// Command followbench measures what following orders costs: it builds
// orderflow, starts `orderflow api` and `orderflow processor` as two
// processes (split mode on one SQLite file, or -aws ENDPOINT for SQS and
// DynamoDB on moto_server), places -orders orders whose payment takes
// -latency, and follows every one to its terminal status, first by polling
// the status URL (Retry-After, If-None-Match), then by server-sent events.
// For each way it prints the status requests per order and the api's store
// reads per followed order per second: GetItem/GetOrder reads of polls, and
// the batched watch reads (order_watch_reads_total, or BatchGetItem calls).
//
//	go run ./cmd/followbench [-orders 100] [-latency 2s] [-aws http://127.0.0.1:5112]
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "followbench:", err)
		os.Exit(1)
	}
}

type options struct {
	orders  int
	latency time.Duration
	aws     string
}

func run() error {
	var o options
	flag.IntVar(&o.orders, "orders", 100, "orders followed at once")
	flag.DurationVar(&o.latency, "latency", 2*time.Second, "payment latency: how long each order is followed")
	flag.StringVar(&o.aws, "aws", "", "moto_server endpoint for the AWS mode (default: split mode on SQLite)")
	flag.Parse()
	dir, err := os.MkdirTemp("", "orderflow-followbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "orderflow")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/orderflow").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	env, err := baseEnv(o, dir, bin)
	if err != nil {
		return err
	}
	mode := "split mode (SQLite)"
	if o.aws != "" {
		mode = "AWS mode (moto_server)"
	}
	fmt.Printf("%s: %d orders followed at once, payment latency %s\n", mode, o.orders, o.latency)
	for _, how := range []string{"polling", "sse"} {
		if err := measure(o, how, env, dir, bin); err != nil {
			return err
		}
	}
	return nil
}

// baseEnv is the environment of both processes.
func baseEnv(o options, dir, bin string) ([]string, error) {
	env := append(os.Environ(), "ENV=local", "ORDERFLOW_LOG_LEVEL=warn",
		"ORDERFLOW_DB="+filepath.Join(dir, "orderflow.db"),
		"ORDERFLOW_PAYMENT_LATENCY="+o.latency.String(),
		"ORDERFLOW_RATE_LIMIT=1000000",
		"ORDERFLOW_MAX_STREAMS_PER_USER="+strconv.Itoa(o.orders),
		"ORDERFLOW_VISIBILITY_TIMEOUT="+(o.latency+30*time.Second).String())
	if o.aws == "" {
		return env, nil
	}
	env = append(env, "AWS_ENDPOINT_URL="+o.aws, "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=bench", "AWS_SECRET_ACCESS_KEY=bench")
	cmd := exec.Command(bin, "init")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("orderflow init: %v\n%s", err, out)
	}
	for _, f := range strings.Fields(string(out)) {
		if strings.HasPrefix(f, "SQS_QUEUE_URL=") || strings.HasPrefix(f, "SQS_DLQ_URL=") || strings.HasPrefix(f, "DDB_TABLE=") {
			env = append(env, f)
		}
	}
	return env, nil
}

// measure starts the two processes, follows the orders one way and
// prints the figures.
func measure(o options, how string, env []string, dir, bin string) error {
	api, proc := freeAddr(), freeAddr()
	env = append(env, "ORDERFLOW_API_ADDR="+api, "ORDERFLOW_PROCESSOR_ADDR="+proc)
	for _, c := range []string{"api", "processor"} {
		stop, err := start(bin, c, env, filepath.Join(dir, how+"-"+c+".log"))
		if err != nil {
			return err
		}
		defer stop()
	}
	base := "http://" + api
	if err := waitReady(base, "http://"+proc); err != nil {
		return err
	}
	before, err := readCounters(base)
	if err != nil {
		return err
	}
	token, err := login(base, "followbench-"+how)
	if err != nil {
		return err
	}
	// Each order is followed from its 202 on, as the page does.
	var requests, followed atomic.Int64 // status requests; order-nanoseconds followed
	var wg sync.WaitGroup
	errs := make(chan error, o.orders)
	for range o.orders {
		u, err := place(base, token)
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
	after, err := readCounters(base)
	if err != nil {
		return err
	}
	secs := time.Duration(followed.Load()).Seconds()
	fmt.Printf("%-8s status requests per order %.1f; api store reads %.0f (watch %.0f, single-order %.0f) over %.0f order-seconds followed: %.3f reads per followed order per second\n",
		how, float64(requests.Load())/float64(o.orders),
		after.total()-before.total(), after.watch-before.watch, after.single-before.single, secs,
		(after.total()-before.total())/secs)
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

// login returns a token of user.
func login(api, user string) (string, error) {
	resp, err := http.Post(api+"/login", "application/json", strings.NewReader(`{"user_id":"`+user+`"}`))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	return tok.AccessToken, err
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

var (
	watchRE  = regexp.MustCompile(`(?m)^order_watch_reads_total (\S+)$`)
	awsRE    = regexp.MustCompile(`(?m)^aws_requests_total\{[^}]*operation="(BatchGetItem|GetItem)"[^}]*\} (\S+)$`)
	httpRE   = regexp.MustCompile(`(?m)^http_requests_total\{[^}]*route="/orders/\{id\}/status"[^}]*\} (\S+)$`)
	rereadRE = regexp.MustCompile(`(?m)^status_stream_reads_total (\S+)$`)
)

// readCounters scrapes the api's /metrics. In split mode each status
// request and each stream re-read is one GetOrder; in the AWS mode the
// GetItem and BatchGetItem calls are counted as AWS counts them (GetItem
// includes /ready's probe).
func readCounters(api string) (counters, error) {
	resp, err := http.Get(api + "/metrics")
	if err != nil {
		return counters{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return counters{}, err
	}
	var c counters
	for _, m := range watchRE.FindAllSubmatch(b, -1) {
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		c.watch += v
	}
	aws := awsRE.FindAllSubmatch(b, -1)
	for _, m := range aws {
		v, _ := strconv.ParseFloat(string(m[2]), 64)
		if string(m[1]) == "BatchGetItem" {
			c.watch += v
		} else {
			c.single += v
		}
	}
	if len(aws) == 0 {
		// One GetOrder per status request and per stream re-read.
		for _, m := range append(httpRE.FindAllSubmatch(b, -1), rereadRE.FindAllSubmatch(b, -1)...) {
			v, _ := strconv.ParseFloat(string(m[1]), 64)
			c.single += v
		}
	}
	return c, nil
}

func start(bin, command string, env []string, logPath string) (stop func(), err error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, command)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, log, log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		log.Close()
	}, nil
}

func waitReady(urls ...string) error {
	deadline := time.Now().Add(30 * time.Second)
	for _, u := range urls {
		for {
			resp, err := http.Get(u + "/ready")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not ready", u)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
