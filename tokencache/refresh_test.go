package tokencache

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestHeldTokenCostsNoRequestAndRefreshRunsAhead(t *testing.T) {
	d := newIdP(t)
	d.setReply(okReply(1200))
	h := newHarness(t, d, nil)
	h.src.Start()
	if ev := h.next(t); ev.Kind != EventToken || !ev.First || ev.GrantType != "password" {
		t.Fatalf("first event %+v", ev)
	}
	for range 1000 {
		if _, err := h.src.Token(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if d.count() != 1 {
		t.Fatalf("reads made requests: %d", d.count())
	}
	// Default margin: a quarter of 1200 s, plus jitter of half of that
	// (Rand is 0.5 here): the refresh is due at 1200-300-75 = 825 s.
	due := h.due(t)
	if due.Sub(epoch) != 825*time.Second {
		t.Fatalf("refresh scheduled at %v after issue, want 825s", due.Sub(epoch))
	}
	// Hold the refresh in flight: callers keep the current token, no waiting.
	d.mu.Lock()
	d.hold = make(chan struct{})
	d.mu.Unlock()
	h.clock.Advance(825 * time.Second)
	<-d.arrived // the warm-up
	<-d.arrived // the refresh, now held in flight
	tok, err := h.src.Token(context.Background())
	if err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("during refresh got %v, %v", tok, err)
	}
	close(d.hold)
	ev := h.next(t)
	if ev.Kind != EventToken || ev.GrantType != "refresh_token" {
		t.Fatalf("refresh event %+v", ev)
	}
	if f := d.form(1); f.Get("grant_type") != "refresh_token" || f.Get("refresh_token") != "rt-1" {
		t.Fatalf("refresh used %v", redactForm(f))
	}
	tok, _ = h.src.Token(context.Background())
	if tok.AccessToken != "at-2" {
		t.Fatalf("after refresh got %s", tok.AccessToken)
	}
}

func TestRefreshChainKeepsNewestRefreshTokenAndFallsBack(t *testing.T) {
	d := newIdP(t)
	d.setReply(okReply(100))
	h := newHarness(t, d, nil)
	h.src.Start()
	h.next(t)
	for i := 2; i <= 5; i++ {
		h.advanceToDue(t)
		if ev := h.next(t); ev.GrantType != "refresh_token" {
			t.Fatalf("step %d grant %s", i, ev.GrantType)
		}
		if got, want := d.form(i-1).Get("refresh_token"), "rt-"+itoa(i-1); got != want {
			t.Fatalf("step %d sent %s want %s", i, got, want)
		}
	}
	// The server invalidates the refresh token: exactly one password grant follows.
	d.setReply(func(n int, f url.Values, w http.ResponseWriter) {
		if f.Get("grant_type") == "refresh_token" {
			errReply(400, "invalid_grant", "")(n, f, w)
			return
		}
		okReply(100)(n, f, w)
	})
	before := d.count()
	h.advanceToDue(t)
	if ev := h.next(t); ev.Kind != EventToken || ev.GrantType != "password" {
		t.Fatalf("fallback event %+v", ev)
	}
	if n := d.count() - before; n != 2 {
		t.Fatalf("requests for fallback: %d want 2 (refresh + password)", n)
	}
}

func TestOutageKeepsTokenUntilExpiryThenFailsFastWithRetryAt(t *testing.T) {
	d := newIdP(t)
	d.setReply(okReply(100))
	h := newHarness(t, d, func(o *Options) { o.Rand = func() float64 { return 0 } })
	h.src.Start()
	h.next(t)
	d.setReply(func(_ int, _ url.Values, w http.ResponseWriter) { w.WriteHeader(503) })

	h.advanceToDue(t) // 100-25 = 75 s
	ev := h.next(t)
	if ev.Kind != EventFailure || !ev.Changed || ev.Err.Class != ClassTransient {
		t.Fatalf("event %+v", ev)
	}
	if tok, err := h.src.Token(context.Background()); err != nil || tok.AccessToken != "at-1" {
		t.Fatal("valid token not served during outage")
	}
	// Retries follow the backoff floor of 1 s (Rand=0); repeat failures are not "changed".
	for i := 0; i < 30; i++ {
		due := h.due(t)
		if gap := due.Sub(h.clock.Now()); gap != time.Second {
			t.Fatalf("retry gap %v", gap)
		}
		h.clock.Advance(time.Second)
		if ev := h.next(t); ev.Changed {
			t.Fatal("repeat failure flagged as a change")
		}
	}
	// Now 105 s after issue: expired. Callers fail at once, with the next attempt time.
	before := d.count()
	for range 100 {
		_, err := h.src.Token(context.Background())
		var nt *NoTokenError
		if !errors.As(err, &nt) || nt.Permanent() || nt.RetryAt.IsZero() {
			t.Fatalf("want transient NoTokenError, got %v", err)
		}
	}
	if d.count() != before {
		t.Fatalf("callers drove %d token requests", d.count()-before)
	}
	// GroupID returns: the next scheduled attempt heals it.
	d.setReply(okReply(100))
	h.advanceToDue(t)
	if ev := h.next(t); ev.Kind != EventToken || !ev.Recovered {
		t.Fatalf("recovery event %+v", ev)
	}
	if _, err := h.src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestRejectedCredentialsArePermanentAndSlow(t *testing.T) {
	d := newIdP(t)
	d.setReply(errReply(400, "invalid_grant", "invalid_username_or_password"))
	h := newHarness(t, d, func(o *Options) { o.Rand = func() float64 { return 0 } })
	h.src.Start()
	_, err := h.src.Token(context.Background())
	var nt *NoTokenError
	if !errors.As(err, &nt) || !nt.Permanent() || nt.Last.Code != "invalid_grant" {
		t.Fatalf("want permanent NoTokenError, got %v", err)
	}
	assertNoSecret(t, err.Error())
	h.next(t)
	due := h.due(t)
	if gap := due.Sub(h.clock.Now()); gap != DefaultRejectedBackoff.Min {
		t.Fatalf("rejected retry after %v", gap)
	}
}

// rotated is the password a rotated secret file holds.
const rotated = "pw-rotated-789"

// rotatedPasswordIdP is a token endpoint that accepts only the rotated
// password.
func rotatedPasswordIdP(t *testing.T) *idp {
	d := newIdP(t)
	d.setReply(func(n int, f url.Values, w http.ResponseWriter) {
		if f.Get("password") != rotated {
			errReply(400, "invalid_grant", "invalid_username_or_password")(n, f, w)
			return
		}
		okReply(60)(n, f, w)
	})
	return d
}

func TestRejectedPasswordRereadsSecretsOnce(t *testing.T) {
	d := rotatedPasswordIdP(t)
	var rereads int
	next := d.grant() // the file still holds the old password at first
	h := newHarness(t, d, func(o *Options) {
		o.Rand = func() float64 { return 0 }
		o.Reread = func() (Grant, bool) {
			rereads++
			return next, next.Key() != d.grant().Key()
		}
	})
	h.src.Start()
	if ev := h.next(t); ev.Kind != EventFailure || !ev.Err.Permanent() {
		t.Fatalf("event %+v", ev)
	}
	if rereads != 1 || d.count() != 1 {
		t.Fatalf("rereads %d requests %d; want 1 and 1 (unchanged secret is not retried)", rereads, d.count())
	}
	// The Secret volume is updated; the next scheduled attempt re-reads it and heals.
	next.Password = rotated
	h.advanceToDue(t)
	if ev := h.next(t); ev.Kind != EventToken || !ev.Recovered {
		t.Fatalf("event %+v", ev)
	}
	if rereads != 2 || d.count() != 3 {
		t.Fatalf("rereads %d requests %d; want 2 and 3", rereads, d.count())
	}
	// Later requests keep the new password without re-reading.
	h.src.Invalidate(h.src.Current())
	h.next(t)
	if d.form(3).Get("password") != rotated || rereads != 2 {
		t.Fatal("rotated password not kept")
	}
}

func TestConfiguredScopeGetsOfflineAccessUnlessRefused(t *testing.T) {
	for _, allowed := range []bool{true, false} {
		d := newIdP(t)
		d.setReply(func(n int, f url.Values, w http.ResponseWriter) {
			if !allowed && strings.Contains(f.Get("scope"), "offline_access") {
				errReply(400, "invalid_scope", "")(n, f, w)
				return
			}
			okReply(60)(n, f, w)
		})
		h := newHarness(t, d, func(o *Options) { o.Grant.Scope = "directorymanager.api openid" })
		h.src.Start()
		if ev := h.next(t); ev.Kind != EventToken {
			t.Fatalf("allowed=%v: %+v", allowed, ev)
		}
		if got := d.form(0).Get("scope"); got != "directorymanager.api openid offline_access" {
			t.Fatalf("first request scope %q", got)
		}
		if !allowed {
			if d.count() != 2 || d.form(1).Get("scope") != "directorymanager.api openid" {
				t.Fatalf("after invalid_scope: %d requests, scope %q", d.count(), d.form(1).Get("scope"))
			}
		} else if d.count() != 1 {
			t.Fatalf("requests %d", d.count())
		}
	}
}

func TestHealedSecretSurvivesReload(t *testing.T) {
	d := rotatedPasswordIdP(t)
	store := NewStore()
	healed := d.grant()
	healed.Password = rotated
	h1 := newHarness(t, d, func(o *Options) {
		o.Store = store
		o.Reread = func() (Grant, bool) { return healed, true }
	})
	h1.src.Start()
	if ev := h1.next(t); ev.Kind != EventToken {
		t.Fatalf("event %+v", ev)
	}
	if d.count() != 2 {
		t.Fatalf("requests %d want 2 (rejected, then healed)", d.count())
	}
	if h1.src.Key() != healed.Key() {
		t.Fatal("Key is not the healed grant's")
	}
	tok := h1.src.Current()
	if store.Get(healed.Key()) != tok {
		t.Fatal("token not stored under the healed grant's key")
	}

	// caddy reload: the config now resolves to the rotated password.
	h2 := newHarness(t, d, func(o *Options) { o.Store = store; o.Clock = h1.clock; o.Grant = healed })
	h2.src.Start()
	got, err := h2.src.Token(context.Background())
	if err != nil || got != tok {
		t.Fatalf("reloaded source got %v, %v; want the healed token", got, err)
	}
	if d.count() != 2 {
		t.Fatalf("reloaded source made %d token requests, want 0", d.count()-2)
	}

	// A 401 drops the token under the healed grant's key too. Hold the
	// replacement request so it cannot store a new token meanwhile.
	hold := make(chan struct{})
	var release sync.Once
	t.Cleanup(func() { release.Do(func() { close(hold) }) })
	d.mu.Lock()
	d.hold = hold
	d.mu.Unlock()
	if !h1.src.Invalidate(tok) {
		t.Fatal("current token not dropped")
	}
	if store.Get(healed.Key()) != nil {
		t.Fatal("invalidated token still stored under the healed grant's key")
	}
	release.Do(func() { close(hold) })
	if ev := h1.next(t); ev.Kind != EventToken {
		t.Fatalf("event %+v", ev)
	}
}

// TestFailuresAreBackedOff counts the limit "the token endpoint is never
// hammered" by assertion rather than by a deadline: each failed token
// request schedules the next at least the backoff's minimum later, and the
// delays grow; no request is made before its time.
func TestFailuresAreBackedOff(t *testing.T) {
	d := newIdP(t)
	d.setReply(func(_ int, _ url.Values, w http.ResponseWriter) { w.WriteHeader(503) })
	h := newHarness(t, d, nil)
	h.src.Start()
	var last time.Duration
	for i := 1; i <= 6; i++ {
		ev := h.next(t)
		if ev.Kind != EventFailure {
			t.Fatalf("attempt %d: %+v", i, ev)
		}
		delay := ev.RetryAt.Sub(h.clock.Now())
		if delay < DefaultTransientBackoff.Min || delay < last {
			t.Fatalf("failure %d: next request %s later (previous %s); want at least %s and growing", i, delay, last, DefaultTransientBackoff.Min)
		}
		if n := d.count(); n != i {
			t.Fatalf("%d token requests after %d failures", n, i)
		}
		last = delay
		h.advanceToDue(t)
	}
}
