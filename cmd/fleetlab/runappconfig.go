package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/appconfig"
	"github.com/fleetlab/fleetlab/sim/event"
)

// checkAppConfigFlags refuses, before anything runs, the flags an AppConfig scenario cannot honour: its lab runs
// its devices in this process on virtual time, so there is no other host, rig, real-process executor or time
// scale for it.
func checkAppConfigFlags(scenarios []scenarioFile, fs *flag.FlagSet, host, rig string, osExec bool) error {
	var name string
	for _, sc := range scenarios {
		if sc.appconfig != nil {
			name = sc.path
			break
		}
	}
	if name == "" {
		return nil
	}
	var bad string
	switch {
	case host != "inproc" && host != "":
		bad = "--host " + host
	case rig != "":
		bad = "--rig"
	case osExec:
		bad = "--os"
	case given(fs, "time-scale"):
		bad = "--time-scale"
	default:
		return nil
	}
	return &usageError{msg: fmt.Sprintf("%s is not for AppConfig scenarios (%s): their devices run in this process on virtual time", bad, name),
		hint: "run the AppConfig scenarios without " + bad + ", apart from the others: fleetlab run fixtures/scenarios/appconfig"}
}

// runAppConfig runs one AppConfig scenario in its lab outside go test, with seed (0: the harness's default),
// sending its events to sink, and prints its per-device table (and its timeline) before verdict says how it
// ended.
func runAppConfig(s appconfig.Spec, path string, seed uint64, timeline bool, sink event.Sink, stdout, stderr io.Writer,
	verdict func(name string, started time.Time, err error, ok bool, rerun string)) {
	if seed == 0 {
		seed = harness.DefaultSeed
	}
	fmt.Fprintf(stdout, "=== %s (%s)\n", s.Name, path)
	if s.Description != "" {
		fmt.Fprintf(stdout, "    %s\n", s.Description)
	}
	started := time.Now()
	rerun := fmt.Sprintf("fleetlab run --seed %d %s", seed, path)
	rec := harness.NewRecorder(s.Name, stderr)
	rec.SetRerun(rerun)
	var res *appconfig.Result
	err := rec.Run(func(t harness.T) {
		r := appconfig.RunWith(t, s, appconfig.RunOptions{Seed: seed, Sink: sink})
		res = &r
	})
	if f, ok := sink.(interface{ Finish(string, bool) }); ok {
		f.Finish(s.Name, err != nil || !res.OK())
	}
	if res != nil {
		res.WriteTable(stdout)
		if timeline {
			fmt.Fprintln(stdout, "timeline:")
			for _, line := range res.Log {
				fmt.Fprintf(stdout, "  %s\n", line)
			}
		}
	}
	verdict(s.Name, started, err, res.OK(), rerun)
}
