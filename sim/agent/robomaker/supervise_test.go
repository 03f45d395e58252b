package robomaker_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
)

// abandon ends the agent as its own death would — Run stops, nothing is closed — leaving the application (and the
// launcher holding it) as they were; the next start finds them.
func (r *robot) abandon() {
	r.t.Helper()
	r.cancel()
	if err := <-r.done; err != nil {
		r.t.Errorf("Run: %v", err)
	}
	r.a = nil
}

// TestSimLauncherKeepsTheContract: in the in-memory family a device whose launcher outlives the agent (the agent
// died, the device did not) has its application adopted by the next agent — no second start — and a launcher
// running something else than the active version has it stopped and the active one started.
func TestSimLauncherKeepsTheContract(t *testing.T) {
	tb := newTestbed(t)
	r := newRobot(t, "memory", tb, "robot-1")
	l := agent.NewSimLauncher()
	withLauncher := func(o *agent.Options) { o.Executors.Launcher = l }
	r.start(withLauncher)
	tb.enqueue(t, r.thing, deploy{job: "job-1", version: "1", bundle: bundles.Hello})
	r.waitEnded("job-1")
	v1 := l.Running()
	if agent.VersionJob(v1) != "job-1" || l.Starts() != 1 {
		t.Fatalf("running %q after %d starts, want job-1's version started once", v1, l.Starts())
	}
	r.abandon()
	r.rec = &recorder{}
	r.start(withLauncher)
	agenttest.Eventually(10*time.Second, func() bool { return r.rec.count(agent.EventAdopted, "") > 0 })
	if l.Running() != v1 || l.Starts() != 1 || l.Adoptions() != 1 || r.rec.count(agent.EventAdopted, "") != 1 {
		t.Fatalf("after the restart: running %q, %d starts, %d adoptions, %d adopted events; want %s adopted",
			l.Running(), l.Starts(), l.Adoptions(), r.rec.count(agent.EventAdopted, ""), v1)
	}

	// The launcher runs another version than the active one (the agent died between starting it and switching):
	// the next agent stops it and starts the active version.
	r.abandon()
	other, err := r.versions.Open(v1)
	if err != nil {
		t.Fatal(err)
	}
	other.ID = "job-0@0000000000000000"
	if err := l.Start(context.Background(), agent.App{Version: other, Package: bundles.Package, LaunchFile: bundles.LaunchFile}); err != nil {
		t.Fatal(err)
	}
	r.start(withLauncher)
	if !agenttest.Eventually(10*time.Second, func() bool { return l.Running() == v1 }) || l.Starts() != 3 {
		t.Fatalf("running %q after %d starts, want the active %s started again", l.Running(), l.Starts(), v1)
	}
}

