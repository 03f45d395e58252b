// Package replay turns a field record — what a real rollout left behind, as the AWS CLI shows it afterwards,
// and the devices' logs — into a scenario that fails the same way on the bench, runs it, and compares the
// outcome with the record device by device.
//
// A record is a directory; which dialect it is comes from the files in it (each dialect's driver reads its own:
// dialect.Replayer). The scenario is an ordinary harness.Spec — the record's fleet and policy, a fixture bundle
// standing in for the field's application, a fault of fleetlab's catalog for each device's failure, and the
// record's outcome as the expectation — so it can be written out and committed under fixtures/scenarios/.
// What the record holds that fleetlab cannot map is named, never dropped.
package replay

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/dialect"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// Record is a field record as read.
type Record struct {
	// Dir is where it was read from; Name the scenario name made of it.
	Dir, Name string
	dialect.FieldRecord
	// AppConfig is the record of an AppConfig deployment, which the AppConfig lab replays rather than the jobs
	// harness (FieldRecord then holds its dialect, its State as Status and its Unmapped); nil for the others.
	AppConfig *appConfigRecord
	// Logs are the device logs of logs/<device>.log, by device.
	Logs map[string]string
}

// Replayers returns the harness's drivers that read field records.
func Replayers() []dialect.Replayer {
	var out []dialect.Replayer
	for _, d := range harness.Drivers() {
		if r, ok := d.(dialect.Replayer); ok {
			out = append(out, r)
		}
	}
	return out
}

// Collect writes the record of job, on the service at endpoint, of the named dialect (robomaker when empty)
// into dir, and returns the record's files.
func Collect(ctx context.Context, dialectName, endpoint string, rt http.RoundTripper, job, dir string) ([]dialect.RecordFile, error) {
	if files, ok, err := collectLab(ctx, dialectName, endpoint, rt, job, dir); ok {
		return files, err
	}
	r, err := ReplayerNamed(dialectName)
	if err != nil {
		return nil, err
	}
	return r.RecordFiles(), r.Collect(ctx, endpoint, rt, job, dir)
}

// ReplayerNamed returns the named dialect's record reader.
func ReplayerNamed(name string) (dialect.Replayer, error) {
	d, err := harness.DriverNamed(name)
	if err != nil {
		return nil, err
	}
	r, ok := d.(dialect.Replayer)
	if !ok {
		return nil, fmt.Errorf("dialect %s reads no field records", d.Name())
	}
	return r, nil
}

// Read reads the record in dir. Its error, when the record cannot be read, is a *dialect.RecordError naming
// the file and the field.
func Read(dir string) (*Record, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, &dialect.RecordError{Err: fmt.Errorf("record %s: %w", dir, err)}
	}
	if !st.IsDir() {
		return nil, &dialect.RecordError{Err: fmt.Errorf("record %s: not a directory (a record is a directory of the CLI's JSON outputs)", dir)}
	}
	rec, err := ReadFS(os.DirFS(dir))
	if err != nil {
		return nil, err
	}
	rec.Dir = dir
	rec.Name = scenarioName(filepath.Base(filepath.Clean(dir)))
	return rec, nil
}

// ReadFS reads a record from fsys.
func ReadFS(fsys fs.FS) (*Record, error) {
	var files []string
	for _, r := range Replayers() {
		fr, ok, err := r.ReadRecord(fsys)
		if err != nil {
			return nil, err
		}
		if !ok {
			for _, f := range r.RecordFiles() {
				if !f.Optional {
					files = append(files, f.Name+" ("+f.Command+")")
				}
			}
			continue
		}
		rec := &Record{FieldRecord: fr, Name: "replay"}
		if err := rec.readLogs(fsys); err != nil {
			return nil, err
		}
		return rec, nil
	}
	rec, labFiles, err := readLab(fsys)
	if err != nil {
		return nil, err
	}
	if rec != nil {
		if err := rec.readLogs(fsys); err != nil {
			return nil, err
		}
		return rec, nil
	}
	files = append(files, labFiles...)
	return nil, &dialect.RecordError{Err: fmt.Errorf("no field record of a dialect fleetlab knows: want one of %s", strings.Join(files, "; "))}
}

