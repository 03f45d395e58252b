package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
)

// state is one state of an execution. handle does the state's work and returns the next state (nil: the
// execution is over) or an error, which decide turns into a retry, a failure, a rollback or an abandon.
// Every handle may run again after a retry or a restart, so each one is idempotent given the saved state.
type state interface {
	name() string
	handle(x *execution) (state, error)
}

// execution is one job execution being carried out.
type execution struct {
	a      *Agent
	run    context.Context         // the agent's: rollback and cleanup use it, they must finish
	ctx    context.Context         // the execution's: it also ends when the service cancels the execution
	cancel context.CancelCauseFunc // ends ctx, with errCanceledByService when the service canceled it
	st     DeviceState             // as last saved
	job    string                  // the job id
	digest string                  // the job document's digest
	ver    string                  // the new version's id: the job id and the document's digest
	doc    wire.RoboMakerDocument  // the parsed job document
	docErr error                   // why the job document could not be parsed
	tries  int                     // attempts of the current state
	quiet  bool                    // the service already holds the outcome being resumed: do not report it
	prog   struct {                // download progress reporting
		last      float64
		firstAt   time.Time
		firstDone int64
		started   bool
	}
}

func (a *Agent) newExecution(ctx context.Context, st DeviceState) *execution {
	x := &execution{a: a, run: ctx, st: st, job: st.InFlight.JobID, digest: DocumentDigest(st.InFlight.Document)}
	x.ver = VersionID(x.job, x.digest)
	x.ctx, x.cancel = clock.WithCancelCause(a.clock, ctx)
	x.doc, x.docErr = parseDocument(st.InFlight.Document)
	return x
}

// parseDocument reads a RoboMaker job document.
func parseDocument(raw string) (wire.RoboMakerDocument, error) {
	var env wire.Document
	if err := json.Unmarshal([]byte(raw), &env); err != nil {
		return wire.RoboMakerDocument{}, fmt.Errorf("job document: %w", err)
	}
	if env.Kind != wire.KindRoboMaker {
		return wire.RoboMakerDocument{}, fmt.Errorf("job document of kind %q: this agent carries out %q jobs", env.Kind, wire.KindRoboMaker)
	}
	var doc wire.RoboMakerDocument
	if err := json.Unmarshal(env.Payload, &doc); err != nil {
		return wire.RoboMakerDocument{}, fmt.Errorf("robomaker job document: %w", err)
	}
	return doc, nil
}

func installedFrom(jobID, digest string, doc wire.RoboMakerDocument) Installed {
	return Installed{JobID: jobID, Digest: digest, Job: doc.Job, Application: doc.Application, Name: doc.Name,
		Version: doc.Version, Launch: doc.Launch}
}

// drive runs the machine from st until the execution is over or the agent stops. It returns an error when
// the execution had to stop unfinished: the device state cannot be kept (a *stateError), or a closing state
// could not complete; the saved state then says where to resume.
func (x *execution) drive(st state) error {
	x.a.mu.Lock()
	x.a.cur = x
	x.a.mu.Unlock()
	defer func() {
		x.a.mu.Lock()
		x.a.cur = nil
		x.a.mu.Unlock()
		x.cancel(nil)
	}()
	entered := ""
	for st != nil {
		var err error
		next := st
		if name := st.name(); name != entered {
			entered, x.tries = name, 0
			err = x.persist(st)
			ev := Event{Kind: EventState, JobID: x.job, State: name}
			if f := failureOf(st); f != nil {
				ev.Code, ev.Reason = f.code, f.reason
			}
			x.a.emit(ev)
		}
		if err == nil {
			next, err = st.handle(x)
		}
		if err == nil {
			st = next
			continue
		}
		next, delay, stop := x.decide(st, err)
		if stop {
			if x.run.Err() != nil {
				return nil
			}
			return fmt.Errorf("job %s: %s: %w", x.job, st.name(), err)
		}
		if delay > 0 {
			x.a.emit(Event{Kind: EventRetry, JobID: x.job, State: st.name(), Err: err, Delay: delay})
			clock.Sleep(x.a.clock, delay, x.ctx.Done())
		}
		st = next
	}
	return nil
}

