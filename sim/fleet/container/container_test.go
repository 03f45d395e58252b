package container_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"
	ctypes "github.com/moby/moby/api/types/container"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness/robomaker/robomakertest"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	"github.com/fleetlab/fleetlab/sim/fleet"
	"github.com/fleetlab/fleetlab/sim/fleet/container"
	"github.com/fleetlab/fleetlab/sim/fleet/container/containertest"
	"github.com/fleetlab/fleetlab/sim/service"
)

// binary is the fleetlab-agent built once for the whole test binary.
var binary string

func TestMain(m *testing.M) { os.Exit(containertest.Main(m, &binary)) }

// fast are agent timings for tests on the real clock.
var fast = agent.Options{RetryBase: 50 * time.Millisecond, RetryMax: time.Second, PollMin: 200 * time.Millisecond,
	PollMax: 5 * time.Second, RequestTimeout: 5 * time.Second, StopGrace: 2 * time.Second}

// newFleet starts a container fleet with opts over the defaults of the tests, and registers its Close right
// after.
func newFleet(t *testing.T, w *robomakertest.World, opts container.Options) *container.Fleet {
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

func register(t *testing.T, w *robomakertest.World, devs []fleet.Device) string {
	t.Helper()
	arn, err := w.Register(context.Background(), "lab", devs)
	if err != nil {
		t.Fatal(err)
	}
	return arn
}

// TestContainerFleetDeploys runs two robots as containers and deploys the hello bundle to them: both end in
// sync, each runs one application of the version, as the robot user, with its state on its volume.
func TestContainerFleetDeploys(t *testing.T) {
	containertest.Require(t)
	w := robomakertest.Start(t, service.Options{InMemoryStore: true})
	rec := &agenttest.Events{}
	f := newFleet(t, w, container.Options{Count: 2, OnEvent: rec.On})
	bundle, err := bundles.Build(bundles.Hello)
	if err != nil {
		t.Fatal(err)
	}
	app, v := w.App("hello", bundle)
	job := w.Deploy(register(t, w, f.Devices()), app, v, &types.DeploymentConfig{ConcurrentDeploymentPercentage: aws.Int32(100)})
	out := w.WaitJob(job, 60*time.Second)
	if out.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("job %s %s: %v", out.Status, out.FailureCode, robomakertest.Summary(out))
	}
	ctx := context.Background()
	for _, d := range f.Robots() {
		code, ps, err := d.Exec(ctx, "ps", "-o", "user,args")
		if err != nil || code != 0 {
			t.Fatalf("%s: ps: %d %v", d.Name(), code, err)
		}
		if n := applications(ps); n != 1 {
			t.Errorf("%s runs %d applications, want 1:\n%s", d.Name(), n, ps)
		}
		for _, line := range strings.Split(strings.TrimSpace(ps), "\n")[1:] {
			if strings.HasPrefix(strings.TrimSpace(line), "root") && !strings.Contains(line, "docker-init") {
				t.Errorf("%s: a process runs as root: %s", d.Name(), line)
			}
		}
		st, err := d.State(ctx)
		if err != nil || st.Current == nil || st.Current.JobID != robomakertest.JobID(job) {
			t.Errorf("%s: state %+v, %v; want job %s current", d.Name(), st, err, robomakertest.JobID(job))
		}
	}
}

// TestSpreadOverEngines spreads four robots over two engines — two client connections to the local engine,
// the only engine here, each with its own network and link proxies — and deploys to all of them.
func TestSpreadOverEngines(t *testing.T) {
	containertest.Require(t)
	w := robomakertest.Start(t, service.Options{InMemoryStore: true})
	f := newFleet(t, w, container.Options{Count: 4,
		Engines: []container.Engine{{}, {Host: "unix:///var/run/docker.sock"}}})
	nets := map[string][]string{}
	for i, d := range f.Robots() {
		want := f.Engines()[i%2]
		if d.Engine() != want {
			t.Errorf("%s on %v, want %v", d.Name(), d.Engine(), want)
		}
		in, err := d.Inspect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := in.NetworkSettings.Networks[d.Network()]; !ok {
			t.Errorf("%s is not on its engine's network %s", d.Name(), d.Network())
		}
		nets[d.Network()] = append(nets[d.Network()], d.Name())
	}
	if len(nets) != 2 {
		t.Errorf("robots by network %v, want two networks", nets)
	}
	bundle, err := bundles.Build(bundles.Hello)
	if err != nil {
		t.Fatal(err)
	}
	app, v := w.App("hello", bundle)
	out := w.WaitJob(w.Deploy(register(t, w, f.Devices()), app, v, nil), 60*time.Second)
	if out.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("job %s %s: %v", out.Status, out.FailureCode, robomakertest.Summary(out))
	}
}

