package live

import "syscall"

// groupAttr puts a child in a process group of its own, killed by the
// kernel when this process dies.
func groupAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
