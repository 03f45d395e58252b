package scenarios_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/reports"
	"github.com/fleetlab/fleetlab/sim/fleet/container/containertest"
)

var reportDir = flag.String("fleetlab.report", "",
	"write junit.xml, events.jsonl and report.html of the scenario suite into this directory")

// suiteReport is the suite's report when -fleetlab.report is set, else nil. TestMain sets it before any test
// runs and closes it after the last.
var suiteReport *reports.Run

// agentBinary is the fleetlab-agent built once for the test binary, for the robot image.
var agentBinary string

// TestMain builds the agent for the robot image, checks no container is left behind (containertest.Main), and
// writes the suite's report when -fleetlab.report asks for one.
func TestMain(m *testing.M) {
	flag.Parse()
	if *reportDir != "" {
		run, err := startSuiteReport(*reportDir)
		if err != nil {
			fmt.Fprintf(os.Stderr, "-fleetlab.report: %v\n", err)
			os.Exit(2)
		}
		suiteReport = run
	}
	code := containertest.Main(m, &agentBinary)
	if suiteReport != nil {
		if err := suiteReport.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "-fleetlab.report: %v\n", err)
			code = max(code, 1)
		} else {
			fmt.Fprintf(os.Stderr, "fleetlab report: %s\n", filepath.Join(*reportDir, "report.html"))
		}
	}
	os.Exit(code)
}

func startSuiteReport(dir string) (*reports.Run, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	events, err := reports.CreateJSONLines(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		return nil, err
	}
	return reports.New(reports.Options{Name: "go test ./scenarios", Sinks: []reports.Sink{events,
		reports.CreateJUnit(filepath.Join(dir, "junit.xml")), reports.CreateHTML(filepath.Join(dir, "report.html"))}})
}

// reported adds the suite's report to a scenario's options, and records how its test ended once every cleanup
// of the test has run (so a failure anywhere in the test counts, and a scenario that stopped early is an
// error, never a pass).
func reported(t *testing.T, spec harness.Spec) harness.Spec {
	if suiteReport == nil {
		return spec
	}
	run := suiteReport
	t.Cleanup(func() { run.Finish(spec.Name, t.Failed()) })
	spec.Options = append(slices.Clip(spec.Options), harness.WithSink(run))
	return spec
}
