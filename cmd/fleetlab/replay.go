package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/appconfig"
	"github.com/fleetlab/fleetlab/harness/replay"
)

func replayCommand() *command {
	c := &command{name: "replay", summary: "turn a field record (the AWS CLI's outputs after a rollout) into a scenario, run it, and compare",
		usage: "[--seed N] [--write FILE.json] [--timeline] RECORD_DIR | --collect --endpoint URL --job JOB [--dialect D] RECORD_DIR"}
	c.run = func(args []string, stdout, stderr io.Writer) error {
		fs := newFlags(c, stderr)
		seed := fs.Uint64("seed", 0, "seed of every random choice (default: the harness's fixed seed)")
		write := fs.String("write", "", "save the scenario built from the record to this file (to commit under fixtures/scenarios/)")
		timeline := fs.Bool("timeline", false, "print the replayed job's timeline of events")
		collect := fs.Bool("collect", false, "fill RECORD_DIR from a running service instead of replaying it (the same files the CLI commands of the README write)")
		endpoint := fs.String("endpoint", "", "with --collect: the service's endpoint, e.g. http://127.0.0.1:4566")
		job := fs.String("job", "", "with --collect: the deployment to collect (a RoboMaker deployment job ARN, a Greengrass V2 deployment id, a Greengrass V1 bulk deployment ARN or group id, an OpsWorks deployment id, an AppConfig APP_ID/ENV_ID/NUMBER)")
		dialectName := fs.String("dialect", "", "with --collect: the dialect of the deployment: robomaker (default), greengrassv2, greengrass, opsworks or appconfig")
		dirs, err := parseInterleaved(c, fs, args)
		if err != nil {
			return err
		}
		if len(dirs) != 1 {
			return &usageError{msg: fmt.Sprintf("want one record directory, got %d", len(dirs)),
				hint: "fleetlab replay fixtures/records/robomaker-prelaunch-one-robot"}
		}
		if *collect {
			return collectRecord(*endpoint, *job, *dialectName, dirs[0], stdout)
		}
		for _, f := range []string{"endpoint", "job", "dialect"} {
			if given(fs, f) {
				return &usageError{msg: "--" + f + " is for --collect", hint: "fleetlab replay --collect --endpoint URL --job JOB DIR"}
			}
		}
		rec, err := replay.Read(dirs[0])
		if err != nil {
			return &usageError{msg: "cannot read the record: " + err.Error(),
				hint: "a record is a directory of the AWS CLI's JSON outputs named after their commands: see \"Field records\" in the README"}
		}
		if rec.AppConfig != nil {
			return replayAppConfig(rec, *seed, *write, *timeline, stdout, stderr)
		}
		spec := rec.Spec()
		if *seed != 0 {
			spec.Seed = *seed
		}
		if err := spec.Validate(); err != nil {
			return &usageError{msg: "the record makes a scenario fleetlab refuses: " + err.Error(),
				hint: "the record's names or values are outside what fleetlab can run; the message says which"}
		}
		if *write != "" {
			if err := replay.WriteSpec(*write, spec); err != nil {
				return &envError{err}
			}
			fmt.Fprintf(stdout, "scenario written to %s\n", *write)
		}
		out, err := replay.Run(rec, spec, stderr)
		var infra *harness.InfraError
		if errors.As(err, &infra) || out.Result == nil {
			return &envError{fmt.Errorf("the environment failed; the record was not replayed: %w", err)}
		}
		out.Report(stdout)
		if *timeline {
			fmt.Fprintf(stdout, "timeline:\n%s", harness.Timeline(out.Result.Job.Timeline))
		}
		if !out.Reproduced() {
			return &failedError{msg: fmt.Sprintf("the record was not reproduced: %d differences (above)", len(out.Diffs))}
		}
		return nil
	}
	return c
}

// collectRecord writes the record of job on the service at endpoint into dir.
func collectRecord(endpoint, job, dialectName, dir string, stdout io.Writer) error {
	if endpoint == "" || job == "" {
		return &usageError{msg: "--collect needs --endpoint and --job",
			hint: "fleetlab replay --collect --endpoint http://127.0.0.1:4566 --job arn:aws:robomaker:…:deployment-job/… DIR"}
	}
	if !strings.HasPrefix(endpoint, "http://") && !strings.HasPrefix(endpoint, "https://") {
		return &usageError{msg: fmt.Sprintf("--endpoint %q: want http(s)://host:port", endpoint), hint: "--endpoint http://127.0.0.1:4566"}
	}
	if dialectName != appconfig.Dialect {
		if _, err := replay.ReplayerNamed(dialectName); err != nil {
			return &usageError{msg: err.Error() + " or " + appconfig.Dialect, hint: "fleetlab replay --collect --dialect robomaker …"}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	files, err := replay.Collect(ctx, dialectName, endpoint, http.DefaultTransport, job, dir)
	if err != nil {
		return &envError{fmt.Errorf("collect %s: %w", job, err)}
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
	}
	fmt.Fprintf(stdout, "record of %s written to %s (%s)\n", job, dir, strings.Join(names, ", "))
	return nil
}

// replayAppConfig replays an AppConfig record in the AppConfig lab.
func replayAppConfig(rec *replay.Record, seed uint64, write string, timeline bool, stdout, stderr io.Writer) error {
	spec := rec.AppConfigSpec()
	if err := spec.Validate(); err != nil {
		return &usageError{msg: "the record makes a scenario fleetlab refuses: " + err.Error(),
			hint: "the record's values are outside what fleetlab can run; the message says which"}
	}
	if write != "" {
		if err := replay.WriteSpec(write, spec); err != nil {
			return &envError{err}
		}
		fmt.Fprintf(stdout, "scenario written to %s\n", write)
	}
	out, err := replay.RunAppConfig(rec, spec, seed, stderr)
	if err != nil {
		return &envError{fmt.Errorf("the environment failed; the record was not replayed: %w", err)}
	}
	out.Report(stdout)
	if timeline && out.AppConfigResult != nil {
		fmt.Fprintln(stdout, "timeline:")
		for _, line := range out.AppConfigResult.Log {
			fmt.Fprintf(stdout, "  %s\n", line)
		}
	}
	if !out.Reproduced() {
		return &failedError{msg: fmt.Sprintf("the record was not reproduced: %d differences (above)", len(out.Diffs))}
	}
	return nil
}
