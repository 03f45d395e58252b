package harness

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/event"
)

// The kinds of the agents' events in the run's stream (sim/event has the engine's, the faults' and the
// scenario's). Device is the robot, Deployment the job id of the execution.
const (
	// AgentState: the agent entered Step (a RoboMaker step, or RollingBack, Failed, Rejected, Abandoned);
	// Code and Reason are set for a failure.
	AgentState event.Kind = "agent.state"
	// AgentRetry: a step or a call failed with a transient error (Reason) and is retried.
	AgentRetry event.Kind = "agent.retry"
	// AgentResume: the agent started and found an execution in flight at Step.
	AgentResume event.Kind = "agent.resume"
	// AgentConnected and AgentDisconnected: the notify channel came up or went down.
	AgentConnected    event.Kind = "agent.connected"
	AgentDisconnected event.Kind = "agent.disconnected"
	// AgentError: something outside a step went wrong; the agent carried on.
	AgentError event.Kind = "agent.error"
)

// The sources of the stream, as Source names them.
const (
	SourceEngine  = "engine"
	SourceFaults  = "faults"
	SourceHarness = "harness"
	// SourceAgent prefixes a device's agent source: "agent/robot-0001".
	SourceAgent = "agent/"
)

// Source names the source of an event: the engine, a device's agent, the faults or the harness.
func Source(e event.Event) string {
	switch {
	case strings.HasPrefix(string(e.Kind), "agent."):
		return SourceAgent + e.Device
	case e.Kind == event.FaultInjected || e.Kind == event.FaultRecovered || e.Fault != "":
		return SourceFaults
	case e.Kind == event.ScenarioStarted || e.Kind == event.ScenarioEnded || e.Kind == event.Log:
		return SourceHarness
	}
	return SourceEngine
}

// agentEvent turns an agent's event into the stream's.
func agentEvent(device string, a agent.Event) event.Event {
	e := event.Event{Time: a.Time, Device: device, Deployment: a.JobID, Step: a.State, Code: a.Code, Reason: a.Reason}
	switch a.Kind {
	case agent.EventState:
		e.Kind = AgentState
	case agent.EventRetry:
		e.Kind = AgentRetry
		e.Reason = fmt.Sprintf("retry in %v", a.Delay)
	case agent.EventResume:
		e.Kind = AgentResume
	case agent.EventConnected:
		e.Kind = AgentConnected
	case agent.EventDisconnected:
		e.Kind = AgentDisconnected
	default:
		e.Kind = AgentError
	}
	if a.Err != nil {
		if e.Reason != "" {
			e.Reason += ": "
		}
		e.Reason += a.Err.Error()
	}
	return e
}

// Stream is the run's ordered record of events. Each event's Seq numbers it within its source (see Source),
// counting on across a service restart. It is safe for concurrent use.
type Stream struct {
	scenario string
	clock    clock.Clock // what Await waits on

	mu      sync.Mutex
	events  []event.Event
	seqs    map[string]uint64
	changed chan struct{} // closed and replaced at every append

	deliverMu sync.Mutex // keeps the sinks' order the stream's
	sinks     []event.Sink
}

func newStream(scenario string, sinks []event.Sink, c clock.Clock) *Stream {
	return &Stream{scenario: scenario, clock: c, seqs: map[string]uint64{}, changed: make(chan struct{}), sinks: sinks}
}

// Emit appends e, numbering it within its source; it implements event.Sink.
func (s *Stream) Emit(e event.Event) {
	if s.scenario != "" && e.Scenario == "" {
		e.Scenario = s.scenario
	}
	s.deliverMu.Lock()
	defer s.deliverMu.Unlock()
	s.mu.Lock()
	src := Source(e)
	s.seqs[src]++
	e.Seq = s.seqs[src]
	s.events = append(s.events, e)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	for _, sink := range s.sinks {
		sink.Emit(e)
	}
}

// Events returns the events so far, in arrival order.
func (s *Stream) Events() []event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

// Len returns how many events arrived.
func (s *Stream) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events)
}

// Await calls cond after every new event until it returns true, or ctx ends. On virtual time it waits in the
// world: cond is called again at the first quiescent point after new events.
func (s *Stream) Await(ctx context.Context, cond func() bool) error {
	for {
		ch := s.Changed()
		if cond() {
			return nil
		}
		if _, err := clock.Wait(ctx, s.clock, clock.Forever, clock.Done(ch)); err != nil {
			return err
		}
	}
}

