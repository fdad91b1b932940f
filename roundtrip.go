package groupidauth

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

// The token travels only inside reverse_proxy's round trip. groupid_auth
// binds a request to its credential (a request variable, never the token);
// the groupid transport, at the moment it sends the request to GroupID,
// checks the URL actually sent, copies the request with the token on the
// copy, and, after a 401, sends that same copy once more with a fresh
// token. No other handler, matcher, error route or upstream sees the
// token, and the replay never runs Caddy's routes again.

// bindingVar is the request variable that binds a request to the
// groupid_auth handler it passed: a *passage. It is written once, when the
// handler starts, and never again: Caddy's http transport reads the
// request variables from dial goroutines that can outlive a round trip, so
// ending the binding or recording a replay changes the passage (atomics),
// never the variables map.
const bindingVar = "groupid_auth"

// passage is one groupid_auth handler's part in one client request.
type passage struct {
	b     *binding
	outer *passage // the passage of a groupid_auth further out, or nil
	// req is the client request's record (placeholders.go): whether it was
	// replayed after a 401 (at most one replay per client request, however
	// many round trips the chain makes: lb_retries, several proxies, nested
	// handlers), and the credential and token it was sent with.
	req  *requestRecord
	done atomic.Bool   // the handler returned: no longer bound
	own  requestRecord // req, for the outermost passage
	// firstUsed is set by the first round trip under this passage (see
	// tokenRequest).
	firstUsed atomic.Bool
}

// active returns the binding in force: the innermost passage whose
// handler has not returned.
func (p *passage) active() *binding {
	for ; p != nil; p = p.outer {
		if !p.done.Load() {
			return p.b
		}
	}
	return nil
}

// String is what {http.vars.groupid_auth} shows: the bound credential's
// name, or nothing once no handler binds the request.
func (p *passage) String() string {
	if b := p.active(); b != nil {
		return b.String()
	}
	return ""
}

// binding is what a round trip needs of the groupid_auth handler a request
// passed. One per handler, made in Provision: binding a request costs no
// allocation.
type binding struct {
	// stores are the handler's credentials, each with the API paths its
	// token may be sent to (its identity store's): one, or one per store.
	stores  []boundCredential
	replay  bool
	maxBody int64
	name    string // the credential names, comma separated
	clock   tokencache.Clock
	logger  *zap.Logger
	// scopeWarned is when (Unix ns) a refusal for a path outside the
	// credentials' APIs was last logged.
	scopeWarned atomic.Int64
	// inPlace caches mayWriteInPlace for the one Caddy server whose
	// routes hold the handler: 0 not known yet, 1 yes, 2 no.
	inPlace atomic.Int32
}

// boundCredential is one credential of a binding and its API scope.
type boundCredential struct {
	cred *credential
	api  apiScope
}

func newBinding(creds []*credential, apiBase string, replay bool, maxBody int64, logger *zap.Logger) *binding {
	b := &binding{replay: replay, maxBody: maxBody, clock: creds[0].clock, logger: logger}
	names := make([]string, len(creds))
	for i, c := range creds {
		b.stores = append(b.stores, boundCredential{cred: c, api: newAPIScope(apiBase, c.info.IdentityStoreID)})
		names[i] = c.info.Name
	}
	b.name = strings.Join(names, ",")
	return b
}

// String is what {http.vars.groupid_auth} shows: the credential names.
func (b *binding) String() string { return b.name }

// pick returns the credential whose token may go to path (decoded, as it
// is sent): the one whose identity store's User or Group API it is under.
func (b *binding) pick(path string) (*credential, error) {
	if len(b.stores) == 1 {
		return b.stores[0].cred, b.stores[0].api.check(path)
	}
	if c := b.match(path); c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("not sending a groupid token to %q: no credential of this handler (%s) is for its identity store's User or Group API", clip(path), b.name)
}

// front is the credential whose token the client's path asks for, checked
// before the request is passed on: the only one, or the one whose store
// the path names; nil when that cannot be told (the transport decides on
// the URL it sends).
func (b *binding) front(path string) *credential {
	if len(b.stores) == 1 {
		return b.stores[0].cred
	}
	return b.match(path)
}

// match is the credential whose scope admits path, or nil (no allocation).
func (b *binding) match(path string) *credential {
	for _, s := range b.stores {
		if s.api.admits(path) {
			return s.cred
		}
	}
	return nil
}

// sender is one round trip to the upstream (the wrapped http transport).
type sender func(*http.Request) (*http.Response, error)

// passageOf returns the passage of the client request behind req, if any.
func passageOf(req *http.Request) *passage {
	p, _ := caddyhttp.GetVar(req.Context(), bindingVar).(*passage)
	return p
}

