package replay

// The AppConfig replay. AppConfig has no jobs and no dialect driver: its scenarios run in the AppConfig lab
// (harness/appconfig), so its records are read, run and reported here, the one file of the replay that names a
// dialect (sim/layering_test.go lists it, as it lists the agent binary's AppConfig device).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"time"

	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/appconfig"
	"github.com/fleetlab/fleetlab/harness/dialect"
)

type (
	appConfigRecord = appconfig.FieldRecord
	appConfigSpec   = appconfig.Spec
	appConfigResult = appconfig.Result
)

// collectLab collects an AppConfig record; ok is false for the other dialects.
func collectLab(ctx context.Context, dialectName, endpoint string, rt http.RoundTripper, job, dir string) (files []dialect.RecordFile, ok bool, err error) {
	if dialectName != appconfig.Dialect {
		return nil, false, nil
	}
	return appconfig.RecordFiles(), true, appconfig.Collect(ctx, endpoint, rt, job, dir)
}

// readLab reads an AppConfig record from fsys: nil, and the files such a record needs (for the error that
// finds no record at all), when fsys holds none.
func readLab(fsys fs.FS) (*Record, []string, error) {
	ac, ok, err := appconfig.ReadRecord(fsys)
	if err != nil {
		return nil, nil, err
	}
	if ok {
		return &Record{FieldRecord: dialect.FieldRecord{Dialect: appconfig.Dialect, Status: ac.State, Unmapped: ac.Unmapped},
			AppConfig: &ac, Name: "replay"}, nil, nil
	}
	var files []string
	for _, f := range appconfig.RecordFiles() {
		if !f.Optional {
			files = append(files, f.Name+" ("+f.Command+")")
		}
	}
	return nil, files, nil
}

// AppConfigSpec builds the AppConfig scenario that reproduces an AppConfig record (r.AppConfig).
func (r *Record) AppConfigSpec() appconfig.Spec {
	s := r.AppConfig.Spec
	s.Name = r.Name
	s.Description = fmt.Sprintf("Replay of the field record %s: an AppConfig deployment that ended %s at %v%%", r.sourceName(), r.AppConfig.State, r.AppConfig.Percentage)
	if r.AppConfig.TriggeredBy != "" {
		s.Description += ", rolled back by " + r.AppConfig.TriggeredBy
	}
	return s
}

// RunAppConfig runs spec (the record's, AppConfigSpec, perhaps changed) in an AppConfig lab with seed (0: the
// harness's default) and compares the deployment's end with the record's: its State, PercentageComplete, the
// EventLog's types and the rollback's trigger. The error is the environment's failure.
func RunAppConfig(r *Record, spec appconfig.Spec, seed uint64, log io.Writer) (*Outcome, error) {
	if seed == 0 {
		seed = harness.DefaultSeed
	}
	o := &Outcome{Record: r, AppConfigSpec: &spec}
	var res *appconfig.Result
	err := harness.NewRecorder(spec.Name, log).Run(func(t harness.T) {
		got := appconfig.RunWith(t, spec, appconfig.RunOptions{Seed: seed})
		res = &got
	})
	var infra *harness.InfraError
	if errors.As(err, &infra) {
		return o, err
	}
	if res == nil {
		o.Diffs = append(o.Diffs, fmt.Sprintf("the scenario stopped before its end: %v", err))
		return o, nil
	}
	o.AppConfigResult = res
	o.Diffs = append(o.Diffs, res.Failures...)
	if res.Percentage != r.AppConfig.Percentage {
		o.Diffs = append(o.Diffs, fmt.Sprintf("deployment %v%% complete, the record's %v%%", res.Percentage, r.AppConfig.Percentage))
	}
	return o, nil
}

func (r *Record) reportLabRecord(w io.Writer) {
	fmt.Fprintf(w, "record %s: appconfig, a deployment that ended %s at %v%%\n", r.sourceName(), r.AppConfig.State, r.AppConfig.Percentage)
}

func (o *Outcome) reportLabSpec(w io.Writer) {
	s := o.AppConfigSpec
	fmt.Fprintf(w, "  strategy: %s, growth factor %v, %d minutes, bake %d minutes\n", s.Strategy.GrowthType,
		s.Strategy.GrowthFactor, s.Strategy.DurationMinutes, s.Strategy.BakeMinutes)
	for _, st := range s.Steps {
		fmt.Fprintf(w, "  step: %s at %v\n", st.Do, time.Duration(st.At))
	}
}
