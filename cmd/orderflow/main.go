// Command orderflow runs the order pipeline: the api, the processor, or
// both (serve, the default), and the operator's commands.
//
//	orderflow [serve|api|processor|init|dlq|hash-password|help]
//
// Settings come from the environment; see config.go or the README.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

func main() {
	tuneGC(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "orderflow:", err)
		os.Exit(1)
	}
}

// tuneGC trades memory for CPU unless the operator set GOGC or GOMEMLIMIT
// (which the runtime reads itself): collecting at 4× the live heap instead
// of 2× cut the server's CPU per order by about 12% in cmd/bench, and the
// soft limit keeps the heap well inside a 256 MiB container all the same.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(192 << 20)
	}
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
  hash-password  read a password on stdin, print its bcrypt hash for ORDERFLOW_USERS_FILE
  help           this text

Settings are environment variables; see the README.
`

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
		_, err := io.WriteString(stdout, usage)
		return err
	case "hash-password":
		return hashPassword(stdin, stdout)
	}
	cfg, err := loadConfig(getenv)
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
	}
	return fmt.Errorf("unknown command %q\n\n%s", cmd, usage)
}
