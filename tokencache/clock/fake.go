package clock

import (
	"slices"
	"sync"
	"time"
)

// Fake is a manual Clock. The zero value is not usable; call NewFake.
//
// Functions given to AfterFunc run in the goroutine that moves the clock
// past their time (inside Advance, after the clock's lock is released, in
// order of their times), so a test sees their effect as soon as Advance
// returns. They are kept apart from NewTimer timers: Pending, NextDeadline
// and BlockUntil count only the latter, which something waits on.
type Fake struct {
	mu     sync.Mutex
	cond   *sync.Cond
	now    time.Time
	timers []*timer
	funcs  []*timer
}

// NewFake returns a fake clock set to start.
func NewFake(start time.Time) *Fake {
	c := &Fake{now: start}
	c.cond = sync.NewCond(&c.mu)
	return c
}

// Now returns the fake time.
func (c *Fake) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer returns a timer that fires when the clock reaches now+d.
func (c *Fake) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{c: c, at: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		t.ch <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	c.cond.Broadcast()
	return t
}

// AfterFunc arranges for f to be called when the clock reaches now+d; if d
// is not positive, f is called at once, before AfterFunc returns.
func (c *Fake) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	t := &timer{c: c, at: c.now.Add(d), f: f}
	if d <= 0 {
		c.mu.Unlock()
		f()
		return t
	}
	c.funcs = append(c.funcs, t)
	c.mu.Unlock()
	return t
}

// Advance moves the clock forward by d, firing every timer that falls due,
// then calling every AfterFunc function that falls due.
func (c *Fake) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if !t.at.After(c.now) {
			t.ch <- c.now
			continue
		}
		kept = append(kept, t)
	}
	clear(c.timers[len(kept):])
	c.timers = kept
	var due []*timer
	keptFuncs := c.funcs[:0]
	for _, t := range c.funcs {
		if !t.at.After(c.now) {
			due = append(due, t)
			continue
		}
		keptFuncs = append(keptFuncs, t)
	}
	clear(c.funcs[len(keptFuncs):])
	c.funcs = keptFuncs
	c.cond.Broadcast()
	c.mu.Unlock()
	slices.SortStableFunc(due, func(a, b *timer) int { return a.at.Compare(b.at) })
	for _, t := range due {
		t.f()
	}
}

// PendingFuncs returns the number of AfterFunc functions that have not
// been called or stopped.
func (c *Fake) PendingFuncs() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.funcs)
}

// Pending returns the number of timers that have not fired or been stopped.
func (c *Fake) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// NextDeadline returns the earliest pending timer's deadline, and false if
// none is pending.
func (c *Fake) NextDeadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timers) == 0 {
		return time.Time{}, false
	}
	min := c.timers[0].at
	for _, t := range c.timers[1:] {
		if t.at.Before(min) {
			min = t.at
		}
	}
	return min, true
}

// BlockUntil waits until at least n timers are pending.
func (c *Fake) BlockUntil(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.timers) < n {
		c.cond.Wait()
	}
}

type timer struct {
	c  *Fake
	at time.Time
	ch chan time.Time // nil for an AfterFunc timer
	f  func()         // nil for a NewTimer timer
}

func (t *timer) C() <-chan time.Time { return t.ch }

func (t *timer) Stop() bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.f != nil {
		if i := slices.Index(c.funcs, t); i >= 0 {
			c.funcs = slices.Delete(c.funcs, i, i+1)
			return true
		}
		return false
	}
	if i := slices.Index(c.timers, t); i >= 0 {
		c.timers = slices.Delete(c.timers, i, i+1)
		c.cond.Broadcast()
		return true
	}
	return false
}
