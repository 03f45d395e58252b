package engine_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/sim/clock/clocktest"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/store"
	"github.com/fleetlab/fleetlab/sim/store/storetest"
)

// rig is an engine over a memory store and a fake clock, recording its events.
type rig struct {
	t     *testing.T
	clock *clocktest.Fake
	store store.Store
	eng   *engine.Engine
	mu    sync.Mutex
	evs   []event.Event
}

func newRig(t *testing.T) *rig {
	t.Helper()
	return newRigOn(t, store.NewMemory())
}

// newRigOn is a rig over st.
func newRigOn(t *testing.T, st store.Store) *rig {
	t.Helper()
	r := &rig{t: t, clock: clocktest.New(time.Time{}), store: st}
	r.open()
	return r
}

// events returns how many events the rig has recorded.
func (r *rig) events() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.evs)
}

// open (re)creates the engine over the rig's store, as a restarted service would.
func (r *rig) open() {
	r.t.Helper()
	eng, err := engine.New(engine.Options{Clock: r.clock, Store: r.store, Events: event.SinkFunc(func(e event.Event) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.evs = append(r.evs, e)
	})})
	if err != nil {
		r.t.Fatal(err)
	}
	r.eng = eng
}

func (r *rig) create(spec engine.Spec) engine.Deployment {
	r.t.Helper()
	d, err := r.eng.Create(spec)
	if err != nil {
		r.t.Fatalf("create %s: %v", spec.ID, err)
	}
	return d
}

func (r *rig) dep(id string) engine.Deployment {
	r.t.Helper()
	d, err := r.eng.Deployment(id)
	if err != nil {
		r.t.Fatal(err)
	}
	return d
}

// statuses returns each device's execution status of deployment id, with "+" marking released ones.
func (r *rig) statuses(id string) map[string]string {
	r.t.Helper()
	xs, err := r.eng.Executions(id)
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string]string{}
	for _, x := range xs {
		s := string(x.Status)
		if x.Released {
			s += "+"
		}
		out[x.Device] = s
	}
	return out
}

// start makes device begin its pending execution, failing the test if it has none.
func (r *rig) start(device string) engine.Execution {
	r.t.Helper()
	x, ok, err := r.eng.StartNext(device, engine.Update{Details: map[string]string{"step": "Validating"},
		Reported: engine.StepReport{Step: "Validating"}})
	if err != nil || !ok {
		r.t.Fatalf("start %s: ok=%v err=%v", device, ok, err)
	}
	return x
}

func (r *rig) report(device, id string, s engine.ExecStatus, code string) engine.Execution {
	r.t.Helper()
	u := engine.Update{Status: s}
	if code != "" {
		u.Details = map[string]string{"failureCode": code}
		u.Reported = engine.StepReport{Code: code}
	}
	x, err := r.eng.Report(device, id, u)
	if err != nil {
		r.t.Fatalf("report %s %s: %v", device, s, err)
	}
	return x
}

func devices(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("robot-%02d", i)
	}
	return out
}

func released(r *rig, id string) []string {
	var out []string
	xs, _ := r.eng.Executions(id)
	for _, x := range xs {
		if x.Released {
			out = append(out, x.Device)
		}
	}
	return out
}

func TestBatchRolloutSucceeds(t *testing.T) {
	r := newRig(t)
	devs := devices(10)
	r.create(engine.Spec{ID: "d1", Targets: devs, Pacing: engine.Batch(30)})
	if got := r.dep("d1").Status; got != engine.StatusInProgress {
		t.Fatalf("status %s after create, want InProgress", got)
	}
	if got := released(r, "d1"); !slices.Equal(got, devs[:3]) {
		t.Fatalf("released %v, want the first three", got)
	}
	// A device not released sees nothing.
	if _, ok, _ := r.eng.StartNext(devs[5], engine.Update{}); ok {
		t.Fatal("an unreleased device started an execution")
	}
	for i, dev := range devs {
		r.start(dev)
		r.report(dev, "d1", engine.ExecSucceeded, "")
		// Each success frees a slot at once, without a tick.
		want := min(len(devs), i+4)
		if got := len(released(r, "d1")); got != want {
			t.Fatalf("after %d successes %d released, want %d", i+1, got, want)
		}
	}
	d := r.dep("d1")
	if d.Status != engine.StatusSucceeded || d.Counters.Succeeded != 10 {
		t.Fatalf("deployment %s %+v, want Succeeded with 10 succeeded", d.Status, d.Counters)
	}
}

