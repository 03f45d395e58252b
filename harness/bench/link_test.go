package bench_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/bench"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	"github.com/fleetlab/fleetlab/sim/fleet"
	"github.com/fleetlab/fleetlab/sim/fleet/inproc"
)

// The in-process host over HTTP takes the direct path unless the fault mix shapes links, and the result says
// which link it had; the memory transport's link is its adapter.
func TestRunPicksTheLink(t *testing.T) {
	agenttest.LeakTest(t)
	latency := faults.Spec{Fault: "latency", Target: faults.Selector{Count: 1}, Params: []byte(`{"latency":"1ms"}`)}
	for _, tc := range []struct {
		name    string
		backend harness.Backend
		link    string
		faults  []faults.Spec
		want    string
	}{
		{"http", harness.InProc{Transport: harness.HTTP}, "", nil, bench.LinkDirect},
		{"http with a link fault", harness.InProc{Transport: harness.HTTP}, "", []faults.Spec{latency}, bench.LinkProxied},
		{"http proxied", harness.InProc{Transport: harness.HTTP}, bench.LinkProxied, nil, bench.LinkProxied},
		{"http direct", harness.InProc{Transport: harness.HTTP}, bench.LinkDirect, nil, bench.LinkDirect},
		{"memory", harness.InProc{Transport: harness.InMemory}, "", []faults.Spec{latency}, bench.LinkAdapter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := bench.Run(context.Background(), bench.Config{Backend: tc.backend, Devices: 6, Link: tc.link,
				Faults: tc.faults, Register: bench.RegisterBulk, Loopback: 50 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if res.Link != tc.want || res.Succeeded != 6 {
				t.Fatalf("link %q with %d of 6 succeeded, want %q and all", res.Link, res.Succeeded, tc.want)
			}
			if res.LoopbackLimitRPS <= 0 || res.FractionOfLoopback <= 0 || res.CPUUsPerRequest <= 0 || res.LoopbackCPUUsPerRequest <= 0 {
				t.Errorf("loopback %v rps, fraction %v, CPU a request %v µs (loopback %v µs)", res.LoopbackLimitRPS,
					res.FractionOfLoopback, res.CPUUsPerRequest, res.LoopbackCPUUsPerRequest)
			}
			// The devices' outstanding requests are counted where they call, and the limit has as many clients
			// as the larger count.
			if res.PeakClientInFlight < 1 || res.PeakClientInFlight > 2*6 ||
				int64(res.LoopbackClients) != max(res.PeakInFlight, res.PeakClientInFlight) {
				t.Errorf("in flight: %d at the handler, %d at the devices; %d loopback clients", res.PeakInFlight,
					res.PeakClientInFlight, res.LoopbackClients)
			}
		})
	}
}

// A link fault on the direct path is refused before anything starts, naming the link and the way out; so is a
// link the host has not got.
func TestRunRefusesLinkFaultsOnTheDirectPath(t *testing.T) {
	agenttest.LeakTest(t)
	for _, fault := range []string{"partition", "latency", "drop", "bandwidth"} {
		_, err := bench.Run(context.Background(), bench.Config{Backend: harness.InProc{Transport: harness.HTTP},
			Devices: 2, Link: bench.LinkDirect, Faults: []faults.Spec{{Fault: fault, Target: faults.Selector{Count: 1}}}})
		if !errors.Is(err, inproc.ErrNoLink) || !strings.Contains(err.Error(), "fault "+fault) ||
			!strings.Contains(err.Error(), "link direct") || !strings.Contains(err.Error(), "link proxied") {
			t.Errorf("%s on the direct path: %v, want a refusal naming the fault, link direct and link proxied", fault, err)
		}
	}
	for _, tc := range []struct {
		backend harness.Backend
		link    string
	}{
		{harness.InProc{Transport: harness.InMemory}, bench.LinkDirect},
		{harness.InProc{Transport: harness.HTTP}, "carrier-pigeon"},
		{harness.Process{}, bench.LinkDirect},
	} {
		if _, err := bench.Run(context.Background(), bench.Config{Backend: tc.backend, Devices: 1, Link: tc.link}); err == nil ||
			!strings.Contains(err.Error(), "link") {
			t.Errorf("%s with link %q: %v, want a refusal", tc.backend.Name(), tc.link, err)
		}
	}
}

// A fault that shapes a link without saying it is of the link layer still meets the direct path's refusal, in
// the benchmark's world, when it strikes: the shape never silently does nothing.
func TestRunWorldRefusesLinkShapeOnTheDirectPath(t *testing.T) {
	agenttest.LeakTest(t)
	reg, err := faults.NewRegistry(faults.Definition{Name: "sly-partition", Layer: faults.LayerDevice,
		Summary: "a partition filed as a device fault", New: func() faults.Fault { return slyPartition{} }})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bench.Run(context.Background(), bench.Config{Backend: harness.InProc{Transport: harness.HTTP}, Devices: 2,
		Registry: reg, Faults: []faults.Spec{{Fault: "sly-partition", Target: faults.Selector{Count: 1}}}, Loopback: -1})
	if !errors.Is(err, inproc.ErrNoLink) || !strings.Contains(err.Error(), "inject sly-partition") {
		t.Fatalf("a link shape on the direct path: %v, want ErrNoLink at inject", err)
	}
}

// slyPartition partitions its targets' links at Inject through the world, as a link fault does.
type slyPartition struct{}

func (slyPartition) Check(faults.Selector, faults.Dialect) error { return nil }

func (slyPartition) Arm(a faults.Arming) (faults.Armed, error) { return &slyArmed{a: a}, nil }

type slyArmed struct {
	a       faults.Arming
	removes []func()
}

func (s *slyArmed) Inject(context.Context) error {
	for _, dev := range s.a.Targets {
		remove, err := s.a.World.ShapeLink(dev, fleet.Link{Partition: true})
		if err != nil {
			return err
		}
		s.removes = append(s.removes, remove)
	}
	return nil
}

func (s *slyArmed) Recover(context.Context) error {
	for _, r := range s.removes {
		r()
	}
	return nil
}

func (s *slyArmed) Disarm() {}
