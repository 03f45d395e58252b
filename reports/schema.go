// Package reports turns a run's events into what people read: a versioned JSON record of every event, and the
// sinks that take those records — a JSON-lines file, a JUnit XML file, a self-contained HTML report and a live
// websocket hub behind a web page (the page and the HTML report share the same embedded HTML, CSS and
// JavaScript).
//
// A Run takes the run's events (it is an event.Sink), numbers them, stamps them with the run and the wall
// clock, and hands them to its sinks in order:
//
//	run, err := reports.New(reports.Options{Name: "fleetlab run", Sinks: []reports.Sink{hub, jsonl, junit}})
//	env := harness.New(t, harness.WithSink(run))
//	…
//	run.Finish("no-response", failed)
//	err = run.Close() // flushes and closes every sink
//
// The package imports nothing of fleetlab but the event type.
package reports

import (
	"time"

	"github.com/fleetlab/fleetlab/sim/event"
)

// Version is the version of the record schema this package writes, the "v" of every record. A reader accepts
// records of this version and older; a newer version is an error, since its meaning may have changed. Adding an
// optional field or a kind does not change the version.
const Version = 1

// Kind says what a record records. It is an event.Kind, plus the run's own kinds.
type Kind = event.Kind

// The kinds of record beyond sim/event's: a run's start and end, which only a Run writes.
const (
	// RunStarted opens a run: Detail is the run's name, Attrs its settings.
	RunStarted Kind = "run.started"
	// RunEnded closes a run: Code is the run's outcome (the worst of its scenarios').
	RunEnded Kind = "run.ended"
)

// Record is one event of a run as the reports write it: the schema of events.jsonl, of the live view's
// messages and of the events embedded in the HTML report.
//
// Seq numbers the records of a run from 1 with no gaps, across every source; Time is the service clock (scaled
// or virtual in a harness run), Wall the wall clock when the record was taken. Scenario, Dialect and Deployment
// place the record; Device, From, To, Step, Code and Detail say what happened.
type Record struct {
	V          int       `json:"v"`
	Seq        uint64    `json:"seq"`
	Run        string    `json:"run"`
	Kind       Kind      `json:"kind"`
	Time       time.Time `json:"time"`
	Wall       time.Time `json:"wall"`
	Scenario   string    `json:"scenario,omitempty"`
	Dialect    string    `json:"dialect,omitempty"`
	Deployment string    `json:"deployment,omitempty"`
	Device     string    `json:"device,omitempty"`
	From       string    `json:"from,omitempty"`
	To         string    `json:"to,omitempty"`
	Step       string    `json:"step,omitempty"`
	Percent    float64   `json:"percent,omitempty"`
	Code       string    `json:"code,omitempty"`
	// Detail is the reason of a change, the text of a log or console line, a fault's description.
	Detail string  `json:"detail,omitempty"`
	Fault  string  `json:"fault,omitempty"`
	Metric string  `json:"metric,omitempty"`
	Value  float64 `json:"value,omitempty"`
	// Origin numbers the event within its source (the event's own Seq), for matching a record with the
	// source's log.
	Origin uint64            `json:"origin,omitempty"`
	Attrs  map[string]string `json:"attrs,omitempty"`
}

// FromEvent converts an event into a record; Run, Seq and, when the event does not know it, Wall are the Run's
// to stamp.
func FromEvent(e event.Event) Record {
	return Record{V: Version, Kind: e.Kind, Time: e.Time, Wall: e.WallTime, Scenario: e.Scenario,
		Dialect: e.Dialect, Deployment: e.Deployment, Device: e.Device, From: e.From, To: e.To, Step: e.Step,
		Percent: e.Percent, Code: e.Code, Detail: e.Reason, Fault: e.Fault, Metric: e.Metric, Value: e.Value,
		Origin: e.Seq, Attrs: e.Attrs}
}

// Event converts the record back into an event (Seq is the record's Origin): what a replay of events.jsonl
// hands to code that reads events.
func (r Record) Event() event.Event {
	return event.Event{Seq: r.Origin, Time: r.Time, WallTime: r.Wall, Kind: r.Kind, Dialect: r.Dialect,
		Deployment: r.Deployment, Device: r.Device, From: r.From, To: r.To, Step: r.Step, Percent: r.Percent,
		Code: r.Code, Reason: r.Detail, Scenario: r.Scenario, Fault: r.Fault, Metric: r.Metric, Value: r.Value,
		Attrs: r.Attrs}
}

// Outcome ranks: the worse of two outcomes is the one with the higher rank.
func outcomeRank(o string) int {
	switch o {
	case event.OutcomePassed:
		return 1
	case event.OutcomeFailed:
		return 2
	case event.OutcomeError:
		return 3
	}
	return 0
}

// worse returns the worse of two outcomes ("" is none yet).
func worse(a, b string) string {
	if outcomeRank(b) > outcomeRank(a) {
		return b
	}
	return a
}

// terminalExec reports whether an execution status ends the execution (the engine's, as the IoT Jobs data
// plane names them).
func terminalExec(s string) bool {
	switch s {
	case "", "QUEUED", "IN_PROGRESS":
		return false
	}
	return true
}
