package network

import (
	"context"
	"testing"
)

// BenchmarkEnsureNoop is what every instance start pays for its network
// when nothing about it changed.
func BenchmarkEnsureNoop(b *testing.B) {
	n := withEverything(testNet(b, "silobench0", 40))
	mustEnsure(b, n)
	b.ResetTimer()
	for range b.N {
		if err := Ensure(context.Background(), n); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAttach is the time between the runtime's create and start that
// a bridged nic with both families costs.
func BenchmarkAttach(b *testing.B) {
	n := testNet(b, "silobench1", 41)
	mustEnsure(b, n)
	pid := sandbox(b, true)
	nic := bridged(n, "vbench", 10)
	b.ResetTimer()
	for range b.N {
		if err := Attach(pid, nic); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := Detach(pid, nic); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