// decide is the one place that chooses what an error means:
//
//   - the agent is stopping, or cannot save its state: stop where we are; the saved state resumes the
//     execution at the next start;
//   - the service ended the execution (a cancel notify, or 404/409/410 on a report): abandon it;
//   - a StepError: fail with its code, rolling back first when the step came after the switch;
//   - a transient error: run the same state again after backoff;
//   - anything else is a device-side error: fail with EnvironmentSetupError.
//
// Errors in the closing states cannot fail the execution again: a rollback that cannot restore the
// previous version still reports the failure (the reason says so); a final report the service refuses for
// another reason stops the machine, and the agent resumes the execution at its next check.
func (x *execution) decide(st state, err error) (next state, delay time.Duration, stop bool) {
	var stErr *stateError
	if x.run.Err() != nil || errors.As(err, &stErr) {
		return nil, 0, true
	}
	var ended *serviceEndedError
	if errors.Is(context.Cause(x.ctx), errCanceledByService) || errors.As(err, &ended) {
		if _, already := st.(*abandonState); already {
			return nil, 0, true
		}
		return &abandonState{}, 0, false
	}
	if IsTransient(err) {
		x.tries++
		return st, x.a.retry.delay(x.tries), false
	}
	switch s := st.(type) {
	case *rollbackState:
		f := *s.then
		f.reason += "; rollback: " + err.Error()
		return &f, 0, false
	case *failedState, finishedState, *abandonState:
		return nil, 0, true
	}
	f := &failedState{status: wire.StatusFailed, code: wire.CodeEnvironmentSetupError, reason: err.Error(), step: st.name()}
	var se *StepError
	if errors.As(err, &se) {
		f.status, f.code, f.reason = se.Status, se.Code, se.Err.Error()
	}
	switch st.(type) {
	case launchingState, postLaunchState:
		return &rollbackState{then: f}, 0, false
	}
	return f, 0, false
}

// persist saves the state entered, before its work changes anything.
func (x *execution) persist(st state) error {
	if _, ok := st.(*abandonState); ok {
		return nil // what was saved before says what to undo
	}
	f := x.st.InFlight
	f.Step = st.name()
	if fs := failureOf(st); fs != nil {
		f.FailedStep, f.Code, f.Reason = fs.step, fs.code, fs.reason
	}
	return x.save()
}

func (x *execution) save() error {
	if err := x.a.ex.State.Save(x.st); err != nil {
		return &stateError{err}
	}
	return nil
}

func failureOf(st state) *failedState {
	switch s := st.(type) {
	case *failedState:
		return s
	case *rollbackState:
		return s.then
	}
	return nil
}

// serviceEndedError is a report the service refused because the execution is no longer open.
type serviceEndedError struct{ err error }

func (e *serviceEndedError) Error() string {
	return "the service ended the execution: " + e.err.Error()
}
func (e *serviceEndedError) Unwrap() error { return e.err }

// report sends an update of the execution.
func (x *execution) report(status string, details map[string]string) error {
	req := wire.UpdateJobExecutionRequest{Status: status, StatusDetails: details}
	if n := x.st.InFlight.ExecutionNumber; n > 0 {
		req.ExecutionNumber = &n
	}
	_, err := call(x.a, x.ctx, func(ctx context.Context) (wire.UpdateJobExecutionResponse, error) {
		return x.a.ex.Transport.Update(ctx, x.job, req)
	})
	if err != nil && endedByService(err) {
		return &serviceEndedError{err}
	}
	return err
}

// step reports the step reached.
func (x *execution) step(name string, extra map[string]string) error {
	d := map[string]string{wire.DetailStep: name}
	for k, v := range extra {
		d[k] = v
	}
	return x.report(wire.StatusInProgress, d)
}

// source returns the bundle for the robot's architecture.
func (x *execution) source() (wire.RoboMakerSource, bool) {
	for _, s := range x.doc.Sources {
		if strings.EqualFold(s.Architecture, x.a.arch) {
			return s, true
		}
	}
	return wire.RoboMakerSource{}, false
}

