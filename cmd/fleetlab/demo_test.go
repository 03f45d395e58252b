package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestDemo runs the showcase as a newcomer would, on both agent families, and checks it tells its story.
func TestDemo(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"real processes", []string{"demo", "--robots", "17"}},
		{"simulated", []string{"demo", "--robots", "40", "--sim"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := demoOutput(t, tc.args...)
			for _, want := range []string{"virtual time (seed 1)", "Rollout 1", "Succeeded", "Rollout 2",
				"Failed (FailureThresholdBreached)", "NoResponse", "PreLaunchFileFailure", "RobotDeploymentAborted",
				"5m0s", "fleetlab demo --keep", "Demo finished"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// TestDemoRepeats runs the demo twice with one seed, real processes and all: it prints the same thing — the
// progress lines and both robot tables — but for the service's ports and the wall time it took. Another seed
// interleaves the robots otherwise, and tells another story.
func TestDemoRepeats(t *testing.T) {
	first := demoOutput(t, "demo", "--robots", "17", "--seed", "7")
	if again := demoOutput(t, "demo", "--robots", "17", "--seed", "7"); again != first {
		t.Fatalf("seed 7 printed two runs:\n%s\n---\n%s", first, again)
	}
	if !strings.Contains(first, "ROBOT") || strings.Count(first, "robot-0001") < 2 {
		t.Fatalf("no robot tables:\n%s", first)
	}
	seen := map[string]bool{first: true}
	for _, seed := range []string{"1", "2", "3", "4"} {
		seen[demoOutput(t, "demo", "--sim", "--seed", seed)] = true
	}
	if len(seen) < 3 {
		t.Errorf("five seeds told %d stories", len(seen))
	}
}

var (
	demoAddr = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	demoTook = regexp.MustCompile(`Demo finished in [0-9.]+ s`)
)

// demoOutput runs fleetlab with args and returns what it printed, with the ports and the wall time taken out.
func demoOutput(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut strings.Builder
	if code := run(args, &out, &errOut); code != exitOK {
		t.Fatalf("%v: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, out.String(), errOut.String())
	}
	return demoTook.ReplaceAllString(demoAddr.ReplaceAllString(out.String(), "ADDR"), "Demo finished")
}
