package live

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestPollReturnsOnSuccessStopOrTimeout(t *testing.T) {
	n := 0
	if err := Poll(time.Second, func() error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	}); err != nil || n != 3 {
		t.Fatalf("success on the third call: err %v after %d calls", err, n)
	}
	gone := errors.New("process gone")
	start := time.Now()
	if err := Poll(time.Minute, func() error { return Stop(gone) }); err != gone || time.Since(start) > time.Second {
		t.Fatalf("stop: err %v after %s, want %v at once", err, time.Since(start), gone)
	}
	last := errors.New("still 503")
	err := Poll(30*time.Millisecond, func() error { return last })
	if !errors.Is(err, last) || !strings.Contains(err.Error(), "not within 30ms") {
		t.Fatalf("timeout: err %v, want one naming 30ms and wrapping the last error", err)
	}
	if Wait(30*time.Millisecond, func() bool { return false }) || !Wait(0, func() bool { return true }) {
		t.Fatal("Wait reports whether the condition held")
	}
}
