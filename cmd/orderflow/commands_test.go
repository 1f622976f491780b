package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// runArgs runs the program with args and returns its output and the exit
// status main would give.
func runArgs(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, getenvOf(env), strings.NewReader(""), &out, &errb)
	if err != nil {
		fmt.Fprintln(&errb, "orderflow:", err)
	}
	return out.String(), errb.String(), exitCode(err)
}

// Every command has help in three spellings, exit 0, listing its flags and
// the settings it reads; each is answered before any setting is read (the
// environment here is empty, which every command would refuse).
func TestEveryCommandHasHelp(t *testing.T) {
	for _, c := range commands {
		var want []string
		c.flagSet().VisitAll(func(f *flagT) { want = append(want, "--"+f.Name) })
		if c.Settings != nil {
			want = append(want, c.Settings()...)
		}
		spellings := [][]string{append([]string{"help"}, strings.Fields(c.Name)...), append(strings.Fields(c.Name), "--help"), append(strings.Fields(c.Name), "-h")}
		for _, args := range spellings {
			out, errOut, code := runArgs(t, nil, args...)
			if code != 0 || errOut != "" {
				t.Errorf("orderflow %s: exit %d, stderr %q; want 0 and nothing", strings.Join(args, " "), code, errOut)
				continue
			}
			if c.Name != "help" && !strings.HasPrefix(out, "usage: orderflow "+c.Name) {
				t.Errorf("orderflow %s: help starts %q, want the synopsis", strings.Join(args, " "), firstLine(out))
			}
			for _, w := range want {
				if !strings.Contains(out, w) {
					t.Errorf("orderflow %s: help does not name %s", strings.Join(args, " "), w)
				}
			}
		}
	}
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		out, _, code := runArgs(t, nil, args...)
		if code != 0 {
			t.Errorf("orderflow %v: exit %d", args, code)
		}
		for _, c := range commands {
			if !strings.Contains(out, "  "+c.Name+" ") {
				t.Errorf("orderflow %v does not list %s", args, c.Name)
			}
		}
	}
}

type flagT = flag.Flag

// needTool returns the path of a tool, skipping the test without it
// (failing it under CI=true, where scripts/test.sh installs it).
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed; scripts/test.sh installs it", name)
		}
		t.Skipf("%s is not installed (scripts/test.sh installs it)", name)
	}
	return p
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

// A command line that cannot be understood exits 2 with one line naming
// the mistake and where to look, before any setting is read.
func TestUsageErrorsExit2WithAHint(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate" (see orderflow help)`},
		{[]string{"dlq"}, "dlq needs a subcommand: list, redrive, purge"},
		{[]string{"dlq", "shred"}, `unknown dlq subcommand "shred"`},
		{[]string{"order"}, "order needs a subcommand: place, watch, list, cancel"},
		{[]string{"dlq", "list", "--maxx", "3"}, "dlq list: unknown flag --maxx (see orderflow dlq list --help)"},
		{[]string{"dlq", "list", "-max"}, "dlq list: flag -max needs a value"},
		{[]string{"serve", "--port", "1"}, "serve: unknown flag --port"},
		{[]string{"order", "watch", "--json", "x"}, "order watch: unknown flag --json"},
		{[]string{"order", "place", "--amount", "1", "--itme", "widget=1"}, "order place: unknown flag --itme"},
		{[]string{"help", "frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"completion", "tcsh"}, `unknown shell "tcsh"`},
		{[]string{"version", "extra"}, "version takes no arguments"},
	}
	for _, tc := range cases {
		out, errOut, code := runArgs(t, nil, tc.args...)
		if code != 2 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("orderflow %s: exit %d, stdout %q, stderr %q; want 2 and one line with %q", strings.Join(tc.args, " "), code, out, errOut, tc.want)
		}
	}
	// Flags the command has, in every form the flag package takes, pass
	// the check (and the command fails later, exit 1: no database here,
	// no client configuration).
	env := map[string]string{"ORDERFLOW_DB": filepath.Join(t.TempDir(), "none.db"), "ORDERFLOW_URL": "nowhere"}
	for _, args := range [][]string{{"dlq", "list", "-max", "3"}, {"dlq", "list", "--max=3"}, {"dlq", "purge", "--yes"}, {"order", "place", "--json", "--amount", "1"}} {
		if _, errOut, code := runArgs(t, env, args...); code != 1 || strings.Contains(errOut, "flag") {
			t.Errorf("orderflow %s: exit %d %q, want 1 from the command itself", strings.Join(args, " "), code, errOut)
		}
	}
}

