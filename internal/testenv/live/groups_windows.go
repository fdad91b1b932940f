package live

import (
	"os/exec"
	"syscall"
)

// groupAttr starts a child in a process group of its own.
func groupAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}

// killGroup ends the child (Windows has no signal for a whole group; the
// live tests start no grandchildren).
func killGroup(cmd *exec.Cmd) {
	_ = cmd.Process.Kill()
}
