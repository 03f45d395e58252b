package process_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
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
	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/fleet"
	"github.com/fleetlab/fleetlab/sim/fleet/process"
	"github.com/fleetlab/fleetlab/sim/service"
)

// binary is the fleetlab-agent built once for the whole test binary.
var binary string

func TestMain(m *testing.M) {
	if dir := os.Getenv("FLEETLAB_ORPHAN_DIR"); dir != "" {
		os.Exit(orphanParent(dir, os.Getenv("FLEETLAB_AGENT_BINARY")))
	}
	dir, err := os.MkdirTemp("", "fleetlab-agent-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary, err = process.Build(context.Background(), dir)
	code := 1
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// fast are agent timings for tests on the real clock.
var fast = agent.Options{RetryBase: 50 * time.Millisecond, RetryMax: time.Second, PollMin: 200 * time.Millisecond,
	PollMax: 5 * time.Second, StopGrace: 5 * time.Second}

// newFleet starts a process fleet against w, closed by the test's cleanup, which also checks that no process of
// any robot's session outlives Close.
func newFleet(t *testing.T, w *robomakertest.World, opts process.Options) *process.Fleet {
	t.Helper()
	opts.Endpoint, opts.Binary = w.Svc.Endpoint(), binary
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Agent.RetryBase == 0 {
		opts.Agent = fast
	}
	f, err := process.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	sessions := map[int]bool{}
	var mu sync.Mutex
	note := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, d := range f.Robots() {
			if pid := d.Pid(); pid != 0 {
				sessions[pid] = true
			}
		}
	}
	note()
	t.Cleanup(func() {
		note()
		if err := f.Close(); err != nil {
			t.Error(err)
		}
		for sid := range sessions {
			if left := sessionProcesses(sid); len(left) > 0 {
				t.Errorf("session %d outlived Close: %v", sid, left)
			}
		}
	})
	return f
}

// sessionProcesses lists the live processes of session sid.
func sessionProcesses(sid int) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+1:])
		if len(f) > 3 && f[3] == strconv.Itoa(sid) && f[0] != "Z" {
			out = append(out, s[:i+1])
		}
	}
	return out
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

func register(t *testing.T, w *robomakertest.World, devs []fleet.Device) string {
	t.Helper()
	arn, err := w.Register(context.Background(), "lab", devs)
	if err != nil {
		t.Fatal(err)
	}
	return arn
}

// appBundle is a bundle with the heartbeat application and the given pre- and post-launch files (a shell body
// each; "exit 0" when empty).
func appBundle(pre, post string) []byte {
	or := func(s string) string {
		if s == "" {
			return "exit 0"
		}
		return s
	}
	return robomakertest.Bundle(map[string]string{
		bundles.Package + "/" + bundles.LaunchFile: robomakertest.HeartbeatApp,
		bundles.Package + "/package.xml":           "<package format=\"2\"><name>hello_robot</name></package>\n",
		bundles.PreLaunchFile:                      "#!/bin/sh\n" + or(pre) + "\n",
		bundles.PostLaunchFile:                     "#!/bin/sh\n" + or(post) + "\n",
	})
}

var fullChain = []string{rmwire.StepValidating, rmwire.StepDownloadingExtracting, rmwire.StepExecutingDownloadCondition,
	rmwire.StepExecutingPreLaunch, rmwire.StepLaunching, rmwire.StepExecutingPostLaunch, rmwire.StepFinished}

// TestProcessFleetCompletesJob: five fleetlab-agent processes carry out a job; each runs the new version from its
// directory, and the events they write reach OnEvent as the full chain of steps.
func TestProcessFleetCompletesJob(t *testing.T) {
	agenttest.LeakTest(t)
	w := robomakertest.Start(t, service.Options{InMemoryStore: true})
	var rec agenttest.Events
	f := newFleet(t, w, process.Options{Count: 5, OnEvent: rec.On})
	app, version := w.App("beat", appBundle("", ""))
	job := w.Deploy(register(t, w, f.Devices()), app, version,
		&types.DeploymentConfig{ConcurrentDeploymentPercentage: aws.Int32(60)})
	out := w.WaitJob(job, 60*time.Second)
	if out.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("job %s %s: %v", out.Status, out.FailureCode, robomakertest.Summary(out))
	}
	id := robomakertest.JobID(job)
	var apps []int
	for _, d := range f.Robots() {
		if s := robomakertest.Summary(out)[d.Name()]; s != "InSync" {
			t.Errorf("%s is %s", d.Name(), s)
		}
		apps = append(apps, robomakertest.WaitRunning(t, d.Dir(), id, 0, 10*time.Second).Pid)
		if got := rec.States(d.Name(), id); strings.Join(got, " ") != strings.Join(fullChain, " ") {
			t.Errorf("%s went through %v", d.Name(), got)
		}
	}
	addr := strings.TrimPrefix(f.Robots()[0].Endpoint(), "http://")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range apps {
		if alive(pid) {
			t.Errorf("application %d outlived Close", pid)
		}
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Errorf("link proxy %s outlived Close", addr)
	}
}

