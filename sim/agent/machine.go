package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"time"

	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
)

// Execution is one job execution being carried out: what a kind's states work with. Its methods are for
// the states' Handle, in the agent's goroutine.
type Execution struct {
	a      *Agent
	run    context.Context         // the agent's: rollback and cleanup use it, they must finish
	ctx    context.Context         // the execution's: it also ends when the service cancels the execution
	cancel context.CancelCauseFunc // ends ctx, with errCanceledByService when the service canceled it
	st     DeviceState             // as last saved
	jobID  string                  // the job id
	digest string                  // the job document's digest
	ver    string                  // the new version's id: the job id and the document's digest
	kind   Kind                    // the document's kind, the agent's first when none of its kinds is
	job    Job                     // the parsed job document; nil when it could not be read
	docErr error                   // why the job document could not be read
	tries  int                     // attempts of the current state
	quiet  bool                    // the service already holds the outcome being resumed: do not report it
	prog   struct {                // download progress reporting
		last      float64
		firstAt   time.Time
		firstDone int64
		started   bool
	}
}

func (a *Agent) newExecution(ctx context.Context, st DeviceState) *Execution {
	x := &Execution{a: a, run: ctx, st: st, jobID: st.InFlight.JobID, digest: DocumentDigest(st.InFlight.Document)}
	x.ver = VersionID(x.jobID, x.digest)
	x.ctx, x.cancel = clock.WithCancelCause(a.clock, ctx)
	x.kind, x.job, x.docErr = a.parseDocument(st.InFlight.Document)
	return x
}

// parseDocument reads a job document: its envelope, then its payload by the kind the envelope names. A
// document that cannot be read is the agent's first kind's, to refuse.
func (a *Agent) parseDocument(raw string) (Kind, Job, error) {
	var env wire.Document
	if err := json.Unmarshal([]byte(raw), &env); err != nil {
		return a.kinds[0], nil, fmt.Errorf("job document: %w", err)
	}
	k, err := a.kindOf(env.Kind)
	if err != nil {
		return k, nil, err
	}
	job, err := k.Parse(env.Payload)
	if err == nil && job == nil {
		err = fmt.Errorf("job document of kind %q: the kind read no job from it", k.Name())
	}
	if err != nil {
		return k, nil, err
	}
	return k, job, nil
}

// first is the state the execution begins in.
func (x *Execution) first() State {
	if x.job == nil {
		return x.kind.Refuse(x.docErr)
	}
	return x.job.First()
}

// JobID returns the execution's job id.
func (x *Execution) JobID() string { return x.jobID }

// VersionID returns the id of the version the execution installs: the job id and the document's digest.
func (x *Execution) VersionID() string { return x.ver }

// Context returns the execution's context: it ends when the agent stops or the service ends the execution.
func (x *Execution) Context() context.Context { return x.ctx }

// Executors returns the agent's executors.
func (x *Execution) Executors() Executors { return x.a.ex }

// APICaller returns the transport's link to the cloud's other APIs (see APICaller): the transport's after Wrap
// when it has the ability, else the one it wraps, so a wrapper that knows nothing of it keeps it. ok is false for
// a transport without one (the in-memory transport).
func (x *Execution) APICaller() (c APICaller, ok bool) {
	if c, ok := x.a.ex.Transport.(APICaller); ok {
		return c, true
	}
	return x.a.caller, x.a.caller != nil
}

// Device returns what the kind knows of the device.
func (x *Execution) Device() Device { return x.a.device() }

// InSync reports whether the committed version is the one this execution installs: the same job id and
// the same document. Only what was installed matches: the same job id from another service, or a job
// recreated with another document, is a new deployment; state of an older agent has no digest and never
// matches.
func (x *Execution) InSync() bool {
	c := x.st.Current
	return c != nil && c.JobID == x.jobID && c.Digest == x.digest
}

// Installed returns the version the execution installs, as the device records it.
func (x *Execution) Installed() (Installed, error) {
	if x.job == nil {
		return Installed{}, x.docErr
	}
	rec, err := x.job.Record()
	if err != nil {
		return Installed{}, err
	}
	return Installed{Kind: x.kind.Name(), JobID: x.jobID, Digest: x.digest, Record: rec}, nil
}