func TestAbortThresholdBoundary(t *testing.T) {
	robomaker := func(pct float64) []engine.AbortCriterion {
		return []engine.AbortCriterion{{FailureTypes: []engine.ExecStatus{engine.ExecFailed, engine.ExecTimedOut,
			engine.ExecRejected}, Percent: pct, MinExecuted: 1, OfTotal: true, AtLeast: true}}
	}
	iot := func(pct float64, min int) []engine.AbortCriterion {
		return []engine.AbortCriterion{{FailureTypes: []engine.ExecStatus{engine.ExecFailed}, Percent: pct,
			MinExecuted: min}}
	}
	tests := []struct {
		name      string
		abort     []engine.AbortCriterion
		failures  int
		wantAbort bool
	}{
		// 10 targets: 2 failures are 20 % of all.
		{"at least, just below", robomaker(20.01), 2, false},
		{"at least, exactly at", robomaker(20), 2, true},
		{"at least, above", robomaker(15), 2, true},
		{"at least, one failure under 15%", robomaker(15), 1, false},
		// IoT: over the released (all 10 here), must exceed.
		{"exceeds, exactly at does not fire", iot(20, 1), 2, false},
		{"exceeds, above fires", iot(20, 1), 3, true},
		{"exceeds, too few executed", iot(5, 11), 3, false},
		{"exceeds, 2 decimals", iot(19.99, 1), 2, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			devs := devices(10)
			r.create(engine.Spec{ID: "d", Targets: devs, Abort: tc.abort})
			r.eng.Tick()
			for i := 0; i < tc.failures; i++ {
				r.start(devs[i])
				r.report(devs[i], "d", engine.ExecFailed, "PreLaunchFileFailure")
			}
			d := r.dep("d")
			if got := d.Status == engine.StatusAborted; got != tc.wantAbort {
				t.Fatalf("status %s (%s), want aborted=%v", d.Status, d.Reason, tc.wantAbort)
			}
			if tc.wantAbort {
				// Everything not started is canceled as aborted.
				xs, _ := r.eng.Executions("d")
				for _, x := range xs[tc.failures:] {
					if x.Status != engine.ExecCanceled || x.Reason != engine.ReasonAborted {
						t.Errorf("%s: %s %q, want CANCELED aborted", x.Device, x.Status, x.Reason)
					}
				}
			}
		})
	}
}

