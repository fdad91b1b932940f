// Package shapes runs a matrix of Caddyfile shapes, each with
// groupid_auth and a reverse_proxy with `transport groupid` in front of a
// fresh GroupID simulator, in a real in-process Caddy (caddytest). For
// every shape it checks, from the simulator's request log, what GroupID
// received (one request, or exactly two around a 401: same method, path,
// query, body and added headers, one Authorization that is a token the
// simulator issued), that the client got GroupID's own answer, and that
// no other backend of the shape (legacy app, error pages, forward_auth
// service, second upstream) ever saw a token.
//
// Every port is picked free at run time, so the package never collides
// with the other test packages. Caddy is one per process: the tests of
// this package run one after the other, never in parallel.
package shapes

import (
	"testing"

	"github.com/caddy-groupid/caddy-groupid/internal/testenv"
)

// adminPort is the admin port of this package's Caddy, picked free once:
// every config loaded by these tests uses it.
var adminPort = testenv.FreePort()

func TestMain(m *testing.M) { testenv.RunHermetic(m) }
