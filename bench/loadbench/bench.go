package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
)

// bench holds the shared pieces and the results of every phase.
type bench struct {
	ctx  context.Context
	o    *options
	root string
	bin  string
	dir  string
	up   *upstream
	sims []*groupidsim.Running

	machine  machineInfo
	commands []string
	cfgA     string
	cfgB     string
	errs     []string

	cpuStart, cpuEnd cpuSnap

	tp    *throughputResult
	econ  *economyResult
	cold  *coldStartResult
	coldB *coldStartResult
	mem   *memoryResult
}

type machineInfo struct {
	NProc         string
	CPU           string
	Kernel        string
	MemTotal      string
	GoVersion     string
	CaddyVersion  string
	WrkVersion    string
	Date          string
	LoadAvg       string
	OtherLoad     []string
	CaddySHA      string
	Source        string
	OtherLoadLate []string
}

func newBench(ctx context.Context, o *options) (_ *bench, err error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	b := &bench{ctx: ctx, o: o, root: root, bin: o.caddy}
	if !filepath.IsAbs(b.bin) {
		b.bin = filepath.Join(root, o.caddy)
	}
	b.dir, err = os.MkdirTemp("", "loadbench-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	if err := ensureWrk(ctx, logf); err != nil {
		return nil, err
	}
	if !o.noBuild {
		logf("building Caddy: go build -o %s ./cmd/caddy", o.caddy)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", o.caddy, "./cmd/caddy")
		cmd.Dir = root
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("go build: %v", err)
		}
	}
	b.commands = append(b.commands, "go build -o "+o.caddy+" ./cmd/caddy")
	// Run a private copy: others may rebuild bin/caddy while this runs, and
	// every measurement must use the same binary.
	built := b.bin
	b.bin = filepath.Join(b.dir, "caddy")
	sum, err := copyFile(built, b.bin)
	if err != nil {
		return nil, fmt.Errorf("caddy binary: %v", err)
	}
	b.machine = collectMachine(ctx, root, b.bin)
	b.machine.CaddySHA = sum
	b.up, err = startUpstream(staticToken)
	if err != nil {
		return nil, err
	}
	return b, nil
}

func (b *bench) close() {
	if b.up != nil {
		b.up.close()
	}
	for _, s := range b.sims {
		_ = s.Close()
	}
	if b.o.keep {
		logf("work directory kept: %s", b.dir)
	} else {
		_ = os.RemoveAll(b.dir)
	}
}

// repoRoot walks up from the working directory to the module's go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			strings.Contains(string(data), "module github.com/caddy-groupid/caddy-groupid\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("run from inside the caddy-groupid repository")
		}
		dir = parent
	}
}

func collectMachine(ctx context.Context, root, bin string) machineInfo {
	m := machineInfo{Date: time.Now().UTC().Format("2006-01-02 15:04 MST")}
	m.NProc, _ = runCmd(ctx, root, "nproc")
	if m.NProc == "" {
		m.NProc = fmt.Sprint(runtime.NumCPU())
	}
	m.CPU = procField("/proc/cpuinfo", "model name")
	m.MemTotal = procField("/proc/meminfo", "MemTotal")
	if k, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(k))
	}
	if l, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.TrimSpace(string(l))
	}
	m.GoVersion, _ = runCmd(ctx, root, "go", "version")
	m.CaddyVersion, _ = runCmd(ctx, root, bin, "version")
	if v, _ := runCmd(ctx, root, "wrk", "-v"); v != "" {
		m.WrkVersion = strings.SplitN(v, "\n", 2)[0]
	}
	m.OtherLoad = otherLoad()
	if rev, err := runCmd(ctx, root, "git", "log", "-1", "--format=%h %cd %s", "--date=format:%Y-%m-%d %H:%M"); err == nil {
		m.Source = rev
		if len(m.Source) > 110 {
			m.Source = m.Source[:110] + "..."
		}
		if st, err := runCmd(ctx, root, "git", "status", "--porcelain", "--untracked-files=no"); err == nil && st != "" {
			m.Source += " (plus uncommitted changes to tracked files)"
		}
	}
	return m
}

