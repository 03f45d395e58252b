package replay

import (
	"strings"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/dialect"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/sim/event"
)

// TestOrderOfFailures: where the failure threshold decided the outcome, devices that failed in another order
// than the record's are a difference; where it did not, the order is not compared.
func TestOrderOfFailures(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	fail := []faults.Spec{{Fault: "script-exit"}}
	rec := &Record{FieldRecord: dialect.FieldRecord{Ordered: true, Devices: []dialect.FieldDevice{
		{Name: "a", Started: t0, Finished: t0.Add(2 * time.Minute), Faults: fail},
		{Name: "b", Started: t0, Finished: t0.Add(time.Minute), Faults: fail},
		{Name: "c", Started: t0, Finished: t0.Add(3 * time.Minute)}, // no fault of its own: not compared
	}}}
	ended := func(names ...string) *harness.Result {
		res := &harness.Result{}
		for _, n := range names {
			res.Events = append(res.Events, event.Event{Kind: event.ExecutionState, Device: n})
		}
		return res
	}
	if d := rec.orderDiffs(ended("c", "b", "a")); len(d) != 0 {
		t.Errorf("b then a, as recorded: %v", d)
	}
	d := rec.orderDiffs(ended("a", "b", "c"))
	if len(d) != 1 || !strings.Contains(d[0], "failures in the order a, b, the record's is b, a") {
		t.Errorf("a then b: %v, want the order named", d)
	}
	rec.Ordered = false
	if d := rec.orderDiffs(ended("a", "b")); len(d) != 0 {
		t.Errorf("order compared though it did not matter: %v", d)
	}
}
