package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/httpapi"
)

// Retries of order place: attempts in all, and the longest wait between
// two (a Retry-After beyond it is cut to it).
const (
	placeAttempts = 5
	placeMaxWait  = 30 * time.Second
)

// placeFlags are the flags of order place.
type placeFlags struct {
	amount, currency, key string
	json                  bool
	timeout               time.Duration
	items                 []orderflow.Item
}

func (f *placeFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&f.amount, "amount", "", "the `AMOUNT` in major units, such as 12.50 (required)")
	fs.StringVar(&f.currency, "currency", orderflow.DefaultCurrency, "ISO 4217 currency `CODE`")
	fs.StringVar(&f.key, "idempotency-key", "", "Idempotency-Key of the request (default: a new random one)")
	fs.BoolVar(&f.json, "json", false, "print the 202 body as JSON")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "how long one attempt waits for the answer")
	fs.Func("item", "an item as `SKU=QTY` (repeatable)", func(v string) error {
		it, err := parseItem(v)
		f.items = append(f.items, it)
		return err
	})
}

// placeCmd is `orderflow order place --amount 12.50 [--currency EUR]
// [--item sku=qty ...] [--idempotency-key K] [--json] [--timeout D]`.
func placeCmd(ctx context.Context, c *apiClient, cc clientConfig, args []string, stdout, stderr io.Writer) error {
	var f placeFlags
	fl := newFlagSet("order place", stderr, f.define)
	amount, currency, key, asJSON, timeout := &f.amount, &f.currency, &f.key, &f.json, &f.timeout
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *amount == "" || fl.NArg() > 0 {
		return errors.New("usage: orderflow order place --amount 12.50 [--currency EUR] [--item sku=qty ...] [--idempotency-key K] [--json]")
	}
	minor, err := orderflow.ParseAmount(*amount, strings.ToUpper(*currency))
	if err != nil {
		return fmt.Errorf("--amount: %s", orderflow.ErrorDetail(err))
	}
	if err := c.authenticate(cc); err != nil {
		return err
	}
	if *key == "" {
		*key = rand.Text() // a retry of this run is then safe
	}
	req := httpapi.OrderRequest{Amount: minor, Currency: strings.ToUpper(*currency), Items: f.items}
	a, err := c.place(ctx, req, *key, *timeout)
	if err != nil {
		return err
	}
	var acc httpapi.Accepted
	if err := c.decode(a, &acc, http.StatusAccepted); err != nil {
		return err
	}
	if a.header.Get("Idempotent-Replayed") == "true" {
		fmt.Fprintf(stderr, "orderflow: the order placed earlier with Idempotency-Key %s\n", *key)
	}
	if *asJSON {
		_, err = stdout.Write(a.body)
		return err
	}
	_, err = fmt.Fprintf(stdout, "order_id   %s\nstatus     %s\nstatus_url %s\n", acc.OrderID, acc.Status, acc.StatusURL)
	return err
}

// parseItem reads "sku=quantity".
func parseItem(v string) (orderflow.Item, error) {
	sku, q, ok := strings.Cut(v, "=")
	n, err := strconv.Atoi(q)
	if !ok || sku == "" || err != nil {
		return orderflow.Item{}, fmt.Errorf("want sku=quantity such as widget=2, got %q", v)
	}
	return orderflow.Item{SKU: sku, Quantity: n}, nil
}

// place POSTs the order with Idempotency-Key key. A timeout, a 503 and a
// 409 request-in-flight (the earlier attempt still being served) are
// retried with the same key, so the order is placed at most once,
// waiting as Retry-After asks or backing off, up to placeAttempts in all.
// It returns the last answer, whatever its status.
func (c *apiClient) place(ctx context.Context, req httpapi.OrderRequest, key string, timeout time.Duration) (answer, error) {
	h := http.Header{"Idempotency-Key": {key}}
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, timeout)
		a, err := c.do(actx, "POST", "/orders", h, req)
		cancel()
		backoff := min(time.Duration(1<<(attempt-1))*time.Second, placeMaxWait)
		var why string
		var te *timeoutError
		switch {
		case errors.As(err, &te) && ctx.Err() == nil:
			why = te.Error()
		case err != nil:
			return a, err
		case a.status == http.StatusServiceUnavailable:
			why = "the api is unavailable (503)"
			backoff = retryAfter(a.header, backoff, placeMaxWait, time.Now())
		case a.status == http.StatusConflict && isProblem(c.failure(a), "request-in-flight"):
			why = "the previous attempt is still in progress (409)"
			backoff = retryAfter(a.header, backoff, placeMaxWait, time.Now())
		default:
			return a, nil
		}
		if attempt == placeAttempts {
			if err != nil {
				return a, fmt.Errorf("%w; gave up after %d attempts (Idempotency-Key %s)", err, attempt, key)
			}
			return a, nil
		}
		fmt.Fprintf(c.log, "orderflow: %s; retrying in %s with the same Idempotency-Key %s\n", why, backoff, key)
		if err := c.sleep(ctx, backoff); err != nil {
			return a, err
		}
	}
}

func isProblem(err error, slug string) bool {
	var pe *problemError
	return errors.As(err, &pe) && pe.is(slug)
}
