package harness

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness/dialect"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// Spec declares a scenario: its fleet, the deployment job, the fault plan and the outcome it expects, as data;
// and, for a scenario that needs more than "inject the faults, start the job, wait", code.
//
// A data-only spec runs as: start the environment, arm and inject every fault of the plan, start the job,
// wait until it settles, check the expectation. A spec with Run starts the environment the same way (its
// faults armed and injected too) and then hands it to Run, which drives the scenario and returns the job whose
// outcome Expect describes.
type Spec struct {
	// Name identifies the scenario; it is the subtest's name.
	Name string `json:"name"`
	// Description says what the scenario shows.
	Description string `json:"description,omitempty"`
	// Dialect names the deployment API the scenario speaks, one of Drivers (default robomaker): it decides the
	// job's meaning, the statuses and steps Expect names, the steps faults take.
	Dialect string `json:"dialect,omitempty"`
	// Fleet is the robots.
	Fleet FleetSpec `json:"fleet,omitzero"`
	// Seed, when set, is the run's seed (otherwise the -fleetlab.seed flag's, or DefaultSeed).
	Seed uint64 `json:"seed,omitempty"`
	// TimeScale, when set, replaces DefaultTimeScale.
	TimeScale float64 `json:"timeScale,omitempty"`
	// Job is the deployment job a data-only scenario starts.
	Job JobSpec `json:"job,omitzero"`
	// Faults are armed and injected, in order, before the job starts.
	Faults []faults.Spec `json:"faults,omitempty"`
	// Expect is the outcome: the job's final state and every robot's.
	Expect Expect `json:"expect"`

	// Options are more environment options (code only).
	Options []Option `json:"-"`
	// Run drives a scenario that is not data only; it returns the ARN of the job Expect describes. Nil runs the
	// data-only flow.
	Run func(env *Env, spec Spec) string `json:"-"`
}

// FleetSpec is a scenario's fleet.
type FleetSpec struct {
	// Robots is the fleet's size (robots named robot-0001, …); Names names them instead.
	Robots int      `json:"robots,omitempty"`
	Names  []string `json:"names,omitempty"`
	// Architecture is every robot's GOARCH (amd64, arm64 or arm; default amd64); Architectures overrides it per
	// robot.
	Architecture  string            `json:"architecture,omitempty"`
	Architectures map[string]string `json:"architectures,omitempty"`
	// Late are robots hosted from the start but registered only when the scenario calls Env.RegisterLate.
	Late []string `json:"late,omitempty"`
}

// JobSpec is a scenario's deployment job; its dialect decides what its members mean and which values they take.
type JobSpec = dialect.JobSpec

// Expect is a scenario's expected outcome. Every robot of the job must meet one robot expectation: its own in
// Robots, else Targets when a fault of the plan targets it, else Others; a robot with none fails the scenario.
type Expect struct {
	// Status and FailureCode are the job's.
	Status      string `json:"status"`
	FailureCode string `json:"failureCode,omitempty"`
	// Robots are expectations by robot name.
	Robots map[string]RobotExpect `json:"robots,omitempty"`
	// Targets is the expectation of the robots a device or link fault of the plan targets.
	Targets *RobotExpect `json:"targets,omitempty"`
	// Others is the expectation of every other robot.
	Others *RobotExpect `json:"others,omitempty"`
	// Counts, when set, are the job's robots by status, exactly.
	Counts map[string]int `json:"counts,omitempty"`
	// MaxInFlight, when set, bounds how many robots were deploying at once (released and not ended).
	MaxInFlight int `json:"maxInFlight,omitempty"`
}

// RobotExpect is one robot's expected outcome; empty fields are not checked, except that a Status that carries
// no failure code in the dialect (RoboMaker: other than Failed or NoResponse) implies no failure code.
type RobotExpect struct {
	Status      string `json:"status"`
	FailureCode string `json:"failureCode,omitempty"`
	// Step is the last step the robot reached.
	Step string `json:"step,omitempty"`
}

