package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/faults"
)

func runCommand() *command {
	c := &command{name: "run", summary: "run scenario files (fixtures/scenarios/*.json) outside go test and check their outcome",
		usage: "[--seed N] [--time-scale N] [--os] [--timeline] FILE.json|DIR..."}
	c.run = func(args []string, stdout, stderr io.Writer) error {
		fs := newFlags(c, stderr)
		seed := fs.Uint64("seed", 0, "seed of every random choice (default: the scenario's, else the harness's fixed seed)")
		scale := fs.Float64("time-scale", 0, "policy time runs this many times faster than the wall clock (default: the scenario's, else 600)")
		osExec := fs.Bool("os", false, "run scripts and the robot application as real processes instead of simulating them in memory")
		timeline := fs.Bool("timeline", false, "print each job's timeline of events after its table")
		rigFile := fs.String("rig", "", "run the scenarios on the boards of this rig file (fixtures/rigs/emulated-4.yaml) instead of in-process robots")
		rigAgent := fs.String("agent", "", "with --rig: the fleetlab-agent program emulated boards run")
		files, err := parseInterleaved(c, fs, args)
		if err != nil {
			return err
		}
		if len(files) == 0 {
			return &usageError{msg: "no scenario file given",
				hint: "fleetlab run fixtures/scenarios/no-response.json (or a directory of scenario files)"}
		}
		if *scale != 0 && *scale < 1 {
			return &usageError{msg: fmt.Sprintf("--time-scale %v is below 1", *scale),
				hint: "use 1 for real time, or a larger factor such as 600 to compress policy time"}
		}
		var rigOpt harness.Option
		var reg *faults.Registry
		if *rigFile != "" {
			var err error
			if rigOpt, reg, err = rigBackend(*rigFile, *rigAgent); err != nil {
				return err
			}
		}
		specs, paths, err := readScenarios(files, reg)
		if err != nil {
			return err
		}
		var failed, broken []string
		for i, spec := range specs {
			if *seed != 0 {
				spec.Seed = *seed
			}
			if *scale != 0 {
				spec.TimeScale = *scale
			}
			if *osExec {
				spec.Options = append(spec.Options, harness.WithBackend(harness.InProc{OS: true}))
			}
			if rigOpt != nil {
				spec.Options = append(spec.Options, rigOpt)
			}
			fmt.Fprintf(stdout, "=== %s (%s)\n", spec.Name, paths[i])
			if spec.Description != "" {
				fmt.Fprintf(stdout, "    %s\n", spec.Description)
			}
			started := time.Now()
			rerun := fmt.Sprintf("fleetlab run --seed %d %s", seedOf(spec), paths[i])
			res, err := harness.Execute(spec, stderr, rerun)
			if res != nil && res.Job.ID != "" {
				res.WriteTable(stdout)
				if *timeline {
					fmt.Fprintf(stdout, "timeline:\n%s", harness.Timeline(res.Job.Timeline))
				}
			}
			var infra *harness.InfraError
			switch {
			case errors.As(err, &infra):
				fmt.Fprintf(stdout, "--- BROKEN %s: %v\n    %s\n\n", spec.Name, infra.Err, rerun)
				broken = append(broken, spec.Name)
			case err != nil || !res.OK():
				fmt.Fprintf(stdout, "--- FAIL %s (%.1fs)\n    rerun: %s\n\n", spec.Name, time.Since(started).Seconds(), rerun)
				failed = append(failed, spec.Name)
			default:
				fmt.Fprintf(stdout, "--- PASS %s (%.1fs)\n\n", spec.Name, time.Since(started).Seconds())
			}
		}
		fmt.Fprintf(stdout, "scenarios: %d passed, %d failed\n", len(specs)-len(failed)-len(broken),
			len(failed)+len(broken))
		switch {
		case len(broken) > 0:
			return &envError{fmt.Errorf("the environment failed for %s (see above); the product was not tested",
				strings.Join(broken, ", "))}
		case len(failed) > 0:
			return &failedError{msg: fmt.Sprintf("%d of %d scenarios did not end as expected: %s", len(failed),
				len(specs), strings.Join(failed, ", "))}
		}
		return nil
	}
	return c
}

// parseInterleaved parses flags that may come before, between or after the file arguments.
func parseInterleaved(c *command, fs *flag.FlagSet, args []string) ([]string, error) {
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{msg: err.Error(), hint: "run 'fleetlab help " + c.name + "' for the flags"}
		}
		if fs.NArg() == 0 {
			return files, nil
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// readScenarios reads the scenario files, expanding directories to their *.json files. A file that cannot be
// read or is not a valid scenario is a usage error: nothing is run.
func readScenarios(args []string, reg *faults.Registry) ([]harness.Spec, []string, error) {
	var specs []harness.Spec
	var paths []string
	for _, a := range args {
		fi, err := os.Stat(a)
		if err != nil {
			return nil, nil, &usageError{msg: err.Error(), hint: "give a scenario file or a directory of them, such as fixtures/scenarios"}
		}
		files := []string{a}
		if fi.IsDir() {
			if files, err = filepath.Glob(filepath.Join(a, "*.json")); err != nil || len(files) == 0 {
				return nil, nil, &usageError{msg: fmt.Sprintf("no *.json scenario files in %s", a)}
			}
		}
		for _, p := range files {
			f, err := os.Open(p)
			if err != nil {
				return nil, nil, &usageError{msg: err.Error()}
			}
			spec, err := harness.ReadSpecWith(f, reg)
			f.Close()
			if err != nil {
				return nil, nil, &usageError{msg: fmt.Sprintf("%s: %v", p, err),
					hint: "see fixtures/scenarios for examples, and the harness.Spec documentation for every field"}
			}
			specs = append(specs, spec)
			paths = append(paths, p)
		}
	}
	return specs, paths, nil
}

// seedOf is the seed a scenario runs with.
func seedOf(s harness.Spec) uint64 {
	if s.Seed != 0 {
		return s.Seed
	}
	return harness.DefaultSeed
}
