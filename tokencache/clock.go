package tokencache

import "github.com/caddy-groupid/caddy-groupid/tokencache/clock"

// Clock is the time source of a Source; see package clock.
type Clock = clock.Clock

// SystemClock is the wall clock.
type SystemClock = clock.System
