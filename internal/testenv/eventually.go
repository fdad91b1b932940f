package testenv

import (
	"testing"
	"time"

	"github.com/caddy-groupid/caddy-groupid/internal/testenv/live"
)

// Eventually calls cond every live.PollInterval (10 ms) until it holds
// (true, or a nil error) and fails the test with t.Fatalf if it has not
// held within timeout: "timed out after <timeout> waiting for <what>", or
// for a func() error "waiting for <what>: not within <timeout>: <its last
// error>". Use it for work another goroutine or process does, never to
// time anything.
func Eventually[C func() bool | func() error](t testing.TB, timeout time.Duration, cond C, what string) {
	t.Helper()
	switch c := any(cond).(type) {
	case func() bool:
		if !live.Wait(timeout, c) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	case func() error:
		if err := live.Poll(timeout, c); err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
	}
}
