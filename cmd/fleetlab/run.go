package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/appconfig"
	"github.com/fleetlab/fleetlab/sim/fleet/container"
	"github.com/fleetlab/fleetlab/sim/fleet/process"
)

func runCommand() *command {
	c := &command{name: "run", summary: "run scenario files (fixtures/scenarios/*.json) outside go test and check their outcome",
		usage: "[--seed N] [--time-scale N] [--os] [--host inproc|process|container | --rig RIG.yaml] [--agent PATH] [--timeline] [--report DIR] [--no-live] FILE.json|DIR..."}
	c.run = func(args []string, stdout, stderr io.Writer) error {
		fs := newFlags(c, stderr)
		seed := fs.Uint64("seed", 0, "seed of every random choice (default: the scenario's, else the harness's fixed seed)")
		scale := fs.Float64("time-scale", 0, "run on scaled wall time, policy time this many times faster than the wall clock (default: the scenario's timeScale, else virtual time)")
		osExec := fs.Bool("os", false, "run scripts and the robot application as real processes instead of simulating them in memory")
		timeline := fs.Bool("timeline", false, "print each job's timeline of events after its table")
		host := fs.String("host", "inproc", "where the robots run: inproc (goroutines in this process), process (one fleetlab-agent process each) or container (one container each, on the Docker engine DOCKER_HOST names)")
		agentPath := fs.String("agent", "", "the fleetlab-agent program for --host process or container, or the emulated boards of --rig (default: beside fleetlab, on PATH, else built from the module in this directory); static for containers")
		rigFile := fs.String("rig", "", "run the robots on the boards of this rig file (fixtures/rigs/emulated-4.yaml), each agent over its board's serial console, instead of --host")
		var rf reportFlags
		rf.register(fs)
		files, err := parseInterleaved(c, fs, args)
		if err != nil {
			return err
		}
		if len(files) == 0 {
			return &usageError{msg: "no scenario file given",
				hint: "fleetlab run fixtures/scenarios/no-response.json (or a directory of scenario files)"}
		}
		if given(fs, "time-scale") {
			// 0 is the flag's "not given", not a scale: said explicitly, it is refused like any bad value.
			if err := checkTimeScale(*scale); err != nil {
				return err
			}
		}
		if *osExec && *host != "inproc" {
			return &usageError{msg: "--os is for --host inproc", hint: "robots of --host process and container always run real scripts"}
		}
		scenarios, err := readScenarios(files)
		if err != nil {
			return err
		}
		if err := checkAppConfigFlags(scenarios, fs, *host, *rigFile, *osExec); err != nil {
			return err
		}
		var backend harness.Backend
		done := func() {}
		if *rigFile != "" {
			if *host != "inproc" || *osExec {
				return &usageError{msg: "--rig is a host of its own: give it without --host or --os",
					hint: "fleetlab run --rig fixtures/rigs/emulated-4.yaml fixtures/rigs/scenarios"}
			}
			backend, done, err = rigBackend(*rigFile, *agentPath)
		} else {
			backend, done, err = hostBackend(*host, *agentPath)
		}
		if err != nil {
			return err
		}
		defer done()
		report, err := startReport("fleetlab run", rf)
		if err != nil {
			return err
		}
		defer report.stop()
		if u := report.liveURL(); u != "" {
			fmt.Fprintf(stdout, "live view: %s\n\n", u)
		}
		var failed, broken []string
		verdict := func(name string, started time.Time, err error, ok bool, rerun string) {
			var infra *harness.InfraError
			switch {
			case errors.As(err, &infra):
				fmt.Fprintf(stdout, "--- BROKEN %s: %v\n    %s\n\n", name, infra.Err, rerun)
				broken = append(broken, name)
			case err != nil || !ok:
				fmt.Fprintf(stdout, "--- FAIL %s (%.1fs)\n    rerun: %s\n\n", name, time.Since(started).Seconds(), rerun)
				failed = append(failed, name)
			default:
				fmt.Fprintf(stdout, "--- PASS %s (%.1fs)\n\n", name, time.Since(started).Seconds())
			}
		}
		for _, sc := range scenarios {
			if sc.appconfig != nil {
				runAppConfig(*sc.appconfig, sc.path, *seed, *timeline, report.run, stdout, stderr, verdict)
				continue
			}
			spec := sc.spec
			spec.Options = append(slices.Clip(spec.Options), harness.WithSink(report.run))
			if *seed != 0 {
				spec.Seed = *seed
			}
			if given(fs, "time-scale") {
				spec.TimeScale = *scale
			}
			if *osExec {
				spec.Options = append(spec.Options, harness.WithBackend(harness.InProc{Executors: harness.Real}))
			} else if backend != nil {
				spec.Options = append(spec.Options, harness.WithBackend(backend))
			}
			fmt.Fprintf(stdout, "=== %s (%s)\n", spec.Name, sc.path)
			if spec.Description != "" {
				fmt.Fprintf(stdout, "    %s\n", spec.Description)
			}
			started := time.Now()
			rerun := fmt.Sprintf("fleetlab run --seed %d %s", seedOf(spec), sc.path)
			if *host != "inproc" {
				rerun = fmt.Sprintf("fleetlab run --host %s --seed %d %s", *host, seedOf(spec), sc.path)
			}
			if *rigFile != "" {
				rerun = fmt.Sprintf("fleetlab run --rig %s --seed %d %s", *rigFile, seedOf(spec), sc.path)
			}
			res, err := harness.Execute(spec, stderr, rerun)
			report.run.Finish(spec.Name, err != nil || !res.OK())
			if res != nil && res.Job.ID != "" {
				res.WriteTable(stdout)
				if *timeline {
					fmt.Fprintf(stdout, "timeline:\n%s", harness.Timeline(res.Job.Timeline))
				}
			}
			verdict(spec.Name, started, err, res.OK(), rerun)
		}
		if err := report.finish(stdout); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "scenarios: %d passed, %d failed\n", len(scenarios)-len(failed)-len(broken),
			len(failed)+len(broken))
		switch {
		case len(broken) > 0:
			return &envError{fmt.Errorf("the environment failed for %s (see above); the product was not tested",
				strings.Join(broken, ", "))}
		case len(failed) > 0:
			return &failedError{msg: fmt.Sprintf("%d of %d scenarios did not end as expected: %s", len(failed),
				len(scenarios), strings.Join(failed, ", "))}
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

// scenarioFile is a scenario file as read: a scenario of the jobs harness (RoboMaker, Greengrass V2, …), or an
// AppConfig one ("dialect": "appconfig"), which runs in the AppConfig lab.
type scenarioFile struct {
	path      string
	spec      harness.Spec
	appconfig *appconfig.Spec
}

// readScenarios reads the scenario files, expanding directories to their *.json files. A file that cannot be
// read or is not a valid scenario is a usage error: nothing is run.
func readScenarios(args []string) ([]scenarioFile, error) {
	var out []scenarioFile
	for _, a := range args {
		fi, err := os.Stat(a)
		if err != nil {
			return nil, &usageError{msg: err.Error(), hint: "give a scenario file or a directory of them, such as fixtures/scenarios"}
		}
		files := []string{a}
		if fi.IsDir() {
			if files, err = filepath.Glob(filepath.Join(a, "*.json")); err != nil || len(files) == 0 {
				return nil, &usageError{msg: fmt.Sprintf("no *.json scenario files in %s", a)}
			}
		}
		for _, p := range files {
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, &usageError{msg: err.Error()}
			}
			// The dialect member decides the format; a file that does not parse is the jobs harness's to report.
			var head struct {
				Dialect string `json:"dialect"`
			}
			if json.Unmarshal(data, &head) == nil && head.Dialect == appconfig.Dialect {
				spec, err := appconfig.ReadSpec(bytes.NewReader(data))
				if err != nil {
					return nil, &usageError{msg: fmt.Sprintf("%s: %v", p, err),
						hint: "see fixtures/scenarios/appconfig for examples, and the harness/appconfig Spec documentation for every field"}
				}
				out = append(out, scenarioFile{path: p, appconfig: &spec})
				continue
			}
			spec, err := harness.ReadSpec(bytes.NewReader(data))
			if err != nil {
				return nil, &usageError{msg: fmt.Sprintf("%s: %v", p, err),
					hint: "see fixtures/scenarios for examples, and the harness.Spec documentation for every field"}
			}
			out = append(out, scenarioFile{path: p, spec: spec})
		}
	}
	return out, nil
}

// seedOf is the seed a scenario runs with.
func seedOf(s harness.Spec) uint64 {
	if s.Seed != 0 {
		return s.Seed
	}
	return harness.DefaultSeed
}

// hostBackend returns the backend of --host (nil for inproc, the harness's default) with its agent program, and
// what to call when the run is over. The program is --agent, else fleetlab-agent beside this program or on
// PATH, else built from the module in the working directory. Containers need a Docker engine and busybox; a
// machine without them is an environment failure, said before anything runs.
func hostBackend(host, agentPath string) (harness.Backend, func(), error) {
	nothing := func() {}
	if _, err := harness.HostBackend(host); err != nil {
		return nil, nothing, &usageError{msg: "--host: " + err.Error(), hint: "fleetlab run --host container fixtures/scenarios"}
	}
	if host == "inproc" || host == "" {
		return nil, nothing, nil
	}
	bin, done, err := agentProgram(agentPath)
	if err != nil {
		return nil, nothing, err
	}
	if host == "process" {
		return harness.Process{Binary: bin}, done, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := container.Ping(ctx, container.Engine{}); err != nil {
		done()
		return nil, nothing, &envError{fmt.Errorf("--host container: %w (start the Docker engine, or point DOCKER_HOST at one)", err)}
	}
	if err := container.CheckInputs(container.ImageOptions{Binary: bin}); err != nil {
		done()
		return nil, nothing, &envError{fmt.Errorf("--host container: %w", err)}
	}
	return harness.Container{Binary: bin}, done, nil
}

// agentProgram finds or builds the fleetlab-agent program; done removes a build.
func agentProgram(path string) (string, func(), error) {
	nothing := func() {}
	if path != "" {
		if _, err := os.Stat(path); err != nil {
			return "", nothing, &usageError{msg: "--agent: " + err.Error(), hint: "CGO_ENABLED=0 go build -o fleetlab-agent ./cmd/fleetlab-agent"}
		}
		return path, nothing, nil
	}
	if self, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(self), "fleetlab-agent"); fileExists(p) {
			return p, nothing, nil
		}
	}
	if p, err := exec.LookPath("fleetlab-agent"); err == nil {
		return p, nothing, nil
	}
	dir, err := os.MkdirTemp("", "fleetlab-agent-build-")
	if err != nil {
		return "", nothing, &envError{err}
	}
	done := func() { os.RemoveAll(dir) }
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := process.Build(ctx, dir)
	if err != nil {
		done()
		return "", nothing, &envError{fmt.Errorf("%w\nhint: give --agent PATH, a fleetlab-agent built with CGO_ENABLED=0 go build ./cmd/fleetlab-agent", err)}
	}
	return bin, done, nil
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}
