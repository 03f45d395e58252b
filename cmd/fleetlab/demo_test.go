package main

import (
	"strings"
	"testing"
)

// TestDemo runs the showcase as a newcomer would, on both agent families, and checks it tells its story.
func TestDemo(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"real processes", []string{"demo", "--robots", "17", "--time-scale", "600"}},
		{"simulated", []string{"demo", "--robots", "40", "--time-scale", "600", "--sim"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut strings.Builder
			if code := run(tc.args, &out, &errOut); code != exitOK {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
			}
			for _, want := range []string{"Rollout 1", "Succeeded", "Rollout 2", "Failed (FailureThresholdBreached)",
				"NoResponse", "PreLaunchFileFailure", "RobotDeploymentAborted", "fleetlab demo --keep",
				"Demo finished"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
}
