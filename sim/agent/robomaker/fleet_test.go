package robomaker_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	"github.com/fleetlab/fleetlab/sim/agent/robomaker"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
)

// succeeded is a Transport that counts down wg on each SUCCEEDED report the service accepted.
type succeeded struct {
	agent.Transport
	wg *sync.WaitGroup
}

func (s succeeded) Update(ctx context.Context, jobID string, req wire.UpdateJobExecutionRequest) (wire.UpdateJobExecutionResponse, error) {
	out, err := s.Transport.Update(ctx, jobID, req)
	if err == nil && req.Status == wire.StatusSucceeded {
		s.wg.Done()
	}
	return out, err
}

// memoryFleet is n in-memory robots in one process, all running against one fake service.
type memoryFleet struct {
	svc    *agenttest.Service
	agents []*agent.Agent
	wg     sync.WaitGroup
	cancel context.CancelFunc
	runs   sync.WaitGroup
	etag   string
}

func newMemoryFleet(tb testing.TB, n int) *memoryFleet {
	f := &memoryFleet{svc: agenttest.New(nil)}
	f.etag = f.svc.PutObject(bucket, "hello.tar.gz", bundles.MustBuild(bundles.Hello))
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	for i := range n {
		thing := fmt.Sprintf("robot-%04d", i)
		a, err := agent.New(agent.Options{
			Thing: thing, Kinds: []agent.Kind{robomaker.Kind{}}, Architecture: "amd64", Seed: 1,
			PollMin: time.Minute, PollMax: time.Hour, // the notify channel drives the fleet
			Executors: agent.Executors{Transport: succeeded{Transport: f.svc.Transport(thing), wg: &f.wg}},
		})
		if err != nil {
			tb.Fatal(err)
		}
		f.agents = append(f.agents, a)
		f.runs.Go(func() {
			if err := a.Run(ctx); err != nil {
				tb.Error(err)
			}
		})
	}
	tb.Cleanup(f.close)
	if !agenttest.Eventually(30*time.Second, func() bool {
		for _, a := range f.agents {
			if f.svc.Subscribers(a.Thing()) != 1 {
				return false
			}
		}
		return true
	}) {
		tb.Fatal("the fleet did not connect")
	}
	return f
}

// deployAll releases job to every robot and waits until all of them reported SUCCEEDED.
func (f *memoryFleet) deployAll(tb testing.TB, job string) {
	doc := agenttest.Doc(rmwire.Kind, rmwire.Document{
		Name: "hello", Version: job,
		Sources: []rmwire.Source{{Architecture: "X86_64", Bucket: bucket, Key: "hello.tar.gz", ETag: f.etag}},
		Launch: rmwire.Launch{PackageName: bundles.Package, LaunchFile: bundles.LaunchFile,
			PreLaunchFile: bundles.PreLaunchFile, PostLaunchFile: bundles.PostLaunchFile},
	})
	f.wg.Add(len(f.agents))
	for _, a := range f.agents {
		f.svc.Enqueue(a.Thing(), job, doc)
	}
	f.wg.Wait()
}

func (f *memoryFleet) close() {
	f.cancel()
	f.runs.Wait()
	for _, a := range f.agents {
		a.Close()
	}
	f.svc.Close()
}

// TestMemoryFleet deploys twice to 300 in-memory robots in one process: every robot ends on the second
// version with the first kept as previous.
func TestMemoryFleet(t *testing.T) {
	f := newMemoryFleet(t, 300)
	f.deployAll(t, "job-1")
	f.deployAll(t, "job-2")
	for _, a := range f.agents {
		st, err := a.Executors().State.Load()
		if err != nil {
			t.Fatal(err)
		}
		if st.Current == nil || st.Current.JobID != "job-2" || st.Previous == nil || st.Previous.JobID != "job-1" || agent.VersionJob(a.Executors().Launcher.Running()) != "job-2" {
			t.Fatalf("%s: current %+v, previous %+v, running %q", a.Thing(), st.Current, st.Previous, a.Executors().Launcher.Running())
		}
		if n := a.Executors().Versions.(*agent.MemoryVersions).Len(); n != 2 {
			t.Fatalf("%s holds %d versions, want 2", a.Thing(), n)
		}
	}
}

// BenchmarkMemoryFleet measures deployments per second to 1000 in-memory robots in one process, each
// deployment a full chain (download with ETag check, unpack, three scripts, launch, seven reports), and
// the heap each idle robot costs.
func BenchmarkMemoryFleet(b *testing.B) {
	const robots = 1000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f := newMemoryFleet(b, robots)
	f.deployAll(b, "warm-up")
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := float64(after.HeapAlloc-before.HeapAlloc) / robots
	n := 0
	for b.Loop() {
		f.deployAll(b, fmt.Sprintf("job-%d", n))
		n++
	}
	b.ReportMetric(float64(n*robots)/b.Elapsed().Seconds(), "deployments/s")
	b.ReportMetric(heap, "heap-B/robot")
}
