package main

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

// progress reports a long operation's advance on stderr, for the person
// watching a terminal: one line rewritten in place. Where stderr is not a
// terminal (a pipe, a file, a CI log) it says nothing, so that logs keep
// only results.
type progress struct {
	w  io.Writer
	on bool
}

// newProgress reports to w when tty, the is-terminal decision, says so;
// isTerminalWriter(w) makes that decision for a process's stderr.
func newProgress(w io.Writer, tty bool) *progress { return &progress{w: w, on: tty} }

// isTerminalWriter reports whether w is a terminal (not /dev/null, a
// pipe or a file).
func isTerminalWriter(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// update rewrites the progress line.
func (p *progress) update(format string, args ...any) {
	if p.on {
		fmt.Fprintf(p.w, "\r\033[K"+format, args...)
	}
}

// done ends the progress line, so that what follows starts on its own.
func (p *progress) done() {
	if p.on {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
