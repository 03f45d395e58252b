package process_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness/robomaker/robomakertest"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/fleet/process"
	"github.com/fleetlab/fleetlab/sim/service"
)

// appProcesses returns the live application processes of the robot whose device directory is dir — the shell
// running the launch file, with the robot's data directory in its environment — by pid, each with the job id of
// the version it runs. It looks at /proc, not at anything the agent says.
func appProcesses(dir string) map[int]string {
	out := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	data := []byte("ROBOT_DATA_DIR=" + filepath.Join(dir, "data"))
	launch := []byte("/" + bundles.Package + "/" + bundles.LaunchFile)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !alive(pid) {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !bytes.Contains(cmdline, launch) || !leadsGroup(pid) {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue
		}
		mine, job := false, ""
		for _, kv := range bytes.Split(env, []byte{0}) {
			if bytes.Equal(kv, data) {
				mine = true
			}
			if v, ok := bytes.CutPrefix(kv, []byte("DEPLOYMENT_JOB_ID=")); ok {
				job = string(v)
			}
		}
		if mine {
			out[pid] = job
		}
	}
	return out
}

// trigger counts the events of each robot, for kills placed at the k-th event from now.
type trigger struct {
	mu     sync.Mutex
	counts map[string]int
	wake   chan struct{}
}

func (tr *trigger) on(device string, e agent.Event) {
	tr.mu.Lock()
	tr.counts[device]++
	tr.mu.Unlock()
	select {
	case tr.wake <- struct{}{}:
	default:
	}
}

func (tr *trigger) count(device string) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.counts[device]
}

