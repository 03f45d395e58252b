package container_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/fleet"
	"github.com/fleetlab/fleetlab/sim/fleet/container"
	"github.com/fleetlab/fleetlab/sim/fleet/container/containertest"
	"github.com/fleetlab/fleetlab/sim/fleet/fleettest"
	"github.com/fleetlab/fleetlab/sim/service"
)

// binary is the fleetlab-agent built once for the whole test binary.
var binary string

func TestMain(m *testing.M) { os.Exit(containertest.Main(m, &binary)) }

// fast are agent timings for tests on the real clock.
var fast = agent.Options{RetryBase: 50 * time.Millisecond, RetryMax: time.Second, PollMin: 200 * time.Millisecond,
	PollMax: 5 * time.Second, RequestTimeout: 5 * time.Second, StopGrace: 2 * time.Second}

// events records the events of a fleet.
type events struct {
	mu  sync.Mutex
	all map[string][]agent.Event
}

func (e *events) on(dev string, ev agent.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.all == nil {
		e.all = map[string][]agent.Event{}
	}
	e.all[dev] = append(e.all[dev], ev)
}

func (e *events) of(dev string) []agent.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]agent.Event(nil), e.all[dev]...)
}

// newFleet starts a container fleet with opts over the defaults of the tests, and registers its Close right
// after.
func newFleet(t *testing.T, w *fleettest.World, opts container.Options) *container.Fleet {
	t.Helper()
	containertest.Require(t)
	if opts.Endpoint == "" {
		opts.Endpoint = w.Svc.Endpoint()
	}
	if opts.Binary == "" && opts.Image == "" {
		opts.Binary = binary
	}
	if opts.Agent.RetryBase == 0 {
		opts.Agent = fast
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f, err := container.New(ctx, opts)
	if f != nil {
		t.Cleanup(func() {
			if err := f.Close(); err != nil {
				t.Errorf("close fleet: %v", err)
			}
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func register(t *testing.T, w *fleettest.World, devs []fleet.Device) string {
	t.Helper()
	arn, err := fleet.RegisterRoboMaker(context.Background(), w.RM, "lab", devs)
	if err != nil {
		t.Fatal(err)
	}
	return arn
}

// TestContainerFleetDeploys runs two robots as containers and deploys the hello bundle to them: both end in
// sync, each runs one application of the version, as the robot user, with its state on its volume.
func TestContainerFleetDeploys(t *testing.T) {
	containertest.Require(t)
	w := fleettest.Start(t, service.Options{Memory: true})
	rec := &events{}
	f := newFleet(t, w, container.Options{Count: 2, OnEvent: rec.on})
	bundle, err := bundles.Build(bundles.Hello)
	if err != nil {
		t.Fatal(err)
	}
	app, v := w.App("hello", bundle)
	job := w.Deploy(register(t, w, f.Devices()), app, v, &types.DeploymentConfig{ConcurrentDeploymentPercentage: aws.Int32(100)})
	out := w.WaitJob(job, 60*time.Second)
	if out.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("job %s %s: %v", out.Status, out.FailureCode, fleettest.Summary(out))
	}
	ctx := context.Background()
	for _, d := range f.Robots() {
		code, ps, err := d.Exec(ctx, "ps", "-o", "user,args")
		if err != nil || code != 0 {
			t.Fatalf("%s: ps: %d %v", d.Name(), code, err)
		}
		if n := strings.Count(ps, "hello_robot/launch.sh"); n != 1 {
			t.Errorf("%s runs %d applications, want 1:\n%s", d.Name(), n, ps)
		}
		for _, line := range strings.Split(strings.TrimSpace(ps), "\n")[1:] {
			if strings.HasPrefix(strings.TrimSpace(line), "root") && !strings.Contains(line, "docker-init") {
				t.Errorf("%s: a process runs as root: %s", d.Name(), line)
			}
		}
		st, err := d.State(ctx)
		if err != nil || st.Current == nil || st.Current.JobID != fleettest.JobID(job) {
			t.Errorf("%s: state %+v, %v; want job %s current", d.Name(), st, err, fleettest.JobID(job))
		}
	}
}
