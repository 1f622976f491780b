package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/orderflow/orderflow/auth"
)

// dlq runs "orderflow dlq list|redrive|purge".
func dlq(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("dlq needs a subcommand: list, redrive or purge")
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("dlq "+sub, flag.ContinueOnError)
	fs.SetOutput(stdout)
	max := fs.Int("max", 100, "most messages to list or redrive")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *max < 1 {
		return fmt.Errorf("dlq %s: -max must be positive", sub)
	}
	switch sub {
	case "list", "redrive", "purge":
	default:
		return fmt.Errorf("unknown dlq subcommand %q: use list, redrive or purge", sub)
	}
	b, err := openBackend(ctx, cfg, newLogger(config{LogLevel: "warn"}, stdout), nil)
	if err != nil {
		return err
	}
	defer b.close()

	switch sub {
	case "list":
		ds, err := b.dead.ListDead(ctx, *max)
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
		_, err = fmt.Fprintf(stdout, "%d dead-letter message(s)\n", len(ds))
		return err
	case "redrive":
		n, err := b.dead.Redrive(ctx, *max)
		if err != nil {
			return fmt.Errorf("dlq redrive: %w", err)
		}
		_, err = fmt.Fprintf(stdout, "redrove %d message(s) to the queue\n", n)
		return err
	default:
		n, err := b.dead.Purge(ctx)
		if err != nil {
			return fmt.Errorf("dlq purge: %w", err)
		}
		_, err = fmt.Fprintf(stdout, "purged %d message(s)\n", n)
		return err
	}
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