// Launch stops the running application, switches the active version to the execution's and starts its
// application; an application that would not start fails the execution with the kind's DeviceErrorCode.
// Launching the execution's version when it is active and running already does nothing, so a step resumed
// after the switch goes on.
func (x *Execution) Launch() error {
	active, err := x.a.ex.Versions.Active()
	if err != nil {
		return err
	}
	if active == x.ver && x.a.ex.Launcher.Running() == x.ver {
		return nil // switched before a restart, and relaunched or adopted at boot
	}
	if err := x.a.ex.Launcher.Stop(x.ctx); err != nil {
		return err
	}
	if err := x.a.ex.Versions.Activate(x.ver); err != nil {
		return err
	}
	inst, err := x.Installed()
	if err != nil {
		return err
	}
	if err := x.a.launch(x.ctx, inst); err != nil {
		if x.ctx.Err() != nil {
			return err
		}
		return Fail(x.kind.DeviceErrorCode(), err)
	}
	return nil
}

// Staged returns the Downloader's name of a download the execution stages (Job.Staging).
func (x *Execution) Staged(name string) string { return x.ver + "." + name }

// Warn tells OnEvent of an error in state that does not stop the execution (a cleanup that failed).
func (x *Execution) Warn(state string, err error) {
	x.a.emit(Event{Kind: EventError, JobID: x.jobID, State: state, Err: err})
}

// Decides reports whether err is one the loop decides on by itself — the service ended the execution, the
// agent is stopping or the execution's context ended, or a transient error to retry — which a state must
// return as it is rather than turn into a failure code.
func (x *Execution) Decides(err error) bool {
	var ended *serviceEndedError
	return errors.As(err, &ended) || IsTransient(err) || x.ctx.Err() != nil
}

// VersionScript describes the file name of version v as a script to run with the environment env.
func VersionScript(v Version, name string, env []string) Script {
	s := Script{Name: name, Env: env, Read: func() ([]byte, error) { return v.Files.ReadFile(name) }}
	if v.Dir != "" {
		s.Path, s.Dir = filepath.Join(v.Dir, filepath.FromSlash(name)), v.Dir
	}
	return s
}