func TestAbortLeavesInProgressRunning(t *testing.T) {
	r := newRig(t)
	devs := devices(10)
	r.create(engine.Spec{ID: "d", Targets: devs, Pacing: engine.Batch(30), Abort: []engine.AbortCriterion{{
		FailureTypes: []engine.ExecStatus{engine.ExecFailed}, Percent: 15, MinExecuted: 1, OfTotal: true,
		AtLeast: true}}})
	r.eng.Tick()
	for _, d := range devs[:3] {
		r.start(d)
	}
	r.report(devs[0], "d", engine.ExecFailed, "PreLaunchFileFailure")
	r.start(devs[3]) // released into the freed slot
	r.report(devs[1], "d", engine.ExecFailed, "PreLaunchFileFailure")
	if d := r.dep("d"); d.Status != engine.StatusAborted {
		t.Fatalf("status %s, want Aborted", d.Status)
	}
	want := map[string]string{"robot-00": "FAILED+", "robot-01": "FAILED+", "robot-02": "IN_PROGRESS+",
		"robot-03": "IN_PROGRESS+"}
	for _, d := range devs[4:] {
		want[d] = "CANCELED"
	}
	if got := r.statuses("d"); !mapsEqual(got, want) {
		t.Fatalf("statuses %v, want %v", got, want)
	}
	// The robots in progress finish and are recorded; the deployment stays Aborted.
	r.report(devs[2], "d", engine.ExecSucceeded, "")
	if d := r.dep("d"); d.Status != engine.StatusAborted || d.Counters.Succeeded != 1 {
		t.Fatalf("after a late success: %s %+v", d.Status, d.Counters)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestTimeouts(t *testing.T) {
	tests := []struct {
		name     string
		timeouts engine.Timeouts
		act      func(r *rig) // what the device does after release
		stepTO   time.Duration
		advance  time.Duration
		want     engine.ExecStatus
	}{
		{"never answers: execution timeout from release", engine.Timeouts{Execution: time.Minute},
			func(r *rig) {}, 0, time.Minute, engine.ExecTimedOut},
		{"one second early: still queued", engine.Timeouts{Execution: time.Minute},
			func(r *rig) {}, 0, time.Minute - time.Second, engine.ExecQueued},
		{"in progress too long", engine.Timeouts{InProgress: 2 * time.Minute},
			func(r *rig) { r.start("robot-00") }, 0, 2 * time.Minute, engine.ExecTimedOut},
		{"in-progress bound does not count queued time", engine.Timeouts{InProgress: 2 * time.Minute},
			func(r *rig) {}, 0, time.Hour, engine.ExecQueued},
		{"step timeout shortens the bound", engine.Timeouts{InProgress: time.Hour},
			func(r *rig) {
				r.start("robot-00")
				if _, err := r.eng.Report("robot-00", "d", engine.Update{Status: engine.ExecInProgress,
					StepTimeout: time.Minute}); err != nil {
					r.t.Fatal(err)
				}
			}, 0, time.Minute, engine.ExecTimedOut},
		{"a new step timeout resets the step timer", engine.Timeouts{},
			func(r *rig) {
				r.start("robot-00")
				r.eng.Report("robot-00", "d", engine.Update{Status: engine.ExecInProgress, StepTimeout: time.Minute})
				r.clock.Advance(30 * time.Second)
				r.eng.Report("robot-00", "d", engine.Update{Status: engine.ExecInProgress, StepTimeout: time.Minute,
					Details:  map[string]string{"step": "Launching"},
					Reported: engine.StepReport{Step: "Launching"}})
			}, 0, 45 * time.Second, engine.ExecInProgress},
		{"an update without a step timeout keeps the timer", engine.Timeouts{},
			func(r *rig) {
				r.start("robot-00")
				r.eng.Report("robot-00", "d", engine.Update{Status: engine.ExecInProgress, StepTimeout: time.Minute})
				r.clock.Advance(30 * time.Second)
				r.eng.Report("robot-00", "d", engine.Update{Status: engine.ExecInProgress,
					Details:  map[string]string{"step": "Launching"},
					Reported: engine.StepReport{Step: "Launching"}})
			}, 0, 30 * time.Second, engine.ExecTimedOut},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			r.create(engine.Spec{ID: "d", Targets: []string{"robot-00"}, Timeouts: tc.timeouts})
			r.eng.Tick()
			tc.act(r)
			r.clock.Advance(tc.advance)
			r.eng.Tick()
			x, _ := r.eng.Execution("d", "robot-00")
			if x.Status != tc.want {
				t.Fatalf("status %s, want %s", x.Status, tc.want)
			}
			if tc.want == engine.ExecTimedOut {
				if x.Reason != engine.ReasonTimeout {
					t.Errorf("reason %q", x.Reason)
				}
				if d := r.dep("d"); d.Status != engine.StatusFailed {
					t.Errorf("deployment %s, want Failed", d.Status)
				}
				if _, err := r.eng.Report("robot-00", "d", engine.Update{Status: engine.ExecSucceeded}); !errors.Is(err, engine.ErrTerminal) {
					t.Errorf("late report: %v, want ErrTerminal", err)
				}
			}
		})
	}
}

func TestTickReportsNextDeadline(t *testing.T) {
	r := newRig(t)
	r.create(engine.Spec{ID: "d", Targets: devices(3), Pacing: engine.Rate(6),
		Timeouts: engine.Timeouts{Execution: 25 * time.Second}})
	next := r.eng.Tick()
	if want := r.clock.Now().Add(10 * time.Second); !next.Equal(want) {
		t.Fatalf("next %v, want the second release at %v", next, want)
	}
	r.clock.Advance(10 * time.Second)
	r.eng.Tick()
	if got := len(released(r, "d")); got != 2 {
		t.Fatalf("%d released, want 2", got)
	}
	// A fake clock that jumps does not make the rate burst.
	r.clock.Advance(time.Hour)
	r.eng.Tick()
	if got := r.statuses("d"); got["robot-02"] != "QUEUED+" || got["robot-00"] != "TIMED_OUT+" {
		t.Fatalf("statuses %v", got)
	}
}

func TestCancel(t *testing.T) {
	r := newRig(t)
	devs := devices(4)
	r.create(engine.Spec{ID: "d", Targets: devs, Pacing: engine.Batch(50)})
	r.eng.Tick()
	r.start(devs[0])
	d, err := r.eng.Cancel("d", "operator")
	if err != nil || d.Status != engine.StatusCanceled {
		t.Fatalf("cancel: %s %v", d.Status, err)
	}
	want := map[string]string{"robot-00": "IN_PROGRESS+", "robot-01": "CANCELED+", "robot-02": "CANCELED",
		"robot-03": "CANCELED"}
	if got := r.statuses("d"); !mapsEqual(got, want) {
		t.Fatalf("statuses %v, want %v", got, want)
	}
	// The one in progress runs on and reports; nothing more is released.
	r.report(devs[0], "d", engine.ExecSucceeded, "")
	if d := r.dep("d"); d.Status != engine.StatusCanceled {
		t.Fatalf("status %s after a late success", d.Status)
	}
	if _, err := r.eng.Cancel("d", "again"); !errors.Is(err, engine.ErrInvalidTransition) {
		t.Fatalf("second cancel: %v", err)
	}
	if _, ok, _ := r.eng.StartNext(devs[1], engine.Update{}); ok {
		t.Fatal("a canceled execution started")
	}
}