// Changed returns a channel that is closed when the next event arrives.
func (s *Stream) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Filter returns the events for which keep is true.
func Filter(events []event.Event, keep func(event.Event) bool) []event.Event {
	var out []event.Event
	for _, e := range events {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// Timeline renders events one per line, timed from the first: what a failure message shows.
func Timeline(events []event.Event) string {
	if len(events) == 0 {
		return "  (no events)\n"
	}
	var b strings.Builder
	start := events[0].Time
	for _, e := range events {
		fmt.Fprintf(&b, "  %+9.3fs %-22s %-20s", e.Time.Sub(start).Seconds(), Source(e), e.Kind)
		if e.Device != "" {
			fmt.Fprintf(&b, " %s", e.Device)
		}
		if e.Fault != "" {
			fmt.Fprintf(&b, " fault=%s", e.Fault)
		}
		if e.From != "" || e.To != "" {
			fmt.Fprintf(&b, " %s→%s", e.From, e.To)
		}
		if e.Step != "" {
			fmt.Fprintf(&b, " step=%s", e.Step)
		}
		if e.Code != "" {
			fmt.Fprintf(&b, " code=%s", e.Code)
		}
		if e.Reason != "" {
			fmt.Fprintf(&b, " (%s)", e.Reason)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Outcomes reduces events to what the same seed must reproduce, per device: the steps each agent entered and
// how each execution ended, in order ("job1 Validating", …, "job1 SUCCEEDED"), jobs numbered in the order the
// engine created them. Times, retries, reconnects and the interleaving of devices are left out: they depend on
// the machine, not on the seed.
func Outcomes(events []event.Event) map[string][]string {
	jobs := map[string]string{}
	job := func(id string) string {
		if _, ok := jobs[id]; !ok {
			jobs[id] = fmt.Sprintf("job%d", len(jobs)+1)
		}
		return jobs[id]
	}
	out := map[string][]string{}
	for _, e := range events {
		switch {
		case e.Kind == event.DeploymentCreated:
			job(e.Deployment)
		case e.Kind == AgentState:
			out[e.Device] = append(out[e.Device], job(e.Deployment)+" "+e.Step+codeSuffix(e.Code))
		case e.Kind == event.ExecutionState && isTerminalExec(e.To):
			out[e.Device] = append(out[e.Device], job(e.Deployment)+" "+e.To+codeSuffix(e.Code))
		}
	}
	return out
}

func codeSuffix(code string) string {
	if code == "" {
		return ""
	}
	return "/" + code
}

func isTerminalExec(s string) bool {
	switch s {
	case "", "QUEUED", "IN_PROGRESS":
		return false
	}
	return true
}

// addrPattern matches a host:port, such as the loopback address of a service, which differs from run to run.
var addrPattern = regexp.MustCompile(`\b\d{1,3}(\.\d{1,3}){3}:\d+\b`)

// Sequence renders every event one per line, in order, with its time from the first event: what a seed must
// reproduce exactly on virtual time. Deployment ids are replaced by job1, job2, … in order of appearance (in the
// events' reasons too), and host:port addresses by "ADDR", so two runs compare whether or not the service's ids
// and ports are the same.
func Sequence(events []event.Event) []string {
	ids := map[string]string{}
	var rename []string
	for _, e := range events {
		if e.Deployment != "" && ids[e.Deployment] == "" {
			ids[e.Deployment] = fmt.Sprintf("job%d", len(ids)+1)
			rename = append(rename, e.Deployment, ids[e.Deployment])
		}
	}
	r := strings.NewReplacer(rename...)
	out := make([]string, len(events))
	if len(events) == 0 {
		return out
	}
	start := events[0].Time
	for i, e := range events {
		out[i] = fmt.Sprintf("%v %s %s dev=%s job=%s %s→%s step=%s pct=%v code=%s fault=%s (%s)", e.Time.Sub(start),
			Source(e), e.Kind, e.Device, ids[e.Deployment], e.From, e.To, e.Step, e.Percent, e.Code, e.Fault,
			addrPattern.ReplaceAllString(r.Replace(e.Reason), "ADDR"))
	}
	return out
}
