package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Every child process (caddy, wrk) is started in its own process group and
// registered here, so that killAll can stop the whole group on any exit
// path: normal return, error, panic in main, or a signal.
var (
	childMu  sync.Mutex
	children = map[int]*exec.Cmd{}
)

func registerChild(c *exec.Cmd) {
	childMu.Lock()
	children[c.Process.Pid] = c
	childMu.Unlock()
}

func unregisterChild(pid int) {
	childMu.Lock()
	delete(children, pid)
	childMu.Unlock()
}

// killAll sends SIGKILL to the process group of every child still
// registered. Only groups this program created are touched.
func killAll() {
	childMu.Lock()
	defer childMu.Unlock()
	for pid := range children {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		delete(children, pid)
	}
}

// groupAttr puts a child in a new process group and asks the kernel to kill
// it if this program dies without cleaning up.
func groupAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// caddyProc is one running Caddy process.
type caddyProc struct {
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	logPath string
	port    int // the site port
	admin   int // the admin port
}

// startCaddy runs `caddy run --config <file> --adapter caddyfile` with the
// given Caddyfile, its stdout and stderr going to a log file in dir.
func startCaddy(bin, dir, name, caddyfile string, port, admin int) (*caddyProc, error) {
	cfgPath := filepath.Join(dir, name+".Caddyfile")
	if err := os.WriteFile(cfgPath, []byte(caddyfile), 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run", "--config", cfgPath, "--adapter", "caddyfile")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = groupAttr()
	home := filepath.Join(dir, "home")
	cmd.Env = append(os.Environ(),
		"HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, "config"),
		"XDG_DATA_HOME="+filepath.Join(home, "data"),
		"BENCH_GID_PASSWORD="+simPassword,
		"BENCH_GID_CLIENT_SECRET="+simClientSecret,
	)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	registerChild(cmd)
	p := &caddyProc{cmd: cmd, done: make(chan struct{}), logPath: logPath, port: port, admin: admin}
	go func() {
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has already ended.
func (p *caddyProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop asks Caddy to exit (SIGTERM), then kills its group after 5 s.
func (p *caddyProc) stop() {
	if p == nil {
		return
	}
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	<-p.done
	unregisterChild(pid)
}

// tail returns the last lines of the Caddy log, for error messages.
func (p *caddyProc) tail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitReady polls url until it answers 200 (the whole chain works: Caddy,
// token, upstream), Caddy exits, or the timeout passes.
func (p *caddyProc) waitReady(url string, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("caddy exited early (%v); log:\n%s", p.waitErr, p.tail(20))
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("caddy not ready after %s (last: %s); log:\n%s", timeout, last, p.tail(20))
}

// rssKB reads VmRSS of the process from /proc/<pid>/status, in KiB.
func rssKB(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			fields := strings.Fields(rest)
			if len(fields) == 0 {
				break
			}
			return strconv.ParseInt(fields[0], 10, 64)
		}
	}
	return 0, errors.New("no VmRSS line")
}

// freePort asks the kernel for an unused loopback port. Another process
// could take it before Caddy binds it; on these machines that is unlikely
// enough, and a bind failure shows up as Caddy exiting early.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// runCmd runs a short command and returns its trimmed combined output.
func runCmd(ctx context.Context, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// otherLoad lists processes whose command line suggests they would skew the
// measurements (fuzzers, go test), so that the report can say so.
func otherLoad() []string {
	ents, _ := os.ReadDir("/proc")
	self := os.Getpid()
	var out []string
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		cmdline := strings.Join(args, " ")
		isFuzz := false
		for _, a := range args {
			if a == "-fuzz" || strings.HasPrefix(a, "-fuzz=") || a == "-test.fuzz" || strings.HasPrefix(a, "-test.fuzz=") {
				isFuzz = true
			}
		}
		isGoTest := len(args) >= 2 && filepath.Base(args[0]) == "go" && args[1] == "test"
		if isFuzz || isGoTest {
			if len(cmdline) > 100 {
				cmdline = cmdline[:100] + "..."
			}
			out = append(out, fmt.Sprintf("pid %d: %s", pid, cmdline))
		}
	}
	return out
}
