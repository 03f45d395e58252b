package harness_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/fleetlab/fleetlab/harness"
)

// wrapped is a T over another, as an environment outside the harness wraps the T it is given.
type wrapped struct{ harness.T }

func (w wrapped) Unwrap() harness.T { return w.T }

// TestInfraFatalfThroughAWrapper: an environment's failure reported on a T that wraps the Recorder is an
// *InfraError of the run, as the harness's own are; a product failure on it is not.
func TestInfraFatalfThroughAWrapper(t *testing.T) {
	rec := harness.NewRecorder("wrapped", nil)
	err := rec.Run(func(t harness.T) {
		harness.InfraFatalf(wrapped{t}, "the lab's service did not start: %s", "port in use")
		t.Errorf("not reached")
	})
	var infra *harness.InfraError
	if !errors.As(err, &infra) || !strings.Contains(infra.Err.Error(), "port in use") {
		t.Fatalf("Run = %v, want an InfraError", err)
	}
	rec = harness.NewRecorder("product", nil)
	err = rec.Run(func(t harness.T) { wrapped{t}.Errorf("deployment ROLLED_BACK, want COMPLETE") })
	if err == nil || errors.As(err, &infra) {
		t.Fatalf("Run = %v, want a product failure", err)
	}
	rec = harness.NewRecorder("errorf", nil)
	err = rec.Run(func(t harness.T) { harness.InfraErrorf(wrapped{t}, "tear down: stalled") })
	if !errors.As(err, &infra) {
		t.Fatalf("InfraErrorf: Run = %v, want an InfraError", err)
	}
}