func (x *execution) installed() Installed { return installedFrom(x.job, x.digest, x.doc) }

func (x *execution) env() []string { return x.a.env(x.installed()) }

func (x *execution) bundleName() string    { return x.ver + ".bundle" }
func (x *execution) conditionName() string { return x.ver + ".condition" }

// script describes a file of the version as a script to run.
func (x *execution) script(v Version, name string) Script {
	s := Script{Name: name, Env: x.env(), Read: func() ([]byte, error) { return v.Files.ReadFile(name) }}
	if v.Dir != "" {
		s.Path, s.Dir = filepath.Join(v.Dir, filepath.FromSlash(name)), v.Dir
	}
	return s
}

// progress reports download progress: at every ten points of percentDone and at the end, with an estimate
// of the time left from the rate so far. Reports are best effort, except that a report the service refuses
// because the execution ended aborts the download.
func (x *execution) progress(done, total int64) error {
	if total <= 0 {
		return nil
	}
	now := x.a.clock.Now()
	p := &x.prog
	if !p.started {
		p.started, p.firstAt, p.firstDone, p.last = true, now, done, 0
	}
	pct := math.Min(100, float64(done)*100/float64(total))
	if done < total && pct < p.last+10 {
		return nil
	}
	p.last = pct
	d := map[string]string{wire.DetailPercentDone: strconv.FormatFloat(pct, 'f', 1, 64)}
	if elapsed := now.Sub(p.firstAt); done == total {
		d[wire.DetailETA] = "0"
	} else if got := done - p.firstDone; got > 0 && elapsed > 0 {
		eta := time.Duration(float64(elapsed) * float64(total-done) / float64(got))
		d[wire.DetailETA] = strconv.FormatInt(int64(math.Ceil(eta.Seconds())), 10)
	}
	err := x.step(wire.StepDownloadingExtracting, d)
	var ended *serviceEndedError
	if errors.As(err, &ended) || x.ctx.Err() != nil {
		return err
	}
	if err != nil {
		x.a.emit(Event{Kind: EventError, JobID: x.job, State: wire.StepDownloadingExtracting, Err: fmt.Errorf("report progress: %w", err)})
	}
	return nil
}

// artifactErr classifies a download error: ETag errors fail with EtagMismatch, a final answer of the
// artifact store (404, 403) with ResourceNotFound; link errors and aborts pass through to decide.
func (x *execution) artifactErr(what string, err error) error {
	var ended *serviceEndedError
	var ee *ETagError
	var ae *APIError
	switch {
	case errors.As(err, &ended), IsTransient(err), x.ctx.Err() != nil:
		return err
	case errors.As(err, &ee):
		return fail(wire.CodeEtagMismatch, fmt.Errorf("%s: %w", what, err))
	case errors.As(err, &ae):
		return fail(wire.CodeResourceNotFound, fmt.Errorf("%s: %w", what, err))
	}
	return fmt.Errorf("%s: %w", what, err)
}

// scriptErr classifies a script's error: a script that ran and failed, timed out or could not start fails
// with code; one the in-memory runner cannot interpret fails with EnvironmentSetupError.
func (x *execution) scriptErr(code, what string, err error) error {
	switch {
	case x.ctx.Err() != nil, IsTransient(err):
		return err
	case errors.Is(err, ErrNotSimulable):
		return fail(wire.CodeEnvironmentSetupError, fmt.Errorf("%s: %w", what, err))
	}
	return fail(code, fmt.Errorf("%s: %w", what, err))
}

// checkLaunchPath checks a launch config path is a clean relative path.
func checkLaunchPath(what, p string) error {
	if p == "" || !fs.ValidPath(p) || p == "." {
		return failf(wire.CodeMissingRobotDeploymentResource, "launch config %s %q: want a relative path inside the bundle", what, p)
	}
	return nil
}