// TestTemporaryDirectoriesRemoved: a fleet given no directory and no binary builds the agent and keeps the robots
// in directories of its own, and removes them at Close.
func TestTemporaryDirectoriesRemoved(t *testing.T) {
	w := robomakertest.Start(t, service.Options{InMemoryStore: true})
	f, err := process.New(context.Background(), process.Options{Endpoint: w.Svc.Endpoint(), Count: 1, Agent: fast})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := f.Robot("robot-0001")
	dir := d.Dir()
	if !robomakertest.Eventually(10*time.Second, func() bool {
		_, err := os.Stat(dir + "/device.log")
		return err == nil
	}) {
		t.Fatal("the agent did not start in its directory")
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("%s outlived Close: %v", dir, err)
	}
}

// holdPre is a pre-launch body that the first time writes its pid to $ROBOT_DATA_DIR/<name> and waits for
// $ROBOT_DATA_DIR/<name>.go; later runs pass at once.
func holdPre(name string) string {
	return fmt.Sprintf(`m="$ROBOT_DATA_DIR/%s"
if [ ! -e "$m" ]; then
	echo $$ >"$m.tmp" && mv "$m.tmp" "$m"
	while [ ! -e "$m.go" ]; do sleep 0.02; done
fi
exit 0`, name)
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	if !robomakertest.Eventually(30*time.Second, func() bool {
		_, err := os.Stat(path)
		return err == nil
	}) {
		t.Fatalf("%s never appeared", path)
	}
}

// TestFreezeProcess: a robot whose whole session is stopped mid-deployment misses its timeout and ends NoResponse
// (TIMED_OUT); continued, it finds its execution over, abandons it, and carries out the next job.
func TestFreezeProcess(t *testing.T) {
	agenttest.LeakTest(t)
	w := robomakertest.Start(t, service.Options{InMemoryStore: true, Clock: clock.NewScaled(nil, 60)})
	var rec agenttest.Events
	f := newFleet(t, w, process.Options{Count: 1, OnEvent: rec.On})
	d, _ := f.Robot("robot-0001")
	fleetARN := register(t, w, f.Devices())
	app, version := w.App("held", appBundle(holdPre("held"), ""))
	job := w.Deploy(fleetARN, app, version, &types.DeploymentConfig{RobotDeploymentTimeoutInSeconds: aws.Int64(60)})
	waitFile(t, d.Dir()+"/data/held")
	if err := d.Freeze(); err != nil {
		t.Fatal(err)
	}
	if err := d.Freeze(); err == nil {
		t.Fatal("froze a frozen robot")
	}
	if err := os.WriteFile(d.Dir()+"/data/held.go", nil, 0o644); err != nil { // seen only once thawed
		t.Fatal(err)
	}
	out := w.WaitJob(job, 30*time.Second)
	if got := robomakertest.Summary(out)["robot-0001"]; got != "NoResponse/RobotDeploymentNoResponse" {
		t.Fatalf("robot-0001 is %s", got)
	}
	x, err := w.Svc.Engine.Execution(robomakertest.JobID(job), "robot-0001")
	if err != nil || x.Status != engine.ExecTimedOut || x.Details[wire.DetailStep] != rmwire.StepExecutingPreLaunch {
		t.Fatalf("execution %s at %q (%v)", x.Status, x.Details[wire.DetailStep], err)
	}
	if err := d.Thaw(); err != nil {
		t.Fatal(err)
	}
	if !robomakertest.Eventually(20*time.Second, func() bool {
		st := rec.States("robot-0001", robomakertest.JobID(job))
		return len(st) > 0 && st[len(st)-1] == agent.StateAbandoned
	}) {
		t.Fatalf("the thawed robot did not abandon its execution: %v", rec.States("robot-0001", robomakertest.JobID(job)))
	}
	app2, v2 := w.App("beat", appBundle("", ""))
	job2 := w.Deploy(fleetARN, app2, v2, nil)
	if out := w.WaitJob(job2, 30*time.Second); out.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("next job %s: %v", out.Status, robomakertest.Summary(out))
	}
}

