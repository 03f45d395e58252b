package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"

	"github.com/fleetlab/fleetlab/harness/robomaker/robomakertest"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/clock"
	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/fleet"
	"github.com/fleetlab/fleetlab/sim/fleet/eventlog"
	"github.com/fleetlab/fleetlab/sim/service"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"--help"}, env(nil), &out, &errOut, nil); code != exitOK {
		t.Fatalf("--help exits %d", code)
	}
	for _, want := range []string{"--endpoint URL --thing NAME --dir DIR", "FLEETLAB_ENDPOINT", "-events", "Examples:", "Exit codes:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help does not say %q:\n%s", want, out.String())
		}
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, nil, "hint: give --endpoint"},
		{[]string{"--endpoint", "http://127.0.0.1:1"}, nil, "hint: give --thing"},
		{[]string{"--endpoint", "http://127.0.0.1:1", "--thing", "r1"}, nil, "hint: give --dir"},
		{[]string{"--endpoint", "127.0.0.1:1", "--thing", "r1", "--dir", "d"}, nil, "not an http(s) URL"},
		{[]string{"--thing", "r 1", "--dir", "d"}, map[string]string{"FLEETLAB_ENDPOINT": "http://h:1"}, "thing name"},
		{nil, map[string]string{"FLEETLAB_ENDPOINT": "http://h:1", "FLEETLAB_THING": "r1", "FLEETLAB_DIR": "d", "FLEETLAB_ARCH": "MIPS"}, "architecture"},
		{nil, map[string]string{"FLEETLAB_ENDPOINT": "http://h:1", "FLEETLAB_THING": "r1", "FLEETLAB_DIR": "d", "FLEETLAB_ARCH": "X86_64"}, "X86_64 is amd64"},
		{[]string{"--bogus"}, nil, "flag provided but not defined"},
		{[]string{"--endpoint", "http://h:1", "extra"}, nil, "unexpected arguments"},
		{[]string{"--endpoint", "http://h:1", "--thing", "r1", "--dir", "d", "--access-key", "k"}, nil, "give both --access-key and --secret-key"},
		{[]string{"--endpoint", "http://h:1", "--thing", "r1", "--dir", "d"}, map[string]string{"FLEETLAB_DEVICE_SECRET_KEY": "s"}, "give both --access-key and --secret-key"},
	} {
		var out, errOut bytes.Buffer
		if code := run(tc.args, env(tc.env), &out, &errOut, nil); code != exitUsage || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%v %v: exit %d, %q; want %d and %q", tc.args, tc.env, code, errOut.String(), exitUsage, tc.want)
		}
	}
}

