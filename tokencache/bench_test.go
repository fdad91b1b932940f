package tokencache

import (
	"context"
	"testing"
)

// BenchmarkTokenRead reads the held token; run with -cpu 1,2: the read is one
// atomic load (no lock, no clock read), so throughput should scale with cores.
func BenchmarkTokenRead(b *testing.B) {
	d := newIdP(&testing.T{})
	src := New(Options{Grant: d.grant(), Client: &Client{HTTP: NewHTTPClient(nil, 0, 0)}})
	src.Start()
	defer src.Close()
	if _, err := src.Token(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := src.Token(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
