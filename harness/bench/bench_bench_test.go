package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/bench"
	"github.com/fleetlab/fleetlab/harness/dialect"
)

// BenchmarkRollout measures one point of fleetlab bench per iteration: 1,000 in-process robots, one RoboMaker job
// at 100 % concurrency, on each transport, registered through the SDK. Reported: devices/min, s/rollout,
// setup-s, p99-s (per-device deployment time), peak-RSS-MiB, req/device, and on the HTTP transport
// loopback-share, the device API's request rate as a share of the loopback limit at the same concurrency.
func BenchmarkRollout(b *testing.B) {
	for _, tc := range []struct {
		name      string
		transport harness.Transport
		register  string
	}{
		{"memory", harness.InMemory, bench.RegisterSDK},
		{"http", harness.HTTP, bench.RegisterSDK},
		{"memory-bulk", harness.InMemory, bench.RegisterBulk},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var rollout, setup, perMin, p99, rss, reqs, share float64
			n := 0
			for b.Loop() {
				res, err := bench.Run(context.Background(), bench.Config{Backend: harness.InProc{Transport: tc.transport},
					Devices: 1000, Job: dialect.JobSpec{Concurrency: 100}, Register: tc.register,
					Loopback: 500 * time.Millisecond})
				if err != nil {
					b.Fatal(err)
				}
				if res.Succeeded != res.Devices {
					b.Fatalf("%d of %d deployed", res.Succeeded, res.Devices)
				}
				n++
				rollout += res.RolloutS
				setup += res.SetupS
				perMin += res.DevicesPerMin
				p99 += res.P99S
				rss = max(rss, float64(res.PeakRSSBytes)/(1<<20))
				reqs += res.RequestsPerDevice
				share += res.FractionOfLoopback
			}
			f := float64(n)
			b.ReportMetric(perMin/f, "devices/min")
			b.ReportMetric(rollout/f, "s/rollout")
			b.ReportMetric(setup/f, "setup-s")
			b.ReportMetric(p99/f, "p99-s")
			b.ReportMetric(rss, "peak-RSS-MiB")
			b.ReportMetric(reqs/f, "req/device")
			if tc.transport == harness.HTTP {
				b.ReportMetric(share/f, "loopback-share")
			}
		})
	}
}

// BenchmarkLoopback measures this machine's loopback limit: a minimal handler, 64 keep-alive clients.
func BenchmarkLoopback(b *testing.B) {
	var rps float64
	n := 0
	for b.Loop() {
		res, err := bench.Loopback(context.Background(), 64, 0, 500*time.Millisecond)
		if err != nil {
			b.Fatal(err)
		}
		rps += res.RPS
		n++
	}
	b.ReportMetric(rps/float64(n), "requests/s")
}
