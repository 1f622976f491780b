package main

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// command describes one command of the command line: the one list that
// the dispatch in run, the help (orderflow help CMD, CMD --help), the
// shell completions and the man page are all made from.
type command struct {
	Name  string // "serve", "dlq list"
	Args  string // the positional arguments, as the synopsis shows them
	Short string // one line for the list of commands
	Long  string // what help CMD says below the synopsis
	// Flags defines the command's flags on a FlagSet (nil: no flags), each
	// call on values of its own: the help, the completions and checkFlags
	// call it, concurrently in tests, and the command itself defines the
	// same flags with the same method on the values it runs with.
	Flags func(fs *flag.FlagSet)
	// Settings are the environment variables the command reads (nil:
	// none); serverSettings for the serving commands.
	Settings func() []string
	Client   bool // a client of a running api (login, order ...)
}

// commands is every command, in the order help lists them.
var commands = []command{
	{Name: "serve", Short: "api and processor in one process (the default command)",
		Long:     "Runs the api (ORDERFLOW_API_ADDR, :8000) and the processor (health, readiness and metrics on ORDERFLOW_PROCESSOR_ADDR, :9090) in one process, on the SQLite file ORDERFLOW_DB, or on SQS and DynamoDB when SQS_QUEUE_URL and DDB_TABLE are set. SIGTERM stops taking requests, drains the orders in work and exits 0.",
		Settings: serverSettings},
	{Name: "api", Short: "the HTTP api only",
		Long:     "Runs the api alone (ORDERFLOW_API_ADDR, :8000): with `orderflow processor` on the same SQLite file (split mode) or on SQS and DynamoDB (AWS mode).",
		Settings: serverSettings},
	{Name: "processor", Short: "the processor only",
		Long:     "Runs the processor alone, with its /health, /ready and /metrics on ORDERFLOW_PROCESSOR_ADDR (:9090).",
		Settings: serverSettings},
	{Name: "init", Short: "create the SQS queue, its dead-letter queue and the DynamoDB table",
		Long: "Creates the queue (its VisibilityTimeout from ORDERFLOW_VISIBILITY_TIMEOUT), the dead-letter queue with the RedrivePolicy (ORDERFLOW_MAX_RECEIVES) and the Orders table with its index and TTL, on AWS_ENDPOINT_URL or AWS itself. It changes nothing that exists, and prints the exports for the servers.",
		Flags: func(fs *flag.FlagSet) {
			(&initFlags{queue: defaultOf("ORDERFLOW_QUEUE_NAME"), dlq: defaultOf("ORDERFLOW_DLQ_NAME"), table: defaultOf("ORDERFLOW_TABLE_NAME")}).define(fs)
		},
		Settings: names("AWS_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_CA_BUNDLE",
			"ORDERFLOW_QUEUE_NAME", "ORDERFLOW_DLQ_NAME", "ORDERFLOW_TABLE_NAME", "ORDERFLOW_VISIBILITY_TIMEOUT", "ORDERFLOW_MAX_RECEIVES")},
	{Name: "dlq list", Short: "show the dead-letter messages (JSON lines on stdout)",
		Long:     "Prints up to -max dead-letter messages, one JSON object a line (message_id, order_id, request_id, receive_count; body and error for an undecodable one), and their count on stderr.",
		Flags:    func(fs *flag.FlagSet) { (&dlqFlags{sub: "list"}).define(fs) },
		Settings: dlqSettings},
	{Name: "dlq redrive", Short: "move dead-letter messages back to the queue",
		Long:     "Moves up to -max dead-letter messages back to the order queue, their receive count reset. A message whose order is already final is dropped there as a duplicate. On a terminal, stderr shows the progress.",
		Flags:    func(fs *flag.FlagSet) { (&dlqFlags{sub: "redrive"}).define(fs) },
		Settings: dlqSettings},
	{Name: "dlq purge", Short: "delete every dead-letter message",
		Long:     "Deletes every dead-letter message for good. On a terminal it asks first; elsewhere it needs --yes.",
		Flags:    func(fs *flag.FlagSet) { (&dlqFlags{sub: "purge"}).define(fs) },
		Settings: dlqSettings},
	{Name: "backup", Short: "consistent snapshot of ORDERFLOW_DB while the servers run",
		Long:     "Writes a consistent snapshot of the embedded mode's SQLite file to a new file, while the api and the processor go on.",
		Flags:    func(fs *flag.FlagSet) { new(backupFlags).define(fs) },
		Settings: names("ORDERFLOW_DB")},
	{Name: "restore", Short: "rebuild ORDERFLOW_DB from ORDERFLOW_REPLICA_URL",
		Long:     "Rebuilds the SQLite file from its continuous replica: the latest state, or the state at --timestamp. --force replaces an existing file; --if-missing restores only when there is none (an init container).",
		Flags:    func(fs *flag.FlagSet) { new(restoreFlags).define(fs) },
		Settings: names("ORDERFLOW_DB", "ORDERFLOW_REPLICA_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_REGION")},
	{Name: "replicate", Short: "the replicator process of serve, api and processor (started by them)",
		Long: "The process that replicates ORDERFLOW_DB to ORDERFLOW_REPLICA_URL for serve, api and processor, which start it at a lower CPU priority (ORDERFLOW_REPLICA_NICE) and send its job on stdin: it is not run by hand. It makes its last sync and exits when its stdin ends; it ignores SIGINT and SIGTERM, and dies with its parent."},
	{Name: "hash-password", Short: "bcrypt hash of the password on stdin, for ORDERFLOW_USERS_FILE",
		Long: "Reads one password line on stdin and prints its bcrypt hash, for a user_id:hash line of ORDERFLOW_USERS_FILE."},
	{Name: "login", Short: "log in to the api and keep the token", Client: true,
		Long:     "Posts to /login and keeps the token for ORDERFLOW_URL in $XDG_CONFIG_HOME/orderflow/tokens.json (mode 0600). Dev login needs no password; otherwise it is asked for on the terminal, or read from the first line of stdin with --password-stdin.",
		Flags:    func(fs *flag.FlagSet) { new(loginFlags).define(fs) },
		Settings: clientSettings},
	{Name: "order place", Short: "place an order", Client: true,
		Long:     "Places an order and prints its id, status and signed status URL (the 202 body with --json). A timeout, a 503 or a 409 in-progress is retried with the same Idempotency-Key, five attempts in all, so the order is placed once.",
		Flags:    func(fs *flag.FlagSet) { new(placeFlags).define(fs) },
		Settings: clientSettings},
	{Name: "order watch", Args: "ID|STATUS_URL", Short: "follow an order to its end", Client: true,
		Long:     "Follows an order (server-sent events, else long-polling) and prints each status with its time. Exit status: 0 COMPLETED, 2 REJECTED, 3 FAILED, 4 CANCELLED, 1 on an error.",
		Settings: clientSettings},
	{Name: "order list", Short: "your orders, newest first (every page)", Client: true,
		Long:     "Prints every order of the logged-in user, newest first, following the cursor to the last page; --json prints them as one page in the api's format.",
		Flags:    func(fs *flag.FlagSet) { new(listFlags).define(fs) },
		Settings: clientSettings},
	{Name: "order cancel", Args: "ID", Short: "cancel a PENDING or PROCESSING order", Client: true,
		Long:     "Cancels an order: a PENDING one at once, a PROCESSING one at its next stage boundary (follow it with order watch). A final order is the api's 409 order-final.",
		Settings: clientSettings},
	{Name: "version", Short: "the version, commit and build date of this binary (also --version)",
		Long: "Prints the version, the VCS commit and the build date (set at link time with -ldflags -X, else from the go command's stamps), the Go version and the platform."},
	{Name: "help", Args: "[COMMAND | settings]", Short: "this list; help COMMAND: a command's flags and settings",
		Long: "Without an argument, the list of commands; with a command, its synopsis, flags and the settings it reads; `help settings` prints every setting, its default and use, tab-separated."},
	{Name: "completion", Args: "bash|zsh|fish", Short: "a shell completion script",
		Long: "Prints the completion script of a shell, made from the same list as this help:\n\n  source <(orderflow completion bash)\n  orderflow completion zsh > \"${fpath[1]}/_orderflow\"\n  orderflow completion fish > ~/.config/fish/completions/orderflow.fish"},
	{Name: "man", Short: "the man page orderflow(1), in roff",
		Long: "Prints the man page, made from the same list as this help: orderflow man > /usr/local/share/man/man1/orderflow.1"},
}

