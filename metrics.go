package groupidauth

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are created once per process and registered with the registry of
// every config load (each load has a fresh one). Counters and gauges are
// read from the live credentials at scrape time, so a reload neither loses
// nor duplicates series, and a credential that is gone has none.
var metrics struct {
	once     sync.Once
	duration *prometheus.HistogramVec
	state    *stateCollector
}

func initMetrics(reg *prometheus.Registry) error {
	if reg == nil {
		return nil
	}
	metrics.once.Do(func() {
		metrics.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "caddy", Subsystem: "groupid",
			Name:    "token_request_duration_seconds",
			Help:    "Duration of token requests to the GroupID Security Service.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"name", "grant_type"})
		metrics.state = newStateCollector()
	})
	for _, c := range []prometheus.Collector{metrics.duration, metrics.state} {
		var are prometheus.AlreadyRegisteredError
		if err := reg.Register(c); err != nil && !errors.As(err, &are) {
			return err
		}
	}
	return nil
}

func observeDuration(name, grant string, d time.Duration) {
	if metrics.duration != nil {
		metrics.duration.WithLabelValues(name, grant).Observe(d.Seconds())
	}
}

// forgetMetrics drops the histogram series of a credential name that no
// loaded config uses any more.
func forgetMetrics(s *sharedSource) {
	if metrics.duration != nil && len(lookupCredentials(s.info.Name)) == 0 {
		metrics.duration.DeletePartialMatch(prometheus.Labels{"name": s.info.Name})
	}
}

// stateCollector turns the live credentials into metrics at scrape time.
type stateCollector struct {
	tokenRequests, expiresIn, valid, injected, refused, replays, passed401 *prometheus.Desc
}

func newStateCollector() *stateCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("caddy_groupid_"+name, help, append([]string{"name"}, labels...), nil)
	}
	return &stateCollector{
		tokenRequests: d("token_requests_total", "Token requests by grant type and outcome (ok, an OAuth error code, rejected or transient).", "grant_type", "outcome"),
		expiresIn:     d("token_expires_in_seconds", "Seconds until the current token expires; 0 when no valid token is held."),
		valid:         d("token_valid", "1 while a valid token is held, else 0."),
		injected:      d("requests_injected_total", "Requests forwarded with the service token."),
		refused:       d("requests_refused_total", "Requests refused for lack of a token, by reason (unavailable: 503, rejected: 502).", "reason"),
		replays:       d("replays_total", "Requests replayed once after the upstream answered 401 to the token."),
		passed401:     d("unauthorized_passed_total", "Upstream 401 answers passed to the client without a replay (body too large to buffer)."),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.tokenRequests, c.expiresIn, c.valid, c.injected, c.refused, c.replays, c.passed401} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range lookupCredentials("") {
		name := s.info.Name
		counter := func(d *prometheus.Desc, v uint64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{name}, labels...)...)
		}
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, name)
		}
		s.stats.mu.Lock()
		for k, v := range s.stats.tokenRequests {
			counter(c.tokenRequests, v, k.grant, k.outcome)
		}
		s.stats.mu.Unlock()
		left, valid := 0.0, 0.0
		if tok := s.src.Current(); tok.ValidAt(s.clock.Now()) {
			left, valid = tok.Expiry.Sub(s.clock.Now()).Seconds(), 1
		}
		gauge(c.expiresIn, left)
		gauge(c.valid, valid)
		counter(c.injected, s.stats.injected.Load())
		counter(c.refused, s.stats.unavailable.Load(), "unavailable")
		counter(c.refused, s.stats.rejected.Load(), "rejected")
		counter(c.replays, s.stats.replays.Load())
		counter(c.passed401, s.stats.passed401.Load())
	}
}
