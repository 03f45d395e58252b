package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestRigCheckEmulated4(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"rig", "check", "--agent", agentBinary, "../../fixtures/rigs/emulated-4.yaml"}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"board-1  robot-0001", "every board healthy"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Count(out.String(), "healthy") != 5 {
		t.Errorf("want four healthy boards:\n%s", out.String())
	}
}

func TestRigCheckBoardWithoutPromptIsARigFailure(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"rig", "check", "--agent", agentBinary, "testdata/rig-no-prompt.yaml"}, &out, &errb)
	if code != exitEnviron {
		t.Fatalf("exit %d, want %d (a rig failure)\n%s\n%s", code, exitEnviron, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "FAILED") || !strings.Contains(out.String(), "Kernel panic") ||
		!strings.Contains(errb.String(), "not a deployment failure") {
		t.Errorf("output:\n%s\n%s", out.String(), errb.String())
	}
}

func TestRigCheckBadFile(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"rig", "check", "testdata/rig-bad.yaml"}, &out, &errb)
	if code != exitUsage {
		t.Fatalf("exit %d, want %d\n%s", code, exitUsage, errb.String())
	}
	for _, want := range []string{"rig-bad.yaml:5:", "rig-bad.yaml:7:", "rig-bad.yaml:8:", "hint:"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb.String())
		}
	}
}

// TestRunOnRigLeavesNothingInTemp runs the rig scenarios (a power cut, 1 % serial noise) with no --agent and no
// fleetlab-agent beside the program or on PATH: the agent is built for the run, into the system's temporary
// directory, and removed with everything else the run made there.
func TestRunOnRigLeavesNothingInTemp(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Setenv("PATH", filepath.Dir(goTool(t))) // go, to build the agent; no fleetlab-agent
	var out, errb bytes.Buffer
	code := run([]string{"run", "--rig", "../../fixtures/rigs/emulated-4.yaml", "../../fixtures/rigs/scenarios"}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"--- PASS rig-power-cut", "--- PASS rig-serial-noise", "scenarios: 2 passed, 0 failed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	left, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		t.Errorf("left in the temporary directory: %s", e.Name())
	}
}

func TestRunOnRigUsage(t *testing.T) {
	for _, args := range [][]string{
		{"run", "--rig", "../../fixtures/rigs/emulated-4.yaml", "--host", "process", "../../fixtures/rigs/scenarios/power-cut.json"},
		{"run", "--rig", "../../fixtures/rigs/emulated-4.yaml", "--os", "../../fixtures/rigs/scenarios/power-cut.json"},
		{"run", "--rig", "testdata/rig-bad.yaml", "../../fixtures/rigs/scenarios/power-cut.json"},
		{"run", "--rig", "../../fixtures/rigs/emulated-4.yaml", "--agent", "/no/such/agent", "../../fixtures/rigs/scenarios/power-cut.json"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "hint:") {
			t.Errorf("%v: exit %d, want %d with a hint\n%s", args, code, exitUsage, errb.String())
		}
	}
}

// goTool is the go command that runs the tests.
func goTool(t *testing.T) string {
	p, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the agent with")
	}
	return p
}

// TestRunOnRigWithABrokenBoardIsARigFailure: a board whose console never shows its prompt fails the rig's
// check, and the scenario is reported broken (exit 3), never failed: the product was not tested.
func TestRunOnRigWithABrokenBoardIsARigFailure(t *testing.T) {
	scenario := filepath.Join(t.TempDir(), "one.json")
	if err := os.WriteFile(scenario, []byte(`{"name": "one-robot", "fleet": {"robots": 1}, "timeScale": 20,
		"job": {"bundle": "hello", "timeout": "2m"}, "expect": {"status": "Succeeded", "others": {"status": "InSync"}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"run", "--rig", "testdata/rig-no-prompt.yaml", "--agent", agentBinary, scenario}, &out, &errb)
	if code != exitEnviron {
		t.Fatalf("exit %d, want %d (a rig failure)\n%s\n%s", code, exitEnviron, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "--- BROKEN one-robot") || !strings.Contains(out.String(), "Kernel panic") ||
		strings.Contains(out.String(), "--- FAIL") {
		t.Errorf("output:\n%s\n%s", out.String(), errb.String())
	}
}