// serverSettings are the settings of the serving commands: every setting
// but the client's and those that only init reads.
func serverSettings() []string {
	var ns []string
	for _, s := range settings {
		switch s.Name {
		case "ORDERFLOW_URL", "ORDERFLOW_QUEUE_NAME", "ORDERFLOW_DLQ_NAME", "ORDERFLOW_TABLE_NAME":
			continue
		}
		ns = append(ns, s.Name)
	}
	return ns
}

var dlqSettings = names("ORDERFLOW_DB", "SQS_QUEUE_URL", "SQS_DLQ_URL", "DDB_TABLE", "AWS_REGION",
	"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_DYNAMODB", "ORDERFLOW_AWS_CALL_TIMEOUT")

var clientSettings = names("ORDERFLOW_URL")

// names is a Settings function for a fixed list.
func names(ns ...string) func() []string { return func() []string { return ns } }

// findCommand returns the command that args start with and the rest of
// args. A group's name alone ("dlq", "order") or an unknown word is a
// usage error (exit 2) with a one-line hint.
func findCommand(args []string) (*command, []string, error) {
	word := args[0]
	if len(args) > 1 {
		for i := range commands {
			if commands[i].Name == word+" "+args[1] {
				return &commands[i], args[2:], nil
			}
		}
	}
	for i := range commands {
		if commands[i].Name == word {
			return &commands[i], args[1:], nil
		}
	}
	if subs := subcommands(word); len(subs) > 0 {
		if len(args) == 1 {
			return nil, nil, usageErrorf("%s needs a subcommand: %s (see orderflow help %s)", word, strings.Join(subs, ", "), word)
		}
		return nil, nil, usageErrorf("unknown %s subcommand %q: use %s (see orderflow help %s)", word, args[1], strings.Join(subs, ", "), word)
	}
	return nil, nil, usageErrorf("unknown command %q (see orderflow help)", word)
}