// TestPartitionProcess: a process robot behind a cut link cannot reach the service — its notify channel is down,
// its execution stays queued — and finishes once the link heals.
func TestPartitionProcess(t *testing.T) {
	agenttest.LeakTest(t)
	w := robomakertest.Start(t, service.Options{InMemoryStore: true})
	var rec agenttest.Events
	f := newFleet(t, w, process.Options{Count: 1, OnEvent: rec.On})
	d, _ := f.Robot("robot-0001")
	fleetARN := register(t, w, f.Devices())
	if !robomakertest.Eventually(20*time.Second, func() bool {
		return has(rec.Of("robot-0001"), agent.EventConnected) && w.Svc.Devices.Connected("robot-0001") == 1
	}) {
		t.Fatal("the robot never connected")
	}
	d.SetLink(fleet.Link{Partition: true})
	if !robomakertest.Eventually(20*time.Second, func() bool {
		return has(rec.Of("robot-0001"), agent.EventDisconnected) && w.Svc.Devices.Connected("robot-0001") == 0
	}) {
		t.Fatalf("the notify channel survived the partition: service has %d connections; events %+v",
			w.Svc.Devices.Connected("robot-0001"), rec.Of("robot-0001"))
	}
	app, version := w.App("beat", appBundle("", ""))
	job := w.Deploy(fleetARN, app, version, nil)
	if !robomakertest.Eventually(20*time.Second, func() bool {
		for _, e := range rec.Of("robot-0001") {
			if e.Kind == agent.EventRetry && e.State == "notify" {
				return true
			}
		}
		return false
	}) {
		t.Fatal("the robot never failed to reconnect")
	}
	if x, err := w.Svc.Engine.Execution(robomakertest.JobID(job), "robot-0001"); err != nil || x.Status != engine.ExecQueued {
		t.Fatalf("execution behind a cut link: %s (%v)", x.Status, err)
	}
	d.SetLink(fleet.Link{})
	if out := w.WaitJob(job, 30*time.Second); out.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("job %s after the link healed: %v", out.Status, robomakertest.Summary(out))
	}
}

func has(es []agent.Event, kind agent.EventKind) bool {
	for _, e := range es {
		if e.Kind == kind {
			return true
		}
	}
	return false
}

// orphanParent is the test binary run as the parent of a fleet that dies without closing it: it starts two agents
// (against an endpoint that refuses them), prints their pids and waits for stdin to end.
func orphanParent(dir, bin string) int {
	f, err := process.New(context.Background(), process.Options{Endpoint: "http://127.0.0.1:1", Binary: bin, Dir: dir,
		Count: 2, Agent: fast})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer f.Close()
	for _, d := range f.Robots() {
		fmt.Println(d.Pid())
	}
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// TestAgentsDieWithTheirParent: when the process that started a fleet is killed without closing it, every agent
// stops — it is sent SIGTERM by the kernel — and takes its whole session with it.
func TestAgentsDieWithTheirParent(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "FLEETLAB_ORPHAN_DIR="+t.TempDir(), "FLEETLAB_AGENT_BINARY="+binary)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pids []int
	for range 2 {
		var pid int
		if _, err := fmt.Fscan(out, &pid); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("read the agents' pids: %v", err)
		}
		pids = append(pids, pid)
	}
	for _, pid := range pids {
		if !alive(pid) {
			t.Fatalf("agent %d is not running", pid)
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	for _, pid := range pids {
		if !robomakertest.Eventually(20*time.Second, func() bool { return len(sessionProcesses(pid)) == 0 }) {
			t.Errorf("agent session %d outlived its parent: %v", pid, sessionProcesses(pid))
		}
	}
}

// TestProcessFleetSigns: a fleet given device credentials carries out a job on a service that refuses unsigned
// requests; its agents sign with them.
func TestProcessFleetSigns(t *testing.T) {
	agenttest.LeakTest(t)
	w := robomakertest.Start(t, service.Options{InMemoryStore: true, Auth: &awsapi.SigV4{Keys: map[string]string{"AK": "SK"},
		DeviceKeys: map[string]string{"robot-key": "robot-secret"}}})
	resp, err := http.Get(w.Svc.Endpoint() + fmt.Sprintf(wire.PathPending, "robot-0001"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("an unsigned device request: %s, want 403", resp.Status)
	}
	f := newFleet(t, w, process.Options{Count: 2,
		Credentials: &agent.Credentials{AccessKey: "robot-key", SecretKey: "robot-secret"}})
	app, version := w.App("hello", bundles.MustBuild(bundles.Hello))
	out := w.WaitJob(w.Deploy(register(t, w, f.Devices()), app, version, nil), 60*time.Second)
	if out.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("job %s %s: %v", out.Status, out.FailureCode, robomakertest.Summary(out))
	}
}
