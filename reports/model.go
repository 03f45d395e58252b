package reports

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/fleetlab/fleetlab/sim/event"
)

// Summary reduces a run's records to what a report says of each scenario: its outcome and why, its seed and
// dialects, its deployments and how their devices ended, and an excerpt of its timeline. Add the records in
// order; a Summary is not safe for concurrent use.
type Summary struct {
	// Runs are the runs seen, in order.
	Runs []*RunSummary

	runs      map[string]*RunSummary
	scenarios map[string]*ScenarioSummary // by run id + "\x00" + name
}

// RunSummary is one run.
type RunSummary struct {
	ID, Name string
	// Started and Ended are wall-clock times; Ended is zero while the run goes on.
	Started, Ended time.Time
	// Outcome is the run's, once it ended.
	Outcome   string
	Scenarios []*ScenarioSummary
}

// ScenarioSummary is one scenario of a run.
type ScenarioSummary struct {
	Name        string
	Description string
	// Outcome is passed, failed or error; "" while the scenario runs.
	Outcome string
	// Detail says what went wrong, one line per finding.
	Detail string
	// Attrs are the scenario's start attributes (seed, backend).
	Attrs map[string]string
	// First and Last are the wall-clock times of its first and last record; TimeFirst the service time of
	// its first, from which its timeline counts.
	First, Last time.Time
	TimeFirst   time.Time
	Deployments []*DeploymentSummary
	// Excerpt holds the scenario's notable records (deployment changes, faults, devices that did not succeed,
	// failures), the first MaxExcerpt of them; Omitted counts the notable ones left out.
	Excerpt []Record
	Omitted int
	// Records counts every record of the scenario.
	Records int

	deployments map[string]*DeploymentSummary
}

// DeploymentSummary is one deployment of a scenario.
type DeploymentSummary struct {
	ID, Dialect string
	// Status is the deployment's last state.
	Status string
	// Devices maps each device to its execution's last status.
	Devices map[string]string
}

// MaxExcerpt bounds the notable records a ScenarioSummary keeps.
const MaxExcerpt = 60

// NewSummary returns an empty summary.
func NewSummary() *Summary {
	return &Summary{runs: map[string]*RunSummary{}, scenarios: map[string]*ScenarioSummary{}}
}

// Add reduces one record.
func (s *Summary) Add(r Record) {
	run := s.run(r.Run)
	switch r.Kind {
	case RunStarted:
		run.Name, run.Started = r.Detail, r.Wall
		return
	case RunEnded:
		run.Ended, run.Outcome = r.Wall, r.Code
		return
	}
	if r.Scenario == "" {
		return
	}
	sc := s.scenario(run, r.Scenario)
	sc.Records++
	if sc.First.IsZero() {
		sc.First, sc.TimeFirst = r.Wall, r.Time
	}
	if r.Wall.After(sc.Last) {
		sc.Last = r.Wall
	}
	switch r.Kind {
	case event.ScenarioStarted:
		sc.Description = r.Detail
		if sc.Attrs == nil {
			sc.Attrs = map[string]string{}
		}
		maps.Copy(sc.Attrs, r.Attrs)
	case event.ScenarioEnded:
		if r.Detail != "" {
			if sc.Detail != "" {
				sc.Detail += "\n"
			}
			sc.Detail += r.Detail
		}
		sc.Outcome = worse(sc.Outcome, outcomeOf(r.Code))
	}
	if r.Deployment != "" {
		d := sc.deployment(r.Deployment)
		if r.Dialect != "" {
			d.Dialect = r.Dialect
		}
		switch r.Kind {
		case event.DeploymentCreated, event.DeploymentState:
			d.Status = r.To
		case event.ExecutionReleased, event.ExecutionState:
			if r.Device != "" && r.To != "" {
				d.Devices[r.Device] = r.To
			}
		}
	}
	if notable(r) {
		if len(sc.Excerpt) < MaxExcerpt {
			sc.Excerpt = append(sc.Excerpt, r)
		} else {
			sc.Omitted++
		}
	}
}

func (s *Summary) run(id string) *RunSummary {
	run, ok := s.runs[id]
	if !ok {
		run = &RunSummary{ID: id}
		s.runs[id] = run
		s.Runs = append(s.Runs, run)
	}
	return run
}

func (s *Summary) scenario(run *RunSummary, name string) *ScenarioSummary {
	key := run.ID + "\x00" + name
	sc, ok := s.scenarios[key]
	if !ok {
		sc = &ScenarioSummary{Name: name, deployments: map[string]*DeploymentSummary{}}
		s.scenarios[key] = sc
		run.Scenarios = append(run.Scenarios, sc)
	}
	return sc
}

func (sc *ScenarioSummary) deployment(id string) *DeploymentSummary {
	d, ok := sc.deployments[id]
	if !ok {
		d = &DeploymentSummary{ID: id, Devices: map[string]string{}}
		sc.deployments[id] = d
		sc.Deployments = append(sc.Deployments, d)
	}
	return d
}

// notable reports whether a record belongs in a scenario's timeline excerpt: what explains an outcome.
func notable(r Record) bool {
	switch r.Kind {
	case event.DeploymentCreated, event.DeploymentState, event.FaultArmed, event.FaultInjected,
		event.FaultRecovered, event.ScenarioEnded, event.Log:
		return true
	case event.ExecutionState:
		return terminalExec(r.To) && r.To != "SUCCEEDED"
	}
	return r.Code != "" && r.Kind != event.ScenarioStarted
}

// Dialects returns the dialects of the scenario's deployments, sorted.
func (sc *ScenarioSummary) Dialects() []string {
	var out []string
	for _, d := range sc.Deployments {
		if d.Dialect != "" && !slices.Contains(out, d.Dialect) {
			out = append(out, d.Dialect)
		}
	}
	slices.Sort(out)
	return out
}

// Duration is the wall-clock time from the scenario's first record to its last.
func (sc *ScenarioSummary) Duration() time.Duration { return sc.Last.Sub(sc.First) }

// Counts returns how many of the deployment's devices are in each status.
func (d *DeploymentSummary) Counts() map[string]int {
	out := map[string]int{}
	for _, st := range d.Devices {
		out[st]++
	}
	return out
}

// CountsString renders Counts as "3 SUCCEEDED, 1 FAILED", statuses sorted.
func (d *DeploymentSummary) CountsString() string {
	c := d.Counts()
	var parts []string
	for _, st := range slices.Sorted(maps.Keys(c)) {
		parts = append(parts, fmt.Sprintf("%d %s", c[st], st))
	}
	return strings.Join(parts, ", ")
}

// TimelineText renders records one per line, timed on the service clock from start: the excerpt a failure
// message shows.
func TimelineText(records []Record, start time.Time) string {
	var b strings.Builder
	for _, r := range records {
		fmt.Fprintf(&b, "%+9.3fs %-18s", r.Time.Sub(start).Seconds(), r.Kind)
		if r.Deployment != "" {
			fmt.Fprintf(&b, " %s", r.Deployment)
		}
		if r.Device != "" {
			fmt.Fprintf(&b, " %s", r.Device)
		}
		if r.Fault != "" {
			fmt.Fprintf(&b, " fault=%s", r.Fault)
		}
		if r.From != "" || r.To != "" {
			fmt.Fprintf(&b, " %s→%s", r.From, r.To)
		}
		if r.Step != "" {
			fmt.Fprintf(&b, " step=%s", r.Step)
		}
		if r.Code != "" {
			fmt.Fprintf(&b, " code=%s", r.Code)
		}
		if r.Detail != "" {
			fmt.Fprintf(&b, " (%s)", r.Detail)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