// subcommands lists the subcommands of a group such as dlq or order.
func subcommands(group string) []string {
	var subs []string
	for _, c := range commands {
		if g, sub, ok := strings.Cut(c.Name, " "); ok && g == group {
			subs = append(subs, sub)
		}
	}
	return subs
}

// usageErrorf is a command line that cannot be understood: exit status 2,
// as the flag package and the tools users know give it.
func usageErrorf(format string, args ...any) error {
	return &exitError{exitUsage, fmt.Sprintf(format, args...)}
}

const exitUsage = 2

// newFlagSet is the FlagSet of the command name with the flags define
// adds. It prints nothing: a parse error (a value the flag cannot take)
// is returned, and main prints it once, on one line.
func newFlagSet(name string, _ io.Writer, define func(*flag.FlagSet)) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if define != nil {
		define(fs)
	}
	return fs
}

// flagSet is the command's FlagSet, with its flags, writing nowhere.
func (c *command) flagSet() *flag.FlagSet {
	return newFlagSet(c.Name, io.Discard, c.Flags)
}

// wantsHelp reports whether args, before a "--", ask for help.
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// checkFlags finds the flags in args that the command does not have, or
// that lack their value, before the command runs (exit 2). Values are
// left to the command's own parse, which says what is wrong with them.
func (c *command) checkFlags(args []string) error {
	fs := c.flagSet()
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return nil
		}
		if len(a) < 2 || a[0] != '-' {
			return nil // the flag package stops at the first non-flag argument
		}
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		name, _, hasValue := strings.Cut(name, "=")
		f := fs.Lookup(name)
		if f == nil {
			return usageErrorf("%s: unknown flag %s (see orderflow %s --help)", c.Name, a, c.Name)
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() || hasValue {
			continue
		}
		if i+1 == len(args) {
			return usageErrorf("%s: flag %s needs a value (see orderflow %s --help)", c.Name, a, c.Name)
		}
		i++
	}
	return nil
}

