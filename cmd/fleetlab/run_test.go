package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetlab/fleetlab/sim/fleet/container/containertest"
)

// TestRunCommand runs a scenario file of fixtures/scenarios, the same file with an expectation the product does
// not meet, and files that are not scenarios: exit codes 0, 1 and 2, and the per-robot table.
func TestRunCommand(t *testing.T) {
	const file = "../../fixtures/scenarios/code-missing-architecture.json"
	var out, errOut strings.Builder
	if code := run([]string{"run", file}, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d, want 0\n%s\n%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"ROBOT", "robot-0004  Failed  MissingRobotApplicationArchitecture  Validating",
		"--- PASS code-missing-architecture", "scenarios: 1 passed, 0 failed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	var spec map[string]any
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	spec["name"] = "expects-too-much"
	spec["expect"].(map[string]any)["status"] = "Succeeded"
	delete(spec["expect"].(map[string]any), "failureCode")
	wrong := filepath.Join(t.TempDir(), "wrong.json")
	b, _ = json.Marshal(spec)
	if err := os.WriteFile(wrong, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"run", "--seed", "5", wrong}, &out, &errOut); code != exitFailed {
		t.Fatalf("unmet expectation: exit %d, want 1\n%s", code, out.String())
	}
	for _, want := range []string{"--- FAIL expects-too-much", "rerun: fleetlab run --seed 5 " + wrong,
		"job deployment-"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(errOut.String(), "1 of 1 scenarios did not end as expected") {
		t.Errorf("stderr: %s", errOut.String())
	}

	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"name":"bad","expect":{"status":"Succeeded"},"jobb":{}}`), 0o644)
	for _, args := range [][]string{{"run"}, {"run", "no-such.json"}, {"run", bad}, {"run", "--time-scale", "0.5", file}} {
		errOut.Reset()
		if code := run(args, &out, &errOut); code != exitUsage || !strings.Contains(errOut.String(), "hint:") {
			t.Errorf("%v: exit %d, want 2 with a hint\n%s", args, code, errOut.String())
		}
	}
}

// agentBinary is the fleetlab-agent built once for the test binary.
var agentBinary string

func TestMain(m *testing.M) { os.Exit(containertest.Main(m, &agentBinary)) }

// TestRunOnContainers runs a scenario file with its robots in containers (--host container): the same table
// and exit code as in process; an unknown host is a usage error with a hint.
func TestRunOnContainers(t *testing.T) {
	containertest.Require(t)
	var out, errOut strings.Builder
	code := run([]string{"run", "--host", "container", "--agent", agentBinary,
		"../../fixtures/scenarios/code-prelaunch-failure.json"}, &out, &errOut)
	if code != exitOK {
		t.Fatalf("exit %d, want 0\n%s\n%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"robot-0002  Failed  PreLaunchFileFailure  ExecutingPreLaunch",
		"--- PASS code-prelaunch-failure", "scenarios: 1 passed, 0 failed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	errOut.Reset()
	if code := run([]string{"run", "--host", "vm", "../../fixtures/scenarios/code-prelaunch-failure.json"}, &out, &errOut); code != exitUsage ||
		!strings.Contains(errOut.String(), "hint:") {
		t.Errorf("--host vm: exit %d, want 2 with a hint\n%s", code, errOut.String())
	}
}