func TestContinuousJoins(t *testing.T) {
	r := newRig(t)
	r.create(engine.Spec{ID: "d", Targets: devices(2), Continuous: true, Pacing: engine.Rate(1)})
	r.eng.Tick()
	r.start("robot-00")
	r.report("robot-00", "d", engine.ExecSucceeded, "")
	// A device that joins is released at once, whatever the rate says.
	if err := r.eng.AddTarget("d", "late"); err != nil {
		t.Fatal(err)
	}
	if got := r.statuses("d")["late"]; got != "QUEUED+" {
		t.Fatalf("late joiner %s, want released", got)
	}
	r.start("late")
	r.report("late", "d", engine.ExecSucceeded, "")
	r.clock.Advance(time.Minute)
	r.eng.Tick()
	r.start("robot-01")
	r.report("robot-01", "d", engine.ExecSucceeded, "")
	if d := r.dep("d"); d.Status != engine.StatusInProgress || d.Counters.Succeeded != 3 {
		t.Fatalf("continuous deployment %s %+v, want InProgress with 3 succeeded", d.Status, d.Counters)
	}
	if err := r.eng.AddTarget("d", "late"); !errors.Is(err, engine.ErrExists) {
		t.Fatalf("second join: %v", err)
	}
	if err := r.eng.RemoveTarget("d", "late"); err != nil {
		t.Fatal(err)
	}
	r.create(engine.Spec{ID: "fixed", Targets: devices(1)})
	if err := r.eng.AddTarget("fixed", "x"); !errors.Is(err, engine.ErrInvalidTransition) {
		t.Fatalf("join to a fixed deployment: %v", err)
	}
}

func TestRemoveTarget(t *testing.T) {
	r := newRig(t)
	r.create(engine.Spec{ID: "d", Targets: devices(2)})
	r.eng.Tick()
	r.start("robot-00")
	if err := r.eng.RemoveTarget("d", "robot-00"); err != nil {
		t.Fatal(err)
	}
	r.report("robot-01", "d", engine.ExecSucceeded, "")
	x, _ := r.eng.Execution("d", "robot-00")
	if x.Status != engine.ExecRemoved {
		t.Fatalf("removed device %s", x.Status)
	}
	if d := r.dep("d"); d.Status != engine.StatusFailed {
		t.Fatalf("deployment %s, want Failed (not every device succeeded)", d.Status)
	}
}

func TestGroups(t *testing.T) {
	r := newRig(t)
	r.create(engine.Spec{ID: "a", Group: "fleet", Targets: devices(1)})
	if _, err := r.eng.Create(engine.Spec{ID: "b", Group: "fleet", Targets: devices(1)}); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("second in group: %v, want ErrConflict", err)
	}
	if _, err := r.eng.Create(engine.Spec{ID: "a", Targets: devices(1)}); !errors.Is(err, engine.ErrExists) {
		t.Fatalf("same id: %v, want ErrExists", err)
	}
	if d, ok := r.eng.Active("fleet"); !ok || d.ID != "a" {
		t.Fatalf("active %v %v", d.ID, ok)
	}
	r.create(engine.Spec{ID: "c", Group: "fleet", OnActive: engine.Allow, Targets: devices(1)})

	r.create(engine.Spec{ID: "rev1", Group: "thing", OnActive: engine.Supersede, Targets: []string{"core"}})
	r.eng.Tick()
	r.create(engine.Spec{ID: "rev2", Group: "thing", OnActive: engine.Supersede, Targets: []string{"core"}})
	if d := r.dep("rev1"); d.Status != engine.StatusSuperseded {
		t.Fatalf("rev1 %s, want Superseded", d.Status)
	}
	if x, _ := r.eng.Execution("rev1", "core"); x.Status != engine.ExecCanceled || x.Reason != engine.ReasonSuperseded {
		t.Fatalf("rev1 execution %s %s", x.Status, x.Reason)
	}
	r.eng.Tick()
	if x := r.start("core"); x.Deployment != "rev2" {
		t.Fatalf("core started %s, want rev2", x.Deployment)
	}
	if x, ok := r.eng.LatestForDevice("core"); !ok || x.Deployment != "rev2" {
		t.Fatalf("latest %v", x.Deployment)
	}
}

