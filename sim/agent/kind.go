package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/fleetlab/fleetlab/sim/clock"
)

// Kind is one dialect's kind of job: how its job documents read, which states carry them out and what an
// installed version of it records. The loop (drive, decide, persist, resume) is the agent's; a kind supplies
// the rest, so a new dialect is a package implementing Kind and one more entry in the agent's Kinds.
type Kind interface {
	// Name is the job document kind the kind carries out: wire.Document's Kind.
	Name() string
	// Parse reads the payload of a job document of the kind. An error rejects the execution (Refuse).
	Parse(payload json.RawMessage) (Job, error)
	// Refuse returns the state an execution begins in when the agent cannot carry out its document: one of
	// this kind that Parse refused or, for the agent's first kind, one no kind of the agent carries out. The
	// state reports what the kind reports first, then rejects the execution with err (Reject), so the
	// service sees the same opening from every device of the kind.
	Refuse(err error) State
	// RollsBack reports whether a failure in st restores the previous version before it is reported: st
	// comes at or after the switch to the new version.
	RollsBack(st State) bool
	// App returns the application of an installed version of the kind, nil when the version runs none.
	// v is the version unpacked on the device.
	App(d Device, inst Installed, v Version) (*App, error)
	// DeviceErrorCode is the failure code of a device-side error no state classified (a full disk, a
	// refused permission, an application that would not start).
	DeviceErrorCode() string
}

// Job is one job document of a kind, parsed: the states that carry it out begin with First.
type Job interface {
	// First is the state an execution of the job begins in.
	First() State
	// Resume returns the state a step saved by an earlier agent resumes at: the state of that name, which
	// redoes its work from the saved state (every Handle is idempotent). nil: a step the job does not know;
	// the execution begins again at First.
	Resume(step string) State
	// Record is what the device keeps of the version the job installs (Installed.Record), enough for the
	// kind's App to launch it again: a JSON object whose members are not "kind", "jobId" or "digest".
	Record() (json.RawMessage, error)
	// Staging names the downloads an execution of the job stages (Execution.Staged gives the
	// Downloader's name of each), discarded when the execution ends whatever its outcome.
	Staging() []string
}

// State is one state of an execution. Handle does the state's work and returns the next state (nil: the
// execution is over) or an error, which the loop's one decide turns into a retry, a failure, a rollback or
// an abandon. Every Handle may run again after a retry or a restart, so each one is idempotent given the
// saved state. Name is what the device saves, reports in events and resumes by (Job.Resume).
type State interface {
	Name() string
	Handle(x *Execution) (State, error)
}

// Device is what a kind knows of the device it runs on.
type Device struct {
	// Thing is the thing name on the device API.
	Thing string
	// Architecture is the device's architecture, a GOARCH name: amd64, arm64, arm.
	Architecture string
	// DataDir is a directory kept across versions, "" in the in-memory family.
	DataDir string
}

// kindOf returns the agent's kind named name; the first kind, with an error saying why, when none is.
func (a *Agent) kindOf(name string) (Kind, error) {
	names := make([]string, len(a.kinds))
	for i, k := range a.kinds {
		if k.Name() == name {
			return k, nil
		}
		names[i] = strconv.Quote(k.Name())
	}
	return a.kinds[0], fmt.Errorf("job document of kind %q: this agent carries out %s jobs", name, strings.Join(names, ", "))
}

// ScriptFiler is the optional ability of a Job that runs files of the version it installs as scripts:
// ScriptFile names the file (relative to the unpacked version) that step runs. ok is false when the step runs
// no file of the version, and file is "" when the job names none for a step that could run one. Hosts that
// fail a script by replacing it on the device (a container, a board) find it through here.
type ScriptFiler interface {
	ScriptFile(step string) (file string, ok bool)
}

// OutcomeDetailer is the optional ability of a Job to add statusDetails of its dialect to the report that ends
// an execution (SUCCEEDED, FAILED or REJECTED), beside the loop's step, failureCode and reason, which it
// cannot replace. A Kind may have it too, for the executions of documents it could not read (no Job).
type OutcomeDetailer interface {
	OutcomeDetails(o Outcome) map[string]string
}

// Outcome is how an execution ended, as reported: the status, the step it ended at and, for a failure, the
// failure code and whether the rollback before it failed to restore the previous version.
type Outcome struct {
	Status, Step, Code string
	Unrestored         bool
	// Device is the device that carried the execution out.
	Device Device
}

// Watcher is the optional ability of a Kind to watch the device between executions, for as long as the agent
// runs: the Greengrass nucleus tells the cloud when a component it runs changes state after its deployment
// ended. Once the agent has booted (the active version's application relaunched) it calls Watch, and runs the
// function it returns on a goroutine of its own until ctx ends; nil: the kind has nothing to watch on this
// device, and no goroutine is started (a virtual-time world then runs exactly as without the ability). The
// function blocks only through package clock's primitives on w's Clock.
type Watcher interface {
	Watch(w *Watch) func(ctx context.Context)
}

// Watch is what a Watcher sees of the agent.
type Watch struct{ a *Agent }

// Device returns the device the agent runs on.
func (w *Watch) Device() Device { return w.a.device() }

// Clock returns the agent's clock.
func (w *Watch) Clock() clock.Clock { return w.a.clock }

// Executors returns the agent's executors.
func (w *Watch) Executors() Executors { return w.a.ex }

// APICaller returns the transport's link to the cloud's other APIs, as Execution.APICaller does.
func (w *Watch) APICaller() (APICaller, bool) {
	if c, ok := w.a.ex.Transport.(APICaller); ok {
		return c, true
	}
	return w.a.caller, w.a.caller != nil
}

// Idle reports whether no execution is in flight: the device runs its active version and nothing changes it.
// An error is the device state's.
func (w *Watch) Idle() (bool, error) {
	st, err := w.a.ex.State.Load()
	if err != nil {
		return false, err
	}
	return st.InFlight == nil, nil
}

// Error reports something the watcher could not do (EventError); the watcher carries on.
func (w *Watch) Error(err error) { w.a.emit(Event{Kind: EventError, Err: err}) }
