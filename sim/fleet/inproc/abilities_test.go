package inproc_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness/robomaker/robomakertest"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/fleet"
	"github.com/fleetlab/fleetlab/sim/fleet/inproc"
	"github.com/fleetlab/fleetlab/sim/service"
)

// holdScripts holds the first script run in it until release is closed (or the run's context ends), after
// closing held.
type holdScripts struct {
	agent.ScriptRunner
	once          *sync.Once
	held, release chan struct{}
}

func hold(held, release chan struct{}) func(agent.Executors) agent.Executors {
	once := &sync.Once{}
	return func(ex agent.Executors) agent.Executors {
		ex.Scripts = holdScripts{ScriptRunner: ex.Scripts, once: once, held: held, release: release}
		return ex
	}
}

func (h holdScripts) Run(ctx context.Context, s agent.Script) error {
	first := false
	h.once.Do(func() { first = true })
	if first {
		close(h.held)
		select {
		case <-h.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return h.ScriptRunner.Run(ctx, s)
}

func waitClosed(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-clock.Real{}.NewTimer(30 * time.Second).C():
		t.Fatalf("timed out waiting for %s", what)
	}
}

func execution(t *testing.T, w *robomakertest.World, job, robot string) engine.Execution {
	t.Helper()
	x, err := w.Svc.Engine.Execution(robomakertest.JobID(job), robot)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// TestFrozenRobotTimesOutThenRecovers: a robot frozen in the middle of its deployment answers nothing, misses
// the robot deployment timeout and ends NoResponse (TIMED_OUT on the data plane) while the other robot
// succeeds; thawed, it learns the execution is over, abandons it, and carries out the next job.
func TestFrozenRobotTimesOutThenRecovers(t *testing.T) {
	agenttest.LeakTest(t)
	c := clock.NewScaled(nil, 60) // the 60 s robot timeout is a second
	w := robomakertest.Start(t, service.Options{InMemoryStore: true, Clock: c})
	var ch chains
	f := memoryFleet(t, w, c, 2, ch.on)
	app, version := w.App("hello", bundles.MustBuild(bundles.Hello))
	fleetARN := register(t, w, "lab", f.Devices())
	frozen, _ := f.Robot("robot-0002")

	// Hold robot-0002 in its pre-launch script, freeze it there, and let the script finish: its next call waits
	// at the gate.
	held, release := make(chan struct{}), make(chan struct{})
	frozen.SetExecutorWrap(hold(held, release))
	job := w.Deploy(fleetARN, app, version, &types.DeploymentConfig{ConcurrentDeploymentPercentage: aws.Int32(100),
		RobotDeploymentTimeoutInSeconds: aws.Int64(60)})
	waitClosed(t, held, "robot-0002 in its pre-launch script")
	if err := frozen.Freeze(); err != nil {
		t.Fatal(err)
	}
	if err := frozen.Freeze(); err == nil {
		t.Fatal("froze a frozen robot")
	}
	close(release)

	out := w.WaitJob(job, 30*time.Second)
	sum := robomakertest.Summary(out)
	if out.Status != types.DeploymentStatusFailed || sum["robot-0001"] != "InSync" ||
		sum["robot-0002"] != "NoResponse/RobotDeploymentNoResponse" {
		t.Fatalf("job %s, robots %v", out.Status, sum)
	}
	x := execution(t, w, job, "robot-0002")
	if x.Status != engine.ExecTimedOut || x.Details[wire.DetailStep] != rmwire.StepExecutingPreLaunch {
		t.Fatalf("robot-0002's execution %s at %q, want TIMED_OUT at its last report, ExecutingPreLaunch", x.Status, x.Details[wire.DetailStep])
	}
	if got := ch.of("robot-0002"); got[len(got)-1] != rmwire.StepExecutingPreLaunch {
		t.Fatalf("the frozen robot went on: %v", got)
	}

	frozen.SetExecutorWrap(nil)
	if err := frozen.Thaw(); err != nil {
		t.Fatal(err)
	}
	if !robomakertest.Eventually(10*time.Second, func() bool {
		got := ch.of("robot-0002")
		st, err := frozen.State()
		return got[len(got)-1] == agent.StateAbandoned && err == nil && st.InFlight == nil
	}) {
		t.Fatalf("the thawed robot did not abandon the timed-out execution: %v", ch.of("robot-0002"))
	}
	if frozen.App() != "" {
		t.Fatalf("robot-0002 runs %q after abandoning its first install", frozen.App())
	}
	job2 := w.Deploy(fleetARN, app, version, nil)
	if out := w.WaitJob(job2, 30*time.Second); out.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("next job %s: %v", out.Status, robomakertest.Summary(out))
	}
	if frozen.App() != robomakertest.JobID(job2) {
		t.Fatalf("robot-0002 runs %q, want %s", frozen.App(), robomakertest.JobID(job2))
	}
}

// TestPartitionedRobotHealsAndFinishes, on both transports: a robot whose link is cut cannot reach the service
// — its notify channel drops and its calls fail, its execution stays queued while the other robot succeeds —
// and once the link heals it reconnects and finishes the job.
func TestPartitionedRobotHealsAndFinishes(t *testing.T) {
	for _, tc := range []struct {
		name string
		kind inproc.TransportKind
	}{{"memory", inproc.TransportMemory}, {"http", inproc.TransportHTTP}} {
		t.Run(tc.name, func(t *testing.T) {
			agenttest.LeakTest(t)
			w := robomakertest.Start(t, service.Options{InMemoryStore: true})
			var rec agenttest.Events
			f, err := inproc.New(inproc.Options{Transport: tc.kind, Endpoint: w.Svc.Endpoint(), Devices: w.Svc.Devices,
				Objects: w.Svc.Artifacts, Count: 2, OnEvent: rec.On, Agent: quick})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			app, version := w.App("hello", bundles.MustBuild(bundles.Hello))
			fleetARN := register(t, w, "lab", f.Devices())
			cut, _ := f.Robot("robot-0002")
			if !robomakertest.Eventually(10*time.Second, func() bool { return w.Svc.Devices.Connected("robot-0002") == 1 }) {
				t.Fatal("robot-0002 never connected")
			}
			mark := len(rec.Of("robot-0002"))
			cut.SetLink(fleet.Link{Partition: true})

			job := w.Deploy(fleetARN, app, version, nil)
			if !robomakertest.Eventually(20*time.Second, func() bool {
				return execution(t, w, job, "robot-0001").Status == engine.ExecSucceeded
			}) {
				t.Fatal("robot-0001 did not succeed")
			}
			if !robomakertest.Eventually(10*time.Second, func() bool {
				failed := false
				for _, e := range rec.Of("robot-0002")[mark:] {
					failed = failed || (e.Kind == agent.EventRetry || e.Kind == agent.EventError) && e.Err != nil
				}
				return failed && w.Svc.Devices.Connected("robot-0002") == 0
			}) {
				t.Fatalf("robot-0002 still reaches the service: %v", rec.Of("robot-0002")[mark:])
			}
			if x := execution(t, w, job, "robot-0002"); x.Status != engine.ExecQueued {
				t.Fatalf("robot-0002's execution is %s behind a cut link", x.Status)
			}

			cut.SetLink(fleet.Link{})
			out := w.WaitJob(job, 30*time.Second)
			if out.Status != types.DeploymentStatusSucceeded {
				t.Fatalf("job %s after the link healed: %v", out.Status, robomakertest.Summary(out))
			}
		})
	}
}

// TestLossyLinkStillCompletes: a robot dropping a third of its requests (seeded) retries its way through the
// job. A poll lost while the notify channel is up is only retried at the agent's safety poll (PollMax), so the
// test polls often.
func TestLossyLinkStillCompletes(t *testing.T) {
	agenttest.LeakTest(t)
	w := robomakertest.Start(t, service.Options{InMemoryStore: true})
	opts := quick
	opts.PollMin, opts.PollMax = 50*time.Millisecond, 200*time.Millisecond
	f, err := inproc.New(inproc.Options{Transport: inproc.TransportMemory, Devices: w.Svc.Devices,
		Objects: w.Svc.Artifacts, Count: 1, Agent: opts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	d, _ := f.Robot("robot-0001")
	d.SetLink(fleet.Link{DropRate: 0.3, Seed: 3})
	app, version := w.App("hello", bundles.MustBuild(bundles.Hello))
	job := w.Deploy(register(t, w, "lab", f.Devices()), app, version, nil)
	if out := w.WaitJob(job, 30*time.Second); out.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("job %s: %v", out.Status, robomakertest.Summary(out))
	}
	if _, dropped := d.Link().Counts(); dropped == 0 {
		t.Fatal("no request was dropped at rate 0.3")
	}
}

// TestCrashInMemoryResumes: an in-memory robot loses power in its pre-launch step; its storage keeps the
// execution in flight, and restarted it resumes at that step and finishes.
func TestCrashInMemoryResumes(t *testing.T) {
	agenttest.LeakTest(t)
	w := robomakertest.Start(t, service.Options{InMemoryStore: true})
	var rec agenttest.Events
	f := memoryFleet(t, w, nil, 1, rec.On)
	d, _ := f.Robot("robot-0001")
	held, release := make(chan struct{}), make(chan struct{})
	d.SetExecutorWrap(hold(held, release))
	app, version := w.App("hello", bundles.MustBuild(bundles.Hello))
	job := w.Deploy(register(t, w, "lab", f.Devices()), app, version, nil)
	waitClosed(t, held, "the pre-launch script")

	if err := d.Crash(); err != nil {
		t.Fatal(err)
	}
	if d.Running() {
		t.Fatal("running after Crash")
	}
	if err := d.Crash(); err == nil {
		t.Fatal("crashed a crashed robot")
	}
	st, err := d.State()
	if err != nil || st.InFlight == nil || st.InFlight.Step != rmwire.StepExecutingPreLaunch {
		t.Fatalf("state after the crash: %+v, %v", st.InFlight, err)
	}
	if err := d.Freeze(); err == nil {
		t.Fatal("froze a crashed robot")
	}
	if err := d.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := d.Restart(context.Background()); err == nil {
		t.Fatal("restarted a running robot")
	}
	out := w.WaitJob(job, 30*time.Second)
	if out.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("job %s: %v", out.Status, robomakertest.Summary(out))
	}
	var chain []string
	for _, e := range rec.Of("robot-0001") {
		switch e.Kind {
		case agent.EventState:
			chain = append(chain, e.State)
		case agent.EventResume:
			chain = append(chain, "resume:"+e.State)
		}
	}
	want := "Validating DownloadingExtracting ExecutingDownloadCondition ExecutingPreLaunch " +
		"resume:ExecutingPreLaunch ExecutingPreLaunch Launching ExecutingPostLaunch Finished"
	if got := strings.Join(chain, " "); got != want {
		t.Fatalf("chain\n got %s\nwant %s", got, want)
	}
}

// alive reports whether process pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	var pid int
	if !robomakertest.Eventually(30*time.Second, func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	}) {
		t.Fatalf("no pid in %s", path)
	}
	return pid
}

