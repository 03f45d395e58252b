package appconfig

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	act "github.com/aws/aws-sdk-go-v2/service/appconfig/types"
	"github.com/aws/smithy-go"

	"github.com/fleetlab/fleetlab/harness"
	dialect "github.com/fleetlab/fleetlab/sim/awsapi/appconfig"
	"github.com/fleetlab/fleetlab/sim/event"
)

// Duration is a time.Duration in JSON as Go spells it ("90s", "5m").
type Duration time.Duration

// MarshalJSON writes "5m0s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "5m".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Spec is an AppConfig scenario as data: a lab, a configuration in force before (Initial), the deployment of
// another (Content) with a strategy, what happens during it (Steps, at times counted from its start), and what
// must hold at the end.
type Spec struct {
	// Dialect is "appconfig": a scenario file says so, which is how `fleetlab run` tells it from a scenario of
	// the jobs harness (harness.Spec). A spec built in Go may leave it empty.
	Dialect     string `json:"dialect,omitempty"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Devices at start; PollSeconds their poll interval (default 15).
	Devices     int `json:"devices"`
	PollSeconds int `json:"pollSeconds,omitempty"`
	// ProfileType is AWS.Freeform (default) or AWS.AppConfig.FeatureFlags; Validator a JSON schema.
	ProfileType string          `json:"profileType,omitempty"`
	Validator   json.RawMessage `json:"validator,omitempty"`
	// Monitor gives the environment the alarm on the devices' health.
	Monitor bool `json:"monitor,omitempty"`
	// MetricDelay delays every device's health metric.
	MetricDelay Duration `json:"metricDelay,omitempty"`
	// Initial is deployed (label v1) and complete on every device before the scenario's deployment ("" none).
	Initial string `json:"initial,omitempty"`
	// Content is the configuration the scenario deploys (label v2) with Strategy.
	Content  string       `json:"content"`
	Strategy StrategySpec `json:"strategy"`
	// Faults are armed before the deployment starts.
	Faults []Fault `json:"faults,omitempty"`
	// Steps happen at their times after the deployment starts, in order.
	Steps  []Step `json:"steps,omitempty"`
	Expect Expect `json:"expect"`
}

// StrategySpec is a predefined strategy by id, or a custom one.
type StrategySpec struct {
	Predefined      string  `json:"predefined,omitempty"`
	GrowthType      string  `json:"growthType,omitempty"`
	GrowthFactor    float32 `json:"growthFactor,omitempty"`
	DurationMinutes int32   `json:"durationMinutes,omitempty"`
	BakeMinutes     int32   `json:"bakeMinutes,omitempty"`
}

// Fault is armed before the deployment: "apply-exit" (the apply hook of Devices exits Code on the new
// configuration, and applies any other).
type Fault struct {
	Fault   string   `json:"fault"`
	Devices []string `json:"devices"`
	Code    int      `json:"code,omitempty"`
}

// Step is something that happens during the deployment, At after its start:
//   - "check": the deployment is State with PercentageComplete Percent, and (MatchPercent) exactly the devices
//     whose bucket the percentage has reached hold the new configuration;
//   - "alarm": the monitor's alarm is set to ALARM by hand;
//   - "stop" / "revert": StopDeployment without / with Allow-Revert;
//   - "start-again": a second StartDeployment, which must fail with Error (an error code);
//   - "join": Count devices join the fleet;
//   - "stop-polling": Devices stop polling.
type Step struct {
	At           Duration `json:"at"`
	Do           string   `json:"do"`
	State        string   `json:"state,omitempty"`
	Percent      *float64 `json:"percent,omitempty"`
	MatchPercent bool     `json:"matchPercent,omitempty"`
	Error        string   `json:"error,omitempty"`
	Count        int      `json:"count,omitempty"`
	Devices      []string `json:"devices,omitempty"`
}

// Expect is the end of a scenario.
type Expect struct {
	// StartError is the error code StartDeployment must fail with (then nothing else is checked but Devices).
	StartError string `json:"startError,omitempty"`
	// State is the deployment's final state; Environment the environment's.
	State       string `json:"state,omitempty"`
	Environment string `json:"environment,omitempty"`
	// Events are the event log's types, newest first; TriggeredBy the rollback's trigger.
	Events      []string `json:"events,omitempty"`
	TriggeredBy string   `json:"triggeredBy,omitempty"`
	// Devices is what every device holds at the end: "new" (v2), "previous" (v1, or nothing without Initial);
	// Except overrides it per device.
	Devices string            `json:"devices"`
	Except  map[string]string `json:"except,omitempty"`
	// OnDevice, when set, is the content every device holding the new configuration has on its disk (default
	// Content; feature flags differ: devices get the flags' values).
	OnDevice string `json:"onDevice,omitempty"`
	// EndedAfter and EndedBefore bound when the deployment ended, after its start.
	EndedAfter  Duration `json:"endedAfter,omitempty"`
	EndedBefore Duration `json:"endedBefore,omitempty"`
}

// ReadSpecs reads every *.json scenario of dir in fsys, sorted by file name.
func ReadSpecs(fsys fs.FS, dir string) ([]Spec, error) {
	matches, err := fs.Glob(fsys, path.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(matches)
	var out []Spec
	for _, m := range matches {
		data, err := fs.ReadFile(fsys, m)
		if err != nil {
			return nil, err
		}
		s, err := ReadSpec(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// ReadSpec decodes one scenario file, strictly (an unknown member is an error), and validates it. A file must
// say "dialect": "appconfig".
func ReadSpec(r io.Reader) (Spec, error) {
	var s Spec
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Spec{}, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Spec{}, errors.New("data after the scenario")
	}
	if s.Dialect != Dialect {
		return Spec{}, fmt.Errorf("dialect: %q, want %q (an AppConfig scenario file says so)", s.Dialect, Dialect)
	}
	if err := s.Validate(); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// Dialect is the dialect member of an AppConfig scenario file.
const Dialect = "appconfig"

var stepKinds = []string{"check", "alarm", "stop", "revert", "start-again", "join", "stop-polling"}

// Validate reports a spec that cannot run.
func (s Spec) Validate() error {
	var errs []error
	if s.Dialect != "" && s.Dialect != Dialect {
		errs = append(errs, fmt.Errorf("dialect: %q is not %s", s.Dialect, Dialect))
	}
	if s.Name == "" {
		errs = append(errs, errors.New("name: required"))
	}
	if s.Devices < 1 {
		errs = append(errs, errors.New("devices: at least 1"))
	}
	if s.Strategy.Predefined == "" && (s.Strategy.GrowthFactor == 0 || s.Strategy.GrowthType == "") {
		errs = append(errs, errors.New("strategy: a predefined id, or growthType and growthFactor"))
	}
	for i, f := range s.Faults {
		if f.Fault != "apply-exit" || len(f.Devices) == 0 || f.Code == 0 {
			errs = append(errs, fmt.Errorf("faults[%d]: only apply-exit, with devices and a non-zero code", i))
		}
	}
	for i, st := range s.Steps {
		if !slices.Contains(stepKinds, st.Do) {
			errs = append(errs, fmt.Errorf("steps[%d].do: %q is not one of %s", i, st.Do, strings.Join(stepKinds, ", ")))
		}
		if i > 0 && st.At < s.Steps[i-1].At {
			errs = append(errs, fmt.Errorf("steps[%d].at: before the step before it", i))
		}
	}
	switch s.Expect.Devices {
	case "new", "previous":
	default:
		errs = append(errs, fmt.Errorf("expect.devices: %q is not new or previous", s.Expect.Devices))
	}
	for _, name := range slices.Sorted(maps.Keys(s.Expect.Except)) {
		if w := s.Expect.Except[name]; w != "new" && w != "previous" {
			errs = append(errs, fmt.Errorf("expect.except[%s]: %q is not new or previous", name, w))
		}
	}
	if s.Expect.StartError == "" && s.Expect.State == "" {
		errs = append(errs, errors.New("expect: a state or a startError"))
	}
	return errors.Join(errs...)
}

// Result is what a run measured.
type Result struct {
	Name string
	Seed uint64
	// Deployment is the scenario's deployment number (0 when StartDeployment was refused), State its final
	// state and Environment the environment's, as GetDeployment and GetEnvironment tell them.
	Deployment  int32
	State       string
	Environment string
	// Percentage is the deployment's final PercentageComplete, Events its EventLog's types (newest first) and
	// TriggeredBy its rollback's trigger ("" none).
	Percentage  float64
	Events      []string
	TriggeredBy string
	// Rows are the devices, each with what it holds on its disk and what was expected of it.
	Rows []Row
	// Failures are the ways the run differed from the expectation; none when it passed.
	Failures []string
	// Digest is a digest of the run's log: the same seed gives the same digest.
	Digest string
	Log    []string

	expect Expect
}

// Row is one device's line of the result table.
type Row struct {
	Device string
	// Holds is the version label of the configuration on the device's disk ("" none); Want what was expected
	// of it ("new" or "previous") and WantVersion the label that means.
	Holds, Want, WantVersion string
	// Diff says how the device differed; empty when it held what was expected.
	Diff string
}

// OK reports whether the run met its expectation.
func (r *Result) OK() bool { return r != nil && len(r.Failures) == 0 }

// WriteTable writes the per-device table and the deployment's line.
func (r *Result) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tHOLDS\tEXPECTED\t")
	for _, row := range r.Rows {
		mark := "ok"
		if row.Diff != "" {
			mark = "FAIL: " + row.Diff
		}
		fmt.Fprintf(tw, "%s\t%s\t%s (%s)\t%s\n", row.Device, dash(row.Holds), row.Want, dash(row.WantVersion), mark)
	}
	tw.Flush()
	if r.Deployment == 0 {
		fmt.Fprintf(w, "deployment refused (expected %s), seed %d\n", dash(r.expect.StartError), r.Seed)
	} else {
		fmt.Fprintf(w, "deployment %d: %s (expected %s), environment %s, seed %d\n", r.Deployment, r.State,
			r.expect.State, r.Environment, r.Seed)
	}
	for _, f := range r.Failures {
		fmt.Fprintf(w, "  FAIL %s\n", f)
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// recording is the T a run checks with: every failure is also kept for the Result.
type recording struct {
	harness.T
	mu       sync.Mutex
	failures []string
}

func (r *recording) keep(format string, args ...any) {
	r.mu.Lock()
	r.failures = append(r.failures, strings.TrimSpace(fmt.Sprintf(format, args...)))
	r.mu.Unlock()
}

func (r *recording) Errorf(format string, args ...any) {
	r.T.Helper()
	r.keep(format, args...)
	r.T.Errorf(format, args...)
}

func (r *recording) Fatalf(format string, args ...any) {
	r.T.Helper()
	r.keep(format, args...)
	r.T.Fatalf(format, args...)
}

// Unwrap returns the T beneath, so failures of the environment reach it as such (harness.InfraFatalf).
func (r *recording) Unwrap() harness.T { return r.T }

func (r *recording) kept() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.failures...)
}

// RunOptions shape a run of a scenario.
type RunOptions struct {
	Seed uint64
	// Sink, when set, is sent the run's events (the engine's, the devices' and the scenario's start and end,
	// stamped with the scenario's name): a report, a live view.
	Sink event.Sink
	// OnEnd, when set, is called once the scenario's deployment has ended, with the lab and the deployment's
	// number (to collect a field record of it, say).
	OnEnd func(l *Lab, deployment int32)
}

// Run carries out a scenario in a lab of its own and checks its expectations, failing t where they do not hold.
func Run(t harness.T, s Spec, seed uint64) Result {
	t.Helper()
	return RunWith(t, s, RunOptions{Seed: seed})
}

// RunWith is Run with options.
func RunWith(parent harness.T, s Spec, o RunOptions) Result {
	parent.Helper()
	t := &recording{T: parent}
	poll := time.Duration(max(s.PollSeconds, 15)) * time.Second
	l := NewLab(t, LabOptions{Seed: o.Seed, Devices: s.Devices, PollInterval: poll, ProfileType: s.ProfileType,
		Validator: string(s.Validator), Monitor: s.Monitor, MetricDelay: time.Duration(s.MetricDelay),
		Scenario: s.Name, Sink: o.Sink})
	l.emit(event.Event{Kind: event.ScenarioStarted, Reason: s.Description,
		Attrs: map[string]string{"seed": strconv.FormatUint(o.Seed, 10), "backend": "inproc"}})
	res := Result{Name: s.Name, Seed: o.Seed, expect: s.Expect}
	finish := func() Result {
		res.Rows = checkDevices(t, l, s)
		if res.Deployment != 0 {
			res.Environment = l.EnvironmentState()
		}
		res.Failures = t.kept()
		out := result(l)
		res.Digest, res.Log = out.Digest, out.Log
		outcome := event.OutcomePassed
		if len(res.Failures) > 0 {
			outcome = event.OutcomeFailed
		}
		l.emit(event.Event{Kind: event.ScenarioEnded, Code: outcome, Reason: strings.Join(res.Failures, "\n")})
		return res
	}
	settle := 2*poll + time.Second
	if s.Initial != "" {
		v1 := l.Version(s.Initial, "v1")
		n, err := l.Start(l.Strategy("LINEAR", 100, 0, 0), v1)
		l.must(err, "deploy the initial configuration")
		if d := l.WaitEnd(n, time.Hour); d.State != act.DeploymentStateComplete {
			t.Fatalf("initial deployment: %s", d.State)
		}
		l.Advance(settle)
		for _, name := range l.Devices() {
			if _, v := l.OnDisk(name); v != "v1" {
				t.Fatalf("%s holds %q before the scenario's deployment, want v1", name, v)
			}
		}
	}
	for _, f := range s.Faults {
		for _, name := range f.Devices {
			l.FailHook(name, "v2", f.Code)
		}
	}
	strategy := s.Strategy.Predefined
	if strategy == "" {
		strategy = l.Strategy(s.Strategy.GrowthType, s.Strategy.GrowthFactor, s.Strategy.DurationMinutes,
			s.Strategy.BakeMinutes)
	}
	v2 := l.Version(s.Content, "v2")
	start := l.Now()
	n, err := l.Start(strategy, v2)
	if s.Expect.StartError != "" {
		var api smithy.APIError
		if !errors.As(err, &api) || api.ErrorCode() != s.Expect.StartError {
			t.Errorf("StartDeployment: %v, want %s", err, s.Expect.StartError)
		}
		if err == nil {
			res.Deployment = n
			res.State = string(l.Deployment(n).State)
		}
		l.Advance(settle)
		return finish()
	}
	l.must(err, "start the deployment")
	res.Deployment = n
	for i, st := range s.Steps {
		if wait := start.Add(time.Duration(st.At)).Sub(l.Now()); wait > 0 {
			l.Advance(wait)
		}
		l.step(t, i, st, n, strategy, v2)
	}
	d := l.WaitEnd(n, 72*time.Hour)
	l.Advance(settle)
	d = l.Deployment(n)
	res.State = string(d.State)
	res.Percentage = float64(aws.ToFloat32(d.PercentageComplete))
	for _, e := range d.EventLog {
		res.Events = append(res.Events, string(e.EventType))
		if e.EventType == act.DeploymentEventTypeRollbackStarted {
			res.TriggeredBy = string(e.TriggeredBy)
		}
	}
	if o.OnEnd != nil {
		o.OnEnd(l, n)
	}
	if string(d.State) != s.Expect.State {
		t.Errorf("deployment %s, want %s", d.State, s.Expect.State)
	}
	if s.Expect.Environment != "" {
		if got := l.EnvironmentState(); got != s.Expect.Environment {
			t.Errorf("environment %s, want %s", got, s.Expect.Environment)
		}
	}
	if s.Expect.Events != nil {
		var got []string
		for _, e := range d.EventLog {
			got = append(got, string(e.EventType))
		}
		if strings.Join(got, " ") != strings.Join(s.Expect.Events, " ") {
			t.Errorf("event log %v, want %v", got, s.Expect.Events)
		}
	}
	if s.Expect.TriggeredBy != "" {
		found := false
		for _, e := range d.EventLog {
			if e.EventType == act.DeploymentEventTypeRollbackStarted {
				found = true
				if string(e.TriggeredBy) != s.Expect.TriggeredBy {
					t.Errorf("rollback triggered by %s, want %s", e.TriggeredBy, s.Expect.TriggeredBy)
				}
			}
		}
		if !found {
			t.Errorf("no ROLLBACK_STARTED in the event log")
		}
	}
	if d.CompletedAt != nil {
		ended := d.CompletedAt.Sub(start)
		if s.Expect.EndedAfter > 0 && ended < time.Duration(s.Expect.EndedAfter) {
			t.Errorf("deployment ended %v after its start, want at least %v", ended, time.Duration(s.Expect.EndedAfter))
		}
		if s.Expect.EndedBefore > 0 && ended > time.Duration(s.Expect.EndedBefore) {
			t.Errorf("deployment ended %v after its start, want at most %v", ended, time.Duration(s.Expect.EndedBefore))
		}
	}
	return finish()
}

func result(l *Lab) Result {
	log := l.Log()
	sum := sha256.Sum256([]byte(strings.Join(log, "\n")))
	return Result{Digest: hex.EncodeToString(sum[:8]), Log: log}
}

func (l *Lab) step(t harness.T, i int, st Step, n int32, strategy string, v2 int32) {
	t.Helper()
	at := time.Duration(st.At)
	switch st.Do {
	case "check":
		d := l.Deployment(n)
		pct := float64(aws.ToFloat32(d.PercentageComplete))
		if st.State != "" && string(d.State) != st.State {
			t.Errorf("steps[%d] at %v: deployment %s, want %s", i, at, d.State, st.State)
		}
		if st.Percent != nil && pct != *st.Percent {
			t.Errorf("steps[%d] at %v: %v%% complete, want %v%%", i, at, pct, *st.Percent)
		}
		if st.MatchPercent {
			holding := 0
			for _, name := range l.Devices() {
				_, v := l.OnDisk(name)
				want := dialect.Bucket(name) < pct
				if (v == "v2") != want {
					t.Errorf("steps[%d] at %v: %s (bucket %.2f) holds %q at %v%%", i, at, name,
						dialect.Bucket(name), v, pct)
				}
				if v == "v2" {
					holding++
				}
			}
			l.mu.Lock()
			l.log = append(l.log, fmt.Sprintf("check at %v: %v%%, %d devices on v2", at, pct, holding))
			l.mu.Unlock()
		}
	case "alarm":
		l.SetAlarm("ALARM")
	case "stop", "revert":
		_, err := l.AC.StopDeployment(context.Background(), stopInput(l, n, st.Do == "revert"))
		if err != nil {
			t.Errorf("steps[%d] at %v: StopDeployment: %v", i, at, err)
		}
	case "start-again":
		_, err := l.Start(strategy, v2)
		var api smithy.APIError
		if !errors.As(err, &api) || api.ErrorCode() != st.Error {
			t.Errorf("steps[%d] at %v: second StartDeployment: %v, want %s", i, at, err, st.Error)
		}
	case "join":
		l.AddDevices(st.Count)
	case "stop-polling":
		for _, name := range st.Devices {
			if d := l.Device(name); d != nil {
				d.Pause()
			} else {
				t.Fatalf("steps[%d]: no device %s", i, name)
			}
		}
	}
}

// checkDevices checks what every device holds on its disk, failing t for each that differs, and returns the rows.
func checkDevices(t harness.T, l *Lab, s Spec) []Row {
	t.Helper()
	var rows []Row
	for _, name := range l.Devices() {
		want := s.Expect.Devices
		if w, ok := s.Expect.Except[name]; ok {
			want = w
		}
		content, v := l.OnDisk(name)
		row := Row{Device: name, Holds: v, Want: want}
		switch want {
		case "new":
			row.WantVersion = "v2"
			onDevice := s.Content
			if s.Expect.OnDevice != "" {
				onDevice = s.Expect.OnDevice
			}
			if v != "v2" || !sameContent(content, onDevice) {
				row.Diff = fmt.Sprintf("holds %q (%s), want the new configuration %q", v, content, onDevice)
			}
		case "previous":
			wantV, wantC := "v1", s.Initial
			if s.Initial == "" {
				wantV = ""
			}
			row.WantVersion = wantV
			if v != wantV || content != wantC {
				row.Diff = fmt.Sprintf("holds %q (%s), want the previous configuration %q (%s)", v, content, wantV,
					wantC)
			}
		default:
			row.Diff = fmt.Sprintf("expectation %q is not new or previous", want)
		}
		if row.Diff != "" {
			t.Errorf("%s %s", name, row.Diff)
		}
		rows = append(rows, row)
	}
	return rows
}

// sameContent compares configurations, as JSON when both are.
func sameContent(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) == nil && json.Unmarshal([]byte(b), &y) == nil {
		xa, _ := json.Marshal(x)
		ya, _ := json.Marshal(y)
		return bytes.Equal(xa, ya)
	}
	return a == b
}
