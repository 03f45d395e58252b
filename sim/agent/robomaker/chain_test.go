package robomaker_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
)

const (
	V    = rmwire.StepValidating
	DE   = rmwire.StepDownloadingExtracting
	EDC  = rmwire.StepExecutingDownloadCondition
	EPL  = rmwire.StepExecutingPreLaunch
	L    = rmwire.StepLaunching
	EPoL = rmwire.StepExecutingPostLaunch
	Fin  = rmwire.StepFinished
	RB   = agent.StateRollingBack
)

func failed(code string) string { return agent.StateFailed + "(" + code + ")" }

// reportsFor returns the steps the service must have been told for a chain: each step entered, then the
// outcome with the step it ended at.
func reportsFor(chain []string) []string {
	var out []string
	last := ""
	for _, s := range chain {
		switch {
		case s == Fin:
			out = append(out, wire.StatusSucceeded+"("+Fin+")")
		case s == RB:
		case strings.HasPrefix(s, agent.StateFailed):
			out = append(out, wire.StatusFailed+"("+last+")")
		case s == agent.StateRejected:
			out = append(out, wire.StatusRejected+"("+last+")")
		default:
			out = append(out, s)
			last = s
		}
	}
	return out
}

var cleanChain = []string{V, DE, EDC, EPL, L, EPoL, Fin}