// holdOnce is a pre-launch fragment that, the first time, writes its pid to $ROBOT_DATA_DIR/held and runs until
// killed; later runs pass.
const holdOnce = `m="$ROBOT_DATA_DIR/held"
if [ ! -e "$m" ]; then
	echo $$ >"$m.tmp" && mv "$m.tmp" "$m"
	while :; do sleep 0.05; done
fi`

// TestCrashOSFamily: a robot of the OS family loses power while its pre-launch script runs, with version 1's
// application running: the application and the script die with it, the current link still points at version 1;
// restarted, the robot relaunches version 1, resumes, and ends running version 2 in a new process.
func TestCrashOSFamily(t *testing.T) {
	agenttest.LeakTest(t)
	w := robomakertest.Start(t, service.Options{InMemoryStore: true})
	f, err := inproc.New(inproc.Options{Endpoint: w.Svc.Endpoint(), Count: 1, Dir: t.TempDir(), Agent: quick})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	d, _ := f.Robot("robot-0001")
	fleetARN := register(t, w, "lab", f.Devices())
	app1, v1 := w.App("one", heartbeatBundle(""))
	job1 := w.Deploy(fleetARN, app1, v1, nil)
	if out := w.WaitJob(job1, 30*time.Second); out.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("job 1 %s: %v", out.Status, robomakertest.Summary(out))
	}
	beat := robomakertest.WaitRunning(t, d.Dir(), robomakertest.JobID(job1), 0, 10*time.Second)

	app2, v2 := w.App("two", heartbeatBundle(holdOnce))
	job2 := w.Deploy(fleetARN, app2, v2, nil)
	script := readPid(t, filepath.Join(d.Dir(), "data", "held"))
	if err := d.Crash(); err != nil {
		t.Fatal(err)
	}
	for what, pid := range map[string]int{"application": beat.Pid, "pre-launch script": script} {
		if !robomakertest.Eventually(10*time.Second, func() bool { return !alive(pid) }) {
			t.Fatalf("the %s (pid %d) outlived the power cut", what, pid)
		}
	}
	if cur, err := robomakertest.Current(d.Dir()); err != nil || cur != robomakertest.JobID(job1) {
		t.Fatalf("current after the crash: %q, %v", cur, err)
	}

	if err := d.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := w.WaitJob(job2, 30*time.Second)
	if out.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("job 2 %s: %v", out.Status, robomakertest.Summary(out))
	}
	robomakertest.WaitRunning(t, d.Dir(), robomakertest.JobID(job2), beat.Pid, 10*time.Second)
}