func TestBakeAndRollback(t *testing.T) {
	r := newRig(t)
	r.create(engine.Spec{ID: "ok", Targets: devices(1), Bake: 10 * time.Minute})
	r.eng.Tick()
	r.start("robot-00")
	r.report("robot-00", "ok", engine.ExecSucceeded, "")
	d := r.dep("ok")
	if d.Status != engine.StatusBaking {
		t.Fatalf("status %s, want Baking", d.Status)
	}
	if next := r.eng.Tick(); !next.Equal(d.BakeUntil) {
		t.Fatalf("next tick %v, want bake end %v", next, d.BakeUntil)
	}
	r.clock.Advance(10 * time.Minute)
	r.eng.Tick()
	if d := r.dep("ok"); d.Status != engine.StatusSucceeded {
		t.Fatalf("after bake %s", d.Status)
	}

	r.create(engine.Spec{ID: "bad", Targets: []string{"x"}, Bake: 10 * time.Minute})
	r.eng.Tick()
	r.start("x")
	r.report("x", "bad", engine.ExecSucceeded, "")
	r.clock.Advance(5 * time.Minute)
	if d, err := r.eng.Alarm("bad", "alarm: error rate"); err != nil || d.Status != engine.StatusRolledBack {
		t.Fatalf("alarm during bake: %s %v", d.Status, err)
	}
	if _, err := r.eng.Alarm("ok", "late"); !errors.Is(err, engine.ErrInvalidTransition) {
		t.Fatalf("alarm after completion: %v", err)
	}
}

func TestGrowthWaitsForDurationBeforeBake(t *testing.T) {
	r := newRig(t)
	p := engine.Growth(false, 50, 10*time.Minute)
	p.HoldLastStep = true // steps at 3m20s and 6m40s, done at 10m
	r.create(engine.Spec{ID: "g", Targets: devices(2), Pacing: p, Bake: time.Minute})
	for _, at := range []time.Duration{200 * time.Second, 200 * time.Second} {
		r.clock.Advance(at)
		r.eng.Tick()
	}
	for _, dev := range devices(2) {
		r.start(dev)
		r.report(dev, "g", engine.ExecSucceeded, "")
	}
	if d := r.dep("g"); d.Status != engine.StatusInProgress {
		t.Fatalf("status %s before the duration ends, want InProgress", d.Status)
	}
	r.clock.Advance(200 * time.Second)
	r.eng.Tick()
	if d := r.dep("g"); d.Status != engine.StatusBaking {
		t.Fatalf("status %s at the end of the duration, want Baking", d.Status)
	}
}

