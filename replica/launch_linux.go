package replica

import (
	"os/exec"
	"runtime"
	"syscall"
)

// launch starts cmd at niceness nice, to die with this process, and
// returns the channel that receives its exit.
//
// On Linux a niceness and the parent of PR_SET_PDEATHSIG are a thread's,
// not the process's: the child is forked from a thread of its own, locked
// to the goroutine that waits for it, whose niceness is set first (the
// child inherits it; the thread is never used for anything else and ends
// with the goroutine, since it is never unlocked). That thread lives as
// long as the child, so the kernel sends the child SIGKILL when this
// process dies, not when some thread of it ends.
func launch(cmd *exec.Cmd, nice int) (<-chan error, error) {
	started, exited := make(chan error, 1), make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if nice != 0 {
			if err := syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), nice); err != nil {
				started <- err
				return
			}
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		exited <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return exited, nil
}
