package engine_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/sim/clock/clocktest"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/store"
)

// BenchmarkBatchRollout runs 100,000 executions to success through Batch pacing on a memory store and a fake
// clock: the engine alone, no HTTP. Each execution makes three transitions (released, started, succeeded).
func BenchmarkBatchRollout(b *testing.B) {
	const n = 100_000
	targets := make([]string, n)
	for i := range targets {
		targets[i] = fmt.Sprintf("robot-%06d", i)
	}
	b.ReportAllocs()
	var transitions int
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		transitions = 0
		eng, err := engine.New(engine.Options{Clock: clocktest.New(time.Time{}), Store: store.NewMemory(),
			Events: event.SinkFunc(func(e event.Event) {
				if e.Kind == event.ExecutionState || e.Kind == event.ExecutionReleased {
					transitions++
				}
			})})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		if _, err := eng.Create(engine.Spec{ID: "bench", Targets: targets, Pacing: engine.Batch(10)}); err != nil {
			b.Fatal(err)
		}
		// Devices work in release order: each starts and succeeds, freeing a slot for the next.
		for _, dev := range targets {
			if _, ok, err := eng.StartNext(dev, engine.Update{}); !ok || err != nil {
				b.Fatalf("%s: ok=%v err=%v", dev, ok, err)
			}
			if _, err := eng.Report(dev, "bench", engine.Update{Status: engine.ExecSucceeded}); err != nil {
				b.Fatal(err)
			}
		}
		elapsed += time.Since(start)
		b.StopTimer()
		if d, _ := eng.Deployment("bench"); d.Status != engine.StatusSucceeded || transitions != 3*n {
			b.Fatalf("deployment %s after %d transitions", d.Status, transitions)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(transitions)*float64(b.N)/elapsed.Seconds(), "transitions/s")
	b.ReportMetric(float64(n)*float64(b.N)/elapsed.Seconds(), "executions/s")
}