// checkResources checks that the bundle holds what the launch config names: the launch package directory,
// the launch file inside it, and the pre- and post-launch files.
func checkResources(v Version, l wire.RoboMakerLaunch) error {
	if fi, err := v.Files.Stat(l.PackageName); err != nil || !fi.IsDir() {
		return failf(wire.CodeMissingRobotDeploymentResource, "launch package %s is not in the bundle", l.PackageName)
	}
	if fi, err := v.Files.Stat(path.Join(l.PackageName, l.LaunchFile)); err != nil || !fi.Mode().IsRegular() {
		return failf(wire.CodeMissingRobotDeploymentResource, "launch file %s is not in package %s", l.LaunchFile, l.PackageName)
	}
	for _, f := range []struct{ what, name string }{{"pre-launch file", l.PreLaunchFile}, {"post-launch file", l.PostLaunchFile}} {
		if f.name == "" {
			continue
		}
		if fi, err := v.Files.Stat(f.name); err != nil || !fi.Mode().IsRegular() {
			return failf(wire.CodeMissingRobotDeploymentResource, "%s %s is not in the bundle", f.what, f.name)
		}
	}
	return nil
}

// validatingState checks the job document against the robot. The architecture check is here, before
// anything is downloaded: a robot with no bundle for its architecture fails at once.
type validatingState struct{}

func (validatingState) name() string { return wire.StepValidating }

func (validatingState) handle(x *execution) (state, error) {
	if err := x.step(wire.StepValidating, nil); err != nil {
		return nil, err
	}
	if x.docErr != nil {
		return nil, reject(x.docErr)
	}
	if err := checkJobID(x.job); err != nil {
		return nil, reject(err)
	}
	l := x.doc.Launch
	if err := checkLaunchPath("packageName", l.PackageName); err != nil {
		return nil, err
	}
	if err := checkLaunchPath("launchFile", l.LaunchFile); err != nil {
		return nil, err
	}
	for _, p := range []struct{ what, v string }{{"preLaunchFile", l.PreLaunchFile}, {"postLaunchFile", l.PostLaunchFile}} {
		if p.v == "" {
			continue
		}
		if err := checkLaunchPath(p.what, p.v); err != nil {
			return nil, err
		}
	}
	if _, ok := x.source(); !ok {
		var have []string
		for _, s := range x.doc.Sources {
			have = append(have, s.Architecture)
		}
		return nil, failf(wire.CodeMissingRobotApplicationArchitecture, "no source for architecture %s (sources: %s)", x.a.arch, strings.Join(have, ", "))
	}
	// In sync only with what was installed: the same job id from another service, or a job recreated with
	// another document, is a new deployment. State of an older agent has no digest and never matches.
	if c := x.st.Current; c != nil && c.JobID == x.job && c.Digest == x.digest {
		return finishedState{}, nil
	}
	return downloadingState{}, nil
}

// downloadingState downloads the bundle (resuming a partial download), checks its ETag, unpacks it into
// its own version and checks it holds what the launch config names. Nothing the robot runs changes.
type downloadingState struct{}

func (downloadingState) name() string { return wire.StepDownloadingExtracting }

func (downloadingState) handle(x *execution) (state, error) {
	v, openErr := x.a.ex.Versions.Open(x.ver)
	pct := "0.0"
	if openErr == nil {
		pct = "100.0" // unpacked before a restart
	}
	if err := x.step(wire.StepDownloadingExtracting, map[string]string{wire.DetailPercentDone: pct}); err != nil {
		return nil, err
	}
	if openErr != nil {
		src, _ := x.source()
		x.prog.started = false
		blob, err := x.a.ex.Downloader.Download(x.ctx, x.a.ex.Transport, Request{Bucket: src.Bucket, Key: src.Key, ETag: src.ETag, Name: x.bundleName()}, x.progress)
		if err != nil {
			return nil, x.artifactErr("bundle "+src.Bucket+"/"+src.Key, err)
		}
		v, err = x.a.ex.Versions.Extract(x.ctx, x.ver, blob)
		if err != nil {
			if x.ctx.Err() != nil {
				return nil, err
			}
			return nil, fail(wire.CodeExtractingBundleFailure, fmt.Errorf("bundle %s/%s: %w", src.Bucket, src.Key, err))
		}
		if err := x.a.ex.Downloader.Discard(x.bundleName()); err != nil {
			x.a.emit(Event{Kind: EventError, JobID: x.job, State: wire.StepDownloadingExtracting, Err: err})
		}
	}
	if err := checkResources(v, x.doc.Launch); err != nil {
		return nil, err
	}
	return conditionState{}, nil
}