// TestExecutorHookSwapsAtRunTime: a wrap installed while the agent runs fails its pre-launch script with exit 3 —
// the robot reports PreLaunchFileFailure; removed, the next job succeeds.
func TestExecutorHookSwapsAtRunTime(t *testing.T) {
	agenttest.LeakTest(t)
	w := robomakertest.Start(t, service.Options{InMemoryStore: true})
	f := memoryFleet(t, w, nil, 1, nil)
	d, _ := f.Robot("robot-0001")
	app, version := w.App("hello", bundles.MustBuild(bundles.Hello))
	fleetARN := register(t, w, "lab", f.Devices())
	d.SetExecutorWrap(func(ex agent.Executors) agent.Executors {
		ex.Scripts = exitScripts{ScriptRunner: ex.Scripts, name: bundles.PreLaunchFile, code: 3}
		return ex
	})
	job := w.Deploy(fleetARN, app, version, nil)
	out := w.WaitJob(job, 30*time.Second)
	if got := robomakertest.Summary(out)["robot-0001"]; got != "Failed/PreLaunchFileFailure" {
		t.Fatalf("robot-0001 is %s, want Failed/PreLaunchFileFailure", got)
	}
	d.SetExecutorWrap(nil)
	job = w.Deploy(fleetARN, app, version, nil)
	if out := w.WaitJob(job, 30*time.Second); out.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("job without the wrap %s: %v", out.Status, robomakertest.Summary(out))
	}
}

