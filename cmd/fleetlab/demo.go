package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/harness/robomaker"
	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
)

func demoCommand() *command {
	c := &command{name: "demo", summary: "run the showcase: a fleet of robots, a clean rollout, then one that goes wrong",
		usage: "[--robots N] [--time-scale N] [--seed N] [--sim] [--keep] [--report DIR] [--no-live]"}
	c.run = func(args []string, stdout, stderr io.Writer) error {
		fs := newFlags(c, stderr)
		robots := fs.Int("robots", 24, "robots in the fleet, 17 to 200")
		scale := fs.Float64("time-scale", 0, "run on scaled wall time, policy time this many times faster (100: the 5-minute robot timeout takes 3 s), instead of virtual time")
		seed := fs.Uint64("seed", 1, "seed of every random choice, so a run repeats")
		sim := fs.Bool("sim", false, "simulate scripts and the robot application in memory instead of running them as processes")
		keep := fs.Bool("keep", false, "leave the service and the live view running afterwards, to look around (Ctrl-C stops them)")
		var rf reportFlags
		rf.register(fs)
		if err := parse(c, fs, args); err != nil {
			return err
		}
		if *robots < 17 || *robots > 200 {
			return &usageError{msg: fmt.Sprintf("--robots %d is outside 17..200", *robots),
				hint: "the failing rollout needs its three faulty robots in the first quarter of the fleet, and a " +
					"whole-percent threshold that two failures reach and one does not"}
		}
		if given(fs, "time-scale") { // left out: virtual time
			if err := checkTimeScale(*scale); err != nil {
				return err
			}
		}
		d := &demo{out: stdout, robots: *robots, scale: *scale, seed: *seed, sim: *sim, keep: *keep,
			tty: isTerminal(stdout)}
		report, err := startReport("fleetlab demo", rf)
		if err != nil {
			return err
		}
		defer report.stop()
		d.report = report
		if u := report.liveURL(); u != "" {
			fmt.Fprintf(stdout, "live view: %s\n\n", u)
		}
		err = d.run()
		report.run.Finish("demo", err != nil)
		if rerr := report.finish(stdout); err == nil {
			err = rerr
		}
		return err
	}
	return c
}

// demo is the showcase: one environment, two rollouts, a live view and a summary of each. On virtual time (the
// default) its whole output but the endpoints and the closing wall time is a function of its seed.
type demo struct {
	out         io.Writer
	robots      int
	scale       float64 // 0: virtual time
	seed        uint64
	sim, keep   bool
	tty         bool
	problems    []string
	environment error
	report      *runReport
}

func (d *demo) run() error {
	rec := harness.NewRecorder("demo", io.Discard)
	rec.SetRerun(fmt.Sprintf("fleetlab demo --seed %d", d.seed))
	started := time.Now()
	err := rec.Run(d.scenario)
	var infra *harness.InfraError
	switch {
	case errors.As(err, &infra):
		return &envError{err}
	case err != nil:
		return &failedError{msg: err.Error()}
	case len(d.problems) > 0:
		return &failedError{msg: "the rollouts did not end as expected:\n  " + strings.Join(d.problems, "\n  ")}
	}
	fmt.Fprintf(d.out, "\nDemo finished in %.1f s.\n", time.Since(started).Seconds())
	return nil
}

