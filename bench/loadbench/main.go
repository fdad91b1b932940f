// Command loadbench measures what the groupid_auth handler costs over a bare
// Caddy reverse proxy. Run it from the repository root:
//
//	go run ./bench/loadbench [-md BENCH.md] [flags]
//
// It builds bin/caddy, starts an in-process upstream and the in-process
// GroupID simulator (over HTTPS), and runs Caddy as a separate process, one
// configuration at a time:
//
//	A  groupid_auth + reverse_proxy (the sidecar)
//	B  reverse_proxy with a static header_up Authorization (the limit)
//	C  the upstream directly (no proxy)
//
// Phases: throughput and latency with wrk over alternating rounds; token
// economy under a fixed request rate with short-lived tokens; a cold start
// with a slow token endpoint and 1,000 concurrent requests; and the resident
// memory of A and B under a long full-load run; and A and B again with
// 16 KiB JSON POST bodies, in rounds like the first phase; and the token
// requests of 1, 3 and 5 replicas sharing one token through one storage
// folder (and 3 that do not share). The report goes
// to stdout (Markdown) and, with -md, to a file; progress goes to stderr.
// With -md (or -plots) it also draws SVG plots: throughput and latency of
// A, B and C, and config A's token timeline (its /groupid/status polled
// during the token-economy run and a short token-endpoint outage after it).
//
// wrk comes from Debian's package and is installed with apt-get when
// missing (this needs root). Every child process runs in its own process
// group and is killed on any exit path.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/caddy-groupid/caddy-groupid/internal/testenv/live"
)

type options struct {
	rounds   int
	duration time.Duration
	slices   int
	aa       bool
	warmup   time.Duration
	threads  int
	conns    int

	econDur     time.Duration
	econRate    int
	econWorkers int
	lifetime    time.Duration
	window      time.Duration
	outage      time.Duration

	coldConns int
	coldDelay time.Duration

	memDur   time.Duration
	memEvery time.Duration

	postSize int

	shareLifetimes int

	md      string
	plots   string
	caddy   string
	noBuild bool
	only    string
	keep    bool
	profile string
	aExtra  string
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("loadbench", flag.ContinueOnError)
	fs.IntVar(&o.rounds, "rounds", 5, "throughput rounds; each measures A and B (order alternating) and C")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per config per round")
	fs.IntVar(&o.slices, "slices", 5, "split each config's measured time into this many wrk runs, A and B interleaved, so slow drifts of the machine hit both alike")
	fs.BoolVar(&o.aa, "aa", false, "noise check: measure a second B process in place of A (the A/B ratios then show the measurement noise)")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "wrk warm-up of each fresh Caddy process (discarded)")
	fs.IntVar(&o.threads, "threads", 2, "wrk threads (-t)")
	fs.IntVar(&o.conns, "conns", 64, "wrk connections (-c)")
	fs.DurationVar(&o.econDur, "economy", 60*time.Second, "length of the token-economy run (0 skips it)")
	fs.IntVar(&o.econRate, "rate", 200, "requests per second of the token-economy run")
	fs.IntVar(&o.econWorkers, "workers", 64, "worker pool of the token-economy load generator")
	fs.DurationVar(&o.lifetime, "lifetime", 5*time.Second, "simulator token lifetime for the token-economy and memory runs of A")
	fs.DurationVar(&o.window, "window", 250*time.Millisecond, "requests starting within this of a token request count as 'near' it")
	fs.DurationVar(&o.outage, "outage", 6*time.Second, "after the token-economy load, take the token endpoint down this long (light load, for the token timeline only; 0 skips it)")
	fs.IntVar(&o.coldConns, "cold-conns", 1000, "concurrent requests (and connections) of the cold start (0 skips it)")
	fs.DurationVar(&o.coldDelay, "cold-delay", 300*time.Millisecond, "token endpoint delay during the cold start")
	fs.DurationVar(&o.memDur, "mem", 60*time.Second, "length of each full-load memory run (0 skips it)")
	fs.DurationVar(&o.memEvery, "mem-every", 2*time.Second, "VmRSS sampling interval")
	fs.IntVar(&o.postSize, "post-size", 16384, "JSON body bytes of the POST phase, which runs -rounds rounds like the throughput phase (0 skips it)")
	fs.IntVar(&o.shareLifetimes, "share-lifetimes", 10, "token lifetimes of each replica-sharing run (1, 3, 5 sharing replicas, 3 alone); 0 skips it")
	fs.StringVar(&o.md, "md", "", "also write the Markdown report to this file")
	fs.StringVar(&o.plots, "plots", "", "directory for the SVG plots (default: plots/ beside the -md file; none without -md)")
	fs.StringVar(&o.caddy, "caddy", "bin/caddy", "Caddy binary, relative to the repository root")
	fs.BoolVar(&o.noBuild, "no-build", false, "use the existing Caddy binary instead of building it")
	fs.StringVar(&o.only, "only", "throughput,economy,cold,memory,post,share", "comma-separated phases to run")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (Caddyfiles, Caddy logs)")
	fs.StringVar(&o.aExtra, "a-options", "", "extra subdirectives for config A's groupid_auth block, ';'-separated (e.g. \"replay_on_401 off\"), for diagnosis")
	fs.StringVar(&o.profile, "profile", "", "save CPU profiles of Caddy (admin /debug/pprof/profile) during round 1 of A and B into this directory; skews that round")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if o.slices < 1 || o.duration%time.Duration(o.slices) != 0 || (o.duration/time.Duration(o.slices))%time.Second != 0 {
		return nil, errors.New("-duration / -slices must be a whole number of seconds (wrk's unit)")
	}
	if o.rounds < 1 || o.duration < time.Second || o.threads < 1 || o.conns < o.threads ||
		o.econRate < 1 || o.econWorkers < 1 || o.lifetime < 2*time.Second || o.memEvery <= 0 ||
		(o.postSize != 0 && o.postSize < 256) {
		return nil, errors.New("invalid flag values (rounds >= 1, duration >= 1s, conns >= threads, lifetime >= 2s, post-size 0 or >= 256, ...)")
	}
	for _, p := range strings.Split(o.only, ",") {
		switch strings.TrimSpace(p) {
		case "throughput", "economy", "cold", "memory", "post", "share":
		default:
			return nil, fmt.Errorf("-only: unknown phase %q", p)
		}
	}
	return o, nil
}

