package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/sqlite"
)

// openPTY opens a pseudo-terminal: the terminal side a program writes to,
// and the side its reader reads what was written from.
func openPTY(t *testing.T) (term, reader *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	return tty, ptmx
}

func TestProgressOnlyOnATerminal(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, false)
	p.update("%d moved", 3)
	p.done()
	if b.Len() != 0 {
		t.Errorf("not a terminal: wrote %q, want nothing", b.String())
	}
	p = newProgress(&b, true)
	p.update("%d moved", 3)
	p.done()
	if got := b.String(); got != "\r\033[K3 moved\r\033[K" {
		t.Errorf("a terminal: wrote %q", got)
	}
	tty, _ := openPTY(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if !isTerminalWriter(tty) || isTerminalWriter(w) || isTerminalWriter(&b) {
		t.Errorf("isTerminalWriter: pty %v, pipe %v, buffer %v; want true, false, false", isTerminalWriter(tty), isTerminalWriter(w), isTerminalWriter(&b))
	}
}

// dlq redrive of many messages shows its progress on a terminal's stderr
// and prints only its result where stderr is a pipe or a file.
func TestRedriveProgress(t *testing.T) {
	env := testEnv(t, nil)
	deadLetters := func(n int) {
		t.Helper()
		db, err := sqlite.Open(context.Background(), env["ORDERFLOW_DB"], sqlite.Options{MaxReceives: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for range n {
			if err := db.Send(context.Background(), orderflow.Message{OrderID: orderflow.NewOrderID(time.Now())}); err != nil {
				t.Fatal(err)
			}
		}
		for {
			ds, err := db.Receive(context.Background(), 10, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) == 0 {
				break
			}
			for _, d := range ds {
				if err := db.ChangeVisibility(context.Background(), d.Receipt, 0); err != nil {
					t.Fatal(err)
				}
			}
		}
	}

	deadLetters(35)
	tty, reader := openPTY(t)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"dlq", "redrive", "-max", "100"}, getenvOf(env), strings.NewReader(""), &out, tty); err != nil {
		t.Fatal(err)
	}
	if out.String() != "redrove 35 message(s) to the queue\n" {
		t.Errorf("stdout %q", out.String())
	}
	tty.Close()
	// After the terminal side closed, the reader gets what was written,
	// then EIO.
	var all []byte
	buf := make([]byte, 4096)
	for {
		n, err := reader.Read(buf)
		all = append(all, buf[:n]...)
		if err != nil {
			break
		}
	}
	shown := string(all)
	for _, want := range []string{"10 of at most 100 moved", "30 of at most 100 moved", "35 of at most 100 moved"} {
		if !strings.Contains(shown, want) {
			t.Errorf("the terminal showed %q, want %q in it", shown, want)
		}
	}

	// Again into a pipe: the result only.
	env = testEnv(t, nil)
	deadLetters(25)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out.Reset()
	if err := run(context.Background(), []string{"dlq", "redrive"}, getenvOf(env), strings.NewReader(""), &out, w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	n, _ := r.Read(buf)
	if n != 0 || out.String() != "redrove 25 message(s) to the queue\n" {
		t.Errorf("into a pipe: stderr %q, stdout %q; want nothing and the result", buf[:n], out.String())
	}
}