// TestChains runs a deployment through the whole state machine for the clean path and every failure code,
// in both families. Each robot first installs hello as job-1 (version 1); job-2 is the case under test.
func TestChains(t *testing.T) {
	tests := []struct {
		name  string
		fresh bool // no job-1 first
		d     deploy
		arm   func(tb *testbed, d deploy)
		want  []string
		// running is the job whose version runs at the end ("" for none).
		running string
		// retries says transient errors must have been retried.
		retries bool
	}{
		{name: "clean", d: deploy{bundle: bundles.Hello, condition: bundles.ConditionOK}, want: cleanChain, running: "job-2"},
		{name: "first install", fresh: true, d: deploy{bundle: bundles.Hello}, want: cleanChain, running: "job-2"},
		{name: "pre-launch script exits 3", d: deploy{bundle: bundles.PreLaunchExit3, condition: bundles.ConditionOK},
			want: []string{V, DE, EDC, EPL, failed(rmwire.CodePreLaunchFileFailure)}, running: "job-1"},
		{name: "post-launch script exits 4", d: deploy{bundle: bundles.PostLaunchExit4},
			want: []string{V, DE, EDC, EPL, L, EPoL, RB, failed(rmwire.CodePostLaunchFileFailure)}, running: "job-1"},
		{name: "post-launch fails on a first install", fresh: true, d: deploy{bundle: bundles.PostLaunchExit4},
			want: []string{V, DE, EDC, EPL, L, EPoL, RB, failed(rmwire.CodePostLaunchFileFailure)}, running: ""},
		{name: "download condition exits 1", d: deploy{bundle: bundles.Hello, condition: bundles.ConditionExit1},
			want: []string{V, DE, EDC, failed(rmwire.CodeDownloadConditionFailed)}, running: "job-1"},
		{name: "download condition with another ETag", d: deploy{bundle: bundles.Hello, condition: bundles.ConditionOK, conditionETag: agenttest.ETag([]byte("older script"))},
			want: []string{V, DE, EDC, failed(rmwire.CodeEtagMismatch)}, running: "job-1"},
		{name: "bundle with another ETag", d: deploy{bundle: bundles.Hello, bundleETag: agenttest.ETag([]byte("older bundle"))},
			want: []string{V, DE, failed(rmwire.CodeEtagMismatch)}, running: "job-1"},
		{name: "bundle corrupted in transit", d: deploy{bundle: bundles.Hello},
			arm:  func(tb *testbed, d deploy) { tb.svc.CorruptObject(bucket, d.job+"/"+d.bundle+".tar.gz", true) },
			want: []string{V, DE, failed(rmwire.CodeEtagMismatch)}, running: "job-1"},
		{name: "bundle is not gzip", d: deploy{bundle: bundles.Corrupt},
			want: []string{V, DE, failed(rmwire.CodeExtractingBundleFailure)}, running: "job-1"},
		{name: "no source for the robot's architecture", d: deploy{bundle: bundles.Hello, arch: "ARM64"},
			want: []string{V, failed(rmwire.CodeMissingRobotApplicationArchitecture)}, running: "job-1"},
		{name: "launch file missing", d: deploy{bundle: bundles.MissingLaunchFile},
			want: []string{V, DE, failed(rmwire.CodeMissingRobotDeploymentResource)}, running: "job-1"},
		{name: "launch package missing", d: deploy{bundle: bundles.MissingPackage},
			want: []string{V, DE, failed(rmwire.CodeMissingRobotDeploymentResource)}, running: "job-1"},
		{name: "bundle object missing", d: deploy{bundle: bundles.Hello, noObject: true},
			want: []string{V, DE, failed(rmwire.CodeResourceNotFound)}, running: "job-1"},
		{name: "job document of another kind", d: deploy{bundle: bundles.Hello, kind: "greengrassv2"},
			want: []string{V, agent.StateRejected}, running: "job-1"},
		{name: "5xx, throttling and a cut download are retried", d: deploy{bundle: bundles.Hello, condition: bundles.ConditionOK},
			arm: func(tb *testbed, d deploy) {
				tb.svc.FailUpdates(agenttest.APIFault{Status: 503, Code: wire.ErrServiceUnavailable}, agenttest.APIFault{Status: 429, Code: wire.ErrThrottling})
				tb.svc.CutObject(bucket, d.job+"/"+d.bundle+".tar.gz", 100)
			},
			want: cleanChain, running: "job-2", retries: true},
	}
	for _, family := range families {
		for _, tt := range tests {
			t.Run(family+"/"+tt.name, func(t *testing.T) {
				tb := newTestbed(t)
				r := newRobot(t, family, tb, "robot-1")
				r.start(nil)
				if !tt.fresh {
					tb.enqueue(t, r.thing, deploy{job: "job-1", version: "1", bundle: bundles.Hello})
					if e := r.waitEnded("job-1"); e.Status != wire.StatusSucceeded {
						t.Fatalf("job-1 ended %s %v, chain %q", e.Status, e.StatusDetails, r.rec.chain("job-1"))
					}
					r.checkRunning("job-1", "1")
				}
				d := tt.d
				d.job, d.version = "job-2", "2"
				if tt.arm != nil {
					tt.arm(tb, d)
				}
				tb.enqueue(t, r.thing, d)
				e := r.waitEnded("job-2")

				if got := r.rec.chain("job-2"); !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("chain %q\nwant  %q", got, tt.want)
				}
				if got, want := tb.svc.Steps(r.thing, "job-2"), reportsFor(tt.want); !reflect.DeepEqual(got, want) {
					t.Errorf("reported %q\nwant     %q", got, want)
				}
				last := tt.want[len(tt.want)-1]
				switch {
				case last == Fin:
					if e.Status != wire.StatusSucceeded {
						t.Errorf("status %s, want SUCCEEDED", e.Status)
					}
					if !reportedPercent(tb.svc.Updates(r.thing, "job-2"), "100.0") {
						t.Error("percentDone 100.0 was never reported")
					}
				case last == agent.StateRejected:
					if e.Status != wire.StatusRejected || e.StatusDetails[wire.DetailReason] == "" {
						t.Errorf("status %s %v, want REJECTED with a reason", e.Status, e.StatusDetails)
					}
				default:
					code := strings.TrimSuffix(strings.TrimPrefix(last, agent.StateFailed+"("), ")")
					if e.Status != wire.StatusFailed || e.StatusDetails[wire.DetailFailureCode] != code || e.StatusDetails[wire.DetailReason] == "" {
						t.Errorf("status %s %v, want FAILED with failureCode %s and a reason", e.Status, e.StatusDetails, code)
					}
				}
				if n := r.rec.count(agent.EventRetry, "job-2"); tt.retries != (n > 0) {
					t.Errorf("%d retries, want retries: %v", n, tt.retries)
				}
				if tt.retries {
					var offsets []int64
					for _, f := range tb.svc.Fetches() {
						if f.Key == "job-2/"+d.bundle+".tar.gz" {
							offsets = append(offsets, f.Offset)
						}
					}
					if !reflect.DeepEqual(offsets, []int64{0, 100}) {
						t.Errorf("bundle fetched from offsets %v, want [0 100]: the cut download resumed with a Range", offsets)
					}
				}
				r.checkRunning(tt.running, map[string]string{"job-1": "1", "job-2": "2"}[tt.running])

				// The device keeps what it committed, and nothing of a failed version.
				st, err := r.a.Executors().State.Load()
				if err != nil {
					t.Fatal(err)
				}
				if tt.running == "" {
					if st.Current != nil {
						t.Errorf("current %+v after a failed first install", st.Current)
					}
				} else if st.Current == nil || st.Current.JobID != tt.running {
					t.Errorf("current %+v, want %s", st.Current, tt.running)
				}
				if last == Fin && !tt.fresh && (st.Previous == nil || st.Previous.JobID != "job-1") {
					t.Errorf("previous %+v, want job-1", st.Previous)
				}
				if last != Fin {
					if _, err := r.a.Executors().Versions.Open("job-2"); err == nil {
						t.Error("the failed version is still on the device")
					}
				}
			})
		}
	}
}

func reportedPercent(updates []wire.UpdateJobExecutionRequest, pct string) bool {
	for _, u := range updates {
		if u.StatusDetails[wire.DetailStep] == DE && u.StatusDetails[wire.DetailPercentDone] == pct {
			return true
		}
	}
	return false
}
