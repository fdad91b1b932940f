package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv/live"
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
	post  *postResult
	share []shareRow
	// cfgShare is a sharing replica's config, for the report.
	cfgShare string
	// plots are the SVGs written, plotsRel their directory relative to
	// the -md file.
	plots    []plotFile
	plotsRel string
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
		if err := live.BuildCaddy(ctx, root, o.caddy); err != nil {
			return nil, err
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

func (b *bench) runAll() error {
	steps := []struct {
		name string
		fn   func() error
	}{
		{"throughput", b.runThroughput},
		{"economy", b.runEconomy},
		{"cold", b.runCold},
		{"memory", b.runMemory},
		{"post", b.runPost},
		{"share", b.runShare},
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
	s, err := live.StartSim(cfg, filepath.Join(b.dir, fmt.Sprintf("sim%d-ca.pem", len(b.sims)+1)))
	if err != nil {
		return nil, nil, "", err
	}
	b.sims = append(b.sims, s.Running)
	return s.Sim, s.Running, s.CAFile, nil
}

// startConfig starts Caddy with config A (sim != nil) or B and waits until a
// request through it succeeds.
func (b *bench) startConfig(name string, run *groupidsim.Running, caFile string, wait bool) (*live.Caddy, string, error) {
	port, admin := live.FreePort(), live.FreePort()
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
	p, err := b.startCaddy(b.dir, name, cfg, port, admin)
	if err != nil {
		return nil, "", err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d%s", port, apiPath)
	if wait {
		if err := waitServing(p, url); err != nil {
			p.Stop()
			return nil, "", err
		}
	}
	return p, url, nil
}