// TestKillLoop kills the agent of a robot — the agent alone, with SIGKILL, its application living on — at random
// points of two deployments and restarts it at once, ten times over: during a deployment that succeeds and during
// one whose post-launch file fails and rolls back, at any event of the agent (a step entered, a resume, an
// adoption, the notify channel coming up). Each point is the k-th event of a robot from the moment the kill is
// planned, robot and k drawn from a seeded source. Afterwards every robot runs exactly one application process —
// counted in /proc — of the version its device state and the service report; once the fleet is closed, none.
func TestKillLoop(t *testing.T) {
	const seed, kills = 20260107, 10
	rng := rand.New(rand.NewPCG(seed, 0))
	w := robomakertest.Start(t, service.Options{InMemoryStore: true})
	var rec agenttest.Events
	tr := &trigger{counts: map[string]int{}, wake: make(chan struct{}, 1)}
	f := newFleet(t, w, process.Options{Count: 3, OnEvent: func(d string, e agent.Event) {
		rec.On(d, e)
		tr.on(d, e)
	}})
	fleetARN := register(t, w, f.Devices())
	all := &types.DeploymentConfig{ConcurrentDeploymentPercentage: aws.Int32(100)}

	app1, v1 := w.App("v1", appBundle("", ""))
	if out := w.WaitJob(w.Deploy(fleetARN, app1, v1, all), 30*time.Second); out.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("v1: %s %v", out.Status, robomakertest.Summary(out))
	}

	killed := 0
	var plan []string
	// killSome kills robots at random points of job until it ends or n kills are done.
	killSome := func(job string, n int) {
		id := robomakertest.JobID(job)
		for done := 0; done < n; {
			var open []*process.Device
			for _, d := range f.Robots() {
				if x, err := w.Svc.Engine.Execution(id, d.Name()); err == nil && !x.Status.Terminal() {
					open = append(open, d)
				}
			}
			if len(open) == 0 {
				return
			}
			d := open[rng.IntN(len(open))]
			k := 1 + rng.IntN(8)
			at := tr.count(d.Name()) + k
			real := clock.Real{}
			deadline := real.Now().Add(10 * time.Second)
			for tr.count(d.Name()) < at && real.Now().Before(deadline) {
				if x, err := w.Svc.Engine.Execution(id, d.Name()); err == nil && x.Status.Terminal() {
					break // it ended meanwhile: kill it now, idle
				}
				select {
				case <-tr.wake:
				case <-real.NewTimer(10 * time.Millisecond).C():
				}
			}
			if err := d.Kill(); err != nil {
				t.Fatal(err)
			}
			last := "start"
			if es := rec.Of(d.Name()); len(es) > 0 {
				last = string(es[len(es)-1].Kind) + ":" + es[len(es)-1].State
			}
			if err := d.Restart(t.Context()); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, fmt.Sprintf("%s after %s", d.Name(), last))
			done++
			killed++
		}
	}

	app2, v2 := w.App("v2", appBundle("sleep 0.2", "sleep 0.2"))
	job2 := w.Deploy(fleetARN, app2, v2, all)
	killSome(job2, kills/2)
	if out := w.WaitJob(job2, 40*time.Second); out.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("v2 after kills %v: %s %v", plan, out.Status, robomakertest.Summary(out))
	}
	app3, v3 := w.App("v3", appBundle("sleep 0.2", "sleep 0.2; exit 4"))
	job3 := w.Deploy(fleetARN, app3, v3, all)
	killSome(job3, kills-killed)
	out := w.WaitJob(job3, 40*time.Second)
	for killed < kills { // the rest land on idle robots, which must adopt their application
		d := f.Robots()[rng.IntN(len(f.Robots()))]
		if err := d.Kill(); err != nil {
			t.Fatal(err)
		}
		if err := d.Restart(t.Context()); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, d.Name()+"@idle")
		killed++
	}
	t.Logf("seed %d, kills %v", seed, plan)

	want := robomakertest.JobID(job2) // v3 failed everywhere and rolled back to v2
	for _, d := range f.Robots() {
		if got := robomakertest.Summary(out)[d.Name()]; got != "Failed/PostLaunchFileFailure" {
			t.Errorf("%s is %s in the failing job, want Failed/PostLaunchFileFailure", d.Name(), got)
		}
		var apps map[int]string
		var beat robomakertest.Heartbeat
		if !robomakertest.Eventually(15*time.Second, func() bool {
			apps = appProcesses(d.Dir())
			b, err := robomakertest.ReadHeartbeat(d.Dir())
			beat = b
			return err == nil && len(apps) == 1 && apps[b.Pid] == want && b.Job == want
		}) {
			t.Errorf("%s runs application processes %v (pid: job), heartbeat %+v; want exactly one, of %s (kills %v)",
				d.Name(), apps, beat, want, plan)
			continue
		}
		robomakertest.WaitRunning(t, d.Dir(), want, 0, 10*time.Second)
		if apps := appProcesses(d.Dir()); len(apps) != 1 || apps[beat.Pid] != want {
			t.Errorf("%s runs %v once its heartbeat moved on, want only %d of %s", d.Name(), apps, beat.Pid, want)
		}
		st, err := d.State()
		if err != nil || st.Current == nil || st.Current.JobID != want || st.InFlight != nil {
			t.Errorf("%s state: current %+v, in flight %+v (%v); want %s committed", d.Name(), st.Current, st.InFlight, err, want)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for _, d := range f.Robots() {
		if apps := appProcesses(d.Dir()); len(apps) > 0 {
			t.Errorf("%s: application processes %v outlived Close", d.Name(), apps)
		}
		if left := robomakertest.DeviceProcesses(d.Dir()); len(left) > 0 {
			t.Errorf("%s: processes %v of the robot outlived Close", d.Name(), left)
		}
	}
}

// TestKilledAgentAdopts: an agent killed alone leaves its application running; the next agent adopts that very
// process — the heartbeat goes on from the same pid, nothing is started — and a clean SIGTERM of the agent, with
// nothing else killed, leaves no application behind.
func TestKilledAgentAdopts(t *testing.T) {
	w := robomakertest.Start(t, service.Options{InMemoryStore: true})
	var rec agenttest.Events
	f := newFleet(t, w, process.Options{Count: 1, OnEvent: rec.On})
	d, _ := f.Robot("robot-0001")
	app, version := w.App("beat", appBundle("", ""))
	job := w.Deploy(register(t, w, f.Devices()), app, version, nil)
	if out := w.WaitJob(job, 30*time.Second); out.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("job %s: %v", out.Status, robomakertest.Summary(out))
	}
	id := robomakertest.JobID(job)
	beat := robomakertest.WaitRunning(t, d.Dir(), id, 0, 10*time.Second)
	for range 3 {
		if err := d.Kill(); err != nil {
			t.Fatal(err)
		}
		if !alive(beat.Pid) {
			t.Fatalf("the application %d died with its agent", beat.Pid)
		}
		adoptions := count(rec.Of(d.Name()), agent.EventAdopted)
		if err := d.Restart(t.Context()); err != nil {
			t.Fatal(err)
		}
		if !robomakertest.Eventually(10*time.Second, func() bool { return count(rec.Of(d.Name()), agent.EventAdopted) > adoptions }) {
			t.Fatalf("the restarted agent did not adopt the application: events %+v", rec.Of(d.Name()))
		}
		if apps := appProcesses(d.Dir()); len(apps) != 1 || apps[beat.Pid] != id {
			t.Fatalf("application processes %v, want only the adopted %d", apps, beat.Pid)
		}
	}
	// The adopted application is the agent's to stop: a clean stop of the agent alone ends it.
	agentPid := d.Pid()
	if err := syscall.Kill(agentPid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !robomakertest.Eventually(20*time.Second, func() bool { return !d.Running() }) {
		t.Fatal("the agent did not stop on SIGTERM")
	}
	if apps := appProcesses(d.Dir()); len(apps) != 0 {
		t.Fatalf("application processes %v outlived the clean stop of the agent", apps)
	}
}

func count(es []agent.Event, kind agent.EventKind) int {
	n := 0
	for _, e := range es {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// leadsGroup reports whether pid leads its process group. Every application the agent launches does; a child
// the launch script forks (its sleep, its mv) shares the script's group and, until it execs, its command line
// and environment, so counting it would see a second application that is only the first one's fork.
func leadsGroup(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return false
	}
	f := strings.Fields(string(b[i+1:])) // state, ppid, pgrp, …
	return len(f) > 2 && f[2] == strconv.Itoa(pid)
}
