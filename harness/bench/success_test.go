package bench

import (
	"testing"

	"github.com/fleetlab/fleetlab/harness/dialect"
)

// Only a dialect's own success statuses count a device as deployed; a dialect whose names are unknown counts
// none, never all.
func TestSuccessStatuses(t *testing.T) {
	rm := successStatuses(dialect.Statuses{Device: []string{"Registered", "Deploying", "InSync", "Failed", "NoResponse"},
		DeviceFailed: []string{"Failed", "NoResponse"}})
	if len(rm) != 1 || !rm["InSync"] {
		t.Errorf("robomaker: %v, want InSync alone", rm)
	}
	gg := successStatuses(dialect.Statuses{Device: []string{"SUCCEEDED", "COMPLETED", "FAILED", "IN_PROGRESS"},
		DeviceFailed: []string{"FAILED"}})
	if len(gg) != 2 || !gg["SUCCEEDED"] || !gg["COMPLETED"] {
		t.Errorf("greengrassv2: %v", gg)
	}
	if none := successStatuses(dialect.Statuses{Device: []string{"Happy", "Sad"}}); len(none) != 0 {
		t.Errorf("unknown names: %v, want none", none)
	}
	// A success name the dialect lists as failed is not a success.
	if odd := successStatuses(dialect.Statuses{Device: []string{"Success"}, DeviceFailed: []string{"Success"}}); len(odd) != 0 {
		t.Errorf("a failed status counted as success: %v", odd)
	}
}
