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
	// AfterFunc calls f once after d, as time.AfterFunc does; the
	// returned Timer's C is nil and its Stop reports whether it kept f
	// from being called.
	AfterFunc(d time.Duration, f func()) Timer
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

// AfterFunc wraps time.AfterFunc: f runs in its own goroutine.
func (System) AfterFunc(d time.Duration, f func()) Timer { return sysTimer{time.AfterFunc(d, f)} }

type sysTimer struct{ t *time.Timer }

func (s sysTimer) C() <-chan time.Time { return s.t.C }
func (s sysTimer) Stop() bool          { return s.t.Stop() }
