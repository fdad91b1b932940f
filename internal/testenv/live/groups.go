package live

import (
	"os/exec"
	"sync"
	"syscall"
)

// Every child process (Caddy, and wrk in the load benchmark) is started in
// a process group of its own and registered here, so that KillAll can end
// every group on any exit path of the program: return, error, panic or a
// signal. The kernel kills a child whose parent dies (Pdeathsig).
var (
	groupsMu sync.Mutex
	groups   = map[int]*exec.Cmd{}
)

// StartGroup starts cmd in a process group of its own, killed if this
// process dies, and registers it for KillAll.
func StartGroup(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	groupsMu.Lock()
	groups[cmd.Process.Pid] = cmd
	groupsMu.Unlock()
	return nil
}

// KillGroup sends SIGKILL to the process group pid leads (started by
// StartGroup) and forgets it. The caller still waits for the process.
func KillGroup(pid int) {
	groupsMu.Lock()
	defer groupsMu.Unlock()
	if _, ok := groups[pid]; ok {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		delete(groups, pid)
	}
}

// KillAll sends SIGKILL to every process group StartGroup started that
// KillGroup has not ended. Only groups this program created are touched.
func KillAll() {
	groupsMu.Lock()
	defer groupsMu.Unlock()
	for pid := range groups {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		delete(groups, pid)
	}
}
