package robomaker_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
)

// killAt cuts the robot's power when job enters state: Run stops there, as in a crash.
func (r *robot) killAt(job, state string, kind agent.EventKind) <-chan struct{} {
	hit := make(chan struct{})
	fired := false
	r.rec.setHook(func(e agent.Event) {
		if !fired && e.Kind == kind && e.JobID == job && e.State == state {
			fired = true
			r.cancel()
			close(hit)
		}
	})
	return hit
}

// restart starts the agent again over the same device storage, with a fresh event record.
func (r *robot) restart() {
	r.t.Helper()
	r.stop()
	r.rec = &recorder{}
	r.start(nil)
}

// TestResume cuts the power at each step of job-2 and starts the agent again: the execution must end
// correctly, and the robot run the previous version whenever the new one did not finish.
func TestResume(t *testing.T) {
	tests := []struct {
		name      string
		bundle    string
		killAt    string
		whileDown func(t *testing.T, tb *testbed, thing string)
		want      []string // chain after the restart
		status    string
		running   string
	}{
		{name: "validating", bundle: bundles.Hello, killAt: V, want: cleanChain, status: wire.StatusSucceeded, running: "job-2"},
		{name: "pre-launch", bundle: bundles.Hello, killAt: EPL, want: []string{EPL, L, EPoL, Fin}, status: wire.StatusSucceeded, running: "job-2"},
		{name: "pre-launch, the script fails after the restart", bundle: bundles.PreLaunchExit3, killAt: EPL,
			want: []string{EPL, failed(rmwire.CodePreLaunchFileFailure)}, status: wire.StatusFailed, running: "job-1"},
		{name: "launching", bundle: bundles.Hello, killAt: L, want: []string{L, EPoL, Fin}, status: wire.StatusSucceeded, running: "job-2"},
		{name: "post-launch, after the switch", bundle: bundles.Hello, killAt: EPoL, want: []string{EPoL, Fin}, status: wire.StatusSucceeded, running: "job-2"},
		{name: "post-launch, the script fails after the restart", bundle: bundles.PostLaunchExit4, killAt: EPoL,
			want: []string{EPoL, RB, failed(rmwire.CodePostLaunchFileFailure)}, status: wire.StatusFailed, running: "job-1"},
		{name: "rolling back", bundle: bundles.PostLaunchExit4, killAt: RB,
			want: []string{RB, failed(rmwire.CodePostLaunchFileFailure)}, status: wire.StatusFailed, running: "job-1"},
		{name: "launching, timed out while down", bundle: bundles.Hello, killAt: L,
			whileDown: func(t *testing.T, tb *testbed, thing string) { tb.svc.End(thing, "job-2", wire.StatusTimedOut) },
			want:      []string{agent.StateAbandoned}, status: wire.StatusTimedOut, running: "job-1"},
		{name: "post-launch, canceled while down", bundle: bundles.Hello, killAt: EPoL,
			whileDown: func(t *testing.T, tb *testbed, thing string) { tb.svc.End(thing, "job-2", wire.StatusCanceled) },
			want:      []string{agent.StateAbandoned}, status: wire.StatusCanceled, running: "job-1"},
		{name: "pre-launch, timed out and queued again while down", bundle: bundles.Hello, killAt: EPL,
			whileDown: func(t *testing.T, tb *testbed, thing string) {
				tb.svc.End(thing, "job-2", wire.StatusTimedOut)
				tb.enqueue(t, thing, deploy{job: "job-2", version: "2", bundle: bundles.Hello})
			},
			want:   []string{agent.StateAbandoned, V, DE, EDC, EPL, L, EPoL, Fin},
			status: wire.StatusSucceeded, running: "job-2"},
		{name: "finished, committed but not reported", bundle: bundles.Hello, killAt: Fin, want: []string{Fin}, status: wire.StatusSucceeded, running: "job-2"},
		{name: "failed, not reported", bundle: bundles.PreLaunchExit3, killAt: agent.StateFailed,
			want: []string{failed(rmwire.CodePreLaunchFileFailure)}, status: wire.StatusFailed, running: "job-1"},
	}
	for _, family := range families {
		for _, tt := range tests {
			t.Run(family+"/"+tt.name, func(t *testing.T) {
				tb := newTestbed(t)
				r := newRobot(t, family, tb, "robot-1")
				r.start(nil)
				tb.enqueue(t, r.thing, deploy{job: "job-1", version: "1", bundle: bundles.Hello})
				r.waitEnded("job-1")

				hit := r.killAt("job-2", tt.killAt, agent.EventState)
				tb.enqueue(t, r.thing, deploy{job: "job-2", version: "2", bundle: tt.bundle})
				<-hit
				r.stop()
				st := loadState(t, r)
				if st.InFlight == nil || st.InFlight.JobID != "job-2" || st.InFlight.Step != tt.killAt {
					t.Fatalf("state after the cut: in flight %+v, want job-2 at %s", st.InFlight, tt.killAt)
				}
				if tt.whileDown != nil {
					tt.whileDown(t, tb, r.thing)
				}
				r.rec = &recorder{}
				r.start(nil)
				e := r.waitEnded("job-2")
				if e.Status != tt.status {
					t.Fatalf("job-2 is %s, want %s", e.Status, tt.status)
				}
				if n := r.rec.count(agent.EventResume, "job-2"); n != 1 {
					t.Errorf("%d resume events, want 1", n)
				}
				if got := r.rec.chain("job-2"); !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("chain after the restart %q\nwant %q", got, tt.want)
				}
				finals := 0
				for _, u := range tb.svc.Updates(r.thing, "job-2") {
					if u.Status != wire.StatusInProgress {
						finals++
					}
				}
				// The service's own endings (timed out, canceled) are not reported by the agent.
				if want := map[bool]int{true: 1, false: 0}[tt.status == wire.StatusSucceeded || tt.status == wire.StatusFailed]; finals != want {
					t.Errorf("%d final reports of the latest execution, want %d", finals, want)
				}
				r.checkRunning(tt.running, map[string]string{"job-1": "1", "job-2": "2"}[tt.running])
				st = loadState(t, r)
				if st.Current == nil || st.Current.JobID != tt.running {
					t.Errorf("current %+v, want %s", st.Current, tt.running)
				}
				if tt.running == "job-1" {
					if _, err := r.a.Executors().Versions.Open("job-2"); err == nil {
						t.Error("the unfinished version is still on the device")
					}
				}
			})
		}
	}
}

