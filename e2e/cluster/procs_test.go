// Package cluster runs several Caddy processes (the binary of cmd/caddy)
// that share one token through one storage folder, against the GroupID
// simulator, and checks what reaches GroupID, the clients and the folder.
package cluster

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// caddyBin is the Caddy binary built once by TestMain.
var caddyBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "groupid-cluster-")
	if err != nil {
		panic(err)
	}
	caddyBin = filepath.Join(dir, "caddy")
	build := exec.Command("go", "build", "-o", caddyBin, "github.com/caddy-groupid/caddy-groupid/cmd/caddy")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building caddy:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// replica is one Caddy process.
type replica struct {
	t          *testing.T
	name       string
	dir        string
	admin      int
	http       int
	caddyfile  string
	cmd        *exec.Cmd
	done       chan struct{}
	logPath    string
	startedAt  time.Time
	httpClient *http.Client
}

// start runs `caddy run --config <file> --adapter caddyfile` in its own
// process group (killed if the test binary dies) with a home of its own.
func (r *replica) start() {
	r.t.Helper()
	cfg := filepath.Join(r.dir, r.name+".Caddyfile")
	if err := os.WriteFile(cfg, []byte(r.caddyfile), 0o600); err != nil {
		r.t.Fatal(err)
	}
	r.logPath = filepath.Join(r.dir, r.name+".log")
	logf, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		r.t.Fatal(err)
	}
	cmd := exec.Command(caddyBin, "run", "--config", cfg, "--adapter", "caddyfile")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	home := filepath.Join(r.dir, r.name+"-home")
	cmd.Env = append(os.Environ(), "HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, "config"), "XDG_DATA_HOME="+filepath.Join(home, "data"))
	if err := cmd.Start(); err != nil {
		logf.Close()
		r.t.Fatal(err)
	}
	r.cmd, r.done, r.startedAt = cmd, make(chan struct{}), time.Now()
	done := r.done
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	r.t.Cleanup(r.kill)
}

// kill ends the process group at once (SIGKILL), as a crash would.
func (r *replica) kill() {
	if r.cmd == nil {
		return
	}
	_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
	<-r.done
	r.cmd = nil
}

// stop asks Caddy to exit, then kills it after 5 s.
func (r *replica) stop() {
	if r.cmd == nil {
		return
	}
	_ = syscall.Kill(r.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
	}
	r.kill()
}

// waitAdmin waits until the admin API answers (the config is loaded).
func (r *replica) waitAdmin(timeout time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-r.done:
			r.t.Fatalf("%s exited early; log:\n%s", r.name, r.tail(30))
		default:
		}
		if _, err := r.status(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatalf("%s not up after %s; log:\n%s", r.name, timeout, r.tail(30))
}

// credStatus is the part of the admin status the tests read.
type credStatus struct {
	State              string            `json:"state"`
	TokenSource        string            `json:"token_source"`
	TokenRequests      map[string]uint64 `json:"token_requests"`
	ShareLockWaits     *uint64           `json:"share_lock_waits"`
	ShareStorageErrors *uint64           `json:"share_storage_errors"`
	ShareFallbacks     *uint64           `json:"share_fallbacks"`
}

func (c credStatus) tokenRequests() uint64 {
	var n uint64
	for _, v := range c.TokenRequests {
		n += v
	}
	return n
}

// status reads the replica's credential from its admin API.
func (r *replica) status() (credStatus, error) {
	resp, err := r.httpClient.Get(fmt.Sprintf("http://localhost:%d/groupid/status", r.admin))
	if err != nil {
		return credStatus{}, err
	}
	defer resp.Body.Close()
	var st []credStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || len(st) != 1 {
		return credStatus{}, fmt.Errorf("status: %d credentials, %v", len(st), err)
	}
	return st[0], nil
}

func (r *replica) mustStatus() credStatus {
	r.t.Helper()
	st, err := r.status()
	if err != nil {
		r.t.Fatalf("%s: %v", r.name, err)
	}
	return st
}

func (r *replica) tail(n int) string {
	b, _ := os.ReadFile(r.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// log returns the replica's whole log.
func (r *replica) log() string {
	b, _ := os.ReadFile(r.logPath)
	return string(b)
}
