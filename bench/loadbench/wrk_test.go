package main

import (
	"testing"
	"time"
)

const wrkSample = `Running 10s test @ http://127.0.0.1:18080/x
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.12ms    2.01ms  40.00ms   80.00%
    Req/Sec     6.30k   400.00     7.00k    70.00%
  Latency Distribution
     50%  812.00us
     75%    6.00ms
     90%    7.50ms
     99%    1.20s
  125000 requests in 10.00s, 40.00MB read
  Socket errors: connect 0, read 2, write 1, timeout 3
  Non-2xx or 3xx responses: 5
Requests/sec:  12500.50
Transfer/sec:      4.00MB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkSample)
	if err != nil {
		t.Fatal(err)
	}
	if r.RPS != 12500.50 || r.P50 != 812*time.Microsecond || r.P90 != 7500*time.Microsecond || r.P99 != 1200*time.Millisecond ||
		r.Requests != 125000 || r.Non2xx != 5 || r.SockErrors != 6 {
		t.Fatalf("parsed %+v", *r)
	}
	if _, err := parseWrk("Requests/sec: 1\n"); err == nil {
		t.Fatal("want an error without a latency distribution")
	}
}

func TestPercentileAndWindow(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	if got := percentile(ds, 99); got != 99*time.Millisecond {
		t.Fatalf("p99 = %s", got)
	}
	if got := percentile(ds, 50); got != 50*time.Millisecond {
		t.Fatalf("p50 = %s", got)
	}
	t0 := time.Now()
	toks := []time.Time{t0, t0.Add(3 * time.Second)}
	w := 250 * time.Millisecond
	for _, c := range []struct {
		d    time.Duration
		near bool
	}{{-250 * time.Millisecond, true}, {-251 * time.Millisecond, false}, {time.Second, false}, {2800 * time.Millisecond, true}, {3250 * time.Millisecond, true}, {4 * time.Second, false}} {
		if got := nearAny(t0.Add(c.d), toks, w); got != c.near {
			t.Errorf("nearAny(%s) = %v", c.d, got)
		}
	}
}