// conditionState fetches the download condition file, checks its ETag and runs it; a non-zero exit stops
// the deployment. RoboMaker describes the file as run before downloading, but its step order puts
// ExecutingDownloadCondition after DownloadingExtracting; the agent follows the step order the service
// reports (steps only move forward), and since the bundle is only staged so far, a failed condition
// leaves the robot exactly as it was.
type conditionState struct{}

func (conditionState) name() string { return wire.StepExecutingDownloadCondition }

func (conditionState) handle(x *execution) (state, error) {
	if err := x.step(wire.StepExecutingDownloadCondition, nil); err != nil {
		return nil, err
	}
	c := x.doc.DownloadCondition
	if c == nil {
		return preLaunchState{}, nil
	}
	what := "download condition " + c.Bucket + "/" + c.Key
	blob, err := x.a.ex.Downloader.Download(x.ctx, x.a.ex.Transport, Request{Bucket: c.Bucket, Key: c.Key, ETag: c.ETag, Name: x.conditionName()}, nil)
	if err != nil {
		return nil, x.artifactErr(what, err)
	}
	s := Script{Name: path.Base(c.Key), Path: blob.Path(), Env: x.env(), Read: func() ([]byte, error) {
		rc, err := blob.Open()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(rc)
	}}
	if s.Path != "" {
		s.Dir = filepath.Dir(s.Path)
	}
	err = x.a.ex.Scripts.Run(x.ctx, s)
	if err != nil && x.ctx.Err() != nil {
		return nil, err
	}
	if derr := x.a.ex.Downloader.Discard(x.conditionName()); derr != nil {
		x.a.emit(Event{Kind: EventError, JobID: x.job, State: wire.StepExecutingDownloadCondition, Err: derr})
	}
	if err != nil {
		return nil, x.scriptErr(wire.CodeDownloadConditionFailed, what, err)
	}
	return preLaunchState{}, nil
}

// preLaunchState runs the pre-launch file from the new version while the old application still runs.
type preLaunchState struct{}

func (preLaunchState) name() string { return wire.StepExecutingPreLaunch }

func (preLaunchState) handle(x *execution) (state, error) {
	if err := x.step(wire.StepExecutingPreLaunch, nil); err != nil {
		return nil, err
	}
	f := x.doc.Launch.PreLaunchFile
	if f == "" {
		return launchingState{}, nil
	}
	v, err := x.a.ex.Versions.Open(x.ver)
	if err != nil {
		return nil, err
	}
	if err := x.a.ex.Scripts.Run(x.ctx, x.script(v, f)); err != nil {
		return nil, x.scriptErr(wire.CodePreLaunchFileFailure, "pre-launch file "+f, err)
	}
	return launchingState{}, nil
}

// launchingState switches the robot to the new version: it stops the old application (graceful signal,
// then kill), atomically points current at the new version and starts its launch file.
type launchingState struct{}

func (launchingState) name() string { return wire.StepLaunching }

func (launchingState) handle(x *execution) (state, error) {
	if err := x.step(wire.StepLaunching, nil); err != nil {
		return nil, err
	}
	active, err := x.a.ex.Versions.Active()
	if err != nil {
		return nil, err
	}
	if active == x.ver && x.a.ex.Launcher.Running() == x.ver {
		return postLaunchState{}, nil // switched before a restart, and relaunched or adopted at boot
	}
	if err := x.a.ex.Launcher.Stop(x.ctx); err != nil {
		return nil, err
	}
	if err := x.a.ex.Versions.Activate(x.ver); err != nil {
		return nil, err
	}
	if err := x.a.launch(x.ctx, x.installed()); err != nil {
		if x.ctx.Err() != nil {
			return nil, err
		}
		return nil, fail(wire.CodeEnvironmentSetupError, err)
	}
	return postLaunchState{}, nil
}

