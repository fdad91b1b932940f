package groupidauth

import "testing"

func TestStripedCounterSums(t *testing.T) {
	var c stripedCounter
	concurrentAdds := 8
	done := make(chan struct{})
	for range concurrentAdds {
		go func() {
			for range 1000 {
				c.Add()
			}
			done <- struct{}{}
		}()
	}
	for range concurrentAdds {
		<-done
	}
	if got := c.Load(); got != 8000 {
		t.Fatalf("sum %d, want 8000", got)
	}
}
