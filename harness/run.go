package harness

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness/dialect"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/sim/event"
)

// Result is how a scenario ended: the job as it settled, a row per robot with what was expected of it, and
// every way the outcome differed from the expectation (product failures).
type Result struct {
	Spec Spec
	Seed uint64
	Job  Job
	// Targets are the robots the plan's device and link faults targeted.
	Targets []string
	Rows    []Row
	// Failures are the differences from the expectation; none when the scenario passed.
	Failures []string
	// MaxInFlight is the most robots that were deploying at once.
	MaxInFlight int
	// Events are the run's events, up to the job's settling.
	Events []event.Event
}

// Row is one robot's line of the result table.
type Row struct {
	Robot Robot
	// Want is the expectation that applied, and From where it came (the robot's name, "targets", "others").
	Want RobotExpect
	From string
	// Diff says how the robot differed; empty when it met the expectation.
	Diff string
}

// OK reports whether the outcome met the expectation.
func (r *Result) OK() bool { return r != nil && len(r.Failures) == 0 && r.Job.ID != "" }

// WriteTable writes the per-robot result table and the job's line.
func (r *Result) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROBOT\tSTATUS\tFAILURE CODE\tSTEP\tEXPECTED\t")
	for _, row := range r.Rows {
		mark := "ok"
		if row.Diff != "" {
			mark = "FAIL: " + row.Diff
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s (%s)\t%s\n", row.Robot.Name, row.Robot.Status, dash(row.Robot.FailureCode),
			dash(row.Robot.Step), row.Want, row.From, mark)
	}
	tw.Flush()
	want := r.Spec.Expect.Status
	if r.Spec.Expect.FailureCode != "" {
		want += "/" + r.Spec.Expect.FailureCode
	}
	got := r.Job.Status
	if r.Job.FailureCode != "" {
		got += "/" + r.Job.FailureCode
	}
	fmt.Fprintf(w, "job %s: %s (expected %s), seed %d\n", r.Job.ID, got, want, r.Seed)
	for _, f := range r.Failures {
		fmt.Fprintf(w, "  FAIL %s\n", f)
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// RunSpec runs a scenario in t: it starts the environment, injects the plan's faults, starts the job (or runs
// the spec's code), waits until the job settles and checks the outcome, reporting each difference as a product
// failure with the job's timeline.
//
// With the -fleetlab.seeds=N test flag, a spec that names no seed of its own runs under N seeds instead, from
// -fleetlab.seed on (see Sweep), and the first seed that fails is reported with the command that reruns it.
func RunSpec(t T, spec Spec) *Result {
	t.Helper()
	if err := spec.Validate(); err != nil {
		t.Fatalf("scenario %s: %v", spec.Name, err)
	}
	if n := *seedsFlag; n > 1 && spec.Seed == 0 {
		if _, rec := t.(*Recorder); !rec {
			return runSweep(t, spec, n)
		}
	}
	return runSpec(t, spec)
}

func runSpec(t T, spec Spec) *Result {
	t.Helper()
	env := New(t, spec.options()...)
	res := &Result{Spec: spec, Seed: env.Seed()}
	env.emit(event.Event{Kind: event.ScenarioStarted, Reason: spec.Description,
		Attrs: map[string]string{"seed": strconv.FormatUint(env.Seed(), 10), "backend": env.cfg.backend.Name()}})
	targeted := map[string]bool{}
	for _, f := range spec.Faults {
		h := env.Inject(f)
		if h.Layer() != faults.LayerCloud {
			for _, d := range h.Targets() {
				targeted[d] = true
			}
		}
	}
	res.Targets = slices.Sorted(maps.Keys(targeted))
	var job string
	if spec.Run != nil {
		job = spec.Run(env, spec)
	} else {
		bundle := spec.Job.Bundle
		if bundle == "" {
			bundle = bundles.Hello
		}
		var err error
		job, err = env.StartDeployment(bundle, spec.Job.Architectures, env.driver.Config(spec.Job))
		if err != nil {
			t.Fatalf("scenario %s: deploy: %v", spec.Name, err)
		}
	}
	res.Job = env.WaitJob(job)
	res.Events = env.events.Events()
	res.MaxInFlight = maxInFlight(res.Events, res.Job.ID)
	res.check(targeted, env.driver.Statuses())
	if v, ok := env.session.(dialect.Verifier); ok {
		env.do(func() {
			ctx, cancel := env.callContext()
			defer cancel()
			res.Failures = append(res.Failures, v.Verify(ctx, res.Job)...)
		})
	}
	for _, f := range res.Failures {
		t.Errorf("scenario %s: product failure: %s", spec.Name, f)
	}
	outcome := event.OutcomePassed
	if len(res.Failures) > 0 {
		outcome = event.OutcomeFailed
		t.Logf("scenario %s: %s\ntimeline:\n%s", spec.Name, res.Job, Timeline(res.Job.Timeline))
	}
	env.emit(event.Event{Kind: event.ScenarioEnded, Deployment: res.Job.ID, Code: outcome,
		Reason: strings.Join(res.Failures, "\n")})
	return res
}

// check compares the settled job with the expectation.
func (r *Result) check(targeted map[string]bool, st dialect.Statuses) {
	x := r.Spec.Expect
	fail := func(format string, args ...any) { r.Failures = append(r.Failures, fmt.Sprintf(format, args...)) }
	// A failed job's code is checked when the expectation names one; any other job must have none.
	codeChecked := x.FailureCode != "" || x.Status != st.Failed
	if r.Job.Status != x.Status || (codeChecked && r.Job.FailureCode != x.FailureCode) {
		want := x.Status
		if x.FailureCode != "" {
			want += "/" + x.FailureCode
		}
		fail("job %s is %s/%s, want %s", r.Job.ID, r.Job.Status, dash(r.Job.FailureCode), want)
	}
	seen := map[string]bool{}
	for _, robot := range r.Job.Robots {
		seen[robot.Name] = true
		row := Row{Robot: robot}
		switch want, named := x.Robots[robot.Name]; {
		case named:
			row.Want, row.From = want, robot.Name
		case targeted[robot.Name] && x.Targets != nil:
			row.Want, row.From = *x.Targets, "targets"
		case x.Others != nil:
			row.Want, row.From = *x.Others, "others"
		default:
			row.Diff = "no expectation applies to this robot"
		}
		if row.From != "" {
			row.Diff = strings.Join(row.Want.check(robot, st), "; ")
		}
		if row.Diff != "" {
			fail("robot %s: %s", robot, row.Diff)
		}
		r.Rows = append(r.Rows, row)
	}
	for name := range x.Robots {
		if !seen[name] {
			fail("robot %s is expected but not in the job", name)
		}
	}
	if x.Counts != nil {
		if got, want := countsString(r.Job.Counts()), countsString(x.Counts); got != want {
			fail("robots by status %s, want %s", got, want)
		}
	}
	if x.MaxInFlight > 0 && r.MaxInFlight > x.MaxInFlight {
		fail("%d robots deployed at once, want at most %d", r.MaxInFlight, x.MaxInFlight)
	}
}

// maxInFlight counts, from the engine's events, the most executions of a deployment that were released and
// not ended at once.
func maxInFlight(events []event.Event, id string) int {
	released := map[string]bool{}
	n, most := 0, 0
	for _, e := range events {
		if e.Deployment != id || Source(e) != SourceEngine {
			continue
		}
		switch {
		case e.Kind == event.ExecutionReleased && !released[e.Device]:
			released[e.Device] = true
			n++
		case e.Kind == event.ExecutionState && isTerminalExec(e.To) && released[e.Device]:
			released[e.Device] = false
			n--
		}
		most = max(most, n)
	}
	return most
}

// Execute runs spec outside go test, logging to log; rerun is the command a failure prints to run it again.
// It returns the result (nil when the environment failed before the job settled) and nil when the outcome met
// the expectation, an *InfraError when the environment failed, or an error listing the product failures.
func Execute(spec Spec, log io.Writer, rerun string) (*Result, error) {
	rec := NewRecorder(spec.Name, log)
	rec.SetRerun(rerun)
	var res *Result
	err := rec.Run(func(t T) { res = RunSpec(t, spec) })
	return res, err
}

// SweepResult is how a seed sweep ended.
type SweepResult struct {
	// Seed is the first seed whose run failed, or the last seed run when none did.
	Seed uint64
	// Runs is how many seeds ran.
	Runs int
	// Result and Err are the run of Seed, as Execute returns them: Err is nil when every seed passed.
	Result *Result
	Err    error
}

// Sweep runs spec under n seeds, first, first+1, …, one after another outside go test (as Execute does, logging
// to log), and stops at the first seed whose run fails. Different seeds pick different faulty robots and retry
// jitter and, on virtual time, interleave the robots differently, so a sweep finds the outcomes that one seed
// happens to miss.
func Sweep(spec Spec, first uint64, n int, log io.Writer) SweepResult {
	var res SweepResult
	for i := range n {
		seed := first + uint64(i)
		spec.Seed = seed
		r, err := Execute(spec, log, "")
		res = SweepResult{Seed: seed, Runs: i + 1, Result: r, Err: err}
		if err != nil {
			break
		}
	}
	return res
}

// runSweep is RunSpec under -fleetlab.seeds.
func runSweep(t T, spec Spec, n int) *Result {
	t.Helper()
	first, err := flagSeed(*seedFlag)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	res := Sweep(spec, first, n, logWriter{t})
	if res.Err != nil {
		var table strings.Builder
		if res.Result != nil {
			res.Result.WriteTable(&table)
		}
		t.Errorf("scenario %s fails with seed %d (seed %d of the %d tried from %d): %v\n%s%s", spec.Name, res.Seed,
			res.Runs, n, first, res.Err, table.String(), rerunHint(t, res.Seed))
		return res.Result
	}
	t.Logf("scenario %s passed under %d seeds, %d to %d", spec.Name, n, first, res.Seed)
	return res.Result
}

// logWriter writes to a test's log.
type logWriter struct{ t T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
