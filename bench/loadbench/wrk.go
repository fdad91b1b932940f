package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-groupid/caddy-groupid/internal/testenv/live"
)

// wrkResult is what the report uses from one wrk run.
type wrkResult struct {
	RPS           float64
	P50, P90, P99 time.Duration
	Requests      int64
	Non2xx        int64
	SockErrors    int64 // connect + read + write + timeout
	Raw           string
}

// wrkArgs builds the wrk command line for url; extra (such as -s script)
// goes just before the URL.
func wrkArgs(threads, conns int, dur time.Duration, url string, header string, extra ...string) []string {
	args := []string{fmt.Sprintf("-t%d", threads), fmt.Sprintf("-c%d", conns), "-d" + wrkDuration(dur), "--latency"}
	if header != "" {
		args = append(args, "-H", header)
	}
	args = append(args, extra...)
	return append(args, url)
}

// wrkDuration formats a duration the way wrk accepts it (whole seconds).
func wrkDuration(d time.Duration) string {
	s := int(d.Round(time.Second) / time.Second)
	if s < 1 {
		s = 1
	}
	return fmt.Sprintf("%ds", s)
}

// runWrk runs wrk in its own process group, killed if ctx ends or the run
// overshoots its duration by more than 30 s.
func runWrk(ctx context.Context, args []string, dur time.Duration) (*wrkResult, error) {
	ctx, cancel := context.WithTimeout(ctx, dur+30*time.Second)
	defer cancel()
	cmd := exec.Command("wrk", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := live.StartGroup(cmd); err != nil {
		return nil, err
	}
	pid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		live.KillGroup(pid)
		<-done
		err = ctx.Err()
	}
	live.KillGroup(pid) // any stray member of the group
	if err != nil {
		return nil, fmt.Errorf("wrk %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	res, perr := parseWrk(out.String())
	if perr != nil {
		return nil, fmt.Errorf("wrk output: %v\n%s", perr, out.String())
	}
	return res, nil
}

// parseWrk reads the summary wrk 4.x prints with --latency.
func parseWrk(s string) (*wrkResult, error) {
	r := &wrkResult{Raw: s}
	var haveRPS, have50, have99 bool
	inDist := false
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "Latency Distribution"):
			inDist = true
			continue
		case inDist && len(f) == 2 && strings.HasSuffix(f[0], "%"):
			d, err := parseWrkDuration(f[1])
			if err != nil {
				return nil, err
			}
			switch f[0] {
			case "50%":
				r.P50, have50 = d, true
			case "90%":
				r.P90 = d
			case "99%":
				r.P99, have99 = d, true
			}
			continue
		}
		inDist = false
		switch {
		case strings.HasPrefix(line, "Requests/sec:") && len(f) == 2:
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return nil, fmt.Errorf("requests/sec: %v", err)
			}
			r.RPS, haveRPS = v, true
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			v, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("request count: %v", err)
			}
			r.Requests = v
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:") && len(f) == 5:
			v, err := strconv.ParseInt(f[4], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("non-2xx: %v", err)
			}
			r.Non2xx = v
		case strings.HasPrefix(line, "Socket errors:"):
			// Socket errors: connect 0, read 0, write 0, timeout 0
			for i := 2; i+1 < len(f); i += 2 {
				v, err := strconv.ParseInt(strings.TrimSuffix(f[i+1], ","), 10, 64)
				if err != nil {
					return nil, fmt.Errorf("socket errors: %v", err)
				}
				r.SockErrors += v
			}
		}
	}
	if !haveRPS || !have50 || !have99 {
		return nil, fmt.Errorf("missing Requests/sec or latency distribution")
	}
	return r, nil
}

// parseWrkDuration parses wrk's latency format: 812.00us, 1.23ms, 2.00s, 1.50m.
func parseWrkDuration(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("latency %q: %v", s, err)
			}
			return time.Duration(v * float64(u.unit)), nil
		}
	}
	return 0, fmt.Errorf("latency %q: unknown unit", s)
}

// ensureWrk installs Debian's wrk when it is missing.
func ensureWrk(ctx context.Context, logf func(string, ...any)) error {
	if _, err := exec.LookPath("wrk"); err == nil {
		return nil
	}
	logf("wrk not found; installing it: apt-get update && apt-get install -y wrk")
	for _, args := range [][]string{{"update"}, {"install", "-y", "wrk"}} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("apt-get %s: %v (install wrk by hand, as root)", strings.Join(args, " "), err)
		}
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		return fmt.Errorf("wrk still not found after apt-get install")
	}
	return nil
}