// TestSameJobIDAnotherDocument: a robot that installed job-1 is given a job with the same id and another document
// — another service's job-1 — whose pre-launch file fails. It must carry it out, not report it in sync: the
// scripts run and the failure is reported, and the robot keeps what it ran.
func TestSameJobIDAnotherDocument(t *testing.T) {
	for _, family := range families {
		t.Run(family, func(t *testing.T) {
			tb := newTestbed(t)
			r := newRobot(t, family, tb, "robot-1")
			r.start(nil)
			tb.enqueue(t, r.thing, deploy{job: "job-1", version: "1", bundle: bundles.Hello})
			r.waitEnded("job-1")
			r.stop()

			other := newTestbed(t) // a second service, whose ids repeat the first one's
			r.tb = other
			r.rec = &recorder{}
			r.start(nil)
			other.enqueue(t, r.thing, deploy{job: "job-1", version: "9", bundle: bundles.PreLaunchExit3})
			e := r.waitEnded("job-1")
			if e.Status != wire.StatusFailed || e.StatusDetails[wire.DetailFailureCode] != rmwire.CodePreLaunchFileFailure {
				t.Fatalf("the second job-1 ended %s %v, want FAILED with PreLaunchFileFailure", e.Status, e.StatusDetails)
			}
			want := []string{V, DE, EDC, EPL, failed(rmwire.CodePreLaunchFileFailure)}
			if got := r.rec.chain("job-1"); !reflect.DeepEqual(got, want) {
				t.Fatalf("chain %q, want %q", got, want)
			}
			r.checkRunning("job-1", "1")
			st := loadState(t, r)
			if st.Current == nil || installedVersion(t, *st.Current) != "1" || st.Current.Digest == "" {
				t.Fatalf("current %+v, want version 1 of the first service, with its digest", st.Current)
			}

			// The same document again is in sync at once: the digest is of what was installed.
			third := newTestbed(t)
			r.stop()
			r.tb = third
			r.rec = &recorder{}
			r.start(nil)
			third.enqueue(t, r.thing, deploy{job: "job-1", version: "1", bundle: bundles.Hello})
			if e := r.waitEnded("job-1"); e.Status != wire.StatusSucceeded {
				t.Fatalf("job-1 again ended %s", e.Status)
			}
			if got := r.rec.chain("job-1"); !reflect.DeepEqual(got, []string{V, Fin}) {
				t.Fatalf("chain of the installed document %q, want Validating then Finished", got)
			}
		})
	}
}

// TestStateWithoutDigest: the state an older agent wrote names versions by job id alone, and has no kind.
// Its version still runs at boot, but it matches no job: the same job id is carried out again, scripts and all.
func TestStateWithoutDigest(t *testing.T) {
	tb := newTestbed(t)
	r := newRobot(t, "os", tb, "robot-1")
	r.start(nil)
	tb.enqueue(t, r.thing, deploy{job: "job-1", version: "1", bundle: bundles.Hello})
	r.waitEnded("job-1")
	r.stop()
	// Rewrite the device as the older agent laid it out: versions/job-1, no digest in the state.
	st := loadState(t, r)
	vid := st.Current.VersionID()
	if err := os.Rename(filepath.Join(r.dir, "versions", vid), filepath.Join(r.dir, "versions", "job-1")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(r.dir, "current")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("versions", "job-1"), filepath.Join(r.dir, "current")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(r.dir, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	old := strings.Replace(string(b), `"digest": "`+st.Current.Digest+`",`, "", 1)
	if old == string(b) {
		t.Fatalf("no digest in the state to remove: %s", b)
	}
	// Nor a kind: versions were all RoboMaker's then.
	noKind := strings.ReplaceAll(old, `"kind": "robomaker",`, "")
	if noKind == old {
		t.Fatalf("no kind in the state to remove: %s", b)
	}
	old = noKind
	if err := os.WriteFile(filepath.Join(r.dir, "state.json"), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}

	r.rec = &recorder{}
	r.start(nil)
	if !agenttest.Eventually(10*time.Second, func() bool { return r.a.Executors().Launcher.Running() == "job-1" }) {
		t.Fatalf("running %q, want the old layout's version job-1 started at boot", r.a.Executors().Launcher.Running())
	}
	r.checkRunning("job-1", "1")
	tb.enqueue(t, r.thing, deploy{job: "job-1", version: "2", bundle: bundles.PostLaunchExit4})
	e := r.waitEnded("job-1")
	want := []string{V, DE, EDC, EPL, L, EPoL, RB, failed(rmwire.CodePostLaunchFileFailure)}
	if got := r.rec.chain("job-1"); e.Status != wire.StatusFailed || !reflect.DeepEqual(got, want) {
		t.Fatalf("job-1 on old state ended %s with chain %q, want FAILED after %q", e.Status, got, want)
	}
	r.checkRunning("job-1", "1")
	if got := r.a.Executors().Launcher.Running(); got != "job-1" {
		t.Fatalf("running %q after the rollback, want the old layout's version job-1", got)
	}
}
