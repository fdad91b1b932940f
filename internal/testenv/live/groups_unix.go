//go:build unix

package live

import (
	"os/exec"
	"syscall"
)

// killGroup sends SIGKILL to the process group cmd leads.
func killGroup(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
