package e2e

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
)

// otlpReceiver is an OTLP/HTTP trace receiver (POST /v1/traces,
// protobuf): it keeps every span and every raw body it was sent.
type otlpReceiver struct {
	mu     sync.Mutex
	spans  []*tracepb.Span
	bodies [][]byte
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var req coltracepb.ExportTraceServiceRequest
	if err != nil || r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
		http.Error(w, "not an OTLP trace export", http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	o.bodies = append(o.bodies, body)
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			o.spans = append(o.spans, ss.Spans...)
		}
	}
	o.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// named returns the spans received with the given name.
func (o *otlpReceiver) named(name string) []*tracepb.Span {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []*tracepb.Span
	for _, s := range o.spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// count is the number of spans received.
func (o *otlpReceiver) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.spans)
}

// attrs is a span's (or event's) attributes as strings, by key.
func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		switch v := kv.Value.Value.(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.Key] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			m[kv.Key] = fmt.Sprint(v.IntValue)
		default:
			m[kv.Key] = kv.Value.String()
		}
	}
	return m
}

// withGlobal adds lines to the global options block of config.
func withGlobal(config, lines string) string {
	return strings.Replace(config, "\tpersist_config off\n", "\tpersist_config off\n"+lines, 1)
}

// TestTracingExportsOneSpanPerTokenRequest: a real Caddy, a real OTLP/HTTP
// exporter configured by the OTEL_* environment, and a receiver. With an
// endpoint in the environment but `tracing` off, nothing is exported and
// the token request carries no traceparent; with `groupid { tracing }` every
// token request is one span with the documented attributes and no secret,
// its traceparent is on the request GroupID received, and the request span
// of Caddy's own `tracing` handler names the credential and has the replay
// event after GroupID's 401. The spans are flushed when the config stops.
func TestTracingExportsOneSpanPerTokenRequest(t *testing.T) {
	recv := &otlpReceiver{}
	srv := httptest.NewServer(recv)
	t.Cleanup(srv.Close)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")

	s := newRig(t, groupidsim.Config{})
	s.load()
	if r := s.call("GET", usersPath+"/"+groupidsim.SeedUserID, nil); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	s.Extra = "(reloaded)"
	s.load() // the first config stops: it had nothing to flush
	if n := recv.count(); n != 0 {
		t.Fatalf("tracing off: %d spans exported", n)
	}
	off := s.sim.TokenRequests()
	if len(off) != 1 || off[0].Header.Get("Traceparent") != "" {
		t.Fatalf("tracing off: %d token requests, traceparent %q", len(off), off[0].Header.Get("Traceparent"))
	}

	// Tracing on, and Caddy's tracing handler on the GroupID route.
	traced := withGlobal(s.caddyfile(), "\tgroupid {\n\t\ttracing\n\t}\n")
	traced = strings.Replace(traced, "\thandle @groupid {\n", "\thandle @groupid {\n\t\ttracing\n", 1)
	s.tester.InitServer(traced, "caddyfile")
	s.sim.RevokeAllTokens() // the next call gets a 401: a password grant and a replay
	if r := s.call("GET", usersPath+"/"+groupidsim.SeedUserID, nil); r.status != 200 {
		t.Fatalf("status %d after the revocation", r.status)
	}
	s.sim.SetPassword("changed-in-groupid")
	s.sim.RevokeAllTokens() // the next password grant is refused
	if r := s.call("GET", usersPath+"/"+groupidsim.SeedUserID, nil); r.status != http.StatusBadGateway {
		t.Fatalf("status %d with a refused password, want 502", r.status)
	}
	s.Extra = "(tracing off again)"
	s.load() // stops the traced config: its spans are flushed

	tu, err := url.Parse(s.tokenURL)
	if err != nil {
		t.Fatal(err)
	}
	name := s.sim.Config().Username + "@" + tu.Host + "/2" // the default credential name
	spans := recv.named("groupid_auth.token_request")
	seen := s.sim.TokenRequests()[1:]
	if len(spans) != 2 || len(seen) != 2 {
		t.Fatalf("%d token request spans for %d token requests, want 2", len(spans), len(seen))
	}
	want := []map[string]string{
		{"groupid_auth.credential": name, "groupid_auth.grant_type": "password", "groupid_auth.token_sharing": "local",
			"http.response.status_code": "200"},
		{"groupid_auth.credential": name, "groupid_auth.grant_type": "password", "groupid_auth.token_sharing": "local",
			"http.response.status_code": "400", "groupid_auth.error_class": "rejected", "groupid_auth.oauth_error": "invalid_grant"},
	}
	for i, sp := range spans {
		if got := attrs(sp.Attributes); fmt.Sprint(got) != fmt.Sprint(want[i]) {
			t.Errorf("span %d attributes:\n got %v\nwant %v", i, got, want[i])
		}
		tp := fmt.Sprintf("00-%s-%s-01", hex.EncodeToString(sp.TraceId), hex.EncodeToString(sp.SpanId))
		if got := seen[i].Header.Get("Traceparent"); got != tp {
			t.Errorf("token request %d: traceparent %q, want its span's %q", i, got, tp)
		}
	}

	// Caddy's request spans: the credential on each, the replay on the first.
	var handler []*tracepb.Span
	for _, sp := range recv.named("handler") {
		if attrs(sp.Attributes)["groupid_auth.credential"] == name {
			handler = append(handler, sp)
		}
	}
	if len(handler) != 2 {
		t.Fatalf("%d request spans name the credential, want 2", len(handler))
	}
	var replays int
	for _, sp := range handler {
		for _, ev := range sp.Events {
			if ev.Name == "groupid_auth.replay" {
				replays++
			}
		}
	}
	if replays != 1 {
		t.Errorf("%d replay events, want 1 (no fresh token after the refused password: nothing is sent again)", replays)
	}

	secrets := append([]string{groupidsim.DefaultPassword, groupidsim.DefaultClientSecret}, s.sim.IssuedTokens()...)
	secrets = append(secrets, s.sim.IssuedRefreshTokens()...)
	recv.mu.Lock()
	defer recv.mu.Unlock()
	for _, body := range recv.bodies {
		for _, sec := range secrets {
			if sec != "" && bytes.Contains(body, []byte(sec)) {
				t.Fatal("an export holds a secret or a token (redacted)")
			}
		}
	}
}
