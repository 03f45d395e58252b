package inproc_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness/robomaker/robomakertest"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	"github.com/fleetlab/fleetlab/sim/awsapi/robomaker"
	"github.com/fleetlab/fleetlab/sim/clock"
	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
	"github.com/fleetlab/fleetlab/sim/fleet"
	"github.com/fleetlab/fleetlab/sim/fleet/inproc"
	"github.com/fleetlab/fleetlab/sim/service"
)

// quick are agent options for tests: timeouts and intervals short on a real clock and generous on a scaled one.
var quick = agent.Options{RetryBase: 50 * time.Millisecond, RetryMax: time.Second, PollMin: time.Second,
	PollMax: time.Minute, RequestTimeout: time.Minute, StopGrace: 5 * time.Second, ScriptTimeout: time.Minute}

// memoryFleet starts n in-memory robots on the memory transport against w's service.
func memoryFleet(t *testing.T, w *robomakertest.World, c clock.Clock, n int, onEvent fleet.EventFunc) *inproc.Fleet {
	t.Helper()
	f, err := inproc.New(inproc.Options{Transport: inproc.TransportMemory, Devices: w.Svc.Devices,
		Objects: w.Svc.Artifacts, Count: n, Clock: c, Seed: 7, OnEvent: onEvent, Agent: quick})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	})
	return f
}

func register(t *testing.T, w *robomakertest.World, name string, devs []fleet.Device) string {
	t.Helper()
	arn, err := w.Register(context.Background(), name, devs)
	if err != nil {
		t.Fatal(err)
	}
	return arn
}

// chains records the states each robot entered.
type chains struct {
	mu sync.Mutex
	m  map[string][]string
}

func (c *chains) on(device string, e agent.Event) {
	if e.Kind != agent.EventState {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string][]string{}
	}
	c.m[device] = append(c.m[device], e.State)
}

func (c *chains) of(device string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.m[device]...)
}

var fullChain = []string{rmwire.StepValidating, rmwire.StepDownloadingExtracting, rmwire.StepExecutingDownloadCondition,
	rmwire.StepExecutingPreLaunch, rmwire.StepLaunching, rmwire.StepExecutingPostLaunch, rmwire.StepFinished}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestMemoryFleetCompletesJob: 200 in-memory robots on the memory transport carry out a RoboMaker job created
// through the SDK against the assembled service on a scaled clock; the job succeeds with every robot InSync,
// each robot went through the whole chain of steps and runs the new version.
func TestMemoryFleetCompletesJob(t *testing.T) {
	agenttest.LeakTest(t)
	c := clock.NewScaled(nil, 10)
	w := robomakertest.Start(t, service.Options{InMemoryStore: true, Clock: c})
	var ch chains
	f := memoryFleet(t, w, c, 200, ch.on)
	app, version := w.App("hello", bundles.MustBuild(bundles.Hello))
	fleetARN := register(t, w, "lab", f.Devices())
	job := w.Deploy(fleetARN, app, version, &types.DeploymentConfig{ConcurrentDeploymentPercentage: aws.Int32(50)})
	out := w.WaitJob(job, 60*time.Second)
	if out.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("job %s %s: %v", out.Status, out.FailureCode, robomakertest.Summary(out))
	}
	sum := robomakertest.Summary(out)
	if len(sum) != 200 {
		t.Fatalf("%d robots in the job, want 200", len(sum))
	}
	id := robomakertest.JobID(job)
	for _, d := range f.Robots() {
		if s := sum[d.Name()]; s != string(types.RobotStatusInSync) {
			t.Errorf("%s is %s, want InSync", d.Name(), s)
		}
		if got := ch.of(d.Name()); !equal(got, fullChain) {
			t.Errorf("%s went through %v, want %v", d.Name(), got, fullChain)
		}
		st, err := d.State()
		if err != nil || st.Current == nil || st.Current.JobID != id || st.InFlight != nil || d.App() != id {
			t.Errorf("%s: state %+v (%v), app %q", d.Name(), st, err, d.App())
		}
	}
}

// TestOSFleetOverHTTP: a few robots of the OS family, over HTTP through their link proxies, carry out a job with
// real scripts and a real launched application; each runs it from its directory.
func TestOSFleetOverHTTP(t *testing.T) {
	agenttest.LeakTest(t)
	w := robomakertest.Start(t, service.Options{InMemoryStore: true})
	f, err := inproc.New(inproc.Options{Endpoint: w.Svc.Endpoint(), Count: 3, Dir: t.TempDir(), Agent: quick})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	})
	app, version := w.App("beat", heartbeatBundle(""))
	job := w.Deploy(register(t, w, "lab", f.Devices()), app, version, nil)
	out := w.WaitJob(job, 30*time.Second)
	if out.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("job %s %s: %v", out.Status, out.FailureCode, robomakertest.Summary(out))
	}
	id := robomakertest.JobID(job)
	for _, d := range f.Robots() {
		robomakertest.WaitRunning(t, d.Dir(), id, 0, 10*time.Second)
		if d.App() != id {
			t.Errorf("%s runs %q, want %s", d.Name(), d.App(), id)
		}
	}
}

// heartbeatBundle is a bundle with the heartbeat application, whose pre-launch file first runs pre (a shell
// fragment; empty for none).
func heartbeatBundle(pre string) []byte {
	return robomakertest.Bundle(map[string]string{
		bundles.Package + "/" + bundles.LaunchFile: robomakertest.HeartbeatApp,
		bundles.Package + "/package.xml":           "<package format=\"2\"><name>hello_robot</name></package>\n",
		bundles.PreLaunchFile:                      "#!/bin/sh\n" + pre + "\nexit 0\n",
		bundles.PostLaunchFile:                     "#!/bin/sh\nexit 0\n",
	})
}

// largeFleets raise RoboMaker's robots per fleet for large fleets.
var largeFleets = map[string]any{robomaker.Kind: robomaker.Quotas{RobotsPerFleet: 20000}}