func (r RobotExpect) String() string {
	s := r.Status
	if r.FailureCode != "" {
		s += "/" + r.FailureCode
	}
	if r.Step != "" {
		s += "@" + r.Step
	}
	return s
}

// check compares a robot with the expectation under the dialect's statuses; it returns what differs.
func (r RobotExpect) check(got Robot, st dialect.Statuses) []string {
	var diffs []string
	if got.Status != r.Status {
		diffs = append(diffs, fmt.Sprintf("status %s, want %s", got.Status, r.Status))
	}
	wantCode := r.FailureCode
	if wantCode != "" || !st.IsDeviceFailed(r.Status) {
		if got.FailureCode != wantCode {
			diffs = append(diffs, fmt.Sprintf("failure code %q, want %q", got.FailureCode, wantCode))
		}
	}
	if r.Step != "" && got.Step != r.Step {
		diffs = append(diffs, fmt.Sprintf("step %s, want %s", got.Step, r.Step))
	}
	return diffs
}

// driver returns the driver of the spec's dialect: the one its code Options give (WithDriver), else the one
// it names.
func (s Spec) driver() (dialect.Driver, error) {
	if c := s.optionsConfig(); c.driver != nil {
		return c.driver, nil
	}
	return DriverNamed(s.Dialect)
}

// optionsConfig is what the spec's code Options set, over no defaults. An option's own error is left for New
// to report.
func (s Spec) optionsConfig() config {
	var c config
	for _, o := range s.Options {
		if o != nil {
			_ = o.apply(&c)
		}
	}
	return c
}

// options returns the environment options the spec asks for.
func (s Spec) options() []Option {
	opts := []Option{WithDialect(s.Dialect)}
	f := s.Fleet
	switch {
	case len(f.Names) > 0:
		opts = append(opts, WithRobotNames(f.Names...))
	case f.Robots > 0:
		opts = append(opts, WithRobots(f.Robots))
	}
	if f.Architecture != "" {
		opts = append(opts, WithArchitecture(f.Architecture))
	}
	for _, name := range slices.Sorted(maps.Keys(f.Architectures)) {
		opts = append(opts, WithRobotArchitecture(name, f.Architectures[name]))
	}
	if len(f.Late) > 0 {
		opts = append(opts, WithLateRobots(f.Late...))
	}
	if s.Seed != 0 {
		opts = append(opts, WithSeed(s.Seed))
	}
	if s.TimeScale != 0 {
		opts = append(opts, WithTimeScale(s.TimeScale))
	}
	opts = append(opts, WithScenario(s.Name))
	return append(opts, s.Options...)
}

// Validate checks the spec as a whole, reporting every problem at once: the parts every dialect shares here,
// the job through its dialect's driver, the faults through the registry the spec's options name
// (WithFaultRegistry; default faults.Catalog()) with the dialect's steps.
func (s Spec) Validate() error { return s.validate(nil) }