// readLogs reads logs/<device>.log. Lines of fleetlab's own event stream (events.jsonl records or the
// agent's events) give the last step a device reached when the record gives none; other logs are kept for
// reading and said to be.
func (r *Record) readLogs(fsys fs.FS) error {
	entries, err := fs.ReadDir(fsys, "logs")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return &dialect.RecordError{File: "logs", Err: err}
	}
	r.Logs = map[string]string{}
	for _, e := range entries {
		name := path.Join("logs", e.Name())
		dev, ok := strings.CutSuffix(e.Name(), ".log")
		if e.IsDir() || !ok {
			r.Unmapped = append(r.Unmapped, name+": not a logs/<device>.log; not read")
			continue
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return &dialect.RecordError{File: name, Err: err}
		}
		r.Logs[dev] = string(b)
		i := slices.IndexFunc(r.Devices, func(d dialect.FieldDevice) bool { return d.Name == dev })
		if i < 0 {
			r.Unmapped = append(r.Unmapped, name+": no device "+dev+" in the record; not read")
			continue
		}
		step, n := lastStep(string(b))
		switch {
		case n == 0 && logReaders[r.Dialect]:
			r.Unmapped = append(r.Unmapped, name+": read by the "+r.Dialect+" reader for what failed; the rest kept for reading")
		case n == 0:
			r.Unmapped = append(r.Unmapped, name+": kept for reading; fleetlab maps no line of it (not its event stream)")
		case r.Devices[i].Step == "" && step != "":
			r.Devices[i].Step = step
		}
	}
	return nil
}

// logReaders are the dialects whose readers read a device's log themselves (OpsWorks: the deploy hook that
// failed, when the command's LogUrl cannot be read).
var logReaders = map[string]bool{"opsworks": true}

// lastStep returns the last execution step a log of fleetlab's events names, and how many of its lines were
// events.
func lastStep(log string) (string, int) {
	var step string
	n := 0
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e struct {
			Kind string `json:"kind"`
			Step string `json:"step"`
		}
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Kind == "" {
			continue
		}
		n++
		if e.Kind == string(event.ExecutionStep) && e.Step != "" {
			step = e.Step
		}
	}
	return step, n
}

var notName = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

func scenarioName(base string) string {
	s := strings.Trim(notName.ReplaceAllString(base, "-"), "-")
	if s == "" {
		s = "record"
	}
	return "replay-" + s
}

// Spec builds the scenario that reproduces the record: its fleet in the record's release order, the policy,
// the faults (each device's targeted at it), and the record's outcome as the expectation. An AppConfig record's
// scenario is AppConfigSpec's.
func (r *Record) Spec() harness.Spec {
	s := harness.Spec{Name: r.Name, Dialect: r.Dialect, Job: r.Job,
		Description: fmt.Sprintf("Replay of the field record %s: %d devices, %s", r.sourceName(), len(r.Devices), outcomeLine(r.Status, r.FailureCode)),
		Expect:      harness.Expect{Status: r.Status, FailureCode: r.FailureCode, Robots: map[string]harness.RobotExpect{}}}
	s.Faults = append(s.Faults, r.Faults...)
	for _, d := range r.Devices {
		s.Fleet.Names = append(s.Fleet.Names, d.Name)
		if d.Architecture != "" && d.Architecture != fleet.ArchAMD64 {
			if s.Fleet.Architectures == nil {
				s.Fleet.Architectures = map[string]string{}
			}
			s.Fleet.Architectures[d.Name] = d.Architecture
		}
		for _, f := range d.Faults {
			f.Target.Devices = []string{d.Name}
			s.Faults = append(s.Faults, f)
		}
		if f, ok := r.timing(d); ok {
			s.Faults = append(s.Faults, f)
		}
		s.Expect.Robots[d.Name] = harness.RobotExpect{Status: d.Status, FailureCode: d.FailureCode, Step: d.Step}
	}
	return s
}

// timing is the fault that makes a device take as long as it took in the field, held at the dialect's first
// step: a device that ended by itself (it succeeded, or failed) for its recorded time, so the devices end in
// the record's order and at its offsets; one the rollout stopped while it deployed for longer than it ran, so
// it is still deploying when the rollout stops. A device that went silent ends by the policy's timeout and
// needs none.
func (r *Record) timing(d dialect.FieldDevice) (faults.Spec, bool) {
	took := d.Finished.Sub(d.Started)
	if d.Started.IsZero() || d.Finished.IsZero() || took < time.Second ||
		slices.ContainsFunc(d.Faults, func(f faults.Spec) bool { return f.Fault == "no-response" }) {
		return faults.Spec{}, false
	}
	drv, err := harness.DriverNamed(r.Dialect)
	if err != nil || len(drv.Steps().Steps) == 0 {
		return faults.Spec{}, false
	}
	hold := took.Truncate(time.Second)
	if d.Stopped {
		hold = 2*hold + time.Minute
	}
	delay, _ := json.Marshal(map[string]faults.Duration{"delay": faults.Duration(hold)})
	return faults.Spec{Fault: "slow-step", Params: delay, Target: faults.Selector{Devices: []string{d.Name}, Step: drv.Steps().Steps[0]}}, true
}

func (r *Record) sourceName() string {
	if r.Dir == "" {
		return r.Name
	}
	return filepath.Base(filepath.Clean(r.Dir))
}

func outcomeLine(status, code string) string {
	if code == "" {
		return status
	}
	return status + " (" + code + ")"
}

