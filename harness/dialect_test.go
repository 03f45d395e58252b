package harness_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/dialect"
	"github.com/fleetlab/fleetlab/harness/faults"
)

// bootDialect is a dialect of two steps and its own statuses, which validates and never opens.
type bootDialect struct{}

func (bootDialect) Name() string { return "boot" }
func (bootDialect) Steps() faults.Dialect {
	return faults.Dialect{Name: "boot", Steps: []string{"Booting", "Running"}}
}
func (bootDialect) Statuses() dialect.Statuses {
	return dialect.Statuses{Final: []string{"Done", "Broken"}, Failed: "Broken", Device: []string{"Up", "Down"},
		DeviceFailed: []string{"Down"}}
}
func (bootDialect) CheckJob(j dialect.JobSpec) []dialect.Problem { return nil }
func (bootDialect) Config(dialect.JobSpec) any                   { return nil }
func (bootDialect) Open(dialect.Host) (dialect.Session, error)   { return nil, context.Canceled }

// TestSpecValidatesThroughItsDialect checks that a spec's statuses, steps and fault steps are the dialect's, that
// an unknown dialect is refused, and that the fault registry of the spec's options is the one it is checked with.
func TestSpecValidatesThroughItsDialect(t *testing.T) {
	boot := harness.Spec{Name: "boot", Options: []harness.Option{harness.WithDriver(bootDialect{})},
		Faults: []faults.Spec{{Fault: "no-response", Target: faults.Selector{Step: "Booting"}}},
		Expect: harness.Expect{Status: "Done", Others: &harness.RobotExpect{Status: "Up", Step: "Running"}}}
	if err := boot.Validate(); err != nil {
		t.Errorf("a spec in the boot dialect: %v", err)
	}
	roboMakerWords := boot
	roboMakerWords.Faults = []faults.Spec{{Fault: "no-response", Target: faults.Selector{Step: "Launching"}}}
	roboMakerWords.Expect = harness.Expect{Status: "Succeeded", Others: &harness.RobotExpect{Status: "InSync"}}
	err := roboMakerWords.Validate()
	for _, want := range []string{`step "Launching" is not a boot step`, `status "Succeeded": want Done or Broken`,
		`status "InSync" is not a boot robot status`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("RoboMaker words in the boot dialect: %v, want %q", err, want)
		}
	}
	// script-exit takes its script's step from the dialect, which runs none.
	scripted := boot
	scripted.Faults = []faults.Spec{{Fault: "script-exit", Params: json.RawMessage(`{"script":"pre-launch"}`)}}
	if err := scripted.Validate(); err == nil || !strings.Contains(err.Error(), "the boot dialect runs no such script") {
		t.Errorf("script-exit in a dialect without scripts: %v", err)
	}

	unknown := harness.Spec{Name: "x", Dialect: "carrier-pigeon",
		Expect: harness.Expect{Status: "Succeeded", Others: &harness.RobotExpect{Status: "InSync"}}}
	if err := unknown.Validate(); err == nil || !strings.Contains(err.Error(), `dialect "carrier-pigeon": want robomaker`) {
		t.Errorf("an unknown dialect: %v", err)
	}
	named := unknown
	named.Dialect = "robomaker"
	if err := named.Validate(); err != nil {
		t.Errorf("the robomaker dialect by name: %v", err)
	}

	reg, err := faults.NewRegistry(faults.Definition{Name: "meteor", Layer: faults.LayerCloud, Summary: "a meteor",
		New: func() faults.Fault { return &faults.NoResponse{} }})
	if err != nil {
		t.Fatal(err)
	}
	meteor := harness.Spec{Name: "meteor", Faults: []faults.Spec{{Fault: "meteor"}},
		Expect: harness.Expect{Status: "Succeeded", Others: &harness.RobotExpect{Status: "InSync"}}}
	if err := meteor.Validate(); err == nil || !strings.Contains(err.Error(), "unknown fault") {
		t.Errorf("a fault of another registry, checked with the catalog: %v", err)
	}
	meteor.Options = []harness.Option{harness.WithFaultRegistry(reg)}
	if err := meteor.Validate(); err != nil {
		t.Errorf("a fault of the spec's registry: %v", err)
	}
}