func TestReportErrors(t *testing.T) {
	r := newRig(t)
	r.create(engine.Spec{ID: "d", Targets: devices(2), Pacing: engine.Batch(50)})
	r.eng.Tick()
	x := r.start("robot-00")
	tests := []struct {
		name   string
		device string
		u      engine.Update
		want   error
	}{
		{"unknown deployment", "robot-00", engine.Update{Status: engine.ExecSucceeded}, engine.ErrNotFound},
		{"not released", "robot-01", engine.Update{Status: engine.ExecInProgress}, engine.ErrNotFound},
		{"device may not time itself out", "robot-00", engine.Update{Status: engine.ExecTimedOut},
			engine.ErrInvalidTransition},
		{"nor go back to queued", "robot-00", engine.Update{Status: engine.ExecQueued}, engine.ErrInvalidTransition},
		{"stale version", "robot-00", engine.Update{Status: engine.ExecSucceeded, ExpectedVersion: x.Version - 1},
			engine.ErrVersionMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := "d"
			if tc.name == "unknown deployment" {
				id = "nope"
			}
			if _, err := r.eng.Report(tc.device, id, tc.u); !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
	got := r.report("robot-00", "d", engine.ExecSucceeded, "")
	if got.Version != x.Version+1 {
		t.Fatalf("version %d after one update from %d", got.Version, x.Version)
	}
	if _, err := r.eng.Report("robot-00", "d", engine.Update{Status: engine.ExecSucceeded}); !errors.Is(err, engine.ErrTerminal) {
		t.Fatalf("update after the end: %v, want ErrTerminal", err)
	}
}

func TestReopenResumes(t *testing.T) {
	r := newRig(t)
	devs := devices(6)
	r.create(engine.Spec{ID: "d", Targets: devs, Pacing: engine.Batch(50), Timeouts: engine.Timeouts{
		Execution: time.Hour}})
	r.eng.Tick()
	r.start(devs[0])
	r.report(devs[0], "d", engine.ExecSucceeded, "")
	r.start(devs[1])
	before := r.statuses("d")

	r.open() // a new engine over the same store: a service restart
	if got := r.statuses("d"); !mapsEqual(got, before) {
		t.Fatalf("after reopen %v, want %v", got, before)
	}
	if d := r.dep("d"); d.Counters.Released != 4 || d.Counters.Succeeded != 1 || d.Counters.InProgress != 1 {
		t.Fatalf("counters after reopen %+v", d.Counters)
	}
	r.eng.Tick()
	for _, dev := range devs[1:] {
		if dev != devs[1] {
			r.start(dev)
		}
		r.report(dev, "d", engine.ExecSucceeded, "")
	}
	if d := r.dep("d"); d.Status != engine.StatusSucceeded {
		t.Fatalf("resumed rollout ended %s", d.Status)
	}
	// A timeout that fell due while the service was down fires on the first tick after the restart.
	r.create(engine.Spec{ID: "late", Targets: []string{"z"}, Timeouts: engine.Timeouts{Execution: time.Minute}})
	r.eng.Tick()
	r.clock.Advance(2 * time.Minute)
	r.open()
	r.eng.Tick()
	if x, _ := r.eng.Execution("late", "z"); x.Status != engine.ExecTimedOut {
		t.Fatalf("after restart past the deadline: %s", x.Status)
	}
}

func TestEventsInOrder(t *testing.T) {
	r := newRig(t)
	r.create(engine.Spec{ID: "d", Targets: []string{"a"}})
	r.eng.Tick()
	r.start("a")
	r.eng.Report("a", "d", engine.Update{Status: engine.ExecInProgress, Details: map[string]string{"step": "Launching"},
		Reported: engine.StepReport{Step: "Launching"}})
	r.report("a", "d", engine.ExecSucceeded, "")
	var got []string
	for i, e := range r.evs {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d", i, e.Seq)
		}
		got = append(got, fmt.Sprintf("%s %s>%s %s", e.Kind, e.From, e.To, e.Step))
	}
	want := []string{
		"deployment.created >Pending ",
		"deployment.state Pending>InProgress ",
		"execution.released >QUEUED ",
		"execution.step > Validating",
		"execution.state QUEUED>IN_PROGRESS Validating",
		"execution.step > Launching",
		"execution.state IN_PROGRESS>SUCCEEDED Launching",
		"deployment.state InProgress>Succeeded ",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events\n%q\nwant\n%q", got, want)
	}
}

// The engine describes executions in events by the typed report alone; the details are the device's, passed
// through, and survive a restart beside it.
func TestEventsCarryTheStepReport(t *testing.T) {
	r := newRig(t)
	r.create(engine.Spec{ID: "d", Targets: []string{"a"}})
	r.eng.Tick()
	r.start("a")
	r.eng.Report("a", "d", engine.Update{Status: engine.ExecInProgress,
		Details:  map[string]string{"step": "Downloading", "percentDone": "40.0"},
		Reported: engine.StepReport{Step: "Downloading", Percent: 12.5}})
	r.open() // the report is on disk: the same step again is no new step
	r.eng.Report("a", "d", engine.Update{Status: engine.ExecInProgress,
		Details: map[string]string{"step": "Downloading"}, Reported: engine.StepReport{Step: "Downloading"}})
	r.eng.Report("a", "d", engine.Update{Status: engine.ExecFailed,
		Details:  map[string]string{"step": "Launching", "failureCode": "X", "reason": "from the map"},
		Reported: engine.StepReport{Step: "Launching", Code: "LaunchFailure", Reason: "exit 2"}})
	var got []string
	for _, e := range r.evs {
		if e.Kind == event.ExecutionStep || e.Kind == event.ExecutionState {
			got = append(got, fmt.Sprintf("%s %s %v %s %s", e.Kind, e.Step, e.Percent, e.Code, e.Reason))
		}
	}
	want := []string{
		"execution.step Validating 0  ",
		"execution.state Validating 0  ",
		"execution.step Downloading 12.5  ",
		"execution.step Launching 0  ",
		"execution.state Launching 0 LaunchFailure exit 2",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events\n%q\nwant\n%q", got, want)
	}
	x, err := r.eng.Execution("d", "a")
	if err != nil || x.Details["failureCode"] != "X" || x.Reported.Code != "LaunchFailure" {
		t.Fatalf("execution details %v, report %+v (%v)", x.Details, x.Reported, err)
	}
}

func TestCreateRejectsBadSpecs(t *testing.T) {
	r := newRig(t)
	bad := []engine.Spec{
		{},
		{ID: "x", Targets: []string{"a", "a"}},
		{ID: "x", Targets: []string{""}},
		{ID: "x", Pacing: engine.Batch(0)},
		{ID: "x", Abort: []engine.AbortCriterion{{Percent: 10}}},
		{ID: "x", Abort: []engine.AbortCriterion{{Percent: 101, FailureTypes: []engine.ExecStatus{engine.ExecFailed}}}},
		{ID: "x", Timeouts: engine.Timeouts{Execution: -1}},
	}
	for _, s := range bad {
		if _, err := r.eng.Create(s); !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", s, err)
		}
	}
	if len(r.eng.Deployments("")) != 0 {
		t.Fatal("a rejected spec was stored")
	}
}

