package live

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// CaddyPackage is the package of the Caddy binary with this module's plugin.
const CaddyPackage = "github.com/caddy-groupid/caddy-groupid/cmd/caddy"

// BuildCaddy runs `go build -o out` of CaddyPackage in dir (the current
// directory if ""), its output going to stderr.
func BuildCaddy(ctx context.Context, dir, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, CaddyPackage)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build -o %s %s: %v", out, CaddyPackage, err)
	}
	return nil
}

// CaddyConfig is what StartCaddy runs.
type CaddyConfig struct {
	// Bin is the Caddy binary; Dir the folder of its Caddyfile, log and
	// home, all named after Name.
	Bin, Dir, Name string
	// Caddyfile is the config; Admin and HTTP are the admin and site ports
	// it uses (picked with FreePort), kept for the caller.
	Caddyfile   string
	Admin, HTTP int
	// Env is added to the environment.
	Env []string
}

// Caddy is a running `caddy run --config <Name>.Caddyfile --adapter
// caddyfile`, in a process group of its own (StartGroup) with a home of
// its own (<Name>-home in Dir), stdout and stderr appended to LogPath.
type Caddy struct {
	CaddyConfig
	LogPath string

	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	endOnce sync.Once
}

// StartCaddy starts Caddy with c; it does not wait for the config to load.
func StartCaddy(c CaddyConfig) (*Caddy, error) {
	cfgPath := filepath.Join(c.Dir, c.Name+".Caddyfile")
	if err := os.WriteFile(cfgPath, []byte(c.Caddyfile), 0o600); err != nil {
		return nil, err
	}
	p := &Caddy{CaddyConfig: c, LogPath: filepath.Join(c.Dir, c.Name+".log"), done: make(chan struct{})}
	logf, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(c.Bin, "run", "--config", cfgPath, "--adapter", "caddyfile")
	cmd.Stdout, cmd.Stderr = logf, logf
	home := filepath.Join(c.Dir, c.Name+"-home")
	cmd.Env = append(os.Environ(), "HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, "config"), "XDG_DATA_HOME="+filepath.Join(home, "data"))
	cmd.Env = append(cmd.Env, c.Env...)
	if err := StartGroup(cmd); err != nil {
		logf.Close()
		return nil, err
	}
	p.cmd = cmd
	go func() {
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process ID of Caddy.
func (p *Caddy) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Caddy) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Caddy) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop asks Caddy to exit (SIGTERM), kills its group after 5 s, and waits
// for it. Stop and Kill after the first of them do nothing; p may be nil.
func (p *Caddy) Stop() { p.end(5 * time.Second) }

// Kill ends Caddy's process group at once (SIGKILL), as a crash would,
// and waits for it.
func (p *Caddy) Kill() { p.end(0) }

func (p *Caddy) end(grace time.Duration) {
	if p == nil {
		return
	}
	p.endOnce.Do(func() {
		if grace > 0 {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(grace):
			}
		}
		KillGroup(p.Pid())
		<-p.done
	})
}

// WaitReady polls probe (Poll) until it returns nil. It fails early if
// Caddy exits; its errors end with the tail of Caddy's log.
func (p *Caddy) WaitReady(timeout time.Duration, probe func() error) error {
	err := Poll(timeout, func() error {
		if p.Exited() {
			return Stop(fmt.Errorf("%s exited early (%v)", p.Name, p.waitErr))
		}
		return probe()
	})
	if err != nil {
		return fmt.Errorf("%s not ready: %w; log:\n%s", p.Name, err, p.Tail(30))
	}
	return nil
}

// AdminURL is the address of path on the admin endpoint (localhost:Admin).
func (c CaddyConfig) AdminURL(path string) string {
	return fmt.Sprintf("http://localhost:%d%s", c.Admin, path)
}

// OK is a probe for WaitReady: a GET of url with client answers 200.
func OK(client *http.Client, url string) func() error {
	return func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

// Log returns Caddy's whole log.
func (p *Caddy) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// Tail returns the last n lines of Caddy's log, for error messages.
func (p *Caddy) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.Log(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
