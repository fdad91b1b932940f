package groupidauth

import (
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

// This file turns what happens to a credential's token into Caddy events
// (see the README's "Events" section), emitted by the running config's
// groupid app with that config's context: Caddy's events app drops an
// event emitted with a finished config's context, and the events stop
// with the config that emitted them. A token request, a drop after a 401
// and a change of state each make at most a few events; never one per
// client request. No event carries a secret or a token.

// The events the groupid app emits (their data: see the README).
const (
	eventTokenObtained = "groupid_token_obtained"
	eventTokenFailed   = "groupid_token_failed"
	eventTokenDropped  = "groupid_token_dropped"
	eventStateChanged  = "groupid_state_changed"
)

// emitter is what the groupid app needs of Caddy's events app
// (*caddyevents.App); tests give the app their own.
type emitter interface {
	Emit(ctx caddy.Context, eventName string, data map[string]any) caddy.Event
}

// eventQueueSize bounds the events waiting for the app's event goroutine.
const eventQueueSize = 64

// eventQueue hands a groupid app's events to Caddy's events app on a
// goroutine of its own. Caddy's Emit runs the subscribed handlers
// synchronously (an exec handler may wait for its command), and the
// events are reported by a credential's refresh goroutine, or by a request
// whose token GroupID refused: queued, they never hold up a token request
// or a client request. The queue keeps the events in order; when a
// handler is so slow that eventQueueSize events wait, further ones are
// dropped and a warning is logged, never blocking.
type eventQueue struct {
	ctx    caddy.Context // the app's config
	events emitter
	logger *zap.Logger
	ch     chan queuedEvent
	stop   chan struct{}
	// dropping is set while events are dropped (one warning per run).
	dropping atomic.Bool
}

type queuedEvent struct {
	name string
	data map[string]any
}

func newEventQueue(ctx caddy.Context, events emitter, logger *zap.Logger) *eventQueue {
	return &eventQueue{
		ctx: ctx, events: events, logger: logger,
		ch:   make(chan queuedEvent, eventQueueSize),
		stop: make(chan struct{}),
	}
}

// start runs the event goroutine until stop is called or the config's
// context ends.
func (q *eventQueue) start() {
	if q == nil || q.events == nil {
		return
	}
	go q.run()
}

// end stops the event goroutine once the events already queued are
// emitted (the config still runs when its groupid app stops). Once.
func (q *eventQueue) end() {
	if q == nil || q.events == nil {
		return
	}
	close(q.stop)
}

func (q *eventQueue) run() {
	for {
		select {
		case <-q.ctx.Done():
			return
		case e := <-q.ch:
			q.emit(e)
		case <-q.stop:
			for {
				select {
				case e := <-q.ch:
					q.emit(e)
				default:
					return
				}
			}
		}
	}
}

// emit hands one event to the events app; a handler's panic is logged,
// and the goroutine goes on.
func (q *eventQueue) emit(e queuedEvent) {
	defer func() {
		if r := recover(); r != nil {
			q.logger.Error("panic in a handler of a groupid event", zap.String("event", e.name), zap.String("panic", fmt.Sprint(r)))
		}
	}()
	q.events.Emit(q.ctx, e.name, e.data)
}

// send queues an event without waiting.
func (q *eventQueue) send(name string, data map[string]any) {
	if q == nil || q.events == nil {
		return
	}
	select {
	case q.ch <- queuedEvent{name, data}:
		if q.dropping.CompareAndSwap(true, false) {
			q.logger.Info("groupid events are queued again")
		}
	default:
		if q.dropping.CompareAndSwap(false, true) {
			q.logger.Warn("a handler of groupid events is too slow: events are dropped until it catches up",
				zap.String("event", name), zap.Int("queued", eventQueueSize))
		}
	}
}

// report queues the event name to the running config's groupid app, then
// groupid_state_changed if to, the credential's state once the event
// happened, is not the state last reported. The state is compared where
// something happens (each token event and each drop), so a token that
// merely expires shows at the next token request. Any goroutine.
func (c *credential) report(name string, data map[string]any, to tokencache.Condition) {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	c.reportLocked(name, data, to)
}

// reportLocked is report. Call with c.evMu held.
func (c *credential) reportLocked(name string, data map[string]any, to tokencache.Condition) {
	var q *eventQueue
	if u := c.current(); u != nil {
		q = u.events
	}
	q.send(name, data)
	if to == "" || to == c.reported {
		return
	}
	q.send(eventStateChanged, map[string]any{"credential": c.info.Name, "from": string(c.reported), "to": string(to)})
	c.reported = to
}

// drop drops tok after GroupID answered 401 to it (Source.Drop) and
// reports the drop before any event of the token request the drop asks
// for: that request's outcome is reported under the same lock. It reports
// whether tok was dropped.
func (c *credential) drop(tok *tokencache.Token) bool {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	dropped, after := c.src.Drop(tok)
	if dropped {
		c.reportLocked(eventTokenDropped, map[string]any{"credential": c.info.Name, "status": 401}, after)
	}
	return dropped
}

// reportEvent turns a token event into Caddy events: a token obtained
// (by this replica or adopted from another) or a failed token request.
// A refused refresh token (the password grant follows at once) and the
// share storage's conditions are logged, not emitted.
func (c *credential) reportEvent(ev tokencache.Event) {
	switch ev.Kind {
	case tokencache.EventToken, tokencache.EventAdopt:
		source := "own"
		if ev.Kind == tokencache.EventAdopt {
			source = "shared"
		}
		c.report(eventTokenObtained, map[string]any{
			"credential":   c.info.Name,
			"grant_type":   ev.GrantType,
			"expires_in":   wholeSeconds(ev.Expiry.Sub(c.clock.Now())),
			"token_source": source,
		}, ev.Condition)
	case tokencache.EventFailure:
		c.report(eventTokenFailed, map[string]any{
			"credential":  c.info.Name,
			"grant_type":  ev.GrantType,
			"class":       ev.Err.Class.String(),
			"oauth_error": ev.Err.Code,
			"status":      ev.Err.StatusCode,
			"retry_at":    ev.RetryAt.UTC().Format(time.RFC3339),
			"retry_in":    wholeSeconds(ev.RetryAt.Sub(c.clock.Now())),
		}, ev.Condition)
	}
}

// wholeSeconds is d in whole seconds (rounded down), 0 if negative.
func wholeSeconds(d time.Duration) int64 {
	return int64(math.Max(0, math.Floor(d.Seconds())))
}