// TestJoinedDeviceSurvivesRestart adds a device to a continuous deployment after it started, restarts the
// engine on the same store, and checks the device is still offered its execution, can run it, and times out on
// the schedule set when it joined.
func TestJoinedDeviceSurvivesRestart(t *testing.T) {
	r := newRig(t)
	r.create(engine.Spec{ID: "d", Targets: devices(1), Continuous: true, Pacing: engine.Rate(60),
		Timeouts: engine.Timeouts{Execution: 10 * time.Minute}})
	r.eng.Tick()
	if err := r.eng.AddTarget("d", "late"); err != nil {
		t.Fatal(err)
	}
	if err := r.eng.AddTarget("d", "later"); err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(time.Minute)

	r.open()
	_, queued := r.eng.Pending("late")
	if len(queued) != 1 || queued[0].Deployment != "d" {
		t.Fatalf("after restart the joined device is offered %v, want its execution of d", queued)
	}
	if x, ok := r.eng.LatestForDevice("late"); !ok || x.Deployment != "d" {
		t.Fatalf("latest execution of the joined device after restart: %+v, %v", x, ok)
	}
	r.start("late")
	r.report("late", "d", engine.ExecSucceeded, "")

	// "later" never answers: it times out ten minutes after it joined, not later and not never.
	r.clock.Advance(8*time.Minute + 59*time.Second)
	r.eng.Tick()
	if x, _ := r.eng.Execution("d", "later"); x.Status != engine.ExecQueued {
		t.Fatalf("joined device before its deadline: %s", x.Status)
	}
	r.clock.Advance(time.Second)
	r.eng.Tick()
	if x, _ := r.eng.Execution("d", "later"); x.Status != engine.ExecTimedOut {
		t.Fatalf("joined device at its deadline: %s, want %s", x.Status, engine.ExecTimedOut)
	}
}

// view is everything the engine shows of its state, as JSON so times compare by value: every deployment with
// its executions, what each device is offered, each device's latest execution and each group's active
// deployment.
func (r *rig) view(devs []string, groups []string) string {
	r.t.Helper()
	type devView struct {
		InProgress, Queued []engine.Execution
		Latest             *engine.Execution
	}
	v := struct {
		Deployments []engine.Deployment
		Executions  map[string][]engine.Execution
		Devices     map[string]devView
		Active      map[string]string
	}{Deployments: r.eng.Deployments(""), Executions: map[string][]engine.Execution{},
		Devices: map[string]devView{}, Active: map[string]string{}}
	for _, d := range v.Deployments {
		xs, err := r.eng.Executions(d.ID)
		if err != nil {
			r.t.Fatal(err)
		}
		v.Executions[d.ID] = xs
	}
	for _, dev := range devs {
		var dv devView
		dv.InProgress, dv.Queued = r.eng.Pending(dev)
		if x, ok := r.eng.LatestForDevice(dev); ok {
			dv.Latest = &x
		}
		v.Devices[dev] = dv
	}
	for _, g := range groups {
		if d, ok := r.eng.Active(g); ok {
			v.Active[g] = d.ID
		}
	}
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		r.t.Fatal(err)
	}
	return string(b)
}

