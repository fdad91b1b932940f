package main

import (
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-groupid/caddy-groupid/internal/testenv/live"
)

// clockTick is the unit of the CPU times in /proc (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// cpuPerRequest is the one formula for "Caddy CPU per request" in every
// phase: the Caddy process's user+system time over a run, in clock ticks,
// divided by the requests the load generator completed. Zero when no
// request completed.
func cpuPerRequest(ticks, requests int64) time.Duration {
	if requests <= 0 {
		return 0
	}
	return time.Duration(ticks) * clockTick / time.Duration(requests)
}

// cpuMeter follows the CPU use of one measured run: the Caddy process's own
// (for CPU per request) and the machine's (to tell what other processes
// took meanwhile).
type cpuMeter struct {
	pids  []int // the Caddy process, if any
	start cpuSnap
	caddy int64 // the Caddy process's utime+stime at the start
}

// startCPU takes the starting readings; p is the Caddy process under load,
// or nil when there is none (config C).
func startCPU(p *live.Caddy) *cpuMeter {
	m := &cpuMeter{}
	if p != nil {
		m.pids = []int{p.Pid()}
	}
	m.start = readCPU(m.pids...)
	m.caddy = m.caddyNow()
	return m
}

func (m *cpuMeter) caddyNow() int64 {
	if len(m.pids) == 0 {
		return 0
	}
	return procTicks(strconv.Itoa(m.pids[0]), false)
}

// caddyTicks is the CPU time the Caddy process has used since the start,
// in clock ticks; zero without one.
func (m *cpuMeter) caddyTicks() int64 { return m.caddyNow() - m.caddy }

// other is the share of the machine (percent) that processes other than
// this program and the Caddy process used since the start.
func (m *cpuMeter) other() float64 { return otherCPU(m.start, readCPU(m.pids...)) }

// cpuSnap is a reading of the machine's CPU time and of the part spent by
// this program, its reaped children and the given live processes, in clock
// ticks.
type cpuSnap struct{ busy, total, mine int64 }

func readCPU(pids ...int) cpuSnap {
	var s cpuSnap
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		for i := 1; i < len(f) && i <= 8; i++ { // user nice system idle iowait irq softirq steal
			v, _ := strconv.ParseInt(f[i], 10, 64)
			s.total += v
			if i != 4 && i != 5 {
				s.busy += v
			}
		}
	}
	s.mine = procTicks("self", true)
	for _, pid := range pids {
		s.mine += procTicks(strconv.Itoa(pid), false)
	}
	return s
}

// procTicks returns utime+stime of a process, plus cutime+cstime (its
// reaped children) when withChildren is set.
func procTicks(pid string, withChildren bool) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// The command name may contain spaces; fields start after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime is field 14, i.e. f[11].
	n := 2
	if withChildren {
		n = 4
	}
	var t int64
	for k := 0; k < n && 11+k < len(f); k++ {
		v, _ := strconv.ParseInt(f[11+k], 10, 64)
		t += v
	}
	return t
}

// otherCPU is the share of the machine's CPU capacity (percent) used by
// processes other than this program and its children between two snaps.
func otherCPU(a, b cpuSnap) float64 {
	total := b.total - a.total
	if total <= 0 {
		return 0
	}
	other := (b.busy - a.busy) - (b.mine - a.mine)
	if other < 0 {
		other = 0
	}
	return 100 * float64(other) / float64(total)
}
