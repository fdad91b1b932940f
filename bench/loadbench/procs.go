package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-groupid/caddy-groupid/internal/testenv/live"
)

// startCaddy starts Caddy (live.StartCaddy) with the given Caddyfile and
// the simulator's secrets in the environment config A reads, its log in dir.
func (b *bench) startCaddy(dir, name, caddyfile string, port, admin int) (*live.Caddy, error) {
	return live.StartCaddy(live.CaddyConfig{Bin: b.bin, Dir: dir, Name: name, Caddyfile: caddyfile, Admin: admin, HTTP: port,
		Env: []string{"BENCH_GID_PASSWORD=" + simPassword, "BENCH_GID_CLIENT_SECRET=" + simClientSecret}})
}

// waitServing waits until url answers 200 (the whole chain works: Caddy,
// token, upstream), Caddy exits, or 20 s pass.
func waitServing(p *live.Caddy, url string) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	return p.WaitReady(20*time.Second, live.OK(client, url))
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
