package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

// TestRefreshInterval checks that the expected refresh schedule is
// tokencache's, not a copy of it, and that the report's economy counts and
// memory text are derived from it.
func TestRefreshInterval(t *testing.T) {
	const life = 5 * time.Second
	lo, mean, hi := refreshInterval(life)
	short, long := tokencache.RefreshInterval(life, 0)
	if lo != short || hi != long || mean != (short+long)/2 {
		t.Fatalf("refreshInterval(%s) = %s %s %s; tokencache says %s..%s", life, lo, mean, hi, short, long)
	}
	// 5 s tokens: a 1.25 s margin plus up to 0.625 s of jitter.
	if lo != 3125*time.Millisecond || mean != 3437500*time.Microsecond || hi != 3750*time.Millisecond {
		t.Fatalf("refresh interval %s %s %s", lo, mean, hi)
	}

	// A 20 s economy run with a token every 3.4 s: 6 tokens. The schedule
	// allows 1+floor(20/3.75) = 6 .. 1+floor(20/3.125) = 7, and one per
	// mean interval is ceil(20/3.4375)+1 = 7.
	t0 := time.Unix(1_700_000_000, 0)
	e := &economyResult{Rate: 100, Dur: 20 * time.Second, Lifetime: life, Window: 250 * time.Millisecond,
		Statuses: map[int]int{200: 2000}, Counters: map[string]int{"password ok": 6},
		FirstToken: t0, LoadStart: t0, LoadEnd: t0.Add(20 * time.Second)}
	for at := time.Duration(0); at < 20*time.Second; at += 3400 * time.Millisecond {
		e.TokenTimes = append(e.TokenTimes, t0.Add(at))
		e.TokenStatus = append(e.TokenStatus, 200)
	}
	b := &bench{o: &options{lifetime: life, memEvery: 2 * time.Second, threads: 2, conns: 64},
		econ: e, mem: &memoryResult{Dur: time.Minute}}
	var w strings.Builder
	vs := b.reportEconomy(&w)
	wantTarget := fmt.Sprintf("token requests: one per refresh interval (count within 6..7, no interval under %.3f s, none failed)", short.Seconds())
	if len(vs) == 0 || vs[0].Target != wantTarget || !vs[0].Met ||
		!strings.HasPrefix(vs[0].Measured, "6 (ceil(D / mean interval) + 1 = 7), shortest interval 3.400 s, 0 failed") {
		t.Fatalf("economy verdict %+v, want target %q", vs, wantTarget)
	}
	wantText := fmt.Sprintf("a quarter of the lifetime (%s) remains", fmtDur(tokencache.RefreshMargin(life, 0)))
	wantEvery := fmt.Sprintf("one refresh every %s..%s (mean %s)", fmtDur(short), fmtDur(long), fmtDur((short+long)/2))
	if s := w.String(); !strings.Contains(s, wantText) || !strings.Contains(s, wantEvery) {
		t.Fatalf("economy report lacks %q or %q:\n%s", wantText, wantEvery, s)
	}
	w.Reset()
	b.reportMemory(&w)
	if want := fmt.Sprintf("refreshes about every %s", fmtDur((short+long)/2)); !strings.Contains(w.String(), want) {
		t.Fatalf("memory report lacks %q:\n%s", want, w.String())
	}
}
