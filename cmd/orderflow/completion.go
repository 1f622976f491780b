package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// completionCmd is orderflow completion bash|zsh|fish: a script made from
// the commands list, so that it offers exactly the commands and flags that
// run accepts.
func completionCmd(args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return usageErrorf("completion needs a shell: bash, zsh or fish (see orderflow help completion)")
	}
	var script string
	switch args[0] {
	case "bash":
		script = bashCompletion()
	case "zsh":
		script = zshCompletion()
	case "fish":
		script = fishCompletion()
	default:
		return usageErrorf("completion: unknown shell %q: use bash, zsh or fish", args[0])
	}
	_, err := io.WriteString(stdout, script)
	return err
}

// flagNames are the command's flags as typed: --name, then -h and --help.
func (c *command) flagNames() []string {
	var ns []string
	c.flagSet().VisitAll(func(f *flag.Flag) { ns = append(ns, "--"+f.Name) })
	return append(ns, "-h", "--help")
}

// bashCompletion completes the first word from the commands and groups,
// the second of a group from its subcommands, and later words starting
// with - from the command's flags. It works in zsh's bashcompinit too.
func bashCompletion() string {
	var b strings.Builder
	b.WriteString("# bash completion for orderflow; made by `orderflow completion bash`.\n")
	b.WriteString("# Load it with: source <(orderflow completion bash)\n")
	b.WriteString("_orderflow() {\n")
	b.WriteString("  local cur=${COMP_WORDS[COMP_CWORD]} cmd=${COMP_WORDS[1]} words\n")
	fmt.Fprintf(&b, "  if [ \"$COMP_CWORD\" -eq 1 ]; then\n    words=%q\n", strings.Join(append(topWords(), "--version", "--help"), " "))
	b.WriteString("  else\n    case \"$cmd\" in\n")
	for _, g := range topWords() {
		if subs := subcommands(g); len(subs) > 0 {
			fmt.Fprintf(&b, "      %s) if [ \"$COMP_CWORD\" -eq 2 ]; then words=%q; else cmd=\"%s ${COMP_WORDS[2]}\"; fi ;;\n", g, strings.Join(subs, " "), g)
		}
	}
	b.WriteString("    esac\n")
	b.WriteString("    if [ -z \"$words\" ]; then\n      case \"$cmd\" in\n")
	for _, c := range commands {
		words := strings.Join(c.flagNames(), " ")
		switch c.Name {
		case "help":
			words = strings.Join(append(topWords(), "settings"), " ")
		case "completion":
			words = "bash zsh fish"
		}
		fmt.Fprintf(&b, "        %q) words=%q ;;\n", c.Name, words)
	}
	b.WriteString("      esac\n    fi\n  fi\n")
	b.WriteString("  COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n}\n")
	b.WriteString("complete -o default -F _orderflow orderflow\n")
	return b.String()
}