// drive runs the machine from st until the execution is over or the agent stops. It returns an error when
// the execution had to stop unfinished: the device state cannot be kept (a *stateError), or a closing state
// could not complete; the saved state then says where to resume.
func (x *Execution) drive(st State) error {
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
		if name := st.Name(); name != entered {
			entered, x.tries = name, 0
			err = x.persist(st)
			ev := Event{Kind: EventState, JobID: x.jobID, State: name}
			if f := failureOf(st); f != nil {
				ev.Code, ev.Reason = f.code, f.reason
			}
			x.a.emit(ev)
		}
		if err == nil {
			next, err = st.Handle(x)
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
			return fmt.Errorf("job %s: %s: %w", x.jobID, st.Name(), err)
		}
		if delay > 0 {
			x.a.emit(Event{Kind: EventRetry, JobID: x.jobID, State: st.Name(), Err: err, Delay: delay})
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
//   - a StepError: fail with its code, rolling back first when the kind says the state came after the
//     switch (Kind.RollsBack);
//   - a transient error: run the same state again after backoff;
//   - anything else is a device-side error: fail with the kind's DeviceErrorCode.
//
// Errors in the closing states cannot fail the execution again: a rollback that cannot restore the
// previous version still reports the failure (the reason says so); a final report the service refuses for
// another reason stops the machine, and the agent resumes the execution at its next check.
func (x *Execution) decide(st State, err error) (next State, delay time.Duration, stop bool) {
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
		f.unrestored = true
		return &f, 0, false
	case *failedState, finishState, *abandonState:
		return nil, 0, true
	}
	f := &failedState{status: wire.StatusFailed, code: x.kind.DeviceErrorCode(), reason: err.Error(), step: st.Name()}
	var se *StepError
	if errors.As(err, &se) {
		f.status, f.code, f.reason = se.Status, se.Code, se.Err.Error()
	}
	if x.kind.RollsBack(st) {
		return &rollbackState{then: f}, 0, false
	}
	return f, 0, false
}

// persist saves the state entered, before its work changes anything.
func (x *Execution) persist(st State) error {
	if _, ok := st.(*abandonState); ok {
		return nil // what was saved before says what to undo
	}
	f := x.st.InFlight
	f.Step = st.Name()
	if fs := failureOf(st); fs != nil {
		f.FailedStep, f.Code, f.Reason, f.Unrestored = fs.step, fs.code, fs.reason, fs.unrestored
	}
	return x.save()
}

func (x *Execution) save() error {
	if err := x.a.ex.State.Save(x.st); err != nil {
		return &stateError{err}
	}
	return nil
}

func failureOf(st State) *failedState {
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
func (x *Execution) report(status string, details map[string]string) error {
	req := wire.UpdateJobExecutionRequest{Status: status, StatusDetails: details}
	if n := x.st.InFlight.ExecutionNumber; n > 0 {
		req.ExecutionNumber = &n
	}
	_, err := call(x.a, x.ctx, func(ctx context.Context) (wire.UpdateJobExecutionResponse, error) {
		return x.a.ex.Transport.Update(ctx, x.jobID, req)
	})
	if err != nil && endedByService(err) {
		return &serviceEndedError{err}
	}
	return err
}

// Step reports the step reached: UpdateJobExecution IN_PROGRESS with statusDetails step name and extra.
func (x *Execution) Step(name string, extra map[string]string) error {
	d := map[string]string{wire.DetailStep: name}
	for k, v := range extra {
		d[k] = v
	}
	return x.report(wire.StatusInProgress, d)
}

// Progress returns the Progress of a download in step: it reports percentDone at every ten points and at
// the end, with an estimate of the time left from the rate so far (estimatedTimeRemainingSeconds). Reports
// are best effort, except that a report the service refuses because the execution ended aborts the
// download.
func (x *Execution) Progress(step string) Progress {
	x.prog.started = false
	return func(done, total int64) error { return x.progress(step, done, total) }
}

func (x *Execution) progress(step string, done, total int64) error {
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
	err := x.Step(step, d)
	var ended *serviceEndedError
	if errors.As(err, &ended) || x.ctx.Err() != nil {
		return err
	}
	if err != nil {
		x.Warn(step, fmt.Errorf("report progress: %w", err))
	}
	return nil
}

// Finished returns the closing state of an execution that succeeded, named step by its kind: it commits the
// new version — only now is it Current, the version the device is in sync with — then reports SUCCEEDED
// with statusDetails step, and removes the version that dropped out.
func Finished(step string) State { return finishState{step: step} }

type finishState struct{ step string }

func (s finishState) Name() string { return s.step }

func (s finishState) Handle(x *Execution) (State, error) {
	if c := x.st.Current; c == nil || c.VersionID() != x.ver {
		inst, err := x.Installed()
		if err != nil {
			return nil, err
		}
		if p := x.st.Previous; p != nil {
			x.st.InFlight.Obsolete = p.VersionID()
		}
		x.st.Previous, x.st.Current = x.st.Current, &inst
		if err := x.save(); err != nil {
			return nil, err
		}
	}
	if !x.quiet {
		d := x.outcomeDetails(Outcome{Status: wire.StatusSucceeded, Step: s.step, Device: x.Device()})
		d[wire.DetailStep] = s.step
		if err := x.report(wire.StatusSucceeded, d); err != nil {
			return nil, err
		}
	}
	if o := x.st.InFlight.Obsolete; o != "" && o != x.ver {
		if err := x.a.ex.Versions.Remove(o); err != nil {
			x.Warn(s.step, err)
		}
	}
	x.discardStaging()
	x.st.InFlight = nil
	return nil, x.save()
}

// rollbackState restores the previous version after a failure past the switch, then reports the failure.
type rollbackState struct{ then *failedState }

func (*rollbackState) Name() string { return StateRollingBack }

func (s *rollbackState) Handle(x *Execution) (State, error) {
	if err := x.restorePrevious(); err != nil {
		return nil, err
	}
	return s.then, nil
}

// restorePrevious makes the committed version active and running again (none, for a first install).
func (x *Execution) restorePrevious() error {
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
	unrestored           bool   // the rollback before it could not restore the previous version
}

func (s *failedState) Name() string {
	if s.status == wire.StatusRejected {
		return StateRejected
	}
	return StateFailed
}

func (s *failedState) Handle(x *Execution) (State, error) {
	if !x.quiet {
		d := x.outcomeDetails(Outcome{Status: s.status, Step: s.step, Code: s.code, Unrestored: s.unrestored,
			Device: x.Device()})
		d[wire.DetailStep], d[wire.DetailReason] = s.step, sanitizeDetail(s.reason)
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

// outcomeDetails returns the job's own statusDetails of the outcome (OutcomeDetailer) — its kind's for a
// document that could not be read — as a new map.
func (x *Execution) outcomeDetails(o Outcome) map[string]string {
	d := map[string]string{}
	od, ok := x.job.(OutcomeDetailer)
	if x.job == nil {
		od, ok = x.kind.(OutcomeDetailer)
	}
	if ok {
		for k, v := range od.OutcomeDetails(o) {
			d[k] = sanitizeDetail(v)
		}
	}
	return d
}

// abandonState ends an execution the service no longer holds open: the previous version is restored unless
// the new one was committed, and nothing is reported.
type abandonState struct{}

func (*abandonState) Name() string { return StateAbandoned }

func (*abandonState) Handle(x *Execution) (State, error) {
	if c := x.st.Current; c == nil || c.VersionID() != x.ver {
		if err := x.restorePrevious(); err != nil {
			x.Warn(StateAbandoned, fmt.Errorf("restore previous version: %w", err))
		}
		x.removeCandidate()
	}
	x.discardStaging()
	x.st.InFlight = nil
	return nil, x.save()
}

// removeCandidate removes the execution's version unless the device runs it, and its staged downloads.
func (x *Execution) removeCandidate() {
	if active, err := x.a.ex.Versions.Active(); err == nil && active != x.ver {
		if err := x.a.ex.Versions.Remove(x.ver); err != nil {
			x.Warn("", err)
		}
	}
	x.discardStaging()
}

func (x *Execution) discardStaging() {
	if x.job == nil {
		return
	}
	for _, n := range x.job.Staging() {
		if err := x.a.ex.Downloader.Discard(x.Staged(n)); err != nil {
			x.Warn("", err)
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
	var start State = &abandonState{}
	if err == nil {
		saved := x.saved()
		_, finishing := saved.(finishState)
		switch {
		case je.ExecutionNumber != 0 && f.ExecutionNumber != 0 && je.ExecutionNumber != f.ExecutionNumber:
			// The service has moved on to a newer execution of the job: ours ended while the agent was down.
		case je.Status == wire.StatusInProgress:
			start = saved
		case je.Status == wire.StatusSucceeded && finishing,
			je.Status == wire.StatusFailed && f.Step == StateFailed,
			je.Status == wire.StatusRejected && f.Step == StateRejected:
			x.quiet = true
			start = saved
		}
	} else if !endedByService(err) {
		a.emit(Event{Kind: EventError, JobID: f.JobID, Err: fmt.Errorf("describe execution: %w", err)})
	}
	return x.drive(start)
}

// saved returns the state the in-flight record resumes at: the loop's own closing states by their names,
// the job's states by its Resume, and the job's first state for a step it does not know.
func (x *Execution) saved() State {
	f := x.st.InFlight
	failed := &failedState{status: wire.StatusFailed, code: f.Code, reason: f.Reason, step: f.FailedStep, unrestored: f.Unrestored}
	switch f.Step {
	case StateRollingBack:
		return &rollbackState{then: failed}
	case StateFailed:
		return failed
	case StateRejected:
		failed.status = wire.StatusRejected
		return failed
	}
	if x.job != nil {
		if s := x.job.Resume(f.Step); s != nil {
			return s
		}
	}
	return x.first()
}
