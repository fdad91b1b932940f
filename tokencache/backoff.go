package tokencache

import "time"

// Backoff is an exponential backoff with full jitter above a floor: the
// n-th consecutive failure waits a random time in [Min, min(Max, Min*2^(n-1))].
// The floor keeps the token endpoint from being hit in a tight loop even
// when the jitter draws zero.
type Backoff struct {
	Min time.Duration
	Max time.Duration
}

// Delay returns the wait after the n-th consecutive failure (n >= 1); r is a
// random number in [0, 1).
func (b Backoff) Delay(n int, r float64) time.Duration {
	ceil := b.Min
	for i := 1; i < n && ceil < b.Max; i++ {
		ceil *= 2
	}
	if ceil > b.Max {
		ceil = b.Max
	}
	return b.Min + time.Duration(r*float64(ceil-b.Min))
}

// Default backoff schedules. Transient failures (GroupID unreachable, 5xx)
// retry from 1 s up to 60 s; rejections (wrong password, unknown client)
// need an operator, so they retry from 30 s up to 10 min.
var (
	DefaultTransientBackoff = Backoff{Min: time.Second, Max: time.Minute}
	DefaultRejectedBackoff  = Backoff{Min: 30 * time.Second, Max: 10 * time.Minute}
)
