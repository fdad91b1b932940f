package groupidauth

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
)

// tracedRig is a rig whose config traces its token requests into an
// in-memory exporter (tracing on), or whose exporter must stay empty
// (tracing off).
func tracedRig(t *testing.T, on bool) (*rig, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	r := newRig(t, groupidsim.Config{}, func(r *rig) {
		r.h.app.Tracing = on
		r.h.app.tracing.exporter = exp
	})
	return r, exp
}

// spans flushes the running config's tracer (if any) and returns every
// span exported so far.
func (r *rig) spans(exp *tracetest.InMemoryExporter) tracetest.SpanStubs {
	r.t.Helper()
	r.h.app.mu.Lock()
	tt := r.h.app.tracing.cur
	r.h.app.mu.Unlock()
	if tt != nil {
		if err := tt.provider.ForceFlush(context.Background()); err != nil {
			r.t.Fatal(err)
		}
	}
	return exp.GetSpans()
}

// coldStart serves the first request (after the first token request) and
// lets the token source settle.
func (r *rig) coldStart() {
	r.t.Helper()
	if st, _ := r.getUser(); st != 200 {
		r.t.Fatalf("status %d", st)
	}
	r.settle()
}

// toNextTimer moves fake time to the refresh goroutine's next timer.
func (r *rig) toNextTimer() {
	due, _ := r.clk.NextDeadline()
	r.advance(due.Sub(r.clk.Now()), time.Second)
}

