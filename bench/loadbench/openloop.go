package main

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"
)

// sample is one request of the open-loop run. Start is when the request was
// due by the schedule, not when a worker picked it up, so a stalled worker
// pool shows up as latency instead of silently lowering the rate.
type sample struct {
	Start   time.Time
	Latency time.Duration
	Status  int // 0 on a transport error
}

// openLoop sends GET url at a fixed rate for dur from a pool of workers and
// returns one sample per scheduled request.
func openLoop(ctx context.Context, url string, rate int, dur time.Duration, workers int) []sample {
	n := int(dur.Seconds() * float64(rate))
	interval := time.Second / time.Duration(rate)
	samples := make([]sample, n)
	tr := &http.Transport{Proxy: nil, MaxIdleConns: workers, MaxIdleConnsPerHost: workers,
		DisableCompression: true, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	jobs := make(chan int, n)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				s := &samples[i]
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					s.Status = resp.StatusCode
				}
				s.Latency = time.Since(s.Start)
			}
		}()
	}
	t0 := time.Now()
	for i := 0; i < n; i++ {
		due := t0.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			samples = samples[:i]
			break
		}
		samples[i].Start = due
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return samples
}
