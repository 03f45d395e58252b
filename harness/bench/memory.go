package bench

import (
	"runtime/metrics"
	"sync"
	"time"

	"github.com/fleetlab/fleetlab/sim/clock"
)

// memorySampler samples, every interval of wall time until stop, the Go runtime's view of where the memory is:
// goroutine stacks, heap objects (live and not yet collected) and goroutines, keeping each one's peak.
type memorySampler struct {
	stop chan struct{}
	wg   sync.WaitGroup

	mu                       sync.Mutex
	stacks, heap, goroutines uint64
}

func sampleMemory(interval time.Duration) *memorySampler {
	m := &memorySampler{stop: make(chan struct{})}
	samples := []metrics.Sample{{Name: "/memory/classes/heap/stacks:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/sched/goroutines:goroutines"}}
	read := func() {
		metrics.Read(samples)
		m.mu.Lock()
		defer m.mu.Unlock()
		m.stacks = max(m.stacks, samples[0].Value.Uint64())
		m.heap = max(m.heap, samples[1].Value.Uint64())
		m.goroutines = max(m.goroutines, samples[2].Value.Uint64())
	}
	m.wg.Go(func() {
		for {
			read()
			if !clock.Sleep(clock.Real{}, interval, m.stop) {
				read()
				return
			}
		}
	})
	return m
}

// peaks stops the sampler and returns the peaks.
func (m *memorySampler) peaks() (stacks, heap, goroutines uint64) {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	m.wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stacks, m.heap, m.goroutines
}
