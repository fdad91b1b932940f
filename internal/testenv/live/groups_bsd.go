//go:build unix && !linux

package live

import "syscall"

// groupAttr puts a child in a process group of its own (there is no
// Pdeathsig outside Linux: KillAll is the only guard).
func groupAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