func (o *options) phase(name string) bool {
	for _, p := range strings.Split(o.only, ",") {
		if strings.TrimSpace(p) == name {
			return true
		}
	}
	return false
}

// plotsDir is where the SVG plots go: -plots, or plots/ beside the -md
// file; empty for none.
func (o *options) plotsDir() string {
	if o.plots != "" {
		return o.plots
	}
	if o.md != "" {
		return filepath.Join(filepath.Dir(o.md), "plots")
	}
	return ""
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s loadbench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "loadbench:", err)
		os.Exit(2)
	}
	code := run(o)
	os.Exit(code)
}

func run(o *options) (code int) {
	defer live.KillAll()
	defer func() {
		if r := recover(); r != nil {
			logf("panic: %v", r)
			code = 1
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		logf("signal: stopping")
		cancel()
		select {
		case <-sigs:
		case <-time.After(15 * time.Second):
		}
		live.KillAll()
		os.Exit(130)
	}()

	b, err := newBench(ctx, o)
	if err != nil {
		logf("%v", err)
		return 1
	}
	defer b.close()
	if err := b.runAll(); err != nil {
		logf("%v", err)
		code = 1
	}
	if dir := o.plotsDir(); dir != "" {
		files, err := b.writePlots(dir)
		if err != nil {
			logf("plots: %v", err)
			code = 1
		}
		b.plots = files
		b.plotsRel = dir
		if o.md != "" {
			mdDir, _ := filepath.Abs(filepath.Dir(o.md))
			plotsDir, _ := filepath.Abs(dir)
			if rel, err := filepath.Rel(mdDir, plotsDir); err == nil {
				b.plotsRel = filepath.ToSlash(rel)
			}
		}
		abs, _ := filepath.Abs(dir)
		logf("%d plots written to %s", len(files), abs)
	}
	rep := b.report()
	fmt.Print(rep)
	if o.md != "" {
		if err := os.WriteFile(o.md, []byte(rep), 0o644); err != nil {
			logf("writing %s: %v", o.md, err)
			return 1
		}
		abs, _ := filepath.Abs(o.md)
		logf("report written to %s", abs)
	}
	return code
}
