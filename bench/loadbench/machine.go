package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// machineInfo is what the report says about the machine and the software measured.
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
