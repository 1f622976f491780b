//go:build !linux

package replica

import (
	"os/exec"
	"syscall"
)

// launch starts cmd at niceness nice and returns the channel that
// receives its exit. Without PR_SET_PDEATHSIG the child ends with this
// process when its stdin does.
func launch(cmd *exec.Cmd, nice int) (<-chan error, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if nice != 0 {
		// Here a niceness is the process's.
		syscall.Setpriority(syscall.PRIO_PROCESS, cmd.Process.Pid, nice)
	}
	return exited, nil
}
