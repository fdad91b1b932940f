package live

import (
	"errors"
	"fmt"
	"time"
)

// PollInterval is how often Poll calls its function.
const PollInterval = 10 * time.Millisecond

// stopError is an error Poll returns at once.
type stopError struct{ err error }

func (e stopError) Error() string { return e.err.Error() }

// Stop wraps err so that Poll stops and returns err as it is: the
// condition can never hold (the process it waits for has exited).
func Stop(err error) error { return stopError{err} }

// Poll calls f every PollInterval until it returns nil (Poll returns nil),
// returns an error made by Stop (Poll returns the error Stop was given),
// or timeout has passed since the first call (Poll returns an error that
// names the timeout and wraps f's last error). f is called at least once.
func Poll(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if se, ok := errors.AsType[stopError](err); ok {
			return se.err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s: %w", timeout, err)
		}
		time.Sleep(PollInterval)
	}
}

// Wait calls cond every PollInterval until it holds, and reports whether
// it did within timeout. cond is called at least once.
func Wait(timeout time.Duration, cond func() bool) bool {
	return Poll(timeout, func() error {
		if cond() {
			return nil
		}
		return errFalse
	}) == nil
}

var errFalse = errors.New("condition false")