// postLaunchState runs the post-launch file with the new application running.
type postLaunchState struct{}

func (postLaunchState) name() string { return wire.StepExecutingPostLaunch }

func (postLaunchState) handle(x *execution) (state, error) {
	if err := x.step(wire.StepExecutingPostLaunch, nil); err != nil {
		return nil, err
	}
	f := x.doc.Launch.PostLaunchFile
	if f == "" {
		return finishedState{}, nil
	}
	v, err := x.a.ex.Versions.Open(x.ver)
	if err != nil {
		return nil, err
	}
	if err := x.a.ex.Scripts.Run(x.ctx, x.script(v, f)); err != nil {
		return nil, x.scriptErr(wire.CodePostLaunchFileFailure, "post-launch file "+f, err)
	}
	return finishedState{}, nil
}

// finishedState commits the new version — only now is it Current, the version the robot is in sync with —
// then reports SUCCEEDED and removes the version that dropped out.
type finishedState struct{}

func (finishedState) name() string { return wire.StepFinished }

func (finishedState) handle(x *execution) (state, error) {
	if c := x.st.Current; c == nil || c.VersionID() != x.ver {
		inst := x.installed()
		if p := x.st.Previous; p != nil {
			x.st.InFlight.Obsolete = p.VersionID()
		}
		x.st.Previous, x.st.Current = x.st.Current, &inst
		if err := x.save(); err != nil {
			return nil, err
		}
	}
	if !x.quiet {
		if err := x.report(wire.StatusSucceeded, map[string]string{wire.DetailStep: wire.StepFinished}); err != nil {
			return nil, err
		}
	}
	if o := x.st.InFlight.Obsolete; o != "" && o != x.ver {
		if err := x.a.ex.Versions.Remove(o); err != nil {
			x.a.emit(Event{Kind: EventError, JobID: x.job, State: wire.StepFinished, Err: err})
		}
	}
	x.discardStaging()
	x.st.InFlight = nil
	return nil, x.save()
}

// rollbackState restores the previous version after a failure past the switch, then reports the failure.
type rollbackState struct{ then *failedState }

func (*rollbackState) name() string { return StateRollingBack }

func (s *rollbackState) handle(x *execution) (state, error) {
	if err := x.restorePrevious(); err != nil {
		return nil, err
	}
	return s.then, nil
}

// restorePrevious makes the committed version active and running again (none, for a first install).
func (x *execution) restorePrevious() error {
	if err := x.run.Err(); err != nil {
		return err // the agent is going down: the saved state restores at the next start
	}
	prev := x.st.Current
	want := ""
	if prev != nil {
		want = prev.VersionID()
	}
	active, err := x.a.ex.Versions.Active()
	if err != nil {
		return err
	}
	if active == want && x.a.ex.Launcher.Running() == want {
		return nil
	}
	if err := x.a.ex.Launcher.Stop(x.run); err != nil {
		return err
	}
	if err := x.a.ex.Versions.Activate(want); err != nil {
		return err
	}
	if prev == nil {
		return nil
	}
	return x.a.launch(x.run, *prev)
}

// failedState reports the execution FAILED (or REJECTED) with the step it reached, the failure code and
// the reason, then removes the new version.
type failedState struct {
	status, code, reason string
	step                 string // the step that failed
}

func (s *failedState) name() string {
	if s.status == wire.StatusRejected {
		return StateRejected
	}
	return StateFailed
}

func (s *failedState) handle(x *execution) (state, error) {
	if !x.quiet {
		d := map[string]string{wire.DetailStep: s.step, wire.DetailReason: sanitizeDetail(s.reason)}
		if s.code != "" {
			d[wire.DetailFailureCode] = s.code
		}
		if err := x.report(s.status, d); err != nil {
			return nil, err
		}
	}
	x.removeCandidate()
	x.st.InFlight = nil
	return nil, x.save()
}

