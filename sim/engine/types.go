package engine

import (
	"errors"
	"time"
)

// Status is the state of a deployment.
//
//	Pending ──Tick──▶ InProgress ──all released and terminal──▶ Baking ──bake over──▶ Succeeded | Failed
//	                      │  │                                     │
//	                      │  └─abort criteria met──▶ Aborted       └─alarm──▶ RolledBack
//	                      ├─Cancel──▶ Canceled
//	                      ├─Alarm──▶ RolledBack
//	                      └─a newer deployment in the same group (Supersede)──▶ Superseded
//
// A deployment with no bake goes from InProgress straight to Succeeded (every execution succeeded) or Failed
// (at least one did not). A continuous deployment never completes: it stays InProgress until canceled or
// superseded.
type Status string

// Deployment statuses.
const (
	StatusPending    Status = "Pending"
	StatusInProgress Status = "InProgress"
	StatusBaking     Status = "Baking"
	StatusSucceeded  Status = "Succeeded"
	StatusFailed     Status = "Failed"
	StatusAborted    Status = "Aborted"
	StatusCanceled   Status = "Canceled"
	StatusRolledBack Status = "RolledBack"
	StatusSuperseded Status = "Superseded"
)

// Terminal reports whether no further transition can happen to the deployment itself. Executions of a terminal
// deployment that are in progress may still report until they end.
func (s Status) Terminal() bool {
	switch s {
	case StatusPending, StatusInProgress, StatusBaking:
		return false
	}
	return true
}

// ExecStatus is the state of one device's execution, as on the IoT Jobs data plane.
//
//	Queued ──Start──▶ InProgress ──Update──▶ Succeeded | Failed | Rejected
//	  │                  │
//	  │                  └─timeout──▶ TimedOut
//	  ├─(timeout counted from release)──▶ TimedOut
//	  ├─Update(Rejected)──▶ Rejected
//	  └─Cancel, abort, supersede──▶ Canceled;  RemoveTarget──▶ Removed (from Queued or InProgress)
//
// A Queued execution is invisible to its device until pacing releases it (Released).
type ExecStatus string

// Execution statuses.
const (
	ExecQueued     ExecStatus = "QUEUED"
	ExecInProgress ExecStatus = "IN_PROGRESS"
	ExecSucceeded  ExecStatus = "SUCCEEDED"
	ExecFailed     ExecStatus = "FAILED"
	ExecTimedOut   ExecStatus = "TIMED_OUT"
	ExecRejected   ExecStatus = "REJECTED"
	ExecCanceled   ExecStatus = "CANCELED"
	ExecRemoved    ExecStatus = "REMOVED"
)

// Terminal reports whether the execution has ended.
func (s ExecStatus) Terminal() bool { return s != ExecQueued && s != ExecInProgress }

// Spec is what a dialect asks the engine to roll out.
type Spec struct {
	// ID is the deployment's id, chosen by the dialect (unique; an existing id is ErrExists).
	ID string
	// Kind names the dialect that owns the deployment ("robomaker", …); the engine only stores it.
	Kind string
	// Group is the scope of revision rules: a fleet, a target ARN, an environment. Empty means none.
	Group string
	// OnActive says what happens when Group already has a deployment that is not terminal.
	OnActive ActivePolicy
	// Targets are the device (thing) names, in release order. Duplicates are an error.
	Targets []string
	// Continuous deployments take devices added later (AddTarget) and never complete.
	Continuous bool
	// Document is the job document handed to each device.
	Document []byte
	// Pacing decides how fast executions are released; the zero value is AllAtOnce.
	Pacing PacingSpec
	// Abort criteria; the deployment is Aborted when any is met.
	Abort []AbortCriterion
	// Timeouts for each execution.
	Timeouts Timeouts
	// Bake is how long the deployment watches for alarms after every execution has ended (or, for Growth
	// pacing, after the last step), before it completes.
	Bake time.Duration
	// Start delays the first release until this time (zero: at creation).
	Start time.Time
}

// ActivePolicy is the revision rule of a group.
type ActivePolicy int

// Revision rules.
const (
	// Reject: a second deployment while one is active is ErrConflict (RoboMaker, AppConfig).
	Reject ActivePolicy = iota
	// Supersede: the active one becomes Superseded and its unfinished executions Canceled (Greengrass V2).
	Supersede
	// Allow: any number at once (Greengrass V1, OpsWorks).
	Allow
)

// Timeouts bound each execution. Zero means no bound.
type Timeouts struct {
	// Execution bounds the time from release to a terminal status (RoboMaker robotDeploymentTimeoutInSeconds:
	// a device that never starts times out too).
	Execution time.Duration
	// InProgress bounds the time from start to a terminal status (IoT inProgressTimeoutInMinutes).
	InProgress time.Duration
}

// AbortCriterion stops a deployment when too many executions fail.
type AbortCriterion struct {
	// FailureTypes are the terminal statuses that count as failures (FAILED, REJECTED, TIMED_OUT).
	FailureTypes []ExecStatus
	// Percent is the threshold percentage.
	Percent float64
	// MinExecuted is how many executions must be released (IoT) or ended before the criterion is evaluated.
	MinExecuted int
	// OfTotal divides by every target rather than by the executions released so far (RoboMaker).
	OfTotal bool
	// AtLeast fires when the percentage reaches Percent; otherwise it must exceed it (IoT).
	AtLeast bool
}

