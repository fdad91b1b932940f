// Package clock is the time source of tokencache: the Clock interface, the
// System clock, and Fake, a manual clock for tests. Time moves on a Fake
// only when the test calls Advance, and BlockUntil lets a test wait (without
// sleeping) until the code under test has gone back to waiting on a timer.
package clock

import "time"

// Clock tells the time and makes timers.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once after d.
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer that tokencache uses.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

// System is the wall clock.
type System struct{}

// Now returns time.Now().
func (System) Now() time.Time { return time.Now() }

// NewTimer wraps time.NewTimer.
func (System) NewTimer(d time.Duration) Timer { return sysTimer{time.NewTimer(d)} }

type sysTimer struct{ t *time.Timer }

func (s sysTimer) C() <-chan time.Time { return s.t.C }
func (s sysTimer) Stop() bool          { return s.t.Stop() }