func loadState(t *testing.T, r *robot) agent.DeviceState {
	t.Helper()
	var s agent.StateStore = r.state
	if r.family == "os" {
		s = agent.NewFileState(filepath.Join(r.dir, "state.json"))
	}
	st, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestResumeInterruptedDownload cuts the connection mid-body, then the power: the restarted agent resumes
// the download from the bytes it kept, with a Range request.
func TestResumeInterruptedDownload(t *testing.T) {
	for _, family := range families {
		t.Run(family, func(t *testing.T) {
			tb := newTestbed(t)
			r := newRobot(t, family, tb, "robot-1")
			r.start(nil)
			key := "job-2/" + bundles.Hello + ".tar.gz"
			tb.svc.CutObject(bucket, key, 150)
			hit := r.killAt("job-2", DE, agent.EventRetry)
			tb.enqueue(t, r.thing, deploy{job: "job-2", version: "2", bundle: bundles.Hello})
			<-hit
			r.stop()
			if r.family == "os" {
				f := loadState(t, r).InFlight
				part := agent.VersionID(f.JobID, agent.DocumentDigest(f.Document)) + ".bundle.part"
				fi, err := os.Stat(filepath.Join(r.dir, "downloads", part))
				if err != nil || fi.Size() != 150 {
					t.Fatalf("staged part %v, %v; want the 150 bytes that arrived", fi, err)
				}
			}
			r.rec = &recorder{}
			r.start(nil)
			if e := r.waitEnded("job-2"); e.Status != wire.StatusSucceeded {
				t.Fatalf("job-2 ended %s %v", e.Status, e.StatusDetails)
			}
			var offsets []int64
			for _, f := range tb.svc.Fetches() {
				if f.Key == key {
					offsets = append(offsets, f.Offset)
				}
			}
			if !reflect.DeepEqual(offsets, []int64{0, 150}) {
				t.Errorf("bundle fetched from %v, want [0 150]", offsets)
			}
			r.checkRunning("job-2", "2")
			if r.family == "os" {
				if entries, _ := os.ReadDir(filepath.Join(r.dir, "downloads")); len(entries) != 0 {
					t.Errorf("staging left behind: %v", entries)
				}
			}
		})
	}
}

// reportThenDie is a Transport that delivers the SUCCEEDED report and then cuts the power before the agent
// hears the answer.
type reportThenDie struct {
	agent.Transport
	die func()
}

func (t reportThenDie) Update(ctx context.Context, jobID string, req wire.UpdateJobExecutionRequest) (wire.UpdateJobExecutionResponse, error) {
	out, err := t.Transport.Update(ctx, jobID, req)
	if err == nil && req.Status == wire.StatusSucceeded {
		t.die()
		return out, context.Canceled
	}
	return out, err
}

// TestResumeOutcomeAlreadyReported: the service got SUCCEEDED but the agent died before knowing; restarted,
// it closes the execution without reporting again.
func TestResumeOutcomeAlreadyReported(t *testing.T) {
	for _, family := range families {
		t.Run(family, func(t *testing.T) {
			tb := newTestbed(t)
			r := newRobot(t, family, tb, "robot-1")
			hit := make(chan struct{})
			r.start(func(o *agent.Options) {
				o.Wrap = func(ex agent.Executors) agent.Executors {
					ex.Transport = reportThenDie{Transport: ex.Transport, die: func() { r.cancel(); close(hit) }}
					return ex
				}
			})
			tb.enqueue(t, r.thing, deploy{job: "job-2", version: "2", bundle: bundles.Hello})
			<-hit
			r.stop()
			if st := loadState(t, r); st.InFlight == nil || st.InFlight.Step != Fin {
				t.Fatalf("in flight %+v, want job-2 at Finished", st.InFlight)
			}
			r.rec = &recorder{}
			r.start(nil)
			r.waitIdle()
			if got := r.rec.chain("job-2"); !reflect.DeepEqual(got, []string{Fin}) {
				t.Fatalf("chain %q, want [Finished]", got)
			}
			n := 0
			for _, u := range tb.svc.Updates(r.thing, "job-2") {
				if u.Status == wire.StatusSucceeded {
					n++
				}
			}
			if n != 1 {
				t.Errorf("SUCCEEDED reported %d times, want once", n)
			}
			r.checkRunning("job-2", "2")
		})
	}
}
