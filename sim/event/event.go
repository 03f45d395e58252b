// Package event defines the one record of everything that happens in a fleetlab run: a deployment or an
// execution changing state, a step reached, a fault armed, injected or recovered, a scenario starting or ending,
// a line on a board's console, a measurement. Reports, the live view and the matchers read only this type.
package event

import "time"

// Kind says what an Event records.
type Kind string

// The kinds of event.
const (
	DeploymentCreated Kind = "deployment.created"
	DeploymentState   Kind = "deployment.state"   // From → To of the deployment
	ExecutionState    Kind = "execution.state"    // From → To of one device's execution
	ExecutionStep     Kind = "execution.step"     // the device reported a new step (Step, Percent)
	ExecutionReleased Kind = "execution.released" // pacing released the execution to its device
	FaultArmed        Kind = "fault.armed"        // the fault is prepared for its targets (Reason lists them)
	FaultInjected     Kind = "fault.injected"
	FaultRecovered    Kind = "fault.recovered"
	// ScenarioStarted: Attrs carry what identifies the run of it ("seed", "backend").
	ScenarioStarted Kind = "scenario.started"
	// ScenarioEnded: Code is the outcome (OutcomePassed, OutcomeFailed, OutcomeError), Reason what went wrong.
	ScenarioEnded Kind = "scenario.ended"
	Log           Kind = "log"
	// ConsoleLine: Device's board printed the line Reason on its serial console.
	ConsoleLine Kind = "console.line"
	// Metric: a measurement named Metric with Value (of Device when set).
	Metric Kind = "metric"
)

// The outcomes of a scenario, as ScenarioEnded's Code gives them. When a scenario has several ScenarioEnded
// events (the harness's and the test's), the worst counts: error over failed over passed.
const (
	OutcomePassed = "passed"
	OutcomeFailed = "failed"
	// OutcomeError: the environment failed or the scenario stopped before its outcome was checked.
	OutcomeError = "error"
)

// Event is one thing that happened. Seq orders events of one source; Time is the source's clock (the service's
// clock: scaled or virtual in a harness run); WallTime, when the source knows it, is the wall clock's.
type Event struct {
	Seq        uint64    `json:"seq"`
	Time       time.Time `json:"time"`
	WallTime   time.Time `json:"wallTime,omitzero"`
	Kind       Kind      `json:"kind"`
	Dialect    string    `json:"dialect,omitempty"` // the API dialect that owns Deployment ("robomaker", …)
	Deployment string    `json:"deployment,omitempty"`
	Device     string    `json:"device,omitempty"`
	From       string    `json:"from,omitempty"`
	To         string    `json:"to,omitempty"`
	Step       string    `json:"step,omitempty"`
	Percent    float64   `json:"percent,omitempty"`
	Code       string    `json:"code,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	// Scenario names the scenario the event belongs to, when a harness stamps it.
	Scenario string `json:"scenario,omitempty"`
	// Fault names the fault for fault events.
	Fault string `json:"fault,omitempty"`
	// Metric names the measurement of a Metric event, and Value is its value.
	Metric string  `json:"metric,omitempty"`
	Value  float64 `json:"value,omitempty"`
	// Attrs are more named facts about the event (a scenario's seed); nil for most.
	Attrs map[string]string `json:"attrs,omitempty"`
}

// Sink receives events in order. Emit must not block for long and must not call back into the emitter.
type Sink interface {
	Emit(Event)
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(Event)

// Emit calls f(e).
func (f SinkFunc) Emit(e Event) { f(e) }
