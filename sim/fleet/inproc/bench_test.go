package inproc_test

import (
	"context"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness/robomaker/robomakertest"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	"github.com/fleetlab/fleetlab/sim/fleet/inproc"
	"github.com/fleetlab/fleetlab/sim/service"
)

// BenchmarkInprocFleet10k measures one RoboMaker job at 100 % concurrency to 10,000 in-process robots (in-memory
// family, memory transport) against the assembled service, from CreateDeploymentJob through the SDK to the job's
// Succeeded with every robot InSync. Each robot carries out the whole chain: StartNext, seven reports, the bundle
// downloaded with its ETag checked, unpacked, both scripts interpreted, the launch recorded. Agents wait on the
// notify channel (their safety poll is every 5 minutes), so idle robots cost no requests.
//
// Reported: s/rollout (wall time of one job), devices/min, peak-heap-MiB (heap in use) and peak-sys-MiB (memory
// obtained from the OS), sampled every 10 ms during the rollouts, and setup-s (starting 10,000 agents and
// registering them through the SDK, not timed) and calls/robot (data-plane calls per robot and rollout).
func BenchmarkInprocFleet10k(b *testing.B) {
	const robots = 10_000
	w := robomakertest.Start(b, service.Options{InMemoryStore: true, DialectOptions: largeFleets})
	began := clock.Real{}.Now()
	api := &countingAPI{DeviceAPI: w.Svc.Devices}
	f, err := inproc.New(inproc.Options{Transport: inproc.TransportMemory, Devices: api,
		Objects: w.Svc.Artifacts, Count: robots, Seed: 1, Agent: agent.Options{PollMax: 5 * time.Minute}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	app, version := w.App("hello", bundles.MustBuild(bundles.Hello))
	fleetARN, err := w.Register(context.Background(), "bench", f.Devices())
	if err != nil {
		b.Fatal(err)
	}
	setup := clock.Real{}.Now().Sub(began)

	api.calls.Store(0)
	peak := sampleMemory()
	rollouts := 0
	for b.Loop() {
		job := w.Deploy(fleetARN, app, version, &types.DeploymentConfig{ConcurrentDeploymentPercentage: aws.Int32(100)})
		out := w.WaitJob(job, 5*time.Minute)
		if out.Status != types.DeploymentStatusSucceeded {
			b.Fatalf("job %s %s", out.Status, out.FailureCode)
		}
		in := 0
		for _, r := range out.RobotDeploymentSummary {
			if r.Status == types.RobotStatusInSync {
				in++
			}
		}
		if in != robots {
			b.Fatalf("%d of %d robots InSync", in, robots)
		}
		rollouts++
	}
	heap, sys := peak()
	perRollout := b.Elapsed().Seconds() / float64(rollouts)
	b.ReportMetric(perRollout, "s/rollout")
	b.ReportMetric(robots/perRollout*60, "devices/min")
	b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(sys)/(1<<20), "peak-sys-MiB")
	b.ReportMetric(setup.Seconds(), "setup-s")
	b.ReportMetric(float64(api.calls.Load())/float64(robots*rollouts), "calls/robot")
}

// countingAPI counts the data-plane calls of the fleet: an agent that polled instead of waiting for its notify
// channel would show as many more calls per robot than the dozen a deployment takes.
type countingAPI struct {
	inproc.DeviceAPI
	calls atomic.Int64
}

func (c *countingAPI) GetPending(thing string) (wire.GetPendingJobExecutionsResponse, error) {
	c.calls.Add(1)
	return c.DeviceAPI.GetPending(thing)
}

func (c *countingAPI) Describe(thing, job string, withDoc bool) (wire.DescribeJobExecutionResponse, error) {
	c.calls.Add(1)
	return c.DeviceAPI.Describe(thing, job, withDoc)
}

func (c *countingAPI) StartNext(thing string, req wire.StartNextPendingJobExecutionRequest) (wire.StartNextPendingJobExecutionResponse, error) {
	c.calls.Add(1)
	return c.DeviceAPI.StartNext(thing, req)
}

func (c *countingAPI) Update(thing, job string, req wire.UpdateJobExecutionRequest) (wire.UpdateJobExecutionResponse, error) {
	c.calls.Add(1)
	return c.DeviceAPI.Update(thing, job, req)
}

// sampleMemory samples the heap in use and the memory obtained from the OS every 10 ms of real time until the
// returned function is called, which returns the peaks.
func sampleMemory() (peaks func() (heap, sys uint64)) {
	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/total:bytes"}}
	var mu sync.Mutex
	var heap, sys uint64
	read := func() {
		metrics.Read(samples)
		mu.Lock()
		heap = max(heap, samples[0].Value.Uint64())
		sys = max(sys, samples[1].Value.Uint64())
		mu.Unlock()
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			read()
			if !clock.Sleep(clock.Real{}, 10*time.Millisecond, stop) {
				return
			}
		}
	})
	return func() (uint64, uint64) {
		close(stop)
		wg.Wait()
		read()
		runtime.KeepAlive(samples)
		mu.Lock()
		defer mu.Unlock()
		return heap, sys
	}
}
