package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"golang.org/x/term"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/auth"
	"github.com/orderflow/orderflow/sqlite"
)

// dlqFlags are the flags of dlq list, redrive and purge.
type dlqFlags struct {
	sub string // list, redrive or purge
	max int
	yes bool
}

func (f *dlqFlags) define(fs *flag.FlagSet) {
	switch f.sub {
	case "list":
		fs.IntVar(&f.max, "max", 100, "list at most `N` messages")
	case "redrive":
		fs.IntVar(&f.max, "max", 100, "move at most `N` messages back to the queue")
	case "purge":
		fs.IntVar(&f.max, "max", 100, "ignored: purge deletes every message (accepted for old scripts)")
		fs.BoolVar(&f.yes, "yes", false, "delete without asking (needed without a terminal)")
	}
}

// dlq runs "orderflow dlq list|redrive|purge". Results go to stdout (list
// prints one JSON object a line, so that it pipes into jq), remarks for a
// person to stderr. None of them creates a database that is not there.
func dlq(ctx context.Context, cfg config, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("dlq needs a subcommand: list, redrive or purge")
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "list", "redrive", "purge":
	default:
		return fmt.Errorf("unknown dlq subcommand %q: use list, redrive or purge", sub)
	}
	f := dlqFlags{sub: sub}
	fs := newFlagSet("dlq "+sub, stderr, f.define)
	max, yes := &f.max, &f.yes
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *max < 1 {
		return fmt.Errorf("dlq %s: -max must be positive", sub)
	}
	if sub == "purge" && !*yes && !isTerminal(stdin) {
		return errors.New("dlq purge deletes every dead-letter message for good: confirm with --yes (there is no terminal to ask on)")
	}
	b, err := openDeadLetters(ctx, cfg, newLogger(config{LogLevel: "warn"}, stderr))
	if err != nil {
		return fmt.Errorf("dlq %s: %w", sub, err)
	}
	defer b.close()

	switch sub {
	case "list":
		return dlqList(ctx, b, *max, stdout, stderr)
	case "redrive":
		n, err := redrive(ctx, b, *max, newProgress(stderr, isTerminalWriter(stderr)))
		if err != nil {
			return fmt.Errorf("dlq redrive: %w (after %d moved)", err, n)
		}
		_, err = fmt.Fprintf(stdout, "redrove %d message(s) to the queue\n", n)
		return err
	default:
		if !*yes {
			if err := confirmPurge(ctx, b, stdin, stderr); err != nil {
				return err
			}
		}
		n, err := b.dead.Purge(ctx)
		if err != nil {
			return fmt.Errorf("dlq purge: %w", err)
		}
		_, err = fmt.Fprintf(stdout, "purged %d message(s)\n", n)
		return err
	}
}

// openDeadLetters opens the backend of cfg for an operator command. In the
// embedded mode the database must exist: a mistyped ORDERFLOW_DB, or a
// command run in the wrong folder, must say so rather than create an
// empty database and report an empty dead-letter queue.
func openDeadLetters(ctx context.Context, cfg config, log *slog.Logger) (*backend, error) {
	if cfg.awsMode() {
		return openBackend(ctx, cfg, log, nil, nil)
	}
	opts := sqliteOptions(cfg, log, nil)
	opts.MustExist = true
	db, err := sqlite.Open(ctx, cfg.DBPath, opts)
	if orderflow.ErrorCode(err) == orderflow.ENotFound {
		return nil, fmt.Errorf("%w (ORDERFLOW_DB); run it where the server runs, or set ORDERFLOW_DB to the server's file", err)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", cfg.DBPath, err)
	}
	return &backend{store: db, queue: db, dead: db, close: db.Close}, nil
}

// redriveBatch is how many dead messages one step of redrive moves: an
// SQS receive's most, and a step short enough for the progress to move.
const redriveBatch = 10

// redrive moves up to max dead messages back to the queue, a batch at a
// time, reporting the count to p, and returns how many it moved.
func redrive(ctx context.Context, b *backend, max int, p *progress) (int, error) {
	total := 0
	defer p.done()
	for total < max {
		n, err := b.dead.Redrive(ctx, min(redriveBatch, max-total))
		total += n
		if err != nil {
			return total, err
		}
		if n == 0 {
			break
		}
		p.update("dlq redrive: %d of at most %d moved", total, max)
	}
	return total, nil
}

// dlqList prints up to max dead messages as JSON lines on stdout, and how
// many on stderr.
func dlqList(ctx context.Context, b *backend, max int, stdout, stderr io.Writer) error {
	ds, err := b.dead.ListDead(ctx, max)
	if err != nil {
		return fmt.Errorf("dlq list: %w", err)
	}
	enc := json.NewEncoder(stdout)
	for _, d := range ds {
		line := map[string]any{
			"message_id":    d.MessageID,
			"order_id":      d.OrderID,
			"request_id":    d.RequestID,
			"receive_count": d.ReceiveCount,
		}
		if d.Err != nil {
			line["body"] = string(d.Body)
			line["error"] = d.Err.Error()
		}
		if err := enc.Encode(line); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintf(stderr, "%d dead-letter message(s)\n", len(ds))
	return err
}

// confirmPurge asks on the terminal before a purge without --yes.
func confirmPurge(ctx context.Context, b *backend, stdin io.Reader, stderr io.Writer) error {
	what := "every dead-letter message"
	if d, err := b.queue.Depth(ctx); err == nil {
		what = fmt.Sprintf("all %d dead-letter message(s)", d.Dead)
	}
	fmt.Fprintf(stderr, "Delete %s for good? Type yes to confirm: ", what)
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("dlq purge: %w", err)
	}
	if !strings.EqualFold(strings.TrimSpace(line), "yes") {
		return errors.New("dlq purge: not confirmed; nothing deleted")
	}
	return nil
}

// isTerminal reports whether r is a terminal a person can answer on.
// A character device is not enough: /dev/null is one (stdin under cron
// and systemd), and nobody answers there.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// hashPassword reads one password line and prints its bcrypt hash.
func hashPassword(stdin io.Reader, stdout io.Writer) error {
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return errors.New("hash-password: give the password on stdin")
	}
	h, err := auth.HashPassword(pw)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, h)
	return err
}