// roundTrip sends req to the upstream. A request that did not pass a
// groupid_auth handler (health checks, other routes) goes as it is, with
// no token. A bound one is sent with the token, if its URL (after every
// rewrite) is one of the credential's User and Group API paths.
func roundTrip(req *http.Request, send sender) (*http.Response, error) {
	pass := passageOf(req)
	b := pass.active()
	if b == nil {
		return send(req)
	}
	if refusePath(req.URL) {
		return nil, caddyhttp.Error(http.StatusBadRequest, errPathRefused)
	}
	cred, err := b.pick(req.URL.Path)
	if err != nil {
		b.warnOutOfScope(err)
		return nil, caddyhttp.Error(http.StatusForbidden, err)
	}
	traceCredential(req, cred)
	src := cred.src
	tok, err := src.Token(req.Context())
	if err != nil {
		return nil, cred.refusal(err)
	}
	out := pass.tokenRequest(b, req, tok)
	pass.req.sent(cred, tok)
	cred.counters.requestsInjected.Add()
	if !b.replay {
		return send(out)
	}
	body, replayable := recordBody(out, b.maxBody)
	if body != nil {
		// Unless the replay's response takes the body over, the kept
		// bytes go back when the round trip ends, even by a panic.
		defer func() {
			if body != nil {
				body.end()
			}
		}()
	}
	resp, err := send(out)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	// GroupID refused a token we held valid: drop it (if it is still the
	// one served and the drop budget allows), and replay only if the token
	// is no longer served, so the drop budget bounds replays too.
	// At most one replay per client request (looked up only on a 401).
	cred.drop(tok)
	if src.Serving() == tok || !replayable || !pass.req.replayed.CompareAndSwap(false, true) || !body.hold() {
		cred.counters.unauthorizedPassed.Add(1)
		return resp, nil
	}
	cred.counters.replays.Add(1)
	discard(resp)
	fresh, err := src.Token(req.Context())
	if err != nil {
		return nil, cred.refusal(err)
	}
	traceReplay(req, cred)
	pass.req.sent(cred, fresh)
	again := withToken(req, fresh)
	again.Body, again.ContentLength = out.Body, out.ContentLength
	if body != nil {
		again.Body = body.replay()
	}
	resp, err = send(again)
	if err == nil && body != nil {
		resp.Body = finishOnClose{resp.Body, body}
		body = nil // the response ends it
	}
	return resp, err
}

// tokenRequest returns the request that carries tok to GroupID. The first
// round trip under a passage, in a server that does not log credentials,
// writes the token and the header hygiene into req's own header map, which
// is reverse_proxy's clone of the client's (prepareRequest clones the map),
// before anything has sent it: no copy of the map, and req (reverse_proxy's
// per-attempt copy of its clone, made by WithContext, read after the round
// trip only for that debug line) is sent itself. That map is never
// written again by the transport: a later round trip (an lb_retries retry,
// a second proxy, the replay after a 401) sends a copy, since an earlier
// send may still read it (HTTP/1's write loop can outlive its round trip).
// After the round trip reverse_proxy logs that map at debug level, with
// Authorization REDACTED unless the server sets log_credentials; with
// log_credentials every send is a copy and reverse_proxy's map keeps the
// client's own Authorization. The client's request is never changed.
func (p *passage) tokenRequest(b *binding, req *http.Request, tok *tokencache.Token) *http.Request {
	if !b.mayWriteInPlace(req) || !p.firstUsed.CompareAndSwap(false, true) {
		return withToken(req, tok)
	}
	if req.Header == nil {
		req.Header = make(http.Header, 1)
	}
	scrubHeader(req.Header, tok.AuthorizationValues())
	req.Trailer = nil
	return req
}

// mayWriteInPlace reports whether req runs in a Caddy server that does not
// log credentials (reverse_proxy's own test for its "upstream roundtrip"
// line); outside a server (unit tests, other callers) it is false. A
// handler belongs to the routes of one server, so the answer is kept.
func (b *binding) mayWriteInPlace(req *http.Request) bool {
	switch b.inPlace.Load() {
	case 1:
		return true
	case 2:
		return false
	}
	srv, ok := req.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	yes := ok && srv != nil && (srv.Logs == nil || !srv.Logs.ShouldLogCredentials)
	if ok && srv != nil {
		v := int32(2)
		if yes {
			v = 1
		}
		b.inPlace.Store(v)
	}
	return yes
}

// withToken returns a copy of req that carries tok, with the header
// hygiene of outgoingHeader and no trailers. req itself is not changed:
// its header map is reverse_proxy's, kept for retries and logs.
func withToken(req *http.Request, tok *tokencache.Token) *http.Request {
	out := new(http.Request)
	*out = *req
	out.Header = outgoingHeader(req.Header, tok.AuthorizationValues())
	out.Trailer = nil
	return out
}

// discard drains a little of a response that is dropped (so its
// connection can be reused) and closes it.
func discard(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	_ = resp.Body.Close()
}

// finishOnClose gives a replayed request's kept body back when
// reverse_proxy is done with the replay's response: the replay's transport
// may read the rest of the original body until then.
type finishOnClose struct {
	io.ReadCloser
	body *replayBody
}

func (f finishOnClose) Close() error {
	err := f.ReadCloser.Close()
	f.body.end()
	return err
}

// refusal is the error a request gets when no valid token can be had: 502
// when GroupID rejects the credentials, 503 otherwise. groupid_auth adds
// Retry-After to the 503 (see Handler.ServeHTTP).
func (c *credential) refusal(err error) error {
	var nt *tokencache.NoTokenError
	if errors.As(err, &nt) && nt.Permanent() {
		c.counters.requestsRefusedRejected.Add(1)
		return caddyhttp.Error(http.StatusBadGateway, err)
	}
	c.counters.requestsRefusedUnavailable.Add(1)
	return caddyhttp.Error(http.StatusServiceUnavailable, err)
}

// warnOutOfScope logs a request refused for a path outside the
// credential's APIs, at most once a minute: a rewrite that sends every
// request elsewhere must show in the log at Caddy's default level (Caddy
// logs 4xx handler errors at debug), without a line per request.
func (b *binding) warnOutOfScope(err error) {
	now := b.clock.Now().UnixNano()
	last := b.scopeWarned.Load()
	if now-last < int64(time.Minute) || !b.scopeWarned.CompareAndSwap(last, now) {
		return
	}
	b.logger.Warn("request refused: its path, as it leaves reverse_proxy, is outside the credential's User and Group APIs (at most one such line a minute)",
		zap.String("credential", b.name), zap.Error(err))
}

var errPathRefused = errors.New("path has dot segments, a backslash, a NUL or an encoded separator; not forwarding it with the groupid token")
