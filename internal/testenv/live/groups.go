package live

import (
	"os/exec"
	"sync"
)

// Every child process (Caddy, and wrk in the load benchmark) is started in
// a process group of its own and registered here, so that KillAll can end
// every group on any exit path of the program: return, error, panic or a
// signal. On Linux the kernel also kills a child whose parent dies
// (Pdeathsig). The platform parts are groupAttr and killGroup
// (groups_unix.go, groups_linux.go, groups_bsd.go, groups_windows.go).
var (
	groupsMu sync.Mutex
	groups   = map[int]*exec.Cmd{}
)

// StartGroup starts cmd in a process group of its own, killed if this
// process dies, and registers it for KillAll.
func StartGroup(cmd *exec.Cmd) error {
	cmd.SysProcAttr = groupAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	groupsMu.Lock()
	groups[cmd.Process.Pid] = cmd
	groupsMu.Unlock()
	return nil
}

// KillGroup kills the process group pid leads (started by
// StartGroup) and forgets it. The caller still waits for the process.
func KillGroup(pid int) {
	groupsMu.Lock()
	defer groupsMu.Unlock()
	if cmd, ok := groups[pid]; ok {
		killGroup(cmd)
		delete(groups, pid)
	}
}

// KillAll kills every process group StartGroup started that
// KillGroup has not ended. Only groups this program created are touched.
func KillAll() {
	groupsMu.Lock()
	defer groupsMu.Unlock()
	for pid, cmd := range groups {
		killGroup(cmd)
		delete(groups, pid)
	}
}