func (d *demo) scenario(t harness.T) {
	executors := harness.Real
	if d.sim {
		executors = harness.Simulated
	}
	opts := []harness.Option{harness.WithRobots(d.robots), harness.WithSeed(d.seed),
		harness.WithBackend(harness.InProc{Executors: executors}), harness.WithScenario("demo"), harness.WithSink(d.report.run)}
	timing := fmt.Sprintf("virtual time (seed %d)", d.seed)
	if d.scale != 0 {
		opts = append(opts, harness.WithTimeScale(d.scale))
		timing = fmt.Sprintf("policy time %gx faster than the clock", d.scale)
	}
	env := harness.New(t, opts...)
	names := env.Robots()
	family := "real scripts and application processes"
	if d.sim {
		family = "scripts and application simulated in memory"
	}
	fmt.Fprintf(d.out, `fleetlab demo — %d robots, one RoboMaker fleet, %s
  deployment service   %s  (one endpoint: AWS APIs, S3 and the device API)
  robots               %s … %s, in this process (%s)

`, len(names), timing, env.Endpoint(), names[0], names[len(names)-1], family)

	app := robomaker.Of(env).CreateApplication("hello")

	// Rollout 1: clean, a quarter of the fleet at a time.
	fmt.Fprintf(d.out, "Rollout 1: %s version %s to every robot, 25%% at a time.\n", app.Name, app.Version)
	job1, err := robomaker.Of(env).StartJob(app, robomaker.Deployment{Concurrency: 25})
	if err != nil {
		t.Fatalf("create deployment job: %v", err)
	}
	j1 := d.watch(env, job1)
	d.summary(j1)
	d.expect(j1.Status == "Succeeded", "rollout 1 ended %s, want Succeeded", j1.Status)
	for _, r := range j1.Robots {
		d.expect(r.Status == "InSync", "rollout 1: %s is %s, want InSync", r.Name, r.Status)
	}

	// Rollout 2: one robot of the first batch stops answering while it downloads; two others' pre-launch
	// scripts exit 3. The threshold is the whole percentage that two failed robots reach and one does not, so
	// the job stops at the second failure.
	silent, failing := names[2], []string{names[1], names[4]}
	threshold := int32(200 / len(names))
	fmt.Fprintf(d.out, "\nRollout 2: the same version again, 25%% at a time, failure threshold %d%%, robot timeout 5 min.\n",
		threshold)
	fmt.Fprintf(d.out, "  fault  %s stops responding once it starts downloading\n", silent)
	fmt.Fprintf(d.out, "  fault  the pre-launch script of %s and %s exits 3\n", failing[0], failing[1])
	fmt.Fprintf(d.out, "  fault  every other robot takes a second to validate, so %s is downloading first\n", silent)
	noResponse := env.Inject(faults.Spec{Fault: "no-response",
		Target: faults.Selector{Devices: []string{silent}, Step: rmwire.StepDownloadingExtracting}})
	scriptExit := env.Inject(faults.Spec{Fault: "script-exit", Params: json.RawMessage(`{"script":"pre-launch","code":3}`),
		Target: faults.Selector{Devices: failing}})
	// The silent robot goes first, so it is downloading when the threshold trips, whatever order the seed gives
	// the robots: every other robot is held a second in its first step.
	others := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == silent })
	slowStart := env.Inject(faults.Spec{Fault: "slow-step", Params: json.RawMessage(`{"delay":"1s"}`),
		Target: faults.Selector{Devices: others, Step: rmwire.StepValidating}})
	job2, err := robomaker.Of(env).StartJob(app, robomaker.Deployment{Concurrency: 25, FailureThreshold: threshold,
		Timeout: 5 * time.Minute})
	if err != nil {
		t.Fatalf("create deployment job: %v", err)
	}
	j2 := d.watch(env, job2)
	env.Recover(noResponse)
	env.Recover(scriptExit)
	env.Recover(slowStart)
	d.summary(j2)
	d.expect(j2.Status == "Failed" && j2.FailureCode == "FailureThresholdBreached",
		"rollout 2 ended %s %s, want Failed FailureThresholdBreached", j2.Status, j2.FailureCode)
	for _, r := range j2.Robots {
		switch {
		case r.Name == silent:
			// Released with the first quarter, it may still be waiting to start when the two failures trip the
			// threshold: the seed decides who goes first.
			d.expect(r.Status == "NoResponse" || r.FailureCode == "RobotDeploymentAborted",
				"rollout 2: %s is %s %s, want NoResponse or aborted", r.Name, r.Status, r.FailureCode)
		case r.Name == failing[0] || r.Name == failing[1]:
			d.expect(r.Status == "Failed" && r.FailureCode == "PreLaunchFileFailure",
				"rollout 2: %s is %s %s, want Failed PreLaunchFileFailure", r.Name, r.Status, r.FailureCode)
		default:
			d.expect(r.Status == "InSync" || r.FailureCode == "RobotDeploymentAborted",
				"rollout 2: %s is %s %s, want InSync or aborted", r.Name, r.Status, r.FailureCode)
		}
	}

	d.lookAround(env, job1, job2)
}

// expect records a way the demo's story did not hold.
func (d *demo) expect(ok bool, format string, args ...any) {
	if !ok {
		d.problems = append(d.problems, fmt.Sprintf(format, args...))
	}
}

