package awstest

import (
	"os/exec"
	"runtime"
	"syscall"
)

// startServer starts cmd in a process group of its own, to get SIGKILL
// when this process dies, and returns the channel closed once it has
// exited. The parent that PR_SET_PDEATHSIG watches is the thread that
// forked, not the process: cmd is forked from a thread locked to the
// goroutine that waits for it (never unlocked, so the thread ends with
// the goroutine, after the child), so that no other thread's end kills
// the server in the middle of the tests (see replica.launch, which does
// the same for the replicator).
func startServer(cmd *exec.Cmd) (exited <-chan struct{}, err error) {
	started, done := make(chan error, 1), make(chan struct{})
	go func() {
		runtime.LockOSThread()
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return done, nil
}