// TestDeviceLifecycle drives every ability of a robot container and checks each at the Docker level: pause,
// network disconnect, limits, kill and start; and the guards against calls out of order.
func TestDeviceLifecycle(t *testing.T) {
	containertest.Require(t)
	w := robomakertest.Start(t, service.Options{InMemoryStore: true})
	f := newFleet(t, w, container.Options{Count: 1})
	d := f.Robots()[0]
	ctx := context.Background()
	inspect := func() ctypes.InspectResponse {
		t.Helper()
		in, err := d.Inspect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	if err := d.Thaw(); err == nil {
		t.Error("thaw of a running robot: no error")
	}
	if err := d.Freeze(); err != nil {
		t.Fatal(err)
	}
	if !inspect().State.Paused {
		t.Error("frozen, the container is not paused")
	}
	if err := d.Freeze(); err == nil {
		t.Error("freeze of a frozen robot: no error")
	}
	if err := d.Thaw(); err != nil || inspect().State.Paused {
		t.Errorf("thaw: %v, paused %v", err, inspect().State.Paused)
	}

	d.SetLink(fleet.Link{Partition: true, Latency: time.Millisecond})
	if _, on := inspect().NetworkSettings.Networks[d.Network()]; on || !d.Partitioned() {
		t.Error("partitioned, the container is still on its network")
	}
	if d.Link().Link().Latency != time.Millisecond || d.Link().Link().Partition {
		t.Errorf("the link proxy has %+v, want the latency and no partition of its own", d.Link().Link())
	}
	d.SetLink(fleet.Link{})
	if _, on := inspect().NetworkSettings.Networks[d.Network()]; !on || d.Partitioned() {
		t.Error("healed, the container is not back on its network")
	}

	if err := d.Limit(fleet.Limits{CPUs: 0.25, MemoryBytes: 32 << 20}); err != nil {
		t.Fatal(err)
	}
	if hc := inspect().HostConfig; hc.NanoCPUs != 25e7 || hc.Memory != 32<<20 {
		t.Errorf("limited: %d nano CPUs, %d bytes", hc.NanoCPUs, hc.Memory)
	}
	if err := d.Limit(fleet.Limits{}); err != nil {
		t.Fatal(err)
	}
	if hc := inspect().HostConfig; hc.NanoCPUs != 1e9 || hc.Memory != container.DefaultMemory {
		t.Errorf("given back: %d nano CPUs, %d bytes", hc.NanoCPUs, hc.Memory)
	}

	if err := d.Crash(); err != nil {
		t.Fatal(err)
	}
	if st := inspect().State; st.Running || st.ExitCode != 137 || d.Running() {
		t.Errorf("crashed: running %v, exit %d", st.Running, st.ExitCode)
	}
	if err := d.Crash(); err == nil {
		t.Error("crash of a crashed robot: no error")
	}
	if err := d.Freeze(); err == nil {
		t.Error("freeze of a crashed robot: no error")
	}
	if err := d.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if !inspect().State.Running || !d.Running() {
		t.Error("restarted, the container does not run")
	}
	if err := d.Restart(ctx); err == nil {
		t.Error("restart of a running robot: no error")
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Restart(ctx); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("restart after Close: %v", err)
	}
	if left := ofRun(t, ctx, f.RunID()); !left.Empty() {
		t.Errorf("Close left %v", left)
	}
}

// TestImageInputs builds the robot image twice from the same inputs — one image, reused — and refuses inputs
// that cannot make it, saying what to do.
func TestImageInputs(t *testing.T) {
	containertest.Require(t)
	ctx := context.Background()
	a, err := container.BuildImage(ctx, container.Engine{}, container.ImageOptions{Binary: binary})
	if err != nil {
		t.Fatal(err)
	}
	b, err := container.BuildImage(ctx, container.Engine{}, container.ImageOptions{Binary: binary})
	if err != nil || a != b || !strings.HasPrefix(a, container.ImageRepo+":") {
		t.Fatalf("two builds of one input: %s and %s (%v)", a, b, err)
	}
	for _, tc := range []struct {
		opts container.ImageOptions
		want string
	}{
		{container.ImageOptions{}, "no fleetlab-agent binary"},
		{container.ImageOptions{Binary: binary, Busybox: "/no/busybox"}, "apt-get install busybox-static"},
		{container.ImageOptions{Binary: "/bin/ls"}, "dynamically linked"},
	} {
		if err := container.CheckInputs(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error saying %q", tc.opts, err, tc.want)
		}
	}
}

// applications counts the robot's applications in busybox's `ps -o user,args`: the processes running
// launch.sh. A fork of the script on its way to exec a command (its `mv`, its `sleep`) shares the script's
// arguments until it does; busybox shows such a process with its own name in braces ({mv}), and it is not a
// second application (seen once under load).
func applications(ps string) int {
	n := 0
	for _, line := range strings.Split(ps, "\n") {
		if !strings.Contains(line, "hello_robot/launch.sh") {
			continue
		}
		if i := strings.Index(line, "{"); i >= 0 {
			if j := strings.Index(line[i:], "}"); j > 0 && line[i+1:i+j] != "launch.sh" {
				continue
			}
		}
		n++
	}
	return n
}

func TestApplicationsCountsTheScriptNotItsForks(t *testing.T) {
	ps := `USER     COMMAND
robot    /usr/bin/fleetlab-agent --thing robot-0002
robot    {launch.sh} /bin/sh /var/lib/fleetlab/versions/d@1/hello_robot/launch.sh
robot    ps -o user,args
robot    {mv} /bin/sh /var/lib/fleetlab/versions/d@1/hello_robot/launch.sh`
	if n := applications(ps); n != 1 {
		t.Errorf("%d applications, want 1 (the {mv} fork is the script's own)", n)
	}
	two := ps + "\nrobot    /bin/sh /var/lib/fleetlab/versions/d@0/hello_robot/launch.sh"
	if n := applications(two); n != 2 {
		t.Errorf("%d applications, want 2 (an old version still running)", n)
	}
}