// Every listed command reaches its code: none falls through run's switch.
func TestEveryCommandRuns(t *testing.T) {
	// Refused by every command that reads settings, before it does anything.
	env := map[string]string{"ORDERFLOW_BATCH_SIZE": "many", "ORDERFLOW_URL": "nowhere"}
	for _, c := range commands {
		_, errOut, code := runArgs(t, env, strings.Fields(c.Name)...)
		if c.Settings != nil && (code != 1 || !strings.Contains(errOut, "configuration")) {
			t.Errorf("orderflow %s with a bad setting: exit %d %q, want 1 for the configuration", c.Name, code, errOut)
		}
		if strings.Contains(errOut, "is listed but not run") {
			t.Errorf("orderflow %s: %s", c.Name, errOut)
		}
	}
	for _, c := range commands {
		if c.Settings == nil {
			continue
		}
		for _, n := range c.Settings() {
			defaultOf(n) // panics on a name that is not a setting
		}
	}
}

func TestVersion(t *testing.T) {
	info := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123abc"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	if got, want := readBuild(info, "", "", ""), (buildInfo{"v1.2.3", "0123abc+dirty", "2026-12-01T10:00:00Z", "go1.26.8"}); got != want {
		t.Errorf("from the stamps: %+v, want %+v", got, want)
	}
	if got, want := readBuild(info, "v2.0.0", "fff", "2026-12-02T00:00:00Z"), (buildInfo{"v2.0.0", "fff", "2026-12-02T00:00:00Z", "go1.26.8"}); got != want {
		t.Errorf("-ldflags -X: %+v, want %+v (they win over the stamps)", got, want)
	}
	if got := readBuild(nil, "", "", ""); got.Version != "(devel)" || got.GoVersion == "" {
		t.Errorf("no build info: %+v", got)
	}
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		out, _, code := runArgs(t, nil, args...)
		if want := currentBuild().String() + "\n"; code != 0 || out != want {
			t.Errorf("orderflow %v: exit %d %q, want %q", args, code, out, want)
		}
	}
}

// The Dockerfile's build args reach the binary through -ldflags -X: a
// binary built so tells them.
func TestVersionFromLdflags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "orderflow")
	ld := "-X main.version=v9.8.7 -X main.commit=c0ffee -X main.date=2026-12-02T12:00:00Z"
	build := exec.Command("go", "build", "-ldflags", ld, "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil || !strings.HasPrefix(string(out), "orderflow v9.8.7 commit c0ffee built 2026-12-02T12:00:00Z go") {
		t.Fatalf("--version: %v %q", err, out)
	}
	man, err := exec.Command(bin, "man").Output()
	if err != nil || !bytes.Contains(man, []byte(`.TH ORDERFLOW 1 "2026-12-02" "orderflow v9.8.7"`)) {
		t.Fatalf("man: %v %q", err, firstLine(string(man)))
	}
}

// The man page is valid roff that man renders, with every command, flag
// and setting in it.
func TestManPage(t *testing.T) {
	page := manPage(buildInfo{Version: "v1.0.0", GoVersion: "go1.26.8"}, time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC))
	groff := needTool(t, "groff")
	cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = strings.NewReader(page)
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("groff warns: %v\n%s", err, out)
	}
	cmd = exec.Command(groff, "-man", "-Tutf8", "-P-cbou")
	cmd.Stdin = strings.NewReader(page)
	rendered, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	// groff hyphenates and fills; compare without line breaks.
	text := strings.Join(strings.Fields(strings.ReplaceAll(string(rendered), "\u2010\n", "")), " ")
	for _, c := range commands {
		if !strings.Contains(text, "orderflow "+c.Name) {
			t.Errorf("the man page lacks the command %s", c.Name)
		}
		c.flagSet().VisitAll(func(f *flagT) {
			if !strings.Contains(text, "--"+f.Name) {
				t.Errorf("the man page lacks %s's flag --%s", c.Name, f.Name)
			}
		})
	}
	for _, s := range settings {
		if !strings.Contains(text, s.Name) {
			t.Errorf("the man page lacks the setting %s", s.Name)
		}
	}
}

// The bash completion, run by bash, offers the commands, a group's
// subcommands and a command's flags.
func TestBashCompletion(t *testing.T) {
	bash := needTool(t, "bash")
	script := filepath.Join(t.TempDir(), "orderflow.bash")
	if err := os.WriteFile(script, []byte(bashCompletion()), 0o644); err != nil {
		t.Fatal(err)
	}
	complete := func(words ...string) []string {
		t.Helper()
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = fmt.Sprintf("%q", w)
		}
		prog := fmt.Sprintf("source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _orderflow; printf '%%s\\n' \"${COMPREPLY[@]}\"", script, strings.Join(quoted, " "), len(words)-1)
		out, err := exec.Command(bash, "--norc", "-c", prog).CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v\n%s", err, out)
		}
		return strings.Fields(string(out))
	}
	cases := []struct {
		words []string
		want  []string
	}{
		{[]string{"orderflow", "d"}, []string{"dlq"}},
		{[]string{"orderflow", ""}, topWords()},
		{[]string{"orderflow", "dlq", ""}, []string{"list", "redrive", "purge"}},
		{[]string{"orderflow", "dlq", "purge", "--"}, []string{"--max", "--yes", "--help"}},
		{[]string{"orderflow", "order", "place", "--i"}, []string{"--idempotency-key", "--item"}},
		{[]string{"orderflow", "restore", "--"}, []string{"--timestamp", "--force", "--if-missing", "--help"}},
		{[]string{"orderflow", "completion", ""}, []string{"bash", "zsh", "fish"}},
	}
	for _, tc := range cases {
		got := complete(tc.words...)
		for _, w := range tc.want {
			if !slices.Contains(got, w) {
				t.Errorf("complete %q: %v, want it to offer %s", tc.words, got, w)
			}
		}
		if tc.words[1] == "d" && len(got) != 1 {
			t.Errorf("complete %q: %v, want only dlq", tc.words, got)
		}
	}
}

