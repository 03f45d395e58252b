package main

import (
	"bytes"
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
