package reports

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/fleetlab/fleetlab/sim/event"
)

// Sink takes the records of a run, as k6's outputs take samples: Start once before any record, Add with
// records in order, Stop once at the end. Add is called in the path of the run's events, one call at a time:
// it must not block for long (a slow consumer is the sink's to buffer or drop, never the run's to wait for)
// and keeps its errors for Stop. Stop flushes and closes whatever the sink writes; after it no Add comes.
type Sink interface {
	Start(info RunInfo) error
	Add(records []Record)
	Stop() error
}

// RunInfo is what a sink is told when a run starts.
type RunInfo struct {
	ID   string
	Name string
	// Started is the wall-clock time the run started.
	Started time.Time
	Attrs   map[string]string
}

// Options configure a Run. Zero fields get the defaults of New.
type Options struct {
	// ID identifies the run in every record (default: the start time and a random suffix).
	ID string
	// Name says what the run is ("fleetlab run", "go test ./scenarios"; default "fleetlab").
	Name string
	// Attrs are facts about the whole run, for the run.started record.
	Attrs map[string]string
	// Sinks receive the records, in this order.
	Sinks []Sink
	// Now is the wall clock (default time.Now).
	Now func() time.Time
}

// Run is one run's record: it numbers the events it is given, stamps them with the run and the wall clock,
// and hands them to its sinks. It tracks which scenarios have ended so that a scenario that never reports its
// outcome is not taken for a pass. It is an event.Sink, safe for concurrent use.
type Run struct {
	info RunInfo
	now  func() time.Time

	mu        sync.Mutex
	sinks     []Sink
	seq       uint64
	scenarios map[string]*scenarioState
	order     []string
	closed    bool
}

// scenarioState is what a Run knows of a scenario: whether it ended and how, and its last service time.
type scenarioState struct {
	outcome string
	last    time.Time
}

var _ event.Sink = (*Run)(nil)

// New starts a run: it starts every sink (stopping those already started when one fails) and writes the
// run.started record.
func New(opts Options) (*Run, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Name == "" {
		opts.Name = "fleetlab"
	}
	started := opts.Now()
	if opts.ID == "" {
		var b [3]byte
		rand.Read(b[:])
		opts.ID = started.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
	}
	r := &Run{info: RunInfo{ID: opts.ID, Name: opts.Name, Started: started, Attrs: maps.Clone(opts.Attrs)},
		now: opts.Now, scenarios: map[string]*scenarioState{}}
	for i, s := range opts.Sinks {
		if err := s.Start(r.info); err != nil {
			for _, started := range slices.Backward(opts.Sinks[:i]) {
				started.Stop()
			}
			return nil, fmt.Errorf("start report sink %d: %w", i+1, err)
		}
	}
	r.sinks = slices.Clone(opts.Sinks)
	r.add(Record{V: Version, Kind: RunStarted, Time: started, Wall: started, Detail: opts.Name,
		Attrs: maps.Clone(opts.Attrs)})
	return r, nil
}

// ID returns the run's id.
func (r *Run) ID() string { return r.info.ID }

// Emit records an event of the run; it implements event.Sink. Events after Close are dropped.
func (r *Run) Emit(e event.Event) {
	rec := FromEvent(e)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.track(rec)
	r.add(rec)
}

// track updates what the run knows of the record's scenario. r.mu is held.
func (r *Run) track(rec Record) {
	if rec.Scenario == "" {
		return
	}
	s := r.scenario(rec.Scenario)
	if !rec.Time.IsZero() {
		s.last = rec.Time
	}
	if rec.Kind == event.ScenarioEnded {
		s.outcome = worse(s.outcome, outcomeOf(rec.Code))
	}
}

// outcomeOf reads a scenario.ended code; an unknown one is an error, never a pass.
func outcomeOf(code string) string {
	if outcomeRank(code) == 0 {
		return event.OutcomeError
	}
	return code
}

func (r *Run) scenario(name string) *scenarioState {
	s, ok := r.scenarios[name]
	if !ok {
		s = &scenarioState{}
		r.scenarios[name] = s
		r.order = append(r.order, name)
	}
	return s
}

// add numbers and stamps rec and hands it to the sinks. r.mu is held.
func (r *Run) add(rec Record) {
	r.seq++
	rec.V, rec.Seq, rec.Run = Version, r.seq, r.info.ID
	if rec.Wall.IsZero() {
		rec.Wall = r.now()
	}
	batch := []Record{rec}
	for _, s := range r.sinks {
		s.Add(batch)
	}
}

// Finish records how the test of a scenario ended, as the test runner saw it: failed when the test failed for
// any reason. A scenario that failed its test but reported no outcome of its own (it stopped early: the
// environment failed, or a Fatalf) ends in error; one that reported a pass but whose test failed afterwards (a
// cleanup error) ends failed; a scenario that reported nothing and passed its test (code that does not use the
// harness's scenario runner) passes.
func (r *Run) Finish(scenario string, failed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	s := r.scenario(scenario)
	rec := Record{Kind: event.ScenarioEnded, Scenario: scenario, Time: s.last, Attrs: map[string]string{"by": "test"}}
	switch {
	case failed && s.outcome == "":
		rec.Code, rec.Detail = event.OutcomeError, "the scenario stopped before its outcome was checked: the environment failed or the test stopped (see the test's log)"
	case failed && s.outcome == event.OutcomePassed:
		rec.Code, rec.Detail = event.OutcomeFailed, "the test failed after the scenario's checks passed (see the test's log)"
	case !failed && s.outcome == "":
		rec.Code = event.OutcomePassed
	default:
		return // the scenario's own outcome stands
	}
	r.track(rec)
	r.add(rec)
}

// Outcome returns the run's outcome so far: the worst of its scenarios' ("" before any ended).
func (r *Run) Outcome() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.outcome()
}

func (r *Run) outcome() string {
	o := ""
	for _, s := range r.scenarios {
		o = worse(o, s.outcome)
	}
	return o
}

// Close ends the run: a scenario that has not ended ends in error, the run.ended record is written, and every
// sink is stopped. It returns the sinks' errors; closing twice is a no-op.
func (r *Run) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	for _, name := range r.order {
		s := r.scenarios[name]
		if s.outcome == "" {
			rec := Record{Kind: event.ScenarioEnded, Scenario: name, Time: s.last, Code: event.OutcomeError,
				Detail: "the run ended before the scenario did", Attrs: map[string]string{"by": "run"}}
			r.track(rec)
			r.add(rec)
		}
	}
	end := r.now()
	r.add(Record{Kind: RunEnded, Time: end, Wall: end, Code: r.outcome(), Detail: r.info.Name})
	r.closed = true
	var errs []error
	for _, s := range r.sinks {
		if err := s.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
