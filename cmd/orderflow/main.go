// Command orderflow runs the order pipeline: the api, the processor, or
// both (serve, the default), and the operator's commands.
//
//	orderflow [serve|api|processor|init|dlq|backup|restore|hash-password|login|order|help]
//
// Settings come from the environment; see config.go or the README.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"syscall"
)

func main() {
	tuneGC(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "orderflow:", err)
		os.Exit(exitCode(err))
	}
}

// exitCode is the process's exit status for run's error: an *exitError's
// code (order watch tells how an order ended), else 1.
func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if err != nil {
		return 1
	}
	return 0
}

// tuneGC trades memory for CPU unless the operator set GOGC or GOMEMLIMIT
// (which the runtime reads itself): collecting at 4× the live heap instead
// of 2× cut the server's CPU per order by about 12% in cmd/bench, and the
// soft limit keeps the heap well inside the container all the same: 3/4 of
// ORDERFLOW_MEMORY_LIMIT (the container's limit, which Kubernetes' downward
// API gives), else 192 MiB, 3/4 of a 256 MiB container. The last quarter is
// for what the soft limit does not bound: goroutine stacks beyond it, the
// kernel's buffers, a burst of garbage between two collections.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(softMemoryLimit(getenv("ORDERFLOW_MEMORY_LIMIT")))
	}
}

// softMemoryLimit is 3/4 of the container's memory limit in bytes, or of
// 256 MiB when the limit is not a positive number of bytes.
func softMemoryLimit(container string) int64 {
	n, err := strconv.ParseInt(container, 10, 64)
	if err != nil || n <= 0 {
		n = 256 << 20
	}
	return n / 4 * 3
}

const usage = `usage: orderflow [command]

commands:
  serve          api and processor in one process (default)
  api            the HTTP api only (:8000)
  processor      the processor only (health and metrics on :9090)
  init           create the SQS queue, its DLQ and the DynamoDB table (AWS mode; prints the exports)
  dlq list       show messages in the dead-letter queue (JSON lines on stdout)
  dlq redrive    move dead-letter messages back to the queue
  dlq purge      delete every dead-letter message (asks first; --yes without a terminal)
  backup --to FILE
                 write a consistent snapshot of ORDERFLOW_DB to FILE while
                 the api and the processor run (embedded and split modes)
  restore [--timestamp 2026-03-01T12:00:00Z] [--force | --if-missing]
                 rebuild ORDERFLOW_DB from ORDERFLOW_REPLICA_URL (the latest
                 state, or as it was then); --force replaces an existing file,
                 --if-missing restores only when there is none
  hash-password  read a password on stdin, print its bcrypt hash for ORDERFLOW_USERS_FILE
  help           this text; help settings: every setting, its default and use (tab-separated)

client commands, against the api at ORDERFLOW_URL (default http://localhost:8000):
  login --user U [--password-stdin]
                 get a token (dev login needs no password; else a prompt or
                 the first line of stdin), kept in $XDG_CONFIG_HOME/orderflow/
  order place --amount 12.50 [--currency EUR] [--item sku=qty ...]
              [--idempotency-key K] [--json] [--timeout 10s]
                 place an order (amount in major units); prints its id and
                 status URL, or the 202 body with --json. A timeout or a 503
                 is retried with the same Idempotency-Key (one is made up
                 when none is given), so the order is placed once
  order watch ID|STATUS_URL
                 follow an order (server-sent events, else polling) and
                 print each status with its time; exits 0 when COMPLETED,
                 2 REJECTED, 3 FAILED, 4 CANCELLED, 1 on an error
  order list [--json]
                 your orders, newest first (every page)
  order cancel ID
                 cancel an order that is PENDING or PROCESSING

Settings are environment variables; see the README. Errors from the api
are printed as the problem's title and detail; every failure exits non-zero.
`

// printSettings writes the settings table, one setting a line: name,
// default and help, tab-separated (for tools that check deployments).
func printSettings(w io.Writer) error {
	for _, s := range settings {
		if _, err := fmt.Fprintf(w, "%s\t%s\t%s\n", s.Name, s.Default, s.Help); err != nil {
			return err
		}
	}
	return nil
}

// run is the whole program; main only supplies the process's environment.
// Logs and results go to stdout; the operator commands' remarks for a
// person (counts, prompts) go to stderr, so that their stdout pipes.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "help", "-h", "-help", "--help":
		if len(args) == 1 && args[0] == "settings" {
			return printSettings(stdout)
		}
		_, err := io.WriteString(stdout, usage)
		return err
	case "hash-password":
		return hashPassword(stdin, stdout)
	case "login", "order":
		cc, err := loadClientConfig(getenv)
		if err != nil {
			return fmt.Errorf("configuration:\n%w", err)
		}
		if cmd == "login" {
			return loginCmd(ctx, cc, args, stdin, stdout, stderr)
		}
		return orderCmd(ctx, cc, args, stdout, stderr)
	}
	cfg, err := loadConfigFor(getenv, cmd)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	switch cmd {
	case "serve", "api", "processor":
		if len(args) > 0 {
			return fmt.Errorf("%s takes no arguments, got %q", cmd, args)
		}
		return serve(ctx, cmd, cfg, stdout)
	case "dlq":
		return dlq(ctx, cfg, args, stdin, stdout, stderr)
	case "init":
		return initAWS(ctx, cfg, args, stdout)
	case "backup":
		return backupCmd(ctx, cfg, args, stdout, stderr)
	case "restore":
		return restoreCmd(ctx, cfg, args, stdout, stderr)
	}
	return fmt.Errorf("unknown command %q\n\n%s", cmd, usage)
}
