package monitoring

// Dashboard builds the caddy-groupid dashboard: the credential's state and
// time to expiry, token requests by outcome and their durations, the
// requests forwarded and refused, replays and 401 drops, and sharing. The
// metric names are those of the collector (metrics.go at the module root).
func Dashboard() Model {
	m := Model{
		UID:   "caddy-groupid",
		Title: "Caddy GroupID token",
		Description: "Health of the GroupID service token held by Caddy's groupid_auth: state, expiry, " +
			"token requests, refused requests, 401 replays and sharing. Alerts: deploy/monitoring/groupid-alerts.yml.",
		Tags:          []string{"caddy", "groupid"},
		Editable:      true,
		Refresh:       "30s",
		SchemaVersion: 39,
		Time:          TimeRange{From: "now-6h", To: "now"},
		Templating: Templating{List: []Variable{
			{Name: "datasource", Label: "Data source", Type: "datasource", Query: "prometheus"},
			labelVariable("instance", "Instance", "label_values(caddy_groupid_token_valid, instance)"),
			labelVariable("name", "Credential", `label_values(caddy_groupid_token_valid{instance=~"$instance"}, name)`),
		}},
	}
	l := layout{m: &m}
	zero := 0.0

	l.row("Token")
	l.add(8, 5, stat("State", "The credential's state now: valid, degraded (refreshes fail, token still served), "+
		"unavailable (503), rejected (502), starting or refreshing.", "name", nil,
		q("caddy_groupid_state"+sel+" == 1", "{{instance}} {{name}}: {{state}}")))
	l.add(4, 5, stat("Token valid", "Whether requests get a token (valid or degraded).", "value",
		[]Mapping{{Type: "value", Options: map[string]MappingValue{
			"0": {Text: "no token", Color: "red", Index: 0}, "1": {Text: "valid", Color: "green", Index: 1}}}},
		q("caddy_groupid_token_valid"+sel, "{{instance}} {{name}}")))
	l.add(12, 5, timeseries("Time to expiry", "Seconds until the served token expires; 0 when none is served. "+
		"A sawtooth is healthy; a slope to 0 means refreshes fail.", "s", &zero,
		q("caddy_groupid_token_expires_in_seconds"+sel, "{{instance}} {{name}}")))

	l.row("Token requests")
	l.add(12, 8, timeseries("Token requests by outcome", "Token requests per interval by grant type and "+
		"outcome (ok, an OAuth error code, rejected, transient).", "short", &zero,
		q("sum by (grant_type, outcome) (increase(caddy_groupid_token_requests_total"+sel+"[$__rate_interval]))",
			"{{grant_type}} {{outcome}}")))
	l.add(12, 8, timeseries("Token request duration", "95th percentile and mean duration of token requests.", "s", &zero,
		q("histogram_quantile(0.95, sum by (le, grant_type) (rate(caddy_groupid_token_request_duration_seconds_bucket"+
			sel+"[$__rate_interval])))", "p95 {{grant_type}}"),
		q("sum by (grant_type) (rate(caddy_groupid_token_request_duration_seconds_sum"+sel+"[$__rate_interval]))"+
			" / sum by (grant_type) (rate(caddy_groupid_token_request_duration_seconds_count"+sel+"[$__rate_interval]))",
			"mean {{grant_type}}")))

	l.row("Requests")
	l.add(12, 8, timeseries("Requests forwarded and refused", "Requests forwarded with the token, and "+
		"refused for lack of one (unavailable: 503, rejected: 502).", "reqps", &zero,
		q("sum by (name) (rate(caddy_groupid_requests_injected_total"+sel+"[$__rate_interval]))", "forwarded {{name}}"),
		q("sum by (name, reason) (rate(caddy_groupid_requests_refused_total"+sel+"[$__rate_interval]))", "refused {{reason}} {{name}}")))
	l.add(12, 8, timeseries("Replays and 401 drops", "Per interval: tokens dropped after GroupID answered 401, "+
		"requests replayed with a new token, and 401s passed to clients.", "short", &zero,
		q("sum by (name) (increase(caddy_groupid_token_drops_total"+sel+"[$__rate_interval]))", "tokens dropped {{name}}"),
		q("sum by (name) (increase(caddy_groupid_replays_total"+sel+"[$__rate_interval]))", "replayed {{name}}"),
		q("sum by (name) (increase(caddy_groupid_unauthorized_passed_total"+sel+"[$__rate_interval]))", "401 to client {{name}}")))

	l.row("Sharing (credentials with share)")
	l.add(8, 6, stat("Token source", "Where each replica's newest token came from: own (its token request) "+
		"or shared (adopted from storage).", "name", nil,
		q("caddy_groupid_token_source"+sel+" == 1", "{{instance}} {{name}}: {{source}}")))
	l.add(16, 6, timeseries("Share lock waits, storage errors, fallbacks", "Per interval: waits for the "+
		"storage lock, failed storage calls, and token requests made without the lock.", "short", &zero,
		q("sum by (instance, name) (increase(caddy_groupid_share_lock_waits_total"+sel+"[$__rate_interval]))", "lock waits {{instance}}"),
		q("sum by (instance, name) (increase(caddy_groupid_share_storage_errors_total"+sel+"[$__rate_interval]))", "storage errors {{instance}}"),
		q("sum by (instance, name) (increase(caddy_groupid_share_fallbacks_total"+sel+"[$__rate_interval]))", "fallbacks {{instance}}")))
	return m
}

func labelVariable(name, label, query string) Variable {
	return Variable{Name: name, Label: label, Type: "query", Query: query, Definition: query,
		Datasource: datasource, Refresh: 2, Multi: true, IncludeAll: true, AllValue: ".*", Sort: 1}
}

func q(expr, legend string) Target { return Target{Expr: expr, LegendFormat: legend} }

func stat(title, desc, textMode string, mappings []Mapping, targets ...Target) Panel {
	return Panel{Type: "stat", Title: title, Description: desc, Targets: targets,
		FieldConfig: &FieldConfig{Defaults: FieldDefaults{Mappings: mappings}},
		Options: map[string]any{"textMode": textMode, "colorMode": "background", "graphMode": "none",
			"reduceOptions": map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false}}}
}

func timeseries(title, desc, unit string, min *float64, targets ...Target) Panel {
	return Panel{Type: "timeseries", Title: title, Description: desc, Targets: targets,
		FieldConfig: &FieldConfig{Defaults: FieldDefaults{Unit: unit, Min: min}},
		Options: map[string]any{"legend": map[string]any{"displayMode": "list", "placement": "bottom", "showLegend": true},
			"tooltip": map[string]any{"mode": "multi", "sort": "desc"}}}
}
