package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"time"
)

// coldResult is one request of the cold-start burst.
type coldResult struct {
	Status int   // 0 on a transport error
	Err    error // transport error, if any
	// TTFB is from the moment this request was handed to the client to
	// its first response byte.
	TTFB time.Duration
	// SinceOpen is from the moment the port first accepted a connection to
	// the first response byte.
	SinceOpen time.Duration
}

// waitPort dials addr every millisecond until it accepts, and returns the
// moment it did.
func waitPort(ctx context.Context, addr string, timeout time.Duration, alive func() bool) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			at := time.Now()
			c.Close()
			return at, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil || !alive() {
			return time.Time{}, err
		}
		time.Sleep(time.Millisecond)
	}
}

// burstRun is n parked requests that go out together when fired.
type burstRun struct {
	release chan struct{}
	opened  time.Time
	out     []coldResult
	wg      sync.WaitGroup
	tr      *http.Transport
}

// prepareBurst parks n goroutines, each holding a GET of url that will use
// its own connection, and returns once all are parked.
func prepareBurst(ctx context.Context, url string, n int) *burstRun {
	b := &burstRun{release: make(chan struct{}), out: make([]coldResult, n)}
	b.tr = &http.Transport{Proxy: nil, MaxIdleConns: n, MaxIdleConnsPerHost: n, DisableCompression: true,
		DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext}
	client := &http.Client{Transport: b.tr, Timeout: 30 * time.Second}
	var ready sync.WaitGroup
	ready.Add(n)
	b.wg.Add(n)
	for i := 0; i < n; i++ {
		go func(r *coldResult) {
			defer b.wg.Done()
			var first time.Time
			trace := &httptrace.ClientTrace{GotFirstResponseByte: func() { first = time.Now() }}
			req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, url, nil)
			ready.Done()
			<-b.release
			start := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				r.Err = err
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			r.Status = resp.StatusCode
			if first.IsZero() {
				first = time.Now()
			}
			r.TTFB = first.Sub(start)
			r.SinceOpen = first.Sub(b.opened)
		}(&b.out[i])
	}
	ready.Wait()
	return b
}

// fire releases every parked request and waits for all answers. opened is
// when the port first accepted a connection.
func (b *burstRun) fire(opened time.Time) []coldResult {
	b.opened = opened
	close(b.release)
	b.wg.Wait()
	b.tr.CloseIdleConnections()
	return b.out
}
