package greengrass

import (
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/harness/dialect"
	"github.com/fleetlab/fleetlab/harness/faults"
)

func TestCheckJob(t *testing.T) {
	if ps := (Driver{}).CheckJob(dialect.JobSpec{Bundle: "hello"}); len(ps) != 0 {
		t.Fatalf("a plain job refused: %v", ps)
	}
	ps := Driver{}.CheckJob(dialect.JobSpec{Architectures: []string{"amd64"}, Concurrency: 10, FailureThreshold: 5,
		Timeout: faults.Duration(time.Minute), DownloadCondition: "condition-ok.sh"})
	want := []string{"job.architectures", "job.concurrency", "job.failureThreshold", "job.timeout", "job.downloadCondition"}
	if len(ps) != len(want) {
		t.Fatalf("problems %v, want one at each of %v", ps, want)
	}
	for i, p := range ps {
		if p.Path != want[i] {
			t.Errorf("problem %d at %s, want %s", i, p.Path, want[i])
		}
	}
	st := Driver{}.Statuses()
	if !st.IsDeviceFailed(DeviceFailure) || st.IsDeviceFailed(DeviceBuilding) || st.Failed != JobFailed {
		t.Errorf("statuses %+v", st)
	}
}

func TestIDs(t *testing.T) {
	const g = "arn:aws:greengrass:us-east-1:123456789012:/greengrass/groups/abc"
	if GroupID(g) != "abc" || GroupID(g+"/versions/v1") != "abc" || GroupID("arn:aws:greengrass:us-east-1:1:/x") != "" {
		t.Error("GroupID")
	}
	if JobID("arn:aws:greengrass:us-east-1:1:/greengrass/bulk/deployments/b-1") != "b-1" {
		t.Error("JobID")
	}
}