// The zsh and fish scripts are read by their shells without an error.
func TestZshAndFishCompletionsParse(t *testing.T) {
	for _, sh := range []struct{ shell, script, check string }{
		{"zsh", zshCompletion(), "-n"},
		{"fish", fishCompletion(), "--no-execute"},
	} {
		bin := needTool(t, sh.shell)
		f := filepath.Join(t.TempDir(), "orderflow."+sh.shell)
		if err := os.WriteFile(f, []byte(sh.script), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bin, sh.check, f).CombinedOutput(); err != nil {
			t.Errorf("%s %s: %v\n%s", sh.shell, sh.check, err, out)
		}
	}
	// fish: the completions it would offer after `orderflow dlq `.
	fish := needTool(t, "fish")
	f := filepath.Join(t.TempDir(), "orderflow.fish")
	if err := os.WriteFile(f, []byte(fishCompletion()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(fish, "--no-config", "-c", "source "+f+"; complete -C 'orderflow dlq '; complete -C 'orderflow dlq list --'").CombinedOutput()
	if err != nil {
		t.Fatalf("fish: %v\n%s", err, out)
	}
	for _, w := range []string{"list", "redrive", "purge", "--max"} {
		if !strings.Contains(string(out), w) {
			t.Errorf("fish offers %q, want %s among them", out, w)
		}
	}
}

// The running program tells its version: orderflow_build_info on the api's
// and the processor's /metrics, in split mode too, the startup log line
// and the OpenAPI document's info.version.
func TestRunningVersion(t *testing.T) {
	b := currentBuild()
	series := fmt.Sprintf(`orderflow_build_info{goversion=%q,revision=%q,version=%q} 1`, b.GoVersion, b.Revision, b.Version)
	env := testEnv(t, map[string]string{"ORDERFLOW_LOG_LEVEL": "info"})
	in := startRun(t, env)
	for _, u := range []string{in.api + "/metrics", in.processor + "/metrics"} {
		if !strings.Contains(metricsText(t, u), series) {
			t.Errorf("%s lacks %s", u, series)
		}
	}
	var doc struct {
		Info struct{ Version string } `json:"info"`
	}
	if resp := call(t, "GET", in.api+"/openapi.json", "", nil, &doc); resp.StatusCode != 200 || doc.Info.Version != b.Version {
		t.Errorf("openapi.json info.version %q, want %q", doc.Info.Version, b.Version)
	}
	if !strings.Contains(in.out.String(), `"msg":"orderflow starting","mode":"serve","version":`+fmt.Sprintf("%q", b.Version)) {
		t.Errorf("no startup line with the version in\n%s", in.out)
	}
	// Split mode: each process on its own port.
	split := testEnv(t, map[string]string{"ORDERFLOW_DB": env["ORDERFLOW_DB"] + ".split"})
	api := startRun(t, split, "api")
	proc := startRun(t, split, "processor")
	for _, u := range []string{api.api + "/metrics", proc.processor + "/metrics"} {
		if !strings.Contains(metricsText(t, u), series) {
			t.Errorf("split mode: %s lacks %s", u, series)
		}
	}
}

// A value a flag cannot take is one line on stderr, exit 1.
func TestBadFlagValueIsOneLine(t *testing.T) {
	env := map[string]string{"ORDERFLOW_URL": "http://127.0.0.1:1", "XDG_CONFIG_HOME": t.TempDir()}
	out, errOut, code := runArgs(t, env, "order", "place", "--amount", "1", "--timeout", "soon")
	if code != 1 || out != "" || errOut != "orderflow: invalid value \"soon\" for flag -timeout: parse error\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// Each use of a command's flags defines them on values of its own: runs
// of the command line at the same time (the tests' in-process runs) share
// nothing. Under -race this failed while the list held one value per
// command that every FlagSet wrote its defaults into.
func TestCommandFlagsShareNoValues(t *testing.T) {
	for _, c := range commands {
		if c.Flags == nil {
			continue
		}
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				if err := c.checkFlags(nil); err != nil {
					t.Errorf("%s: %v", c.Name, err)
				}
			})
		}
		wg.Wait()
	}
}
