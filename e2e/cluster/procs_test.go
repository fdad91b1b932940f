// Package cluster runs several Caddy processes (the binary of cmd/caddy)
// that share one token through one storage folder, against the GroupID
// simulator, and checks what reaches GroupID, the clients and the folder.
package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddy-groupid/caddy-groupid/internal/testenv"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv/live"
)

// caddyBin is the Caddy binary built once by TestMain.
var caddyBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "groupid-cluster-")
	if err != nil {
		panic(err)
	}
	caddyBin = filepath.Join(dir, "caddy")
	if err := live.BuildCaddy(context.Background(), "", caddyBin); err != nil {
		fmt.Fprintln(os.Stderr, "building caddy:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// replica is one Caddy process, restartable: its config (Caddyfile and
// ports) stays, each start is a new process logging to the same file.
type replica struct {
	t *testing.T
	live.CaddyConfig
	proc       *live.Caddy // the last process started
	startedAt  time.Time
	httpClient *http.Client
}

// start runs the replica's Caddy (testenv.StartCaddy: a process group and
// a home of its own, killed when the test ends).
func (r *replica) start() {
	r.t.Helper()
	r.proc, r.startedAt = testenv.StartCaddy(r.t, r.CaddyConfig), time.Now()
}

// kill ends the process group at once (SIGKILL), as a crash would.
func (r *replica) kill() { r.proc.Kill() }

// stop asks Caddy to exit, then kills it after 5 s.
func (r *replica) stop() { r.proc.Stop() }

// waitAdmin waits until the admin API answers (the config is loaded).
func (r *replica) waitAdmin(timeout time.Duration) {
	r.t.Helper()
	if err := r.proc.WaitReady(timeout, func() error { _, err := r.status(); return err }); err != nil {
		r.t.Fatal(err)
	}
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
	resp, err := r.httpClient.Get(r.AdminURL("/groupid/status"))
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
		r.t.Fatalf("%s: %v", r.Name, err)
	}
	return st
}

func (r *replica) tail(n int) string { return r.proc.Tail(n) }

// log returns the replica's whole log.
func (r *replica) log() string { return r.proc.Log() }