// validate is Validate, placing each problem in the scenario file when pos knows where it is.
func (s Spec) validate(pos *positions) error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, pos.place(path, fmt.Errorf(format, args...)))
	}
	if s.Name == "" || strings.ContainsAny(s.Name, " /\t\n") {
		bad("name", "name %q: want a non-empty name without spaces or slashes", s.Name)
	}
	if s.Fleet.Robots < 0 {
		bad("fleet.robots", "fleet: robots %d is negative", s.Fleet.Robots)
	}
	if s.Fleet.Robots > 0 && len(s.Fleet.Names) > 0 {
		bad("fleet", "fleet: give robots or names, not both")
	}
	for i, n := range s.Fleet.Names {
		if err := fleet.CheckName(n); err != nil {
			bad(fmt.Sprintf("fleet.names[%d]", i), "fleet: %v", err)
		}
	}
	for i, n := range s.Fleet.Late {
		if err := fleet.CheckName(n); err != nil {
			bad(fmt.Sprintf("fleet.late[%d]", i), "fleet: %v", err)
		}
	}
	if s.Fleet.Architecture != "" {
		if err := fleet.CheckArchitecture(s.Fleet.Architecture); err != nil {
			bad("fleet.architecture", "fleet: %v", err)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(s.Fleet.Architectures)) {
		if err := fleet.CheckArchitecture(s.Fleet.Architectures[n]); err != nil {
			bad("fleet.architectures."+n, "fleet: robot %s: %v", n, err)
		}
	}
	drv, err := s.driver()
	if err != nil {
		bad("dialect", "%v", err)
		return errors.Join(errs...)
	}
	if s.TimeScale != 0 && s.TimeScale < 1 {
		bad("timeScale", "timeScale %v: want at least 1", s.TimeScale)
	}
	if b := s.Job.Bundle; b != "" && !slices.Contains(bundles.Names(), b) {
		bad("job.bundle", "job: bundle %q is not a fixture bundle (%s)", b, strings.Join(bundles.Names(), ", "))
	}
	if c := s.Job.DownloadCondition; c != "" && !slices.Contains(bundles.Scripts(), c) {
		bad("job.downloadCondition", "job: download condition %q is not a fixture script (%s)", c, strings.Join(bundles.Scripts(), ", "))
	}
	for _, p := range drv.CheckJob(s.Job) {
		bad(p.Path, "%v", p.Err)
	}
	reg := s.registry()
	robots := s.robots()
	for i, f := range s.Faults {
		at := fmt.Sprintf("faults[%d]", i)
		if _, err := reg.New(f, drv.Steps()); err != nil {
			switch {
			case errors.Is(err, faults.ErrUnknown):
				at += ".fault"
			case errors.Is(err, faults.ErrParams):
				at += ".params"
			case errors.Is(err, faults.ErrTarget):
				at += ".target"
			}
			bad(at, "faults[%d]: %v", i, err)
			continue
		}
		if robots == nil {
			continue
		}
		for j, d := range f.Target.Devices {
			if !slices.Contains(robots, d) {
				bad(fmt.Sprintf("%s.target.devices[%d]", at, j), "faults[%d]: target: %s is not a robot of the fleet (%s)",
					i, d, strings.Join(robots, ", "))
			}
		}
		if n := f.Target.Count; n > len(robots) {
			bad(at+".target.count", "faults[%d]: target: count %d is more robots than the fleet's %d", i, n, len(robots))
		}
	}
	st, steps := drv.Statuses(), drv.Steps()
	if !slices.Contains(st.Final, s.Expect.Status) {
		bad("expect.status", "expect: status %q: want %s", s.Expect.Status, orList(st.Final))
	}
	robotExpects := map[string]RobotExpect{}
	for n, r := range s.Expect.Robots {
		robotExpects["robots."+n] = r
	}
	if s.Expect.Targets != nil {
		robotExpects["targets"] = *s.Expect.Targets
	}
	if s.Expect.Others != nil {
		robotExpects["others"] = *s.Expect.Others
	}
	if len(robotExpects) == 0 {
		bad("expect", "expect: no robot expectation: every robot's final state must be expected (robots, targets or others)")
	}
	for _, where := range slices.Sorted(maps.Keys(robotExpects)) {
		r := robotExpects[where]
		if !slices.Contains(st.Device, r.Status) {
			bad("expect."+where+".status", "expect: %s: status %q is not a %s robot status", where, r.Status, steps.Name)
		}
		if r.Step != "" && !slices.Contains(steps.Steps, r.Step) {
			bad("expect."+where+".step", "expect: %s: step %q is not a %s step", where, r.Step, steps.Name)
		}
	}
	for n := range s.Expect.Robots {
		if robots != nil && !slices.Contains(robots, n) {
			bad("expect.robots."+n, "expect: robots: %s is not a robot of the fleet (%s)", n, strings.Join(robots, ", "))
		}
	}
	return errors.Join(errs...)
}