// Deployment is a rollout as the engine keeps it.
type Deployment struct {
	ID         string           `json:"id"`
	Kind       string           `json:"kind"`
	Group      string           `json:"group,omitempty"`
	Status     Status           `json:"status"`
	Reason     string           `json:"reason,omitempty"`
	Continuous bool             `json:"continuous,omitempty"`
	Document   []byte           `json:"document"`
	PacingSpec PacingSpec       `json:"pacing"`
	Abort      []AbortCriterion `json:"abort,omitempty"`
	Timeouts   Timeouts         `json:"timeouts"`
	Bake       time.Duration    `json:"bake,omitempty"`
	CreatedAt  time.Time        `json:"createdAt"`
	StartAt    time.Time        `json:"startAt"`
	StartedAt  time.Time        `json:"startedAt,omitzero"`
	BakeUntil  time.Time        `json:"bakeUntil,omitzero"`
	EndedAt    time.Time        `json:"endedAt,omitzero"`
	UpdatedAt  time.Time        `json:"updatedAt"`
	// LastRelease is when pacing last released an execution.
	LastRelease time.Time `json:"lastRelease,omitzero"`
	// Initial is the number of targets at creation, which pacing is computed over.
	Initial  int      `json:"initial"`
	Counters Counters `json:"counters"`
	Version  int64    `json:"version"`
	// Ordinal is the deployment's place in creation order, from 1, kept so that a restart orders deployments
	// created at one instant (a clock that stands still, one millisecond) as they were created. Zero in
	// records written before it existed.
	Ordinal int `json:"ordinal,omitempty"`
}

// Counters count a deployment's executions by status, plus how many were released.
type Counters struct {
	Total      int `json:"total"`
	Released   int `json:"released"`
	Queued     int `json:"queued"`
	InProgress int `json:"inProgress"`
	Succeeded  int `json:"succeeded"`
	Failed     int `json:"failed"`
	TimedOut   int `json:"timedOut"`
	Rejected   int `json:"rejected"`
	Canceled   int `json:"canceled"`
	Removed    int `json:"removed"`
}

// Ended is the number of executions in a terminal status.
func (c Counters) Ended() int {
	return c.Succeeded + c.Failed + c.TimedOut + c.Rejected + c.Canceled + c.Removed
}

// Execution is one device's part of a deployment.
type Execution struct {
	Deployment string            `json:"deployment"`
	Device     string            `json:"device"`
	Status     ExecStatus        `json:"status"`
	Released   bool              `json:"released,omitempty"`
	Details    map[string]string `json:"details,omitempty"`
	// Reported is the typed reading of Details, as the device API made it from the last update that carried
	// details.
	Reported StepReport `json:"reported,omitzero"`
	// Reason says why the engine ended the execution (timeout, abort, cancel); empty when the device did.
	Reason       string    `json:"reason,omitempty"`
	Number       int64     `json:"number"`
	Version      int64     `json:"version"`
	QueuedAt     time.Time `json:"queuedAt"`
	ReleasedAt   time.Time `json:"releasedAt,omitzero"`
	StartedAt    time.Time `json:"startedAt,omitzero"`
	UpdatedAt    time.Time `json:"updatedAt"`
	StepDeadline time.Time `json:"stepDeadline,omitzero"`
	// Order is the position in release order.
	Order int `json:"order"`
}

// Deadline is when the execution times out if it has not ended (zero: never).
func (x *Execution) Deadline(t Timeouts) time.Time {
	var d time.Time
	earliest := func(c time.Time) {
		if !c.IsZero() && (d.IsZero() || c.Before(d)) {
			d = c
		}
	}
	if x.Status.Terminal() || !x.Released {
		return d
	}
	if t.Execution > 0 {
		earliest(x.ReleasedAt.Add(t.Execution))
	}
	if x.Status == ExecInProgress {
		if t.InProgress > 0 {
			earliest(x.StartedAt.Add(t.InProgress))
		}
		earliest(x.StepDeadline)
	}
	return d
}

// Update is what a device reports about its execution.
type Update struct {
	// Status is the new status: InProgress, Succeeded, Failed or Rejected.
	Status ExecStatus
	// Details replace the execution's status details when non-nil, and Reported, their typed reading, replaces
	// the execution's with them.
	Details  map[string]string
	Reported StepReport
	// StepTimeout, when positive, sets a deadline for the next update.
	StepTimeout time.Duration
	// ExpectedVersion, when non-zero, must equal the execution's version.
	ExpectedVersion int64
}

// Errors callers decide on. Wrapped errors carry details; test with errors.Is.
var (
	ErrNotFound          = errors.New("not found")
	ErrExists            = errors.New("already exists")
	ErrConflict          = errors.New("group has an active deployment")
	ErrInvalidTransition = errors.New("invalid state transition")
	ErrVersionMismatch   = errors.New("version mismatch")
	ErrTerminal          = errors.New("execution is in a terminal state")
	ErrInvalid           = errors.New("invalid deployment spec")
)

// Reasons the engine gives when it, not the device, ends an execution.
const (
	ReasonAborted    = "aborted"
	ReasonCanceled   = "canceled"
	ReasonTimeout    = "timeout"
	ReasonSuperseded = "superseded"
	ReasonRemoved    = "removed"
	ReasonRolledBack = "rolled back"
)

// StepReport is what the engine reads of a device's status details: the device API fills it from the detail
// keys of the wire (sim/deviceapi/wire), so the engine parses no strings and knows no key names. It describes
// executions in events.
type StepReport struct {
	// Step is the step the device reached ("" when it named none).
	Step string `json:"step,omitempty"`
	// Percent is how much of the step is done, 0 to 100 (0 when the device said nothing).
	Percent float64 `json:"percent,omitempty"`
	// Code is the dialect's failure code the device gave.
	Code string `json:"code,omitempty"`
	// Reason is the device's own account of a failure.
	Reason string `json:"reason,omitempty"`
}
