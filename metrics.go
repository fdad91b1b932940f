package groupidauth

import (
	"github.com/caddy-groupid/caddy-groupid/tokencache"
	"github.com/prometheus/client_golang/prometheus"
)

// descs are the descriptions of every series, made once: the one place
// that names the metrics. The alert rules and the dashboard in
// deploy/monitoring use only names MetricNames returns (a test there
// checks it).
var descs = newMetricDescs()

// MetricNames returns the name of every series the collector exports, in a
// fixed order (a histogram's name without its _bucket, _sum and _count
// suffixes). The slice is the caller's.
func MetricNames() []string { return append([]string(nil), descs.names...) }

// registerMetrics registers a collector with the registry of app's config
// load (each load has a fresh one). Every series is read at scrape time
// from the running config's credentials (app's own when no config runs, as
// in unit tests), from the same snapshot the admin status shows, so a
// reload neither loses nor duplicates series, a failed load changes none
// (Caddy's admin /metrics serves the newest load's registry, also after
// that load failed), and a credential that is gone has none.
func registerMetrics(reg *prometheus.Registry, app *App) error {
	if reg == nil {
		return nil
	}
	return reg.Register(appCollector{app})
}

// appCollector turns an app's credentials into metrics.
type appCollector struct{ app *App }

// Describe implements prometheus.Collector.
func (c appCollector) Describe(ch chan<- *prometheus.Desc) { descs.describe(ch) }

// Collect implements prometheus.Collector.
func (c appCollector) Collect(ch chan<- prometheus.Metric) {
	app := runningApp()
	if app == nil {
		app = c.app
	}
	for _, cred := range app.list("") {
		descs.collect(ch, cred.snapshot())
	}
}

// metricDescs describes the series of a credential.
type metricDescs struct {
	state, valid, expiresIn, tokenRequests, duration,
	requestsInjected, requestsRefused, replays, unauthorizedPassed, tokenDrops *prometheus.Desc
	// Shared credentials only.
	tokenSource, shareLockWaits, shareStorageErrors, shareFallbacks *prometheus.Desc
	// names are the full names of the series above, in order.
	names []string
}

func newMetricDescs() *metricDescs {
	var names []string
	d := func(name, help string, labels ...string) *prometheus.Desc {
		names = append(names, "caddy_groupid_"+name)
		return prometheus.NewDesc("caddy_groupid_"+name, help, append([]string{"name"}, labels...), nil)
	}
	m := &metricDescs{
		state:              d("state", "1 for the credential's current state (starting, valid, degraded, unavailable, rejected, refreshing), 0 for the others.", "state"),
		valid:              d("token_valid", "1 while requests get a token (state valid or degraded), else 0."),
		expiresIn:          d("token_expires_in_seconds", "Seconds until the served token expires; 0 when no token is served."),
		tokenRequests:      d("token_requests_total", "Token requests by grant type and outcome (ok, an OAuth error code, other_error, rejected or transient).", "grant_type", "outcome"),
		duration:           d("token_request_duration_seconds", "Duration of token requests to the GroupID Security Service.", "grant_type"),
		requestsInjected:   d("requests_injected_total", "Requests forwarded with the service token."),
		requestsRefused:    d("requests_refused_total", "Requests refused for lack of a token, by reason (unavailable: 503, rejected: 502).", "reason"),
		replays:            d("replays_total", "Requests replayed once after the upstream answered 401 to the token."),
		unauthorizedPassed: d("unauthorized_passed_total", "Upstream 401 answers passed to the client without a replay."),
		tokenDrops:         d("token_drops_total", "Tokens dropped because the upstream answered 401 to them (at most 3 a minute; past that the token is kept and 401s pass through)."),
		tokenSource:        d("token_source", "Shared credentials: 1 for where the newest token came from (own: this replica's token request; shared: adopted from shared storage), 0 for the other.", "source"),
		shareLockWaits:     d("share_lock_waits_total", "Shared credentials: waits for the storage lock before a refresh."),
		shareStorageErrors: d("share_storage_errors_total", "Shared credentials: storage calls that failed or timed out."),
		shareFallbacks:     d("share_fallbacks_total", "Shared credentials: token requests made without the storage lock (lock timeout or storage failure), or whose token could not be stored."),
	}
	m.names = names
	return m
}

func (c *metricDescs) describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.state, c.valid, c.expiresIn, c.tokenRequests, c.duration,
		c.requestsInjected, c.requestsRefused, c.replays, c.unauthorizedPassed, c.tokenDrops,
		c.tokenSource, c.shareLockWaits, c.shareStorageErrors, c.shareFallbacks} {
		ch <- d
	}
}

func (c *metricDescs) collect(ch chan<- prometheus.Metric, s snapshot) {
	name := s.info.Name
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{name}, labels...)...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{name}, labels...)...)
	}
	for _, st := range tokencache.Conditions() {
		gauge(c.state, boolFloat(st == s.state), string(st))
	}
	gauge(c.valid, boolFloat(s.state.Serving()))
	gauge(c.expiresIn, s.expiresIn().Seconds())
	v := s.counts
	for k, n := range v.tokenRequests {
		counter(c.tokenRequests, n, k.grantType, k.outcome)
	}
	for grant, h := range v.durations {
		buckets := make(map[float64]uint64, len(durationBuckets))
		for i, le := range durationBuckets {
			buckets[le] = h.buckets[i]
		}
		ch <- prometheus.MustNewConstHistogram(c.duration, h.count, h.sum, buckets, name, grant)
	}
	counter(c.requestsInjected, v.requestsInjected)
	counter(c.requestsRefused, v.requestsRefusedUnavailable, "unavailable")
	counter(c.requestsRefused, v.requestsRefusedRejected, "rejected")
	counter(c.replays, v.replays)
	counter(c.unauthorizedPassed, v.unauthorizedPassed)
	counter(c.tokenDrops, s.drops)
	if s.shared {
		src := s.tokenSource()
		gauge(c.tokenSource, boolFloat(src == "own"), "own")
		gauge(c.tokenSource, boolFloat(src == "shared"), "shared")
		counter(c.shareLockWaits, s.share.LockWaits)
		counter(c.shareStorageErrors, s.share.StorageErrors)
		counter(c.shareFallbacks, s.share.Fallbacks)
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
