package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestPostBody(t *testing.T) {
	for _, n := range []int{256, 1000, 16384, 65536} {
		body := postBody(n)
		if len(body) != n || !json.Valid(body) {
			t.Fatalf("postBody(%d): %d bytes, valid JSON %v", n, len(body), json.Valid(body))
		}
		script := string(wrkPostScript(body))
		if strings.Count(script, "]==]") != 1 || !strings.Contains(script, `wrk.method = "POST"`) ||
			!strings.Contains(script, `wrk.headers["Content-Type"] = "application/json"`) {
			t.Fatalf("script for %d bytes:\n%.300s", n, script)
		}
	}
}

// TestReportPost checks the CPU-per-request verdict against its target and
// the whole-body check.
func TestReportPost(t *testing.T) {
	run := func(round int, cfg string, cpu time.Duration, bodyBytes, cut int64) tpRun {
		return tpRun{Round: round, Config: cfg, Label: cfg, Slices: 1, CPUPerReq: cpu,
			Res: &wrkResult{RPS: 1000, P50: time.Millisecond, P99: 2 * time.Millisecond, Requests: 10},
			Up:  upstreamCounts{OK: 10, BodyBytes: bodyBytes, Cut: cut}}
	}
	for _, c := range []struct {
		aCPU       time.Duration
		bodyBytes  int64
		cut        int64
		cpuMet     bool
		measured   string
		errorsMet  bool
		errorsText string
	}{
		{101 * time.Microsecond, 10 * 16384, 0, true, "1.010 (1.010..1.010)", true, "0; 16384 bytes per request"},
		{103 * time.Microsecond, 10 * 16384, 0, false, "1.030 (1.030..1.030)", true, "0; 16384 bytes per request"},
		{100 * time.Microsecond, 10*16384 - 1, 0, true, "1.000 (1.000..1.000)", false, "0; 16384 bytes per request"},
		// Two of A's requests broke off when wrk stopped: not counted.
		{100 * time.Microsecond, 8 * 16384, 2, true, "1.000 (1.000..1.000)", true, "0; 16384 bytes per request"},
	} {
		b := &bench{o: &options{rounds: 1, slices: 1, duration: time.Second}, post: &postResult{Size: 16384, Path: postPath,
			Runs: []tpRun{run(1, "A", c.aCPU, c.bodyBytes, c.cut), run(1, "B", 100*time.Microsecond, 10*16384, 0)}}}
		var w strings.Builder
		vs := b.reportPost(&w)
		if len(vs) != 2 || vs[0].Target != "POST 16 KiB JSON: Caddy CPU per request A/B <= 1.02 (median of rounds)" ||
			vs[0].Measured != c.measured || vs[0].Met != c.cpuMet || vs[1].Met != c.errorsMet || vs[1].Measured != c.errorsText {
			t.Errorf("A CPU %s, body bytes %d: verdicts %+v", c.aCPU, c.bodyBytes, vs)
		}
	}
}