// exitScripts makes the script called name exit with code.
type exitScripts struct {
	agent.ScriptRunner
	name string
	code int
}

func (s exitScripts) Run(ctx context.Context, sc agent.Script) error {
	if sc.Name == s.name {
		return &agent.ExitError{Code: s.code}
	}
	return s.ScriptRunner.Run(ctx, sc)
}

// TestClockSkew: a skewed robot's clock, and the time of its events, read the skew ahead of the fleet's.
func TestClockSkew(t *testing.T) {
	agenttest.LeakTest(t)
	w := robomakertest.Start(t, service.Options{InMemoryStore: true})
	var rec agenttest.Events
	f := memoryFleet(t, w, nil, 2, rec.On)
	skewed, _ := f.Robot("robot-0002")
	skewed.SetClockSkew(time.Hour)
	if d := skewed.Now().Sub(clock.Real{}.Now()); d < time.Hour-time.Minute || d > time.Hour+time.Minute {
		t.Fatalf("skewed clock is %v ahead, want an hour", d)
	}
	app, version := w.App("hello", bundles.MustBuild(bundles.Hello))
	job := w.Deploy(register(t, w, "lab", f.Devices()), app, version, nil)
	if out := w.WaitJob(job, 30*time.Second); out.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("job %s", out.Status)
	}
	now := clock.Real{}.Now()
	for robot, ahead := range map[string]time.Duration{"robot-0001": 0, "robot-0002": time.Hour} {
		n := 0
		for _, e := range rec.Of(robot) {
			if e.Kind != agent.EventState {
				continue
			}
			n++
			if d := e.Time.Sub(now); d < ahead-time.Minute || d > ahead+time.Minute {
				t.Errorf("%s: %s at %v, %v from now, want %v", robot, e.State, e.Time, d, ahead)
			}
		}
		if n != 7 {
			t.Errorf("%s: %d state events", robot, n)
		}
	}
}

// TestCloseLeavesNothing: after Close, the OS family's applications are gone, the link proxies no longer listen,
// and Close can be called again.
func TestCloseLeavesNothing(t *testing.T) {
	agenttest.LeakTest(t)
	w := robomakertest.Start(t, service.Options{InMemoryStore: true})
	f, err := inproc.New(inproc.Options{Endpoint: w.Svc.Endpoint(), Count: 2, Dir: t.TempDir(), Agent: quick})
	if err != nil {
		t.Fatal(err)
	}
	app, version := w.App("beat", heartbeatBundle(""))
	job := w.Deploy(register(t, w, "lab", f.Devices()), app, version, nil)
	if out := w.WaitJob(job, 30*time.Second); out.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("job %s", out.Status)
	}
	var pids []int
	var addrs []string
	for _, d := range f.Robots() {
		pids = append(pids, robomakertest.WaitRunning(t, d.Dir(), robomakertest.JobID(job), 0, 10*time.Second).Pid)
		addrs = append(addrs, proxyAddr(t, d))
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, pid := range pids {
		if !robomakertest.Eventually(10*time.Second, func() bool { return !alive(pid) }) {
			t.Errorf("application %d outlived Close", pid)
		}
	}
	for _, a := range addrs {
		if c, err := net.Dial("tcp", a); err == nil {
			c.Close()
			t.Errorf("%s still listens after Close", a)
		}
	}
	d, _ := f.Robot("robot-0001")
	if err := d.Restart(context.Background()); err == nil {
		t.Fatal("restarted a robot of a closed fleet")
	}
}

// proxyAddr is the address of a robot's link proxy.
func proxyAddr(t *testing.T, d *inproc.Device) string {
	t.Helper()
	u := d.Endpoint()
	if u == "" {
		t.Fatalf("%s has no endpoint", d.Name())
	}
	return strings.TrimPrefix(u, "http://")
}
