package dialect_test

import (
	"strings"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/harness/dialect"
	"github.com/fleetlab/fleetlab/harness/faults"
)

// TestNoRolloutPolicy: a job of a dialect without rollout policies gets one problem for each policy it sets, at
// the field's path and naming the dialect; a job that sets none has no problem.
func TestNoRolloutPolicy(t *testing.T) {
	if ps := dialect.NoRolloutPolicy("OpsWorks", dialect.JobSpec{}); len(ps) != 0 {
		t.Fatalf("a job without policies: %v", ps)
	}
	j := dialect.JobSpec{Architectures: []string{"arm64"}, Concurrency: 10, FailureThreshold: 5,
		Timeout: faults.Duration(time.Minute), DownloadCondition: "battery.sh"}
	ps := dialect.NoRolloutPolicy("Greengrass V1", j)
	want := []string{"job.architectures", "job.concurrency", "job.failureThreshold", "job.timeout", "job.downloadCondition"}
	if len(ps) != len(want) {
		t.Fatalf("%d problems, want %d: %v", len(ps), len(want), ps)
	}
	for i, p := range ps {
		if p.Path != want[i] || !strings.Contains(p.Err.Error(), "Greengrass V1 deployments have no") {
			t.Errorf("problem %d: %s: %v, want %s naming Greengrass V1", i, p.Path, p.Err, want[i])
		}
	}
}