// Outcome is a replay's result.
type Outcome struct {
	Record *Record
	Spec   harness.Spec
	// Result is the run; nil when the environment failed.
	Result *harness.Result
	// AppConfigSpec and AppConfigResult are an AppConfig record's scenario and run, in place of Spec and Result.
	AppConfigSpec   *appConfigSpec
	AppConfigResult *appConfigResult
	// Diffs are how the run differed from the record: the job's and each device's status, code and step, and
	// the order of failures where the policy makes it matter. None when the record was reproduced.
	Diffs []string
}

// Reproduced reports whether the run ended as the record did.
func (o *Outcome) Reproduced() bool {
	return (o.Result != nil || o.AppConfigResult != nil) && len(o.Diffs) == 0
}

// Run runs spec (the record's, Spec, perhaps changed) and compares the outcome with the record. The error is
// the environment's failure (an *harness.InfraError), not a difference.
func Run(r *Record, spec harness.Spec, log io.Writer) (*Outcome, error) {
	res, err := harness.Execute(spec, log, "")
	o := &Outcome{Record: r, Spec: spec, Result: res}
	if res == nil {
		if err == nil {
			err = errors.New("the scenario ended without a result")
		}
		return o, err
	}
	var infra *harness.InfraError
	if errors.As(err, &infra) {
		return o, err
	}
	o.Diffs = append(o.Diffs, res.Failures...)
	o.Diffs = append(o.Diffs, r.orderDiffs(res)...)
	return o, nil
}

// orderDiffs compares the order in which the devices with faults failed, when the record says it decided the
// outcome.
func (r *Record) orderDiffs(res *harness.Result) []string {
	if !r.Ordered {
		return nil
	}
	var want []dialect.FieldDevice
	for _, d := range r.Devices {
		if len(d.Faults) > 0 && !d.Finished.IsZero() {
			want = append(want, d)
		}
	}
	slices.SortStableFunc(want, func(a, b dialect.FieldDevice) int { return a.Finished.Compare(b.Finished) })
	type end struct {
		name string
		at   int // the index in the run's events of the device's last state change
	}
	var got []end
	for _, d := range want {
		last := -1
		for i, e := range res.Events {
			if e.Device == d.Name && e.Kind == event.ExecutionState {
				last = i
			}
		}
		got = append(got, end{d.Name, last})
	}
	slices.SortStableFunc(got, func(a, b end) int { return a.at - b.at })
	var w, g []string
	for i := range want {
		w = append(w, want[i].Name)
		g = append(g, got[i].name)
	}
	if slices.Equal(w, g) {
		return nil
	}
	return []string{fmt.Sprintf("failures in the order %s, the record's is %s (the failure threshold made the order matter)",
		strings.Join(g, ", "), strings.Join(w, ", "))}
}

// WriteSpec writes the scenario (a harness.Spec, or an appconfig.Spec) as a fixtures/scenarios file.
func WriteSpec(path string, spec any) error {
	b, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Report writes what the replay built and found: the unmapped parts of the record, then the per-device
// comparison and the differences.
func (o *Outcome) Report(w io.Writer) {
	r := o.Record
	if r.AppConfig != nil {
		r.reportLabRecord(w)
	} else {
		fmt.Fprintf(w, "record %s: %s, %d devices, %s\n", r.sourceName(), r.Dialect, len(r.Devices), outcomeLine(r.Status, r.FailureCode))
	}
	for _, u := range r.Unmapped {
		fmt.Fprintf(w, "  not mapped: %s\n", u)
	}
	for _, f := range o.Spec.Faults {
		fmt.Fprintf(w, "  fault: %s\n", faultLine(f))
	}
	if o.AppConfigSpec != nil {
		o.reportLabSpec(w)
	}
	if o.Result != nil {
		o.Result.WriteTable(w)
	}
	if o.AppConfigResult != nil {
		o.AppConfigResult.WriteTable(w)
	}
	switch {
	case o.Reproduced() && r.AppConfig != nil:
		fmt.Fprintln(w, "reproduced: the deployment ended as the record says (state, percentage, event log)")
		return
	case o.Reproduced():
		fmt.Fprintln(w, "reproduced: every device ended as the record says")
		return
	}
	for _, d := range o.Diffs {
		fmt.Fprintf(w, "  differs: %s\n", d)
	}
	fmt.Fprintf(w, "not reproduced: %d differences\n", len(o.Diffs))
}

func faultLine(f faults.Spec) string {
	s := f.Fault
	if len(f.Params) > 0 {
		s += " " + string(f.Params)
	}
	if len(f.Target.Devices) > 0 {
		s += " on " + strings.Join(f.Target.Devices, ", ")
	}
	if f.Target.Step != "" {
		s += " at " + f.Target.Step
	}
	return s
}
