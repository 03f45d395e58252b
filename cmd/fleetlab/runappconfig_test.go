package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetlab/fleetlab/reports"
	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	"github.com/fleetlab/fleetlab/sim/event"
)

const appconfigDir = "../../fixtures/scenarios/appconfig"

// TestRunAppConfigScenario runs an AppConfig scenario file: its devices' table, PASS and exit 0; the lab leaves
// no goroutine behind.
func TestRunAppConfigScenario(t *testing.T) {
	agenttest.LeakTest(t)
	var out, errOut strings.Builder
	if code := run([]string{"run", "--no-live", "--timeline", filepath.Join(appconfigDir, "linear-growth.json")}, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d, want 0\n%s\n%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"=== appconfig-linear-growth", "DEVICE       HOLDS  EXPECTED",
		"device-0012  v2     new (v2)  ok",
		"deployment 2: COMPLETE (expected COMPLETE), environment READY_FOR_DEPLOYMENT, seed 20260101",
		"--- PASS appconfig-linear-growth", "scenarios: 1 passed, 0 failed",
		"timeline:\n", "check at 5m0s: 40%", "device-0001 Applied v2"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestRunAppConfigMixed runs a directory of AppConfig scenarios beside a RoboMaker file, with --report: each runs
// in its own kind of environment, and the report files have every scenario, the AppConfig devices' lanes and the
// engine's AppConfig deployments among them.
func TestRunAppConfigMixed(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"alarm-during-deploy.json", "apply-hook-exits.json"} {
		copyFile(t, filepath.Join(appconfigDir, name), filepath.Join(dir, name))
	}
	reportDir := filepath.Join(t.TempDir(), "report")
	var out, errOut strings.Builder
	code := run([]string{"run", "--no-live", "--report", reportDir, dir,
		"../../fixtures/scenarios/code-missing-architecture.json"}, &out, &errOut)
	if code != exitOK {
		t.Fatalf("exit %d, want 0\n%s\n%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"--- PASS appconfig-alarm-during-deploy", "--- PASS appconfig-apply-hook-exits",
		"device-0002  v1     previous (v1)  ok", // the device whose hook refused the new configuration
		"robot-0004  Failed  MissingRobotApplicationArchitecture  Validating", "--- PASS code-missing-architecture",
		"scenarios: 3 passed, 0 failed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	junit, err := os.ReadFile(filepath.Join(reportDir, fileJUnit))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`tests="3" failures="0" errors="0"`, `<testsuite name="appconfig-alarm-during-deploy"`,
		`<testsuite name="appconfig-apply-hook-exits"`, `<testsuite name="code-missing-architecture"`} {
		if !strings.Contains(string(junit), want) {
			t.Errorf("junit.xml lacks %s:\n%s", want, junit)
		}
	}
	if _, err := os.Stat(filepath.Join(reportDir, fileHTML)); err != nil {
		t.Error(err)
	}

	records := readRecords(t, filepath.Join(reportDir, fileEvents))
	ended := map[string]string{}
	var applyFailed, rolledBack bool
	for _, r := range records {
		switch {
		case r.Kind == event.ScenarioEnded && r.Attrs["by"] == "":
			ended[r.Scenario] = r.Code
		case r.Scenario == "appconfig-apply-hook-exits" && r.Kind == "agent.state" && r.Step == "ApplyFailed":
			applyFailed = applyFailed || r.Device == "device-0002"
		case r.Scenario == "appconfig-alarm-during-deploy" && r.Kind == event.DeploymentState &&
			r.Dialect == "appconfig" && r.To == "RolledBack":
			rolledBack = true
		}
	}
	for _, name := range []string{"appconfig-alarm-during-deploy", "appconfig-apply-hook-exits", "code-missing-architecture"} {
		if ended[name] != event.OutcomePassed {
			t.Errorf("scenario %s ended %q in events.jsonl, want passed", name, ended[name])
		}
	}
	if !applyFailed {
		t.Error("events.jsonl has no ApplyFailed of device-0002 in appconfig-apply-hook-exits")
	}
	if !rolledBack {
		states := map[string]bool{}
		for _, r := range records {
			if r.Kind == event.DeploymentState && r.Scenario == "appconfig-alarm-during-deploy" {
				states[r.Dialect+":"+r.From+"→"+r.To] = true
			}
		}
		t.Errorf("events.jsonl has no AppConfig deployment rolling back in appconfig-alarm-during-deploy: %v", states)
	}
}

// TestRunAppConfigFailures: an AppConfig scenario whose expectation the product does not meet fails (exit 1) and
// its table marks every device that does not hold what was expected — a device on the previous configuration is
// never reported as holding the new one; a bad file, or a flag AppConfig scenarios cannot honour, is a usage
// error (2); an environment that fails is reported as such (3).
func TestRunAppConfigFailures(t *testing.T) {
	var spec map[string]any
	b, err := os.ReadFile(filepath.Join(appconfigDir, "alarm-during-deploy.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	spec["name"] = "expects-too-much"
	expect := spec["expect"].(map[string]any)
	expect["state"], expect["devices"] = "COMPLETE", "new"
	delete(expect, "events")
	delete(expect, "triggeredBy")
	delete(expect, "environment")
	wrong := filepath.Join(t.TempDir(), "wrong.json")
	b, _ = json.Marshal(spec)
	if err := os.WriteFile(wrong, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	if code := run([]string{"run", "--no-live", "--seed", "5", wrong}, &out, &errOut); code != exitFailed {
		t.Fatalf("unmet expectation: exit %d, want 1\n%s\n%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{`device-0001  v1     new (v2)  FAIL: holds "v1"`,
		"ROLLED_BACK (expected COMPLETE)", "FAIL deployment ROLLED_BACK, want COMPLETE", "--- FAIL expects-too-much",
		"rerun: fleetlab run --seed 5 " + wrong, "scenarios: 0 passed, 1 failed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "  ok\n") {
		t.Errorf("a device is reported as holding what was expected:\n%s", out.String())
	}

	good := filepath.Join(appconfigDir, "stop.json")
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"dialect":"appconfig","name":"bad","devices":1,"content":"{}",`+
		`"strategy":{"predefined":"AppConfig.AllAtOnce"},"expect":{"state":"COMPLETE","devices":"new"},"stepz":[]}`), 0o644)
	for _, args := range [][]string{{"run", bad}, {"run", "--host", "process", good}, {"run", "--os", good},
		{"run", "--time-scale", "10", good}, {"run", "--rig", "../../fixtures/rigs/emulated-4.yaml", good}} {
		out.Reset()
		errOut.Reset()
		if code := run(args, &out, &errOut); code != exitUsage || !strings.Contains(errOut.String(), "hint:") {
			t.Errorf("%v: exit %d, want 2 with a hint\n%s", args, code, errOut.String())
		}
	}
	if !strings.Contains(errOut.String(), "--rig is not for AppConfig scenarios") {
		t.Errorf("--rig: %s", errOut.String())
	}

	// No temporary directory for the lab: the environment failed, not the product.
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "missing"))
	out.Reset()
	errOut.Reset()
	if code := run([]string{"run", "--no-live", good}, &out, &errOut); code != exitEnviron {
		t.Fatalf("no temp dir: exit %d, want 3\n%s\n%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "--- BROKEN appconfig-stop") {
		t.Errorf("output lacks the BROKEN line:\n%s", out.String())
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readRecords(t *testing.T, path string) []reports.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []reports.Record
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r reports.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, r)
	}
	return out
}