// attrsOf is a span's attributes as strings, by key.
func attrsOf(kvs []attribute.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

// noSecretIn fails if any text of the spans holds the simulator's password
// or client secret, or a token or refresh token it issued.
func noSecretInSpans(t *testing.T, sim *groupidsim.Server, spans tracetest.SpanStubs) {
	t.Helper()
	secrets := simSecrets(sim)
	for i, s := range spans {
		texts := []string{s.Name, s.Status.Description, fmt.Sprint(s.Resource.Attributes())}
		for _, kv := range s.Attributes {
			texts = append(texts, string(kv.Key), kv.Value.String())
		}
		for _, ev := range s.Events {
			texts = append(texts, ev.Name, fmt.Sprint(ev.Attributes))
		}
		for _, text := range texts {
			for _, sec := range secrets {
				if sec != "" && strings.Contains(text, sec) {
					t.Fatalf("span %d (%s) holds a secret or a token (redacted)", i, s.Name)
				}
			}
		}
	}
}

// TestTracingOneSpanPerTokenRequest: with tracing on, every token request
// (password, refresh_token, a refused refresh token and the password grant
// that follows, a 503) is exactly one span with exactly the documented
// attributes and no secret, and the simulator sees that span's W3C trace
// context (traceparent) on that request.
func TestTracingOneSpanPerTokenRequest(t *testing.T) {
	t.Parallel() // the rig's seams are its app's options
	r, exp := tracedRig(t, true)
	r.coldStart()
	r.toNextTimer() // refresh_token 200
	r.sim.InvalidateRefreshTokens()
	r.toNextTimer() // refresh_token 400 invalid_grant, then password 200
	r.sim.SetFault(groupidsim.Fault{Kind: groupidsim.Fault5xx, Status: 503})
	r.toNextTimer() // refresh_token 503

	name := r.h.cred().info.Name
	ok := func(grant string) map[string]string {
		return map[string]string{attrCredential: name, attrGrantType: grant, attrSharing: "local", attrHTTPStatus: "200"}
	}
	want := []map[string]string{
		ok("password"),
		ok("refresh_token"),
		{attrCredential: name, attrGrantType: "refresh_token", attrSharing: "local", attrHTTPStatus: "400",
			attrErrorClass: "rejected", attrOAuthError: "invalid_grant"},
		ok("password"),
		{attrCredential: name, attrGrantType: "refresh_token", attrSharing: "local", attrHTTPStatus: "503",
			attrErrorClass: "transient"},
	}
	spans := r.spans(exp)
	seen := r.sim.TokenRequests()
	if len(spans) != len(want) || len(seen) != len(want) {
		t.Fatalf("%d spans for %d token requests, want %d", len(spans), len(seen), len(want))
	}
	for i, s := range spans {
		if s.Name != tokenSpanName || s.SpanKind.String() != "client" {
			t.Errorf("span %d: name %q kind %v", i, s.Name, s.SpanKind)
		}
		if got := attrsOf(s.Attributes); fmt.Sprint(got) != fmt.Sprint(want[i]) {
			t.Errorf("span %d attributes:\n got %v\nwant %v", i, got, want[i])
		}
		failed := want[i][attrErrorClass] != ""
		if (s.Status.Code == codes.Error) != failed {
			t.Errorf("span %d status %v", i, s.Status)
		}
		tp := fmt.Sprintf("00-%s-%s-01", s.SpanContext.TraceID(), s.SpanContext.SpanID())
		if got := seen[i].Header.Values("Traceparent"); len(got) != 1 || got[0] != tp {
			t.Errorf("token request %d: traceparent %q, want %q (its span's)", i, got, tp)
		}
	}
	if spans[2].Status.Description != "rejected: invalid_grant" || spans[4].Status.Description != "transient" {
		t.Errorf("status descriptions %q, %q", spans[2].Status.Description, spans[4].Status.Description)
	}
	noSecretInSpans(t, r.sim, spans)
}

// TestTracingOffExportsNothing: with tracing off (the default) the config
// makes no tracer, nothing reaches the exporter, and token requests carry
// no traceparent.
func TestTracingOffExportsNothing(t *testing.T) {
	t.Parallel() // the rig's seams are its app's options
	r, exp := tracedRig(t, false)
	r.coldStart()
	r.toNextTimer() // a refresh
	if r.h.app.tracing.cur != nil || r.h.cred().current().tracing != nil {
		t.Fatal("a tracer exists with tracing off")
	}
	if n := len(r.spans(exp)); n != 0 {
		t.Fatalf("%d spans exported with tracing off", n)
	}
	seen := r.sim.TokenRequests()
	if len(seen) != 2 {
		t.Fatalf("%d token requests, want 2", len(seen))
	}
	for i, req := range seen {
		if v := req.Header.Get("Traceparent"); v != "" {
			t.Fatalf("token request %d carries traceparent %q with tracing off", i, v)
		}
	}
}

// TestTracingStopsWithItsConfig: the config's tracer provider is shut down
// (queued spans flushed) when the config stops.
func TestTracingStopsWithItsConfig(t *testing.T) {
	t.Parallel() // the rig's seams are its app's options
	exp := &countingExporter{}
	r := newRig(t, groupidsim.Config{}, func(r *rig) {
		r.h.app.Tracing = true
		r.h.app.tracing.exporter = exp
	})
	r.getUser()
	r.settle()
	tt := r.h.app.tracing.cur
	if err := retire(r.h); err != nil {
		t.Fatal(err)
	}
	if r.h.app.tracing.cur != nil {
		t.Fatal("the tracer outlived its config")
	}
	if exp.spans.Load() != 1 || !exp.shut.Load() {
		t.Fatalf("%d spans flushed at stop, want 1; exporter shut down: %v", exp.spans.Load(), exp.shut.Load())
	}
	_, span := tt.tracer.Start(context.Background(), "after")
	span.End()
	if err := tt.provider.ForceFlush(context.Background()); err != nil || exp.spans.Load() != 1 {
		t.Fatalf("the stopped config's tracer still exports (%d spans, %v)", exp.spans.Load(), err)
	}
}

// countingExporter counts the spans exported and notes its shutdown (the
// in-memory exporter forgets its spans when shut down).
type countingExporter struct {
	spans atomic.Int64
	shut  atomic.Bool
}

func (e *countingExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.spans.Add(int64(len(spans)))
	return nil
}

func (e *countingExporter) Shutdown(context.Context) error {
	e.shut.Store(true)
	return nil
}

// TestRequestSpanGetsCredentialAndReplayEvent: when Caddy's tracing handler
// records a span for the client request, it gets the credential's name and,
// when GroupID answered 401 and the request was sent again, one replay
// event; whether the groupid app traces token requests or not.
func TestRequestSpanGetsCredentialAndReplayEvent(t *testing.T) {
	t.Parallel() // the rig's seams are its app's options
	r, _ := tracedRig(t, false)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	send := func(revoke bool) tracetest.SpanStub {
		if revoke {
			r.sim.RevokeAllTokens()
		}
		ctx, span := tp.Tracer("caddy").Start(context.Background(), "handler")
		req := httptest.NewRequest("GET", "/GroupIDDataService/api/IdentityStores/2/Users/"+groupidsim.SeedUserID, nil).WithContext(ctx)
		if st := r.status(req); st != 200 {
			t.Fatalf("status %d", st)
		}
		span.End()
		spans := exp.GetSpans()
		exp.Reset()
		return spans[len(spans)-1]
	}
	name := r.h.cred().info.Name
	plain := send(false)
	if got := attrsOf(plain.Attributes); got[attrCredential] != name || len(plain.Events) != 0 {
		t.Fatalf("request span: attributes %v, events %v", got, plain.Events)
	}
	replayed := send(true)
	if got := attrsOf(replayed.Attributes); got[attrCredential] != name {
		t.Fatalf("replayed request span: attributes %v", got)
	}
	if len(replayed.Events) != 1 || replayed.Events[0].Name != replayEvent || attrsOf(replayed.Events[0].Attributes)[attrCredential] != name {
		t.Fatalf("replayed request span events %+v", replayed.Events)
	}
	noSecretInSpans(t, r.sim, tracetest.SpanStubs{plain, replayed})

	// A request refused for lack of a token names its credential too.
	r.sim.SetFault(groupidsim.Fault{Kind: groupidsim.Fault5xx})
	r.sim.RevokeAllTokens()
	ctx, span := tp.Tracer("caddy").Start(context.Background(), "handler")
	r.status(httptest.NewRequest("GET", "/GroupIDDataService/api/IdentityStores/2/Users/"+groupidsim.SeedUserID, nil).WithContext(ctx))
	r.settle()
	st := r.status(httptest.NewRequest("GET", "/GroupIDDataService/api/IdentityStores/2/Users/"+groupidsim.SeedUserID, nil).WithContext(ctx))
	span.End()
	if st != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", st)
	}
	if got := attrsOf(exp.GetSpans()[0].Attributes); got[attrCredential] != name {
		t.Fatalf("refused request span: attributes %v", got)
	}
}