// TestControlOperationsAllOrNothing fails each write of every control operation in turn — once, and from that
// write on — and checks that the operation fails, that the engine shows exactly what it showed before, delivers
// no event of it, stays so after a Tick, and shows the same after a restart on the same store.
func TestControlOperationsAllOrNothing(t *testing.T) {
	devs := append(devices(4), "late", "gone")
	groups := []string{"fleet"}
	// setup builds the state the operation starts from; op is the operation.
	tests := []struct {
		name  string
		setup func(r *rig)
		op    func(e *engine.Engine) error
	}{
		{"create", func(r *rig) {}, func(e *engine.Engine) error {
			_, err := e.Create(engine.Spec{ID: "new", Group: "fleet", Targets: devices(4), Pacing: engine.Batch(50),
				Timeouts: engine.Timeouts{Execution: time.Minute}})
			return err
		}},
		{"create-superseding", func(r *rig) {
			r.create(engine.Spec{ID: "old", Group: "fleet", Targets: devices(4), Pacing: engine.Batch(50)})
			r.eng.Tick()
			r.start("robot-00")
		}, func(e *engine.Engine) error {
			_, err := e.Create(engine.Spec{ID: "new", Group: "fleet", OnActive: engine.Supersede, Targets: devices(4),
				Timeouts: engine.Timeouts{Execution: time.Minute}})
			return err
		}},
		{"create-with-record", func(r *rig) {}, func(e *engine.Engine) error {
			_, err := e.CreateWith(engine.Spec{ID: "new", Targets: devices(2)}, func(tx store.Tx) error {
				if err := tx.Put("dialect.jobs", "new", []byte("{}")); err != nil {
					return err
				}
				return tx.Put("dialect.index", "job/new", []byte("new"))
			})
			return err
		}},
		{"cancel", func(r *rig) {
			r.create(engine.Spec{ID: "d", Group: "fleet", Targets: devices(4), Pacing: engine.Batch(50)})
			r.eng.Tick()
			r.start("robot-00")
		}, func(e *engine.Engine) error {
			_, err := e.Cancel("d", "by test")
			return err
		}},
		{"alarm", func(r *rig) {
			r.create(engine.Spec{ID: "d", Targets: devices(4), Bake: time.Hour})
			r.eng.Tick()
		}, func(e *engine.Engine) error {
			_, err := e.Alarm("d", "alarm")
			return err
		}},
		{"add-target-started", func(r *rig) {
			r.create(engine.Spec{ID: "d", Targets: devices(2), Continuous: true, Pacing: engine.Rate(60),
				Timeouts: engine.Timeouts{Execution: time.Minute}})
			r.eng.Tick()
		}, func(e *engine.Engine) error { return e.AddTarget("d", "late") }},
		{"add-target-pending", func(r *rig) {
			r.create(engine.Spec{ID: "d", Targets: devices(2), Continuous: true, Start: r.clock.Now().Add(time.Hour)})
		}, func(e *engine.Engine) error { return e.AddTarget("d", "late") }},
		{"remove-target", func(r *rig) {
			r.create(engine.Spec{ID: "d", Targets: append(devices(2), "gone"), Pacing: engine.Batch(34),
				Abort: []engine.AbortCriterion{{FailureTypes: []engine.ExecStatus{engine.ExecFailed}, Percent: 50}}})
			r.eng.Tick()
			r.start("robot-00")
			r.report("robot-00", "d", engine.ExecFailed, "")
			r.start("robot-01")
		}, func(e *engine.Engine) error { return e.RemoveTarget("d", "robot-01") }},
	}
	for _, tc := range tests {
		for _, sticky := range []bool{false, true} {
			for n := 1; ; n++ {
				fs := storetest.NewFailing(store.NewMemory())
				r := newRigOn(t, fs)
				tc.setup(r)
				r.eng.Tick()
				before, events := r.view(devs, groups), r.events()
				fs.FailAt(n, sticky)
				err := tc.op(r.eng)
				fired := fs.Fired()
				fs.Disarm()
				if fired == 0 {
					if err != nil {
						t.Fatalf("%s: %v", tc.name, err)
					}
					if n == 1 {
						t.Fatalf("%s wrote nothing", tc.name)
					}
					break // every write of the operation has been failed once
				}
				label := fmt.Sprintf("%s, write %d failed (sticky %v)", tc.name, n, sticky)
				if !errors.Is(err, storetest.ErrInjected) {
					t.Fatalf("%s: the operation returned %v", label, err)
				}
				if got := r.view(devs, groups); got != before {
					t.Fatalf("%s: the engine shows\n%s\nwant, as before,\n%s", label, got, before)
				}
				if got := r.events(); got != events {
					t.Fatalf("%s: %d events delivered, %d before", label, got, events)
				}
				r.eng.Tick()
				if got := r.view(devs, groups); got != before {
					t.Fatalf("%s, then a tick: the engine shows\n%s\nwant, as before,\n%s", label, got, before)
				}
				r.open()
				if got := r.view(devs, groups); got != before {
					t.Fatalf("%s, then a restart: the engine shows\n%s\nwant, as before,\n%s", label, got, before)
				}
				if err := fs.View(func(tx store.Tx) error {
					_, err := tx.Get("dialect.jobs", "new")
					return err
				}); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("%s: the dialect's record was kept: %v", label, err)
				}
			}
		}
	}
}
