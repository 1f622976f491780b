// Command orderflow runs the order pipeline: the api, the processor, or
// both (serve, the default), and the operator's commands.
//
//	orderflow [serve|api|processor|init|dlq|backup|restore|replicate|hash-password|login|order|version|help|completion|man]
//
// The commands are listed in commands.go, the settings (environment
// variables) in config.go.
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
	"strings"
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
// person (counts, prompts, progress) go to stderr, so that their stdout
// pipes. The command line is read against the commands list
// (commands.go): help, flags it does not know and missing subcommands are
// answered before any setting is read.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		args = []string{"serve"}
	}
	switch args[0] {
	case "-h", "-help", "--help":
		_, err := io.WriteString(stdout, usage())
		return err
	case "-version", "--version":
		return printVersion(stdout, currentBuild())
	}
	c, args, err := findCommand(args)
	if err != nil {
		return err
	}
	if wantsHelp(args) {
		if c.Name == "help" {
			return helpCmd(nil, stdout)
		}
		_, err := io.WriteString(stdout, c.help())
		return err
	}
	if c.Name != "help" {
		if err := c.checkFlags(args); err != nil {
			return err
		}
	}
	switch c.Name {
	case "help":
		return helpCmd(args, stdout)
	case "version":
		if len(args) > 0 {
			return usageErrorf("version takes no arguments")
		}
		return printVersion(stdout, currentBuild())
	case "completion":
		return completionCmd(args, stdout)
	case "man":
		return manCmd(args, stdout, currentBuild())
	case "hash-password":
		return hashPassword(stdin, stdout)
	case "replicate":
		return replicate(stdin, stdout, stderr)
	}
	if c.Client {
		cc, err := loadClientConfig(getenv)
		if err != nil {
			return fmt.Errorf("configuration:\n%w", err)
		}
		if c.Name == "login" {
			return loginCmd(ctx, cc, args, stdin, stdout, stderr)
		}
		return orderCmd(ctx, cc, append([]string{strings.TrimPrefix(c.Name, "order ")}, args...), stdout, stderr)
	}
	group, sub, _ := strings.Cut(c.Name, " ")
	cfg, err := loadConfigFor(getenv, group)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	switch group {
	case "serve", "api", "processor":
		if len(args) > 0 {
			return fmt.Errorf("%s takes no arguments, got %q", group, args)
		}
		return serve(ctx, group, cfg, stdout)
	case "dlq":
		return dlq(ctx, cfg, append([]string{sub}, args...), stdin, stdout, stderr)
	case "init":
		return initAWS(ctx, cfg, args, stdout)
	case "backup":
		return backupCmd(ctx, cfg, args, stdout, stderr)
	case "restore":
		return restoreCmd(ctx, cfg, args, stdout, stderr)
	}
	return fmt.Errorf("command %q is listed but not run", c.Name) // caught by TestEveryCommandRuns
}