// zshCompletion is a #compdef function: commands with their descriptions,
// then each command's flags with their help.
func zshCompletion() string {
	var b strings.Builder
	b.WriteString("#compdef orderflow\n# zsh completion for orderflow; made by `orderflow completion zsh`.\n")
	b.WriteString("# Put it in a directory of $fpath as _orderflow.\n\n")
	b.WriteString("_orderflow() {\n  local -a cmds subs\n")
	b.WriteString("  if (( CURRENT == 2 )); then\n    cmds=(\n")
	for _, w := range topWords() {
		desc := "commands: " + strings.Join(subcommands(w), ", ")
		for _, c := range commands {
			if c.Name == w {
				desc = c.Short
			}
		}
		fmt.Fprintf(&b, "      %s\n", zshQuote(w+":"+desc))
	}
	b.WriteString("    )\n    _describe command cmds\n    return\n  fi\n")
	b.WriteString("  local cmd=${words[2]}\n  case $cmd in\n")
	for _, g := range topWords() {
		if subs := subcommands(g); len(subs) > 0 {
			fmt.Fprintf(&b, "    %s)\n      if (( CURRENT == 3 )); then\n        subs=(", g)
			for _, c := range commands {
				if grp, sub, ok := strings.Cut(c.Name, " "); ok && grp == g {
					fmt.Fprintf(&b, " %s", zshQuote(sub+":"+c.Short))
				}
			}
			b.WriteString(" )\n        _describe subcommand subs\n        return\n      fi\n      cmd=\"$cmd ${words[3]}\" ;;\n")
		}
	}
	b.WriteString("  esac\n  case $cmd in\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "    %s)\n      _arguments", zshQuote(c.Name))
		c.flagSet().VisitAll(func(f *flag.Flag) {
			arg, text := flag.UnquoteUsage(f)
			spec := "--" + f.Name + "[" + zshBracket(text) + "]"
			if arg != "" {
				spec += ":" + strings.ToLower(arg) + ":"
			}
			fmt.Fprintf(&b, " %s", zshQuote(spec))
		})
		switch c.Name {
		case "help":
			fmt.Fprintf(&b, " %s", zshQuote("1:command:("+strings.Join(append(topWords(), "settings"), " ")+")"))
		case "completion":
			fmt.Fprintf(&b, " %s", zshQuote("1:shell:(bash zsh fish)"))
		}
		b.WriteString(" '(-h --help)'{-h,--help}'[show the help]' ;;\n")
	}
	b.WriteString("  esac\n}\n\n_orderflow \"$@\"\n")
	return b.String()
}

func zshQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// zshBracket escapes what _arguments reads in a [description].
func zshBracket(s string) string {
	return strings.NewReplacer("[", `\[`, "]", `\]`, ":", `\:`).Replace(s)
}

// fishCompletion is one complete line per command and per flag.
func fishCompletion() string {
	var b strings.Builder
	b.WriteString("# fish completion for orderflow; made by `orderflow completion fish`.\n")
	b.WriteString("# Put it in ~/.config/fish/completions/orderflow.fish.\n")
	b.WriteString("complete -c orderflow -f\n")
	top := strings.Join(topWords(), " ")
	for _, w := range topWords() {
		desc := "commands: " + strings.Join(subcommands(w), ", ")
		for _, c := range commands {
			if c.Name == w {
				desc = c.Short
			}
		}
		fmt.Fprintf(&b, "complete -c orderflow -n 'not __fish_seen_subcommand_from %s' -a %s -d %s\n", top, w, fishQuote(desc))
	}
	for _, c := range commands {
		cond := "__fish_seen_subcommand_from " + c.Name
		if g, sub, ok := strings.Cut(c.Name, " "); ok {
			fmt.Fprintf(&b, "complete -c orderflow -n '__fish_seen_subcommand_from %s; and not __fish_seen_subcommand_from %s' -a %s -d %s\n",
				g, strings.Join(subcommands(g), " "), sub, fishQuote(c.Short))
			cond = "__fish_seen_subcommand_from " + g + "; and __fish_seen_subcommand_from " + sub
		}
		c.flagSet().VisitAll(func(f *flag.Flag) {
			arg, text := flag.UnquoteUsage(f)
			req := ""
			if arg != "" {
				req = " -r"
			}
			fmt.Fprintf(&b, "complete -c orderflow -n %s -l %s%s -d %s\n", fishQuote(cond), f.Name, req, fishQuote(text))
		})
		switch c.Name {
		case "help":
			fmt.Fprintf(&b, "complete -c orderflow -n %s -a %s\n", fishQuote(cond), fishQuote(top+" settings"))
		case "completion":
			fmt.Fprintf(&b, "complete -c orderflow -n %s -a 'bash zsh fish'\n", fishQuote(cond))
		}
	}
	return b.String()
}

func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(s) + "'"
}