func TestFlagsWinOverEnvironment(t *testing.T) {
	c, err := parseArgs([]string{"--thing", "from-flag", "--seed", "5"}, env(map[string]string{
		"FLEETLAB_ENDPOINT": "http://h:1", "FLEETLAB_THING": "from-env", "FLEETLAB_DIR": "/d", "FLEETLAB_ARCH": "arm",
		"FLEETLAB_SEED": "9"}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.thing != "from-flag" || c.endpoint != "http://h:1" || c.dir != "/d" || c.arch != "arm" || c.seed != 5 {
		t.Fatalf("config %+v", c)
	}
	c, err = parseArgs(nil, env(map[string]string{"FLEETLAB_ENDPOINT": "http://h:1", "FLEETLAB_THING": "t",
		"FLEETLAB_DIR": "/d", "FLEETLAB_SEED": "9"}), &bytes.Buffer{})
	if err != nil || c.seed != 9 || c.arch != runtime.GOARCH {
		t.Fatalf("config %+v, %v", c, err)
	}
}

// agentRun is the program running in the test, stopped by sending on stop.
type agentRun struct {
	stop chan os.Signal
	code chan int
	err  bytes.Buffer
}

func start(args []string) *agentRun {
	r := &agentRun{stop: make(chan os.Signal, 2), code: make(chan int, 1)}
	go func() { r.code <- run(args, env(nil), &bytes.Buffer{}, &syncWriter{w: &r.err}, r.stop) }()
	return r
}

func (r *agentRun) stopped(t *testing.T) int {
	t.Helper()
	r.stop <- syscall.SIGTERM
	select {
	case code := <-r.code:
		return code
	case <-clock.Real{}.NewTimer(30 * time.Second).C():
		t.Fatal("the agent did not stop")
		return -1
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

type device struct{ name string }

func (d device) Name() string         { return d.name }
func (d device) Architecture() string { return "amd64" }

// deployBeat deploys the heartbeat application to the fleet, waits for the job to succeed and returns its id.
func deployBeat(t *testing.T, w *robomakertest.World, fleetARN string) string {
	t.Helper()
	app, version := w.App("beat", robomakertest.Bundle(map[string]string{
		"hello_robot/launch.sh": robomakertest.HeartbeatApp, "pre_launch.sh": "#!/bin/sh\nexit 0\n",
		"post_launch.sh": "#!/bin/sh\nexit 0\n"}))
	job := w.Deploy(fleetARN, app, version, nil)
	if out := w.WaitJob(job, 30*time.Second); out.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("job %s: %v", out.Status, robomakertest.Summary(out))
	}
	return robomakertest.JobID(job)
}

// TestRunDeployStopRestart: the program carries out a job and writes its events as JSON lines; stopped with a
// signal it stops the application and exits 0; started again on the same directory it relaunches the version.
func TestRunDeployStopRestart(t *testing.T) {
	agenttest.LeakTest(t)
	w := robomakertest.Start(t, service.Options{InMemoryStore: true})
	dir := filepath.Join(t.TempDir(), "robot")
	events := filepath.Join(t.TempDir(), "events.jsonl")
	args := []string{"--endpoint", w.Svc.Endpoint(), "--thing", "robot-1", "--dir", dir, "--events", events,
		"--retry-base", "50ms", "--stop-grace", "5s"}
	r := start(args)
	fleetARN, err := w.Register(context.Background(), "lab", []fleet.Device{device{"robot-1"}})
	if err != nil {
		t.Fatal(err)
	}
	id := deployBeat(t, w, fleetARN)
	beat := robomakertest.WaitRunning(t, dir, id, 0, 10*time.Second)
	if code := r.stopped(t); code != exitOK {
		t.Fatalf("exit %d after SIGTERM: %s", code, r.err.String())
	}
	if b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(beat.Pid), "stat")); err == nil && !strings.Contains(string(b), ") Z") {
		t.Fatalf("the application %d runs after the agent stopped", beat.Pid)
	}

	f, err := os.Open(events)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var states []string
	if err := eventlog.Read(f, func(e agent.Event) {
		if e.Kind == agent.EventState && e.JobID == id && e.Thing == "robot-1" {
			states = append(states, e.State)
		}
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{rmwire.StepValidating, rmwire.StepDownloadingExtracting, rmwire.StepExecutingDownloadCondition,
		rmwire.StepExecutingPreLaunch, rmwire.StepLaunching, rmwire.StepExecutingPostLaunch, rmwire.StepFinished}
	if strings.Join(states, " ") != strings.Join(want, " ") {
		t.Fatalf("events file has states %v, want %v", states, want)
	}

	r = start(args)
	robomakertest.WaitRunning(t, dir, id, beat.Pid, 10*time.Second)
	if code := r.stopped(t); code != exitOK {
		t.Fatalf("exit %d: %s", code, r.err.String())
	}
}

// TestRunSigned runs the program against a service that checks signatures, with the robots' keys from the
// environment: it carries a job out. Without them its requests are refused and its job never starts.
func TestRunSigned(t *testing.T) {
	agenttest.LeakTest(t)
	w := robomakertest.Start(t, service.Options{InMemoryStore: true, Auth: &awsapi.SigV4{Keys: map[string]string{"AK": "SK"},
		DeviceKeys: map[string]string{"robot-key": "robot-secret"}}})
	fleetARN, err := w.Register(context.Background(), "lab",
		[]fleet.Device{device{"robot-1"}, device{"robot-2"}})
	if err != nil {
		t.Fatal(err)
	}
	signedDir, unsignedDir := filepath.Join(t.TempDir(), "robot-1"), filepath.Join(t.TempDir(), "robot-2")
	signedRun := &agentRun{stop: make(chan os.Signal, 2), code: make(chan int, 1)}
	go func() {
		signedRun.code <- run([]string{"--endpoint", w.Svc.Endpoint(), "--thing", "robot-1", "--dir", signedDir,
			"--retry-base", "50ms"}, env(map[string]string{"FLEETLAB_DEVICE_ACCESS_KEY": "robot-key",
			"FLEETLAB_DEVICE_SECRET_KEY": "robot-secret"}), &bytes.Buffer{}, &syncWriter{w: &signedRun.err}, signedRun.stop)
	}()
	unsignedRun := start([]string{"--endpoint", w.Svc.Endpoint(), "--thing", "robot-2", "--dir", unsignedDir,
		"--retry-base", "50ms", "--poll-min", "50ms"})
	app, version := w.App("beat", robomakertest.Bundle(map[string]string{
		"hello_robot/launch.sh": robomakertest.HeartbeatApp, "pre_launch.sh": "#!/bin/sh\nexit 0\n",
		"post_launch.sh": "#!/bin/sh\nexit 0\n"}))
	job := w.Deploy(fleetARN, app, version, &types.DeploymentConfig{RobotDeploymentTimeoutInSeconds: aws.Int64(60)})
	id := robomakertest.JobID(job)
	robomakertest.WaitRunning(t, signedDir, id, 0, 20*time.Second)
	deadline := clock.Real{}.Now().Add(20 * time.Second)
	for {
		x, err := w.Svc.Engine.Execution(id, "robot-1")
		if err == nil && x.Status == engine.ExecSucceeded {
			break
		}
		if now := (clock.Real{}).Now(); now.After(deadline) {
			t.Fatalf("the signing robot's execution: %+v, %v", x, err)
		}
		<-clock.Real{}.NewTimer(10 * time.Millisecond).C()
	}
	if x, err := w.Svc.Engine.Execution(id, "robot-2"); err != nil || x.Status != engine.ExecQueued {
		t.Fatalf("the robot without keys got its execution: %+v, %v", x, err)
	}
	for _, r := range []*agentRun{signedRun, unsignedRun} {
		if code := r.stopped(t); code != exitOK {
			t.Fatalf("exit %d: %s", code, r.err.String())
		}
	}
}