// watch shows the job's progress, as it changes, until it has settled and returns it as it ended. The time shown
// is policy time since the job started.
func (d *demo) watch(env *harness.Env, job string) harness.Job {
	began := env.Clock().Now()
	last := ""
	env.WaitFor(func(j harness.Job) bool {
		line := progressLine(j, env.Clock().Now().Sub(began))
		switch {
		case d.tty:
			fmt.Fprintf(d.out, "\r\033[K%s", line)
		case line[:strings.LastIndex(line, "  ")] != last:
			fmt.Fprintln(d.out, line)
		}
		last = line[:strings.LastIndex(line, "  ")]
		return env.Settled(job)
	}, job)
	if d.tty {
		fmt.Fprintln(d.out)
	}
	return env.WaitJob(job)
}

// progressLine is one line of the live view: a bar of robots done, the counts by robot status, and the policy
// time elapsed.
func progressLine(j harness.Job, elapsed time.Duration) string {
	counts := j.Counts()
	done := 0
	for status, n := range counts {
		if status == "InSync" || status == "Failed" || status == "NoResponse" {
			done += n
		}
	}
	const width = 24
	filled := 0
	if len(j.Robots) > 0 {
		filled = done * width / len(j.Robots)
	}
	var parts []string
	for _, s := range []string{"InSync", "Deploying", "PendingNewDeployment", "Failed", "NoResponse"} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	return fmt.Sprintf("  [%s%s] %-11s %s  %v", strings.Repeat("#", filled), strings.Repeat(".", width-filled),
		j.Status, strings.Join(parts, ", "), elapsed.Round(time.Second))
}

// summary prints the job's outcome and a table of its robots.
func (d *demo) summary(j harness.Job) {
	fmt.Fprintf(d.out, "  job %s: %s", j.ID, j.Status)
	if j.FailureCode != "" {
		fmt.Fprintf(d.out, " (%s)", j.FailureCode)
	}
	fmt.Fprintln(d.out)
	robots := append([]harness.Robot(nil), j.Robots...)
	sort.Slice(robots, func(a, b int) bool { return robots[a].Name < robots[b].Name })
	row := func(r harness.Robot) string {
		failure := r.FailureCode
		if r.FailureReason != "" && r.FailureCode != "RobotDeploymentAborted" {
			failure += ": " + r.FailureReason
		}
		return fmt.Sprintf("%-12s %-28s %s", r.Status, r.Step, failure)
	}
	fmt.Fprintf(d.out, "\n  %-25s %-12s %-28s %s\n", "ROBOT", "STATUS", "STEP REACHED", "FAILURE")
	// Runs of robots that ended alike share a line.
	for i := 0; i < len(robots); {
		j := i + 1
		for j < len(robots) && row(robots[j]) == row(robots[i]) {
			j++
		}
		name := robots[i].Name
		if j-i > 2 {
			name = fmt.Sprintf("%s … %s", robots[i].Name, robots[j-1].Name)
		} else {
			j = i + 1
		}
		fmt.Fprintf(d.out, "  %-25s %s\n", name, strings.TrimRight(row(robots[i]), " "))
		i = j
	}
}

// lookAround says how to inspect the service, and with --keep waits for Ctrl-C before it is stopped.
func (d *demo) lookAround(env *harness.Env, jobs ...string) {
	cmds := fmt.Sprintf(`  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
  fleetlab model robomaker > robomaker.json     # RoboMaker has left the AWS CLI: add its model back once
  aws configure add-model --service-name robomaker --service-model file://robomaker.json
  aws --endpoint-url %s robomaker list-deployment-jobs
  aws --endpoint-url %s robomaker describe-deployment-job --job %s
  aws --endpoint-url %s s3 ls s3://%s --recursive
`, env.Endpoint(), env.Endpoint(), jobs[len(jobs)-1], env.Endpoint(), harness.BundleBucket)
	if !d.keep {
		fmt.Fprintf(d.out, "\nTo look around with the AWS CLI, run 'fleetlab demo --keep'; the service then stays up and\nanswers commands such as:\n%s", cmds)
		return
	}
	fmt.Fprintf(d.out, "\nThe service keeps running. Look around with the AWS CLI:\n%sPress Ctrl-C to stop.\n", cmds)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	signal.Stop(stop)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