// TestTracingCaddyfile: `tracing` in the global groupid block turns tracing
// on; it takes no argument and is given once.
func TestTracingCaddyfile(t *testing.T) {
	for in, want := range map[string]string{
		"groupid {\n\ttracing\n}":            "",
		"groupid {\n\ttracing on\n}":         "wrong argument count",
		"groupid {\n\ttracing\n\ttracing\n}": "tracing given more than once",
	} {
		a := new(App)
		err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in))
		switch {
		case want == "" && (err != nil || !a.Tracing):
			t.Errorf("%q: tracing %v, error %v", in, a.Tracing, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: error %v, want %q", in, err, want)
		}
	}
	if new(App).Tracing {
		t.Error("tracing is on by default")
	}
}

// TestTracingUnknownExporterFailsTheStart: an OTEL_TRACES_EXPORTER that
// does not exist fails the config's start, with tracing on only.
func TestTracingUnknownExporterFailsTheStart(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "no-such-exporter")
	off := &App{}
	if err := off.startTracing(); err != nil {
		t.Fatalf("tracing off: %v", err)
	}
	on := &App{Tracing: true}
	if err := on.startTracing(); err == nil || !strings.Contains(err.Error(), "tracing: creating the trace exporter") {
		t.Fatalf("tracing on: %v", err)
	}
}