// abandonState ends an execution the service no longer holds open: the previous version is restored unless
// the new one was committed, and nothing is reported.
type abandonState struct{}

func (*abandonState) name() string { return StateAbandoned }

func (*abandonState) handle(x *execution) (state, error) {
	if c := x.st.Current; c == nil || c.VersionID() != x.ver {
		if err := x.restorePrevious(); err != nil {
			x.a.emit(Event{Kind: EventError, JobID: x.job, State: StateAbandoned, Err: fmt.Errorf("restore previous version: %w", err)})
		}
		x.removeCandidate()
	}
	x.discardStaging()
	x.st.InFlight = nil
	return nil, x.save()
}

// removeCandidate removes the execution's version unless the robot runs it, and its staged downloads.
func (x *execution) removeCandidate() {
	if active, err := x.a.ex.Versions.Active(); err == nil && active != x.ver {
		if err := x.a.ex.Versions.Remove(x.ver); err != nil {
			x.a.emit(Event{Kind: EventError, JobID: x.job, Err: err})
		}
	}
	x.discardStaging()
}

func (x *execution) discardStaging() {
	for _, n := range []string{x.bundleName(), x.conditionName()} {
		if err := x.a.ex.Downloader.Discard(n); err != nil {
			x.a.emit(Event{Kind: EventError, JobID: x.job, Err: err})
		}
	}
}

// resume carries on with the execution the saved state says was in flight. The service is asked first:
// an execution it no longer holds open is abandoned; one whose outcome it already has is closed without
// reporting again; otherwise the machine re-enters the saved step.
func (a *Agent) resume(ctx context.Context, st DeviceState) error {
	f := st.InFlight
	a.emit(Event{Kind: EventResume, JobID: f.JobID, State: f.Step})
	var je *wire.JobExecution
	var err error
	for tries := 1; ; tries++ {
		je, err = call(a, ctx, func(ctx context.Context) (*wire.JobExecution, error) { return a.ex.Transport.Describe(ctx, f.JobID) })
		if err == nil || !IsTransient(err) || ctx.Err() != nil {
			break
		}
		d := a.retry.delay(tries)
		a.emit(Event{Kind: EventRetry, JobID: f.JobID, State: f.Step, Err: err, Delay: d})
		if !clock.Sleep(a.clock, d, ctx.Done()) {
			return nil
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	x := a.newExecution(ctx, st)
	var start state = &abandonState{}
	if err == nil {
		switch {
		case je.ExecutionNumber != 0 && f.ExecutionNumber != 0 && je.ExecutionNumber != f.ExecutionNumber:
			// The service has moved on to a newer execution of the job: ours ended while the agent was down.
		case je.Status == wire.StatusInProgress:
			start = savedState(f)
		case je.Status == wire.StatusSucceeded && f.Step == wire.StepFinished,
			je.Status == wire.StatusFailed && f.Step == StateFailed,
			je.Status == wire.StatusRejected && f.Step == StateRejected:
			x.quiet = true
			start = savedState(f)
		}
	} else if !endedByService(err) {
		a.emit(Event{Kind: EventError, JobID: f.JobID, Err: fmt.Errorf("describe execution: %w", err)})
	}
	return x.drive(start)
}

// savedState returns the state an in-flight record resumes at.
func savedState(f *InFlight) state {
	failed := &failedState{status: wire.StatusFailed, code: f.Code, reason: f.Reason, step: f.FailedStep}
	switch f.Step {
	case wire.StepDownloadingExtracting:
		return downloadingState{}
	case wire.StepExecutingDownloadCondition:
		return conditionState{}
	case wire.StepExecutingPreLaunch:
		return preLaunchState{}
	case wire.StepLaunching:
		return launchingState{}
	case wire.StepExecutingPostLaunch:
		return postLaunchState{}
	case wire.StepFinished:
		return finishedState{}
	case StateRollingBack:
		return &rollbackState{then: failed}
	case StateFailed:
		return failed
	case StateRejected:
		failed.status = wire.StatusRejected
		return failed
	}
	return validatingState{}
}
