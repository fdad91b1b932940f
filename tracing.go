package groupidauth

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

// OpenTelemetry: one span per token request, exported with the standard
// OTEL_* environment, while the groupid app's `tracing` option is on; and,
// whatever that option says, the credential and the replay after a 401 on
// the span of the client request when Caddy's `tracing` handler made one.

// Span, event and attribute names (README: Tracing).
const (
	tokenSpanName = "groupid_auth.token_request"
	replayEvent   = "groupid_auth.replay"

	attrCredential = "groupid_auth.credential"
	attrGrantType  = "groupid_auth.grant_type"
	// attrSharing is "shared" for a request made for the cluster under
	// the share storage lock, "local" for the replica's own.
	attrSharing    = "groupid_auth.token_sharing"
	attrErrorClass = "groupid_auth.error_class"
	attrOAuthError = "groupid_auth.oauth_error"
	attrHTTPStatus = "http.response.status_code"

	tracerName = "github.com/caddy-groupid/caddy-groupid"
)

// tracingShutdownTimeout bounds the flush of the spans still queued when
// the config that exports them stops.
const tracingShutdownTimeout = 5 * time.Second

// appTracing is the groupid app's tracing state: its tracer provider
// while the config runs with `tracing` on.
type appTracing struct {
	// exporter, set before Start by tests, replaces the exporter the
	// OTEL_* environment would choose.
	exporter sdktrace.SpanExporter
	// cur is the running config's tracer, nil while off. Set by Start,
	// cleared by Stop.
	cur *tokenTracing
}

// tokenTracing is one config's tracer provider for token requests, and the
// W3C trace context propagator that puts a token request's span on it.
type tokenTracing struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
	prop     propagation.TraceContext
}

// newTokenTracing makes a tracer provider that exports with exp, or, when
// exp is nil, with the exporter the OTEL_* environment chooses, as Caddy's
// tracing handler does (autoexport: OTEL_TRACES_EXPORTER, default otlp;
// OTEL_EXPORTER_OTLP_PROTOCOL, default http/protobuf; the endpoint and
// headers from OTEL_EXPORTER_OTLP_*). The SDK reads the sampler
// (OTEL_TRACES_SAMPLER), the batch settings (OTEL_BSP_*) and the resource
// (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES). Nothing connects before
// the first export.
func newTokenTracing(exp sdktrace.SpanExporter) (*tokenTracing, error) {
	if exp == nil {
		var err error
		if exp, err = autoexport.NewSpanExporter(context.Background()); err != nil {
			return nil, fmt.Errorf("creating the trace exporter: %w", err)
		}
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(resource.Default()))
	return &tokenTracing{provider: tp, tracer: tp.Tracer(tracerName)}, nil
}

// startTracing makes the config's tracer provider when `tracing` is on and
// gives it to the config's credentials; they trace their token requests
// while this config is the running one. Called by Start, before the
// credentials start.
func (a *App) startTracing() error {
	if !a.Tracing {
		return nil
	}
	tt, err := newTokenTracing(a.tracing.exporter)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tracing.cur = tt
	for _, ac := range a.creds {
		ac.use.tracing = tt
	}
	return nil
}

// stopTracing flushes the spans still queued and shuts the config's tracer
// provider down (its export goroutine ends with it). Called by Stop, after
// the credentials left this config's use.
func (a *App) stopTracing() {
	a.mu.Lock()
	tt := a.tracing.cur
	a.tracing.cur = nil
	a.mu.Unlock()
	if tt == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), tracingShutdownTimeout)
	defer cancel()
	if err := tt.provider.Shutdown(ctx); err != nil {
		a.logger.Warn("tracing: flushing the last spans failed", zap.Error(err))
	}
}

// traceRequest is the credential's tokencache.TraceFunc: a span for the
// token request when the running config traces, else nothing.
func (c *credential) traceRequest(ctx context.Context, req tokencache.TokenRequest) (context.Context, func(tokencache.TokenResult)) {
	u := c.current()
	if u == nil || u.tracing == nil {
		return ctx, nil
	}
	return u.tracing.start(ctx, c.info.Name, req)
}

// start opens the span of one token request of the credential named name.
// Its attributes say what was asked and what came back, never a secret: the
// credential's name, the grant type, shared or local, the HTTP status and,
// on failure, the error class and the OAuth error code.
func (tt *tokenTracing) start(ctx context.Context, name string, req tokencache.TokenRequest) (context.Context, func(tokencache.TokenResult)) {
	sharing := "local"
	if req.Shared {
		sharing = "shared"
	}
	ctx, span := tt.tracer.Start(ctx, tokenSpanName, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String(attrCredential, name),
		attribute.String(attrGrantType, req.GrantType),
		attribute.String(attrSharing, sharing),
	))
	return ctx, func(res tokencache.TokenResult) {
		if res.StatusCode != 0 {
			span.SetAttributes(attribute.Int(attrHTTPStatus, res.StatusCode))
		}
		if e := res.Err; e != nil {
			desc := e.Class.String()
			span.SetAttributes(attribute.String(attrErrorClass, desc))
			if e.Code != "" {
				span.SetAttributes(attribute.String(attrOAuthError, e.Code))
				desc += ": " + e.Code
			}
			span.SetStatus(codes.Error, desc)
		}
		span.End()
	}
}

// inject returns req with the W3C trace context (traceparent) of the span
// in its context, for GroupID's logs; req itself is not changed. A request
// without a span is returned as it is.
func (tt *tokenTracing) inject(req *http.Request) *http.Request {
	if !trace.SpanContextFromContext(req.Context()).IsValid() {
		return req
	}
	out := req.Clone(req.Context())
	tt.prop.Inject(req.Context(), propagation.HeaderCarrier(out.Header))
	return out
}

// traceCredential names the credential on the client request's span, when
// Caddy's tracing handler records one. Without a recording span it costs
// one context lookup.
func traceCredential(req *http.Request, c *credential) {
	if span := trace.SpanFromContext(req.Context()); span.IsRecording() {
		span.SetAttributes(attribute.String(attrCredential, c.info.Name))
	}
}

// traceReplay adds the replay event to the client request's span, when
// Caddy's tracing handler records one: GroupID answered 401 and the request
// is sent once more with a fresh token (not when none could be had).
func traceReplay(req *http.Request, c *credential) {
	if span := trace.SpanFromContext(req.Context()); span.IsRecording() {
		span.AddEvent(replayEvent, trace.WithAttributes(attribute.String(attrCredential, c.info.Name)))
	}
}