// registry returns the fault registry the spec's options name (WithFaultRegistry), else faults.Catalog().
func (s Spec) registry() *faults.Registry {
	if c := s.optionsConfig(); c.registry != nil {
		return c.registry
	}
	return faults.Catalog()
}

// orList renders "a, b or c".
func orList(xs []string) string {
	if len(xs) < 2 {
		return strings.Join(xs, "")
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " or " + xs[len(xs)-1]
}

// robots returns the names of the fleet's robots, late ones included, when the spec alone decides them (no
// code Options, which may change the fleet); nil otherwise.
func (s Spec) robots() []string {
	if len(s.Options) > 0 {
		return nil
	}
	count := s.Fleet.Robots
	if count == 0 && len(s.Fleet.Names) == 0 {
		count = DefaultRobots
	}
	names, err := fleet.Names(s.Fleet.Names, count, "")
	if err != nil {
		return nil
	}
	return append(names, s.Fleet.Late...)
}

// ReadSpec decodes a data-only spec from JSON, strictly (an unknown member is an error), and validates it.
// Every problem it reports says where it is in the file, "line L, column C: …": a JSON syntax error, a
// member the scenario format does not have (with the members there are), a value of the wrong kind, a value
// the checks refuse — a fault's parameters included.
func ReadSpec(r io.Reader) (Spec, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return Spec{}, fmt.Errorf("read spec: %w", err)
	}
	pos := &positions{src: b, at: map[string]int{}}
	var syntax any
	if err := json.Unmarshal(b, &syntax); err != nil {
		return Spec{}, fmt.Errorf("decode spec: %w", pos.decodeError(err))
	}
	start := skipSpace(b, 0)
	if err := pos.walk(b[start:], start, reflect.TypeFor[Spec](), ""); err != nil {
		return Spec{}, fmt.Errorf("decode spec: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s Spec
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("decode spec: %w", pos.decodeError(err))
	}
	if dec.More() {
		return Spec{}, errors.New("decode spec: more than one JSON value")
	}
	reg := s.registry()
	for i, f := range s.Faults {
		// A fault's parameters decode into the fault's own type: place them too.
		path := fmt.Sprintf("faults[%d].params", i)
		d, ok := reg.Lookup(f.Fault)
		off, placed := pos.at[path]
		if !ok || !placed {
			continue
		}
		if err := pos.walk(f.Params, off, reflect.TypeOf(d.New()), path); err != nil {
			return Spec{}, fmt.Errorf("decode spec: %w", err)
		}
	}
	if err := s.validate(pos); err != nil {
		return Spec{}, fmt.Errorf("spec %s: %w", s.Name, err)
	}
	return s, nil
}

// ReadSpecs reads every *.json file of dir in fsys, in name order.
func ReadSpecs(fsys fs.FS, dir string) ([]Spec, error) {
	matches, err := fs.Glob(fsys, path.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(matches)
	var out []Spec
	for _, m := range matches {
		f, err := fsys.Open(m)
		if err != nil {
			return nil, err
		}
		s, err := ReadSpec(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// Registry holds scenario specs by name. Build it with NewRegistry and Add; a duplicate name is an error.
type Registry struct {
	specs map[string]Spec
	order []string
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{specs: map[string]Spec{}} }

// Add validates s and adds it; a name already added is an error.
func (r *Registry) Add(specs ...Spec) error {
	for _, s := range specs {
		if err := s.Validate(); err != nil {
			return fmt.Errorf("add scenario %s: %w", s.Name, err)
		}
		if _, dup := r.specs[s.Name]; dup {
			return fmt.Errorf("add scenario %s: already registered", s.Name)
		}
		r.specs[s.Name] = s
		r.order = append(r.order, s.Name)
	}
	return nil
}

// Get returns the named spec.
func (r *Registry) Get(name string) (Spec, bool) {
	s, ok := r.specs[name]
	return s, ok
}

// All returns every spec in the order added.
func (r *Registry) All() []Spec {
	out := make([]Spec, len(r.order))
	for i, n := range r.order {
		out[i] = r.specs[n]
	}
	return out
}
