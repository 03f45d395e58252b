// Package event defines the one record of everything that happens in a fleetlab run: a deployment or an
// execution changing state, a step reached, a fault injected or recovered, a scenario starting or ending.
// Reports, the live view and the matchers read only this type.
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
	FaultInjected     Kind = "fault.injected"
	FaultRecovered    Kind = "fault.recovered"
	ScenarioStarted   Kind = "scenario.started"
	ScenarioEnded     Kind = "scenario.ended"
	Log               Kind = "log"
	// ConsoleLine is one line of a board's serial console (Device, and the text in Reason), from a rig.
	ConsoleLine Kind = "console.line"
)

// Event is one thing that happened. Seq orders events of one source; Time is the source's clock.
type Event struct {
	Seq        uint64    `json:"seq"`
	Time       time.Time `json:"time"`
	Kind       Kind      `json:"kind"`
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
}

// Sink receives events in order. Emit must not block for long and must not call back into the emitter.
type Sink interface {
	Emit(Event)
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(Event)

// Emit calls f(e).
func (f SinkFunc) Emit(e Event) { f(e) }