// copyFile copies an executable and returns the SHA-256 of its content.
func copyFile(src, dst string) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(out, h), in); err != nil {
		out.Close()
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil))[:16], out.Close()
}

// procField returns the value of the first "key: value" line in a /proc file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func (b *bench) runAll() error {
	steps := []struct {
		name string
		fn   func() error
	}{
		{"throughput", b.runThroughput},
		{"economy", b.runEconomy},
		{"cold", b.runCold},
		{"memory", b.runMemory},
	}
	var firstErr error
	b.cpuStart = readCPU()
	defer func() { b.cpuEnd = readCPU() }()
	for _, s := range steps {
		if !b.o.phase(s.name) || b.ctx.Err() != nil {
			continue
		}
		if err := s.fn(); err != nil {
			logf("phase %s failed: %v", s.name, err)
			b.errs = append(b.errs, fmt.Sprintf("phase %s: %v", s.name, firstLine(err.Error())))
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	b.machine.OtherLoadLate = otherLoad()
	if b.ctx.Err() != nil && firstErr == nil {
		firstErr = b.ctx.Err()
	}
	return firstErr
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// newSim starts a simulator over HTTPS and writes its CA for ca_cert_file.
func (b *bench) newSim(cfg groupidsim.Config) (*groupidsim.Server, *groupidsim.Running, string, error) {
	sim := groupidsim.New(cfg)
	run, err := groupidsim.Start("127.0.0.1:0", sim, true)
	if err != nil {
		return nil, nil, "", err
	}
	b.sims = append(b.sims, run)
	caFile := filepath.Join(b.dir, fmt.Sprintf("sim%d-ca.pem", len(b.sims)))
	if err := run.CA.WriteCertFile(caFile); err != nil {
		return nil, nil, "", err
	}
	return sim, run, caFile, nil
}

// startConfig starts Caddy with config A (sim != nil) or B and waits until a
// request through it succeeds.
func (b *bench) startConfig(name string, run *groupidsim.Running, caFile string, wait bool) (*caddyProc, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	admin, err := freePort()
	if err != nil {
		return nil, "", err
	}
	var cfg string
	if run != nil {
		cfg = configA(admin, port, run.TokenURL(), caFile, b.up.addrA, b.o.aExtra)
		b.up.useSim(run.Sim)
		if b.cfgA == "" {
			b.cfgA = cfg
		}
	} else {
		cfg = configB(admin, port, b.up.addrB)
		if b.cfgB == "" {
			b.cfgB = cfg
		}
	}
	p, err := startCaddy(b.bin, b.dir, name, cfg, port, admin)
	if err != nil {
		return nil, "", err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d%s", port, apiPath)
	if wait {
		if err := p.waitReady(url, 20*time.Second); err != nil {
			p.stop()
			return nil, "", err
		}
	}
	return p, url, nil
}

// ---------------------------------------------------------------------------
// Phase 1: throughput and latency.

type tpRun struct {
	Round  int
	Config string
	Label  string // Config, or what stood in for it
	Slices int
	Res    *wrkResult
	Up     upstreamCounts
	RSSKB  int64
	// OtherCPU is the share of the machine used by other processes
	// during the measurement, in percent.
	OtherCPU float64
	// CPUPerReq is Caddy's CPU time per completed request.
	CPUPerReq time.Duration
}

type throughputResult struct {
	Runs []tpRun
}

func (b *bench) runThroughput() error {
	o := b.o
	_, run, caFile, err := b.newSim(groupidsim.Config{})
	if err != nil {
		return err
	}
	tp := &throughputResult{}
	b.tp = tp
	directURL := "http://" + b.up.addrB + apiPath
	auth := "Authorization: Bearer " + staticToken
	slice := o.duration / time.Duration(o.slices)
	b.commands = append(b.commands,
		"<workdir>/caddy run --config <A or B>.Caddyfile --adapter caddyfile   (copy of bin/caddy; a fresh process per config per round)",
		"wrk "+strings.Join(wrkArgs(o.threads, o.conns, o.warmup, "<url>", ""), " ")+"   (warm-up of each process, discarded)",
		"wrk "+strings.Join(wrkArgs(o.threads, o.conns, slice, "http://127.0.0.1:<port>"+apiPath, ""), " ")+
			fmt.Sprintf("   (A, B: %d slices each per round, interleaved)", o.slices),
		"wrk "+strings.Join(wrkArgs(o.threads, o.conns, o.duration, "http://<upstream>"+apiPath, `"`+auth+`"`), " ")+"   (C)",
	)
	aLabel := "A"
	if o.aa {
		aLabel = "A (= B, noise check)"
	}
	for r := 1; r <= o.rounds; r++ {
		if b.ctx.Err() != nil {
			return b.ctx.Err()
		}
		order := []string{"A", "B"}
		if r%2 == 0 {
			order = []string{"B", "A"}
		}
		procs := map[string]*caddyProc{}
		urls := map[string]string{}
		stopAll := func() {
			for _, p := range procs {
				p.stop()
			}
		}
		for _, c := range order {
			var simRun *groupidsim.Running
			if c == "A" && !o.aa {
				simRun = run
			}
			p, url, err := b.startConfig(fmt.Sprintf("tp-r%d-%s", r, c), simRun, caFile, true)
			if err != nil {
				stopAll()
				return fmt.Errorf("round %d config %s: %w", r, c, err)
			}
			procs[c], urls[c] = p, url
		}
		for _, c := range order {
			if _, err := runWrk(b.ctx, wrkArgs(o.threads, o.conns, o.warmup, urls[c], ""), o.warmup); err != nil {
				stopAll()
				return fmt.Errorf("round %d config %s warm-up: %w", r, c, err)
			}
		}
		parts := map[string][]*measurement{}
		for i := 0; i < o.slices; i++ {
			for _, c := range order {
				var prof func() error
				if r == 1 && i == 0 && o.profile != "" {
					prof = b.startProfile(procs[c], c, slice)
				}
				m, err := b.measure(procs[c], urls[c], "", slice)
				if prof != nil {
					if perr := prof(); perr != nil {
						logf("profile %s: %v", c, perr)
					}
				}
				if err != nil {
					stopAll()
					return fmt.Errorf("round %d config %s: %w", r, c, err)
				}
				parts[c] = append(parts[c], m)
			}
		}
		if o.profile != "" && r == 1 {
			for _, c := range order {
				// Allocations since start (warm-up included), before Caddy stops.
				aurl := fmt.Sprintf("http://localhost:%d/debug/pprof/allocs", procs[c].admin)
				if perr := fetchTo(b.ctx, aurl, filepath.Join(o.profile, c+".allocs.pprof")); perr != nil {
					logf("allocs profile %s: %v", c, perr)
				}
			}
		}
		for _, c := range []string{"A", "B"} {
			agg := aggregate(parts[c])
			agg.rss, _ = rssKB(procs[c].cmd.Process.Pid)
			label := c
			if c == "A" {
				label = aLabel
			}
			tp.Runs = append(tp.Runs, tpRun{Round: r, Config: c, Label: label, Res: agg.res, Up: agg.up, RSSKB: agg.rss,
				OtherCPU: agg.other, CPUPerReq: agg.cpuPerReq, Slices: len(parts[c])})
			logf("round %d %s: %.0f req/s, p50 %s, p99 %s (median of %d slices), non-2xx %d, socket errors %d, Caddy CPU %s/request, other processes %.0f%% CPU",
				r, label, agg.res.RPS, fmtDur(agg.res.P50), fmtDur(agg.res.P99), len(parts[c]), agg.res.Non2xx, agg.res.SockErrors, fmtMicros(agg.cpuPerReq), agg.other)
		}
		stopAll()

		// C: the upstream alone, one run.
		if _, err := runWrk(b.ctx, wrkArgs(o.threads, o.conns, min(o.warmup, time.Second), directURL, auth), time.Second); err != nil {
			return fmt.Errorf("round %d config C warm-up: %w", r, err)
		}
		m, err := b.measure(nil, directURL, auth, o.duration)
		if err != nil {
			return fmt.Errorf("round %d config C: %w", r, err)
		}
		tp.Runs = append(tp.Runs, tpRun{Round: r, Config: "C", Label: "C", Res: m.res, Up: m.up, OtherCPU: m.other, Slices: 1})
		logf("round %d C: %.0f req/s, p50 %s, p99 %s, other processes %.0f%% CPU", r, m.res.RPS, fmtDur(m.res.P50), fmtDur(m.res.P99), m.other)
	}
	return nil
}

// aggregate combines the slices of one config in one round: requests and
// errors are summed, the rate is total requests over total time, CPU per
// request is total Caddy CPU over total requests, and p50/p99 are the
// medians of the slices' values.
func aggregate(ms []*measurement) *measurement {
	out := &measurement{res: &wrkResult{}}
	var secs, other float64
	var ticks int64
	var p50, p99 []float64
	for _, m := range ms {
		r := m.res
		out.res.Requests += r.Requests
		out.res.Non2xx += r.Non2xx
		out.res.SockErrors += r.SockErrors
		if r.RPS > 0 {
			secs += float64(r.Requests) / r.RPS
		}
		p50 = append(p50, float64(r.P50))
		p99 = append(p99, float64(r.P99))
		out.up.OK += m.up.OK
		out.up.Prev += m.up.Prev
		out.up.Missing += m.up.Missing
		out.up.Wrong += m.up.Wrong
		ticks += m.ticks
		other += m.other
	}
	if secs > 0 {
		out.res.RPS = float64(out.res.Requests) / secs
	}
	if out.res.Requests > 0 {
		out.cpuPerReq = time.Duration(ticks) * clockTick / time.Duration(out.res.Requests)
	}
	if len(ms) > 0 {
		out.other = other / float64(len(ms))
		out.res.P50, out.res.P99 = time.Duration(median(p50)), time.Duration(median(p99))
	}
	out.ticks = ticks
	return out
}

// startProfile fetches a CPU profile of the Caddy process p from its admin
// endpoint, timed to cover the measured run, and returns a function that
// waits for it and saves it as <profile dir>/<config>.pprof.
func (b *bench) startProfile(p *caddyProc, config string, d time.Duration) func() error {
	secs := int(d.Seconds())
	if secs < 1 {
		secs = 1
	}
	url := fmt.Sprintf("http://localhost:%d/debug/pprof/profile?seconds=%d", p.admin, secs)
	done := make(chan error, 1)
	go func() {
		done <- fetchTo(b.ctx, url, filepath.Join(b.o.profile, config+".pprof"))
	}()
	return func() error { return <-done }
}

func fetchTo(ctx context.Context, url, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	logf("CPU profile saved: %s", path)
	return f.Close()
}

// measurement is one measured wrk run.
type measurement struct {
	res   *wrkResult
	up    upstreamCounts
	rss   int64
	other float64
	// cpuPerReq is the Caddy process's CPU time (user + system) during the
	// run divided by the requests wrk completed; zero for config C.
	cpuPerReq time.Duration
	ticks     int64 // Caddy's CPU time in clock ticks
}

// clockTick is the unit of the CPU times in /proc (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// measure runs one wrk run of length d against url.
func (b *bench) measure(p *caddyProc, url, header string, d time.Duration) (*measurement, error) {
	o := b.o
	var pids []int
	var pidStr string
	if p != nil {
		pids = append(pids, p.cmd.Process.Pid)
		pidStr = strconv.Itoa(p.cmd.Process.Pid)
	}
	b.up.counts()
	before := readCPU(pids...)
	var caddyBefore int64
	if p != nil {
		caddyBefore = procTicks(pidStr, false)
	}
	res, err := runWrk(b.ctx, wrkArgs(o.threads, o.conns, d, url, header), d)
	if err != nil {
		return nil, err
	}
	m := &measurement{res: res, other: otherCPU(before, readCPU(pids...)), up: b.up.counts()}
	if p != nil {
		m.ticks = procTicks(pidStr, false) - caddyBefore
		if res.Requests > 0 {
			m.cpuPerReq = time.Duration(m.ticks) * clockTick / time.Duration(res.Requests)
		}
		m.rss, _ = rssKB(p.cmd.Process.Pid)
		if p.exited() {
			return nil, fmt.Errorf("caddy exited during the run; log:\n%s", p.tail(20))
		}
	}
	return m, nil
}

// ---------------------------------------------------------------------------
// Phase 2: token economy under a fixed request rate.

type economyResult struct {
	Rate        int
	Dur         time.Duration
	Lifetime    time.Duration
	Window      time.Duration
	Samples     int
	Statuses    map[int]int
	TokenTimes  []time.Time // arrival of every token request at the simulator
	TokenStatus []int
	Counters    map[string]int
	FirstToken  time.Time
	LoadStart   time.Time
	LoadEnd     time.Time
	NearN       int
	FarN        int
	NearP50     time.Duration
	NearP99     time.Duration
	FarP50      time.Duration
	FarP99      time.Duration
	AllP50      time.Duration
	AllP99      time.Duration
	AllMax      time.Duration
	Up          upstreamCounts
	OtherCPU    float64
}

func (b *bench) runEconomy() error {
	o := b.o
	if o.econDur <= 0 {
		return nil
	}
	sim, run, caFile, err := b.newSim(groupidsim.Config{TokenLifetime: o.lifetime})
	if err != nil {
		return err
	}
	logf("token economy: %d req/s for %s through A, token lifetime %s", o.econRate, o.econDur, o.lifetime)
	p, url, err := b.startConfig("economy-A", run, caFile, true)
	if err != nil {
		return err
	}
	defer p.stop()
	b.up.counts()
	e := &economyResult{Rate: o.econRate, Dur: o.econDur, Lifetime: o.lifetime, Window: o.window, Statuses: map[int]int{}}
	b.econ = e
	e.LoadStart = time.Now()
	before := readCPU(p.cmd.Process.Pid)
	samples := openLoop(b.ctx, url, o.econRate, o.econDur, o.econWorkers)
	e.OtherCPU = otherCPU(before, readCPU(p.cmd.Process.Pid))
	e.LoadEnd = time.Now()
	e.Up = b.up.counts()
	if p.exited() {
		return fmt.Errorf("caddy exited during the run; log:\n%s", p.tail(20))
	}
	tokenPath := sim.Config().SecurityPrefix + "/connect/token"
	for _, r := range sim.Requests() {
		if r.Path == tokenPath {
			e.TokenTimes = append(e.TokenTimes, r.At)
			e.TokenStatus = append(e.TokenStatus, r.Status)
		}
	}
	e.Counters = sim.Counters().TokenRequests
	if len(e.TokenTimes) > 0 {
		e.FirstToken = e.TokenTimes[0]
	}
	e.Samples = len(samples)
	var near, far, all []time.Duration
	for _, s := range samples {
		e.Statuses[s.Status]++
		all = append(all, s.Latency)
		if nearAny(s.Start, e.TokenTimes, o.window) {
			near = append(near, s.Latency)
		} else {
			far = append(far, s.Latency)
		}
	}
	e.NearN, e.FarN = len(near), len(far)
	e.NearP50, e.NearP99 = percentile(near, 50), percentile(near, 99)
	e.FarP50, e.FarP99 = percentile(far, 50), percentile(far, 99)
	e.AllP50, e.AllP99, e.AllMax = percentile(all, 50), percentile(all, 99), percentile(all, 100)
	b.commands = append(b.commands, fmt.Sprintf("open-loop Go client: GET %s at %d req/s for %s, %d workers (token lifetime %s)",
		"http://127.0.0.1:<port>"+apiPath, o.econRate, o.econDur, o.econWorkers, o.lifetime))
	logf("token economy: %d token requests, p99 near %s vs far %s", len(e.TokenTimes), fmtDur(e.NearP99), fmtDur(e.FarP99))
	return nil
}

// refreshInterval is the range of times between two scheduled refreshes
// for tokens of lifetime l under the default refresh_before: refresh when
// a quarter remains, plus a random extra of up to half that margin.
func refreshInterval(l time.Duration) (lo, mean, hi time.Duration) {
	margin := l / 4
	return l - margin - margin/2, l - margin - margin/4, l - margin
}

// ---------------------------------------------------------------------------
// Phase 3: cold start with a slow token endpoint.

type coldStartResult struct {
	Config      string
	Conns       int
	Delay       time.Duration
	PortAfter   time.Duration // from exec to the port accepting
	TokenAt     []time.Duration
	Counters    map[string]int
	TokensTotal int
	Statuses    map[int]int
	Errors      int
	FirstErr    string
	TTFB        []time.Duration
	SinceOpen   []time.Duration
}

// runCold bursts config A against a fresh, slow simulator, then config B
// (no token at all) as the baseline for what the burst itself costs.
func (b *bench) runCold() error {
	o := b.o
	if o.coldConns <= 0 {
		return nil
	}
	sim, run, caFile, err := b.newSim(groupidsim.Config{})
	if err != nil {
		return err
	}
	sim.SetFault(groupidsim.Fault{Kind: groupidsim.FaultSlow, Delay: o.coldDelay})
	logf("cold start: %d concurrent requests, token endpoint delayed %s", o.coldConns, o.coldDelay)
	a, err := b.coldOnce("A", sim, run, caFile)
	if err != nil {
		return err
	}
	b.cold = a
	logf("cold start A: %d token requests, statuses %v, errors %d", a.TokensTotal, a.Statuses, a.Errors)
	base, err := b.coldOnce("B", nil, nil, "")
	if err != nil {
		return err
	}
	b.coldB = base
	logf("cold start B (baseline): statuses %v, errors %d", base.Statuses, base.Errors)
	b.commands = append(b.commands, fmt.Sprintf("cold start: fresh simulator with FaultSlow %s; a Go client fires %d concurrent GETs on %d connections once the port accepts (A, then B as the baseline)",
		o.coldDelay, o.coldConns, o.coldConns))
	return nil
}

func (b *bench) coldOnce(name string, sim *groupidsim.Server, run *groupidsim.Running, caFile string) (*coldStartResult, error) {
	o := b.o
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	admin, err := freePort()
	if err != nil {
		return nil, err
	}
	var cfg string
	if sim != nil {
		cfg = configA(admin, port, run.TokenURL(), caFile, b.up.addrA, b.o.aExtra)
		b.up.useSim(sim)
	} else {
		cfg = configB(admin, port, b.up.addrB)
	}
	b.up.counts()
	url := fmt.Sprintf("http://127.0.0.1:%d%s", port, apiPath)
	br := prepareBurst(b.ctx, url, o.coldConns)
	started := time.Now()
	p, err := startCaddy(b.bin, b.dir, "cold-"+name, cfg, port, admin)
	if err != nil {
		br.fire(time.Now())
		return nil, err
	}
	defer p.stop()
	opened, err := waitPort(b.ctx, fmt.Sprintf("127.0.0.1:%d", port), 20*time.Second, func() bool { return !p.exited() })
	if err != nil {
		br.fire(time.Now())
		return nil, fmt.Errorf("port never opened: %v; log:\n%s", err, p.tail(20))
	}
	res := br.fire(opened)
	c := &coldStartResult{Config: name, Conns: o.coldConns, Delay: o.coldDelay, PortAfter: opened.Sub(started), Statuses: map[int]int{}}
	if sim != nil {
		time.Sleep(500 * time.Millisecond) // let any straggling token request land
		counters := sim.Counters()
		c.Counters, c.TokensTotal = counters.TokenRequests, counters.TokensTotal()
		tokenPath := sim.Config().SecurityPrefix + "/connect/token"
		for _, r := range sim.Requests() {
			if r.Path == tokenPath {
				c.TokenAt = append(c.TokenAt, r.At.Sub(opened))
			}
		}
	}
	for _, r := range res {
		if r.Err != nil {
			c.Errors++
			if c.FirstErr == "" {
				c.FirstErr = r.Err.Error()
			}
			continue
		}
		c.Statuses[r.Status]++
		c.TTFB = append(c.TTFB, r.TTFB)
		c.SinceOpen = append(c.SinceOpen, r.SinceOpen)
	}
	sort.Slice(c.TTFB, func(i, j int) bool { return c.TTFB[i] < c.TTFB[j] })
	sort.Slice(c.SinceOpen, func(i, j int) bool { return c.SinceOpen[i] < c.SinceOpen[j] })
	return c, nil
}

// ---------------------------------------------------------------------------
// Phase 4: memory under a long full-load run.

type rssSample struct {
	At  time.Duration
	KiB int64
}

type memRun struct {
	Config  string
	Samples []rssSample
	Res     *wrkResult
	Up      upstreamCounts
	Tokens  int
	// OtherCPU is the share of the machine used by other processes.
	OtherCPU float64
	// CPUPerReq is Caddy's CPU time per completed request.
	CPUPerReq time.Duration
}

type memoryResult struct {
	Dur  time.Duration
	Runs []memRun
}

func (b *bench) runMemory() error {
	o := b.o
	if o.memDur <= 0 {
		return nil
	}
	sim, run, caFile, err := b.newSim(groupidsim.Config{TokenLifetime: o.lifetime})
	if err != nil {
		return err
	}
	m := &memoryResult{Dur: o.memDur}
	b.mem = m
	for _, c := range []string{"A", "B"} {
		if b.ctx.Err() != nil {
			return b.ctx.Err()
		}
		logf("memory: config %s at full load for %s", c, o.memDur)
		var simRun *groupidsim.Running
		if c == "A" {
			simRun = run
		}
		before := sim.Counters().TokensTotal()
		p, url, err := b.startConfig("mem-"+c, simRun, caFile, true)
		if err != nil {
			return err
		}
		mr, err := b.memRun(p, url)
		p.stop()
		if err != nil {
			return fmt.Errorf("config %s: %w", c, err)
		}
		mr.Config = c
		if c == "A" {
			mr.Tokens = sim.Counters().TokensTotal() - before
		}
		m.Runs = append(m.Runs, *mr)
		last := mr.Samples[len(mr.Samples)-1]
		logf("memory %s: end %.1f MiB, %.0f req/s", c, float64(last.KiB)/1024, mr.Res.RPS)
	}
	b.commands = append(b.commands, "wrk "+strings.Join(wrkArgs(o.threads, o.conns, o.memDur, "http://127.0.0.1:<port>"+apiPath, ""), " ")+
		fmt.Sprintf("   (memory runs; VmRSS from /proc/<caddy pid>/status every %s)", o.memEvery))
	return nil
}

func (b *bench) memRun(p *caddyProc, url string) (*memRun, error) {
	o := b.o
	pid := p.cmd.Process.Pid
	mr := &memRun{}
	start := time.Now()
	sampleNow := func() {
		if kb, err := rssKB(pid); err == nil {
			mr.Samples = append(mr.Samples, rssSample{At: time.Since(start).Round(100 * time.Millisecond), KiB: kb})
		}
	}
	sampleNow()
	b.up.counts()
	before := readCPU(pid)
	caddyBefore := procTicks(strconv.Itoa(pid), false)
	type out struct {
		res *wrkResult
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, err := runWrk(b.ctx, wrkArgs(o.threads, o.conns, o.memDur, url, ""), o.memDur)
		done <- out{res, err}
	}()
	tick := time.NewTicker(o.memEvery)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			sampleNow()
		case r := <-done:
			sampleNow()
			if r.err != nil {
				return nil, r.err
			}
			if p.exited() {
				return nil, fmt.Errorf("caddy exited during the run; log:\n%s", p.tail(20))
			}
			mr.Res = r.res
			mr.Up = b.up.counts()
			mr.OtherCPU = otherCPU(before, readCPU(pid))
			if r.res.Requests > 0 {
				mr.CPUPerReq = time.Duration(procTicks(strconv.Itoa(pid), false)-caddyBefore) * clockTick / time.Duration(r.res.Requests)
			}
			return mr, nil
		}
	}
}

// ---------------------------------------------------------------------------
// Small helpers shared by the report.

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func minMax(xs []float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, x := range xs {
		lo, hi = math.Min(lo, x), math.Max(hi, x)
	}
	return lo, hi
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	}
}
