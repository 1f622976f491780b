package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/replica"
	"github.com/orderflow/orderflow/sqlite"
)

// backupFlags are the flags of backup.
type backupFlags struct{ to string }

func (f *backupFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&f.to, "to", "", "the new `FILE` to write the snapshot to (never overwritten)")
}

// restoreFlags are the flags of restore.
type restoreFlags struct {
	timestamp        string
	force, ifMissing bool
}

func (f *restoreFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&f.timestamp, "timestamp", "", "restore the database as it was at this `TIME` (RFC 3339, such as 2026-03-01T12:00:00Z); default: the latest state in the replica")
	fs.BoolVar(&f.force, "force", false, "replace an existing database (stop every orderflow process using it first)")
	fs.BoolVar(&f.ifMissing, "if-missing", false, "restore only if there is no database, and start empty if the replica holds no backup yet (for an init container)")
}

// backupCmd runs "orderflow backup --to FILE": a consistent snapshot of
// the embedded mode's database, taken while the api and the processor go
// on (see sqlite.Backup).
func backupCmd(ctx context.Context, cfg config, args []string, stdout, stderr io.Writer) error {
	var f backupFlags
	fs := newFlagSet("backup", stderr, f.define)
	to := &f.to
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("backup takes no arguments but --to, got %q", fs.Args())
	case *to == "":
		return errors.New("backup needs --to FILE, the file to write the snapshot to")
	case cfg.awsMode():
		return errors.New("backup copies the embedded mode's SQLite file; the AWS mode keeps its data in SQS and DynamoDB")
	}
	start := time.Now()
	if err := sqlite.Backup(ctx, cfg.DBPath, *to); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fi, err := os.Stat(*to)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "backed up %s to %s (%d bytes) in %s\n", cfg.DBPath, *to, fi.Size(), time.Since(start).Round(time.Millisecond))
	return err
}

// restoreCmd runs "orderflow restore [--timestamp T] [--force |
// --if-missing]": it rebuilds ORDERFLOW_DB from ORDERFLOW_REPLICA_URL (see
// replica.Restore).
func restoreCmd(ctx context.Context, cfg config, args []string, stdout, stderr io.Writer) error {
	var f restoreFlags
	fs := newFlagSet("restore", stderr, f.define)
	ts, force, ifMissing := &f.timestamp, &f.force, &f.ifMissing
	if err := fs.Parse(args); err != nil {
		return err
	}
	var at time.Time
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("restore takes no arguments but its flags, got %q", fs.Args())
	case *force && *ifMissing:
		return errors.New("restore: --force replaces a database, --if-missing never does: give one of them")
	case cfg.ReplicaURL == "":
		return errors.New("restore needs ORDERFLOW_REPLICA_URL, the replica to restore from")
	case *ts != "":
		var err error
		if at, err = time.Parse(time.RFC3339, *ts); err != nil {
			return fmt.Errorf("restore: --timestamp must be an RFC 3339 time such as 2026-03-01T12:00:00Z, got %q", *ts)
		}
	}
	if _, err := os.Stat(cfg.DBPath); err == nil && *ifMissing {
		_, err := fmt.Fprintf(stdout, "%s exists; nothing to restore\n", cfg.DBPath)
		return err
	}
	start := time.Now()
	log := newLogger(config{LogLevel: "warn"}, stderr)
	err := replica.Restore(ctx, cfg.DBPath, cfg.replicaConfig(log), at, *force)
	if *ifMissing && orderflow.ErrorCode(err) == orderflow.ENotFound {
		_, err := fmt.Fprintf(stdout, "%s holds no backup yet; orderflow will start with a new database\n", cfg.ReplicaURL)
		return err
	}
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	fi, err := os.Stat(cfg.DBPath)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "restored %s (%d bytes) from %s in %s\n", cfg.DBPath, fi.Size(), cfg.ReplicaURL, time.Since(start).Round(time.Millisecond))
	return err
}