// usage is the list of commands, for orderflow help and -h.
func usage() string {
	var b strings.Builder
	b.WriteString("usage: orderflow [COMMAND] [FLAGS]\n\nAn asynchronous order pipeline in one binary: the api, the processor, their\noperator commands and a client of the api.\n\ncommands:\n")
	client := false
	for _, c := range commands {
		if c.Client && !client {
			b.WriteString("\nclient commands, against the api at ORDERFLOW_URL (default http://localhost:8000):\n")
			client = true
		}
		if !c.Client && client {
			b.WriteString("\n")
			client = false
		}
		fmt.Fprintf(&b, "  %-15s%s\n", c.Name, c.Short)
	}
	b.WriteString("\nRun orderflow help COMMAND (or orderflow COMMAND --help) for a command's flags\nand the settings it reads; orderflow help settings lists every setting. Settings\nare environment variables. Exit status: 0 done, 1 failed, 2 a command line that\ncannot be understood (order watch also: 2 REJECTED, 3 FAILED, 4 CANCELLED).\n")
	return b.String()
}

// help is orderflow help CMD: synopsis, description, flags, settings.
func (c *command) help() string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s\n\n%s\n", c.synopsis(), wrap(c.Long, 78, ""))
	fs := c.flagSet()
	if c.Flags != nil {
		b.WriteString("\nflags:\n")
		fs.VisitAll(func(f *flag.Flag) {
			arg, text := flag.UnquoteUsage(f)
			head := "  --" + f.Name
			if arg != "" {
				head += " " + arg
			}
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "[]" {
				text += " (default " + f.DefValue + ")"
			}
			fmt.Fprintf(&b, "%s\n%s\n", head, wrap(text, 78, "      "))
		})
	}
	b.WriteString("  -h, --help\n      this help\n")
	if c.Settings != nil {
		ns := c.Settings()
		b.WriteString("\nsettings it reads (environment; orderflow help settings gives their defaults):\n")
		b.WriteString(wrap(strings.Join(ns, " "), 78, "  ") + "\n")
	}
	return b.String()
}

// synopsis is the command's one-line usage: orderflow dlq list [--max N].
func (c *command) synopsis() string {
	s := "orderflow " + c.Name
	c.flagSet().VisitAll(func(f *flag.Flag) {
		arg, _ := flag.UnquoteUsage(f)
		if arg != "" {
			arg = " " + arg
		}
		s += " [--" + f.Name + arg + "]"
	})
	if c.Args != "" {
		s += " " + c.Args
	}
	return s
}

// wrap fills text to width columns, each line starting with indent;
// paragraphs (blank lines) and lines starting with spaces are kept.
func wrap(text string, width int, indent string) string {
	var out []string
	for _, para := range strings.Split(text, "\n") {
		if strings.HasPrefix(para, " ") || para == "" {
			out = append(out, indent+para)
			continue
		}
		line := indent
		for _, w := range strings.Fields(para) {
			if len(line) > len(indent) && len(line)+1+len(w) > width {
				out = append(out, line)
				line = indent
			}
			if len(line) > len(indent) {
				line += " "
			}
			line += w
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// helpCmd is orderflow help [COMMAND | settings].
func helpCmd(args []string, stdout io.Writer) error {
	switch {
	case len(args) == 0:
		_, err := io.WriteString(stdout, usage())
		return err
	case len(args) == 1 && args[0] == "settings":
		return printSettings(stdout)
	}
	if len(args) == 1 && len(subcommands(args[0])) > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "usage: orderflow %s SUBCOMMAND\n\nsubcommands:\n", args[0])
		for _, c := range commands {
			if g, _, _ := strings.Cut(c.Name, " "); g == args[0] && c.Name != g {
				fmt.Fprintf(&b, "  %-15s%s\n", c.Name, c.Short)
			}
		}
		fmt.Fprintf(&b, "\nRun orderflow help %s SUBCOMMAND for its flags and settings.\n", args[0])
		_, err := io.WriteString(stdout, b.String())
		return err
	}
	c, rest, err := findCommand(args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageErrorf("help takes one command, got %q (see orderflow help)", strings.Join(args, " "))
	}
	_, err = io.WriteString(stdout, c.help())
	return err
}

// topWords are the first words of the command line: the commands and
// groups, for the completions.
func topWords() []string {
	var ws []string
	for _, c := range commands {
		w, _, _ := strings.Cut(c.Name, " ")
		if !slices.Contains(ws, w) {
			ws = append(ws, w)
		}
	}
	return ws
}