// manCmd is orderflow man: the man page orderflow(1) in roff (man(7)
// macros), made from the commands and settings lists.
func manCmd(args []string, stdout io.Writer, build buildInfo) error {
	if len(args) > 0 {
		return usageErrorf("man takes no arguments (see orderflow help man)")
	}
	_, err := io.WriteString(stdout, manPage(build, time.Now()))
	return err
}

func manPage(build buildInfo, now time.Time) string {
	date := now.UTC().Format("2006-01-02")
	if t, err := time.Parse(time.RFC3339, build.Date); err == nil {
		date = t.UTC().Format("2006-01-02")
	}
	var b strings.Builder
	fmt.Fprintf(&b, ".TH ORDERFLOW 1 %s %s %s\n", roffQuote(date), roffQuote("orderflow "+build.Version), roffQuote("orderflow manual"))
	b.WriteString(".SH NAME\norderflow \\- an asynchronous order pipeline: api, processor, operator commands and client\n")
	b.WriteString(".SH SYNOPSIS\n.B orderflow\n.RI [ command ]\n.RI [ flags ]\n")
	b.WriteString(".SH DESCRIPTION\n")
	b.WriteString(roffText("A client POSTs an order and gets 202 Accepted at once with a signed status URL; the processor does the slow part (inventory, fraud scoring, payment) and records the final state. Without a command, orderflow runs serve. Settings are environment variables (see ENVIRONMENT); secrets can also come from a file named by NAME_FILE.") + "\n")
	b.WriteString(".SH COMMANDS\n")
	for _, c := range commands {
		fmt.Fprintf(&b, ".TP\n.B %s\n%s\n", roffEscape(c.synopsis()), roffText(c.Long))
		c.flagSet().VisitAll(func(f *flag.Flag) {
			arg, text := flag.UnquoteUsage(f)
			head := "\\-\\-" + roffEscape(f.Name)
			if arg != "" {
				head += " \\fI" + roffEscape(arg) + "\\fR"
			}
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "[]" {
				text += " (default " + f.DefValue + ")"
			}
			fmt.Fprintf(&b, ".RS\n.TP\n%s\n%s\n.RE\n", head, roffText(text))
		})
	}
	b.WriteString(".SH ENVIRONMENT\n")
	for _, s := range settings {
		text := s.Help
		if s.Default != "" {
			text += " (default " + s.Default + ")"
		}
		fmt.Fprintf(&b, ".TP\n.B %s\n%s\n", roffEscape(s.Name), roffText(text))
	}
	b.WriteString(".SH EXIT STATUS\n")
	b.WriteString(".TP\n0\ndone (order watch: the order is COMPLETED)\n.TP\n1\nthe command failed\n")
	b.WriteString(".TP\n2\na command line that cannot be understood: an unknown command or flag (order watch also: the order was REJECTED)\n")
	b.WriteString(".TP\n3\norder watch: the order FAILED\n.TP\n4\norder watch: the order was CANCELLED\n")
	b.WriteString(".SH FILES\n.TP\n.I $XDG_CONFIG_HOME/orderflow/tokens.json\nthe client commands' tokens, one per ORDERFLOW_URL (default ~/.config/orderflow/)\n")
	b.WriteString(".SH SEE ALSO\nThe documentation in the source repository: README.md and docs/ (api.md, cli.md, configuration.md, operations.md, aws.md, kubernetes.md, performance.md).\n")
	return b.String()
}

// roffEscape escapes backslashes and hyphens (which roff would render as
// typographic hyphens, breaking copy and paste of flags).
func roffEscape(s string) string {
	return strings.NewReplacer(`\`, `\e`, "-", `\-`).Replace(s)
}

// roffText is a paragraph of body text: escaped, its lines never
// starting with a control character (. or ').
func roffText(s string) string {
	var lines []string
	for _, l := range strings.Split(roffEscape(s), "\n") {
		l = strings.TrimLeft(l, " ")
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			l = `\&` + l
		}
		if l == "" {
			l = ".sp"
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n")
}

func roffQuote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\(dq`) + `"` }
