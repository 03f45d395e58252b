package bench_test

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/bench"
	"github.com/fleetlab/fleetlab/harness/dialect"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	"github.com/fleetlab/fleetlab/sim/awsapi/robomaker"
)

func TestRunMeasuresARollout(t *testing.T) {
	agenttest.LeakTest(t)
	for _, tc := range []struct {
		name      string
		backend   harness.Backend
		transport string
	}{
		{"memory", harness.InProc{Transport: harness.InMemory}, "memory"},
		{"http", harness.InProc{Transport: harness.HTTP}, "http"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := bench.Run(context.Background(), bench.Config{Backend: tc.backend, Devices: 12,
				Job: dialect.JobSpec{Concurrency: 50}, Loopback: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", res)
			if res.Succeeded != 12 || res.Failed != 0 || res.Other != 0 || res.JobStatus != "Succeeded" {
				t.Fatalf("outcome %d/%d/%d %s, want 12 succeeded", res.Succeeded, res.Failed, res.Other, res.JobStatus)
			}
			if res.Transport != tc.transport || res.Host != "inproc" || res.Dialect != "robomaker" {
				t.Errorf("labels %s %s %s", res.Transport, res.Host, res.Dialect)
			}
			if res.RolloutS <= 0 || res.DevicesPerMin <= 0 || res.LastSuccessS < res.FirstSuccessS ||
				res.P50S > res.P95S || res.P95S > res.P99S || res.P99S <= 0 {
				t.Errorf("timings %+v", res)
			}
			if len(res.Completed) != 12 {
				t.Errorf("%d completion times, want 12", len(res.Completed))
			}
			// Each robot starts its execution, reports its steps and downloads the bundle: at least 8 calls.
			if res.RequestsPerDevice < 8 || res.LoopbackLimitRPS <= 0 || res.FractionOfLoopback <= 0 {
				t.Errorf("requests %v/device, loopback %v rps, fraction %v", res.RequestsPerDevice, res.LoopbackLimitRPS, res.FractionOfLoopback)
			}
			if res.PeakRSSBytes == 0 || res.ServiceCPUSPer1000 <= 0 {
				t.Errorf("peak rss %d, cpu %v", res.PeakRSSBytes, res.ServiceCPUSPer1000)
			}
		})
	}
}

// A fault mix shows in the outcome: a benchmark must never count a failed device as deployed.
// The rollout starts once every device is up — its notify channel connected and a poll answered after that —
// so the rollout's window and its request count hold no agent's start-up, on either transport.
func TestRunStartsTheRolloutWithTheFleetUp(t *testing.T) {
	agenttest.LeakTest(t)
	for name, backend := range map[string]harness.Backend{"memory": harness.InProc{Transport: harness.InMemory},
		"http": harness.InProc{Transport: harness.HTTP}} {
		t.Run(name, func(t *testing.T) {
			const n = 150
			var phases []bench.Progress
			res, err := bench.Run(context.Background(), bench.Config{Backend: backend, Devices: n, Register: bench.RegisterBulk,
				Job: dialect.JobSpec{Concurrency: 100}, Loopback: -1, ProgressEvery: time.Millisecond,
				Progress: func(p bench.Progress) {
					if len(phases) == 0 || phases[len(phases)-1].Phase != p.Phase || p.Phase == "setup" {
						phases = append(phases, p)
					}
				}})
			if err != nil {
				t.Fatal(err)
			}
			if res.Succeeded != n {
				t.Fatalf("%d of %d succeeded", res.Succeeded, n)
			}
			up := -1 // the index of the setup report with every device up
			for i, p := range phases {
				if p.Phase == "rollout" {
					break
				}
				if p.Phase == "setup" && p.Done == n {
					up = i
				}
			}
			if up < 0 {
				t.Fatalf("the rollout began before every device was up: %+v", phases)
			}
			if res.ReadyS <= 0 || res.SetupS < res.StartS+res.RegisterS+res.ReadyS-1e-9 {
				t.Errorf("setup %.3fs, start %.3fs, register %.3fs, ready %.3fs: want setup to hold all three",
					res.SetupS, res.StartS, res.RegisterS, res.ReadyS)
			}
		})
	}
}

func TestRunCountsFailedDevices(t *testing.T) {
	agenttest.LeakTest(t)
	res, err := bench.Run(context.Background(), bench.Config{Devices: 10, Loopback: -1,
		Faults: []faults.Spec{{Fault: "script-exit", Target: faults.Selector{Count: 3},
			Params: []byte(`{"script":"pre-launch","code":3}`)}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Succeeded != 7 || res.Failed != 3 || res.Faults != "script-exit@3" {
		t.Fatalf("succeeded %d failed %d other %d (%s), want 7 and 3", res.Succeeded, res.Failed, res.Other, res.Faults)
	}
	if res.LoopbackLimitRPS != 0 {
		t.Errorf("loopback measured though skipped: %v", res.LoopbackLimitRPS)
	}
}

// Registered in bulk, the devices deploy as they do registered through the SDK.
func TestRunRegistersInBulk(t *testing.T) {
	agenttest.LeakTest(t)
	res, err := bench.Run(context.Background(), bench.Config{Devices: 20, Register: bench.RegisterBulk, Loopback: -1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Succeeded != 20 || res.Register != "bulk" || res.RegisterS <= 0 {
		t.Fatalf("%d succeeded, register %s in %vs", res.Succeeded, res.Register, res.RegisterS)
	}
	if _, err := bench.Run(context.Background(), bench.Config{Devices: 1, Register: "carrier-pigeon"}); err == nil {
		t.Error("an unknown registration accepted")
	}
}

func TestBundleSize(t *testing.T) {
	res, err := bench.Run(context.Background(), bench.Config{Devices: 2, BundleSize: 256 << 10, Loopback: -1})
	if err != nil {
		t.Fatal(err)
	}
	if res.BundleB < 256<<10 || res.BundleB > 260<<10 || res.Succeeded != 2 {
		t.Fatalf("bundle %d bytes, %d succeeded", res.BundleB, res.Succeeded)
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	if _, err := bench.Run(context.Background(), bench.Config{}); err == nil {
		t.Error("0 devices accepted")
	}
	if _, err := bench.Run(context.Background(), bench.Config{Devices: 1, Job: dialect.JobSpec{Concurrency: 101}}); err == nil {
		t.Error("concurrency 101 accepted")
	}
	if _, err := bench.Run(context.Background(), bench.Config{Devices: 1, Faults: []faults.Spec{{Fault: "no-such"}}}); err == nil {
		t.Error("unknown fault accepted")
	}
	// More in-process devices over HTTP than this process has open files for: refused before anything starts,
	// naming the limit and what to do, where the devices would have retried their failed connections.
	_, err := bench.Run(context.Background(), bench.Config{Backend: harness.InProc{Transport: harness.HTTP},
		Devices: 50_000_000, Register: bench.RegisterBulk})
	if err == nil || !strings.Contains(err.Error(), "open files") || !strings.Contains(err.Error(), "--transport memory") {
		t.Errorf("50,000,000 devices over HTTP in process: %v, want the open-file limit named", err)
	}
}

// TestScale is a manual probe for profiles: FLEETLAB_BENCH_N=10000 go test ./harness/bench -run Scale -v
// -cpuprofile cpu.out, with FLEETLAB_BENCH_REGISTER=bulk, FLEETLAB_BENCH_TRANSPORT=http, FLEETLAB_BENCH_LINK=proxied
// (over HTTP, the link proxies instead of the direct path), FLEETLAB_BENCH_LOOPBACK=-1 (no loopback limit, so the
// profile is the rollout's), FLEETLAB_BENCH_CPU=FILE (a CPU profile of the rollout alone, from its first progress
// report on) and FLEETLAB_BENCH_HEAP=FILE
// (a heap and a goroutine profile when half the devices are done, and FILE.start, a heap profile when the rollout
// starts: go tool pprof -diff_base FILE.start FILE shows what the rollout allocated) as wanted.
func TestScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("FLEETLAB_BENCH_N"))
	if n == 0 {
		t.Skip("FLEETLAB_BENCH_N unset")
	}
	heap := os.Getenv("FLEETLAB_BENCH_HEAP") // a heap profile written when half the devices are done
	var backend harness.Backend = harness.InProc{Transport: harness.InMemory}
	if os.Getenv("FLEETLAB_BENCH_TRANSPORT") == "http" {
		backend = harness.InProc{Transport: harness.HTTP}
	}
	loopback, _ := time.ParseDuration(os.Getenv("FLEETLAB_BENCH_LOOPBACK") + "s")
	cpu, profiling := os.Getenv("FLEETLAB_BENCH_CPU"), false
	startHeap := false
	res, err := bench.Run(context.Background(), bench.Config{Backend: backend, Devices: n, Job: dialect.JobSpec{Concurrency: 100},
		Loopback: loopback,
		Register: os.Getenv("FLEETLAB_BENCH_REGISTER"), Link: os.Getenv("FLEETLAB_BENCH_LINK"), DialectOptions: map[string]any{robomaker.Kind: robomaker.Quotas{RobotsPerFleet: n}},
		Progress: func(p bench.Progress) {
			if cpu != "" && !profiling && p.Phase == "rollout" {
				if f, err := os.Create(cpu); err == nil && pprof.StartCPUProfile(f) == nil {
					profiling = true
					t.Cleanup(func() { f.Close() })
				}
			}
			if heap != "" && heap != "-" && !startHeap && p.Phase == "rollout" {
				startHeap = true
				if f, err := os.Create(heap + ".start"); err == nil {
					pprof.WriteHeapProfile(f)
					f.Close()
				}
			}
			if profiling && p.Phase == "rollout" && p.Done == n {
				pprof.StopCPUProfile()
			}
			if p.Phase == "rollout" && p.Done >= n/2 && heap != "-" {
				ms := []metrics.Sample{{Name: "/memory/classes/heap/stacks:bytes"}, {Name: "/memory/classes/heap/objects:bytes"},
					{Name: "/memory/classes/total:bytes"}, {Name: "/sched/goroutines:goroutines"}}
				metrics.Read(ms)
				t.Logf("at half: stacks %d MiB, heap objects %d MiB, total %d MiB, %d goroutines", ms[0].Value.Uint64()>>20,
					ms[1].Value.Uint64()>>20, ms[2].Value.Uint64()>>20, ms[3].Value.Uint64())
			}
			if heap != "" && heap != "-" && p.Phase == "rollout" && p.Done >= n/2 {
				f, err := os.Create(heap)
				if g, err := os.Create(heap + ".goroutines"); err == nil {
					pprof.Lookup("goroutine").WriteTo(g, 1)
					g.Close()
				}
				if err == nil {
					pprof.WriteHeapProfile(f)
					f.Close()
				}
				heap = "-"
			}
		}, ProgressEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	res.Completed = nil
	t.Logf("%+v", res)
}

// Every dialect with a driver deploys on both transports: a Greengrass V2 core resolves its components through
// the cloud, which the memory transport reaches over HTTP.
func TestRunEveryDialect(t *testing.T) {
	for _, drv := range harness.Drivers() {
		for _, tr := range []harness.Transport{harness.InMemory, harness.HTTP} {
			t.Run(drv.Name()+"/"+strconv.Itoa(int(tr)), func(t *testing.T) {
				res, err := bench.Run(context.Background(), bench.Config{Backend: harness.InProc{Transport: tr}, Driver: drv,
					Devices: 4, Loopback: -1})
				if err != nil {
					t.Fatal(err)
				}
				if res.Succeeded != 4 || res.Failed != 0 || res.Other != 0 {
					t.Fatalf("%s: %d succeeded, %d failed, %d other (job %s), want 4 succeeded", drv.Name(), res.Succeeded, res.Failed, res.Other, res.JobStatus)
				}
			})
		}
	}
}

// A point's soft memory limit and GOGC hold for the point alone and are in its result.
func TestRunSetsTheMemoryLimitAndGCPercentForThePoint(t *testing.T) {
	const limit, gogc = 3 << 30, 250
	gcPercent := func() int {
		gogc := []metrics.Sample{{Name: "/gc/gogc:percent"}}
		metrics.Read(gogc)
		return int(gogc[0].Value.Uint64())
	}
	before, beforeGC := debug.SetMemoryLimit(-1), gcPercent()
	res, err := bench.Run(context.Background(), bench.Config{Devices: 2, Register: bench.RegisterBulk, Loopback: -1,
		MemoryLimit: limit, GCPercent: gogc, Progress: func(bench.Progress) {
			if got := debug.SetMemoryLimit(-1); got != limit {
				t.Errorf("memory limit %d during the point, want %d", got, limit)
			}
			if got := gcPercent(); got != gogc {
				t.Errorf("GOGC %d during the point, want %d", got, gogc)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if res.MemoryLimitBytes != limit || res.GCPercent != gogc {
		t.Errorf("memory_limit_bytes %d, gc_percent %d, want %d and %d", res.MemoryLimitBytes, res.GCPercent, limit, gogc)
	}
	if after, afterGC := debug.SetMemoryLimit(-1), gcPercent(); after != before || afterGC != beforeGC {
		t.Errorf("memory limit %d and GOGC %d after the point, want %d and %d as before", after, afterGC, before, beforeGC)
	}
}
