package groupidauth

import (
	"encoding/json"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv"
)

// namedCredentialConfig is a JSON config with one named credential used
// by a groupid_auth handler, on an HTTP server that listens on listen.
func namedCredentialConfig(t *testing.T, name, tokenURL, listen string) []byte {
	t.Helper()
	cred := simCredential(tokenURL)
	cfg := map[string]any{
		"admin": map[string]any{"disabled": true},
		"apps": map[string]any{
			"groupid": App{Credentials: map[string]*Credential{name: &cred}},
			"http": map[string]any{"servers": map[string]any{"s": map[string]any{
				"listen": []string{listen},
				"routes": []any{map[string]any{"handle": []any{
					map[string]any{"handler": "groupid_auth", "credentials": []string{name}},
					map[string]any{"handler": "reverse_proxy", "transport": map[string]any{"protocol": "groupid"},
						"upstreams": []any{map[string]any{"dial": "127.0.0.1:1"}}},
				}}},
			}}},
		},
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pooled counts the pooled credentials named name.
func pooled(name string) int {
	n := 0
	pool.Range(func(_, v any) bool {
		if v.(*credential).info.Name == name {
			n++
		}
		return true
	})
	return n
}

// settled fails the test unless the goroutines are back to at most
// baseline and no credential named name is pooled.
func settled(t *testing.T, baseline int, name string) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := runtime.NumGoroutine(); n > baseline {
			return fmt.Errorf("%d goroutines, %d before", n, baseline)
		}
		if n := pooled(name); n != 0 {
			return fmt.Errorf("%d pooled credentials named %s", n, name)
		}
		return nil
	}, "no goroutine and no credential left")
}

// TestValidateStartsNothing: `caddy validate` of a config with a named
// credential provisions it (and would report a bad setting) but sends no
// token request and leaves no goroutine.
func TestValidateStartsNothing(t *testing.T) {
	sim, tokenURL := simSite(t, groupidsim.Config{})
	baseline := runtime.NumGoroutine()
	var cfg caddy.Config
	if err := json.Unmarshal(namedCredentialConfig(t, "svc-validate", tokenURL, "127.0.0.1:0"), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&cfg); err != nil {
		t.Fatal(err)
	}
	settled(t, baseline, "svc-validate")
	if n := sim.Counters().TokensTotal(); n != 0 {
		t.Fatalf("caddy validate sent %d token requests, want 0", n)
	}

	bad := strings.Replace(string(namedCredentialConfig(t, "svc-validate", tokenURL, "127.0.0.1:0")), `"identity_store_id":"2"`, `"identity_store_id":"../2"`, 1)
	cfg = caddy.Config{}
	if err := json.Unmarshal([]byte(bad), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&cfg); err == nil || !strings.Contains(err.Error(), `credential "svc-validate": identity_store_id: `) {
		t.Fatalf("validate of a bad named credential: %v; want the credential and the field named", err)
	}
	settled(t, baseline, "svc-validate")
}

// TestFailedLoadLeavesNothing: a load that fails because its port is in
// use leaves no goroutine and no credential behind, and runs nothing.
func TestFailedLoadLeavesNothing(t *testing.T) {
	_, tokenURL := simSite(t, groupidsim.Config{})
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	baseline := runtime.NumGoroutine()
	if err := caddy.Load(namedCredentialConfig(t, "svc-failed-load", tokenURL, busy.Addr().String()), true); err == nil {
		t.Fatal("the load succeeded; the test needs it to fail")
	}
	settled(t, baseline, "svc-failed-load")
	if app := runningApp(); app != nil {
		t.Fatal("a failed load left a running groupid app")
	}
}
