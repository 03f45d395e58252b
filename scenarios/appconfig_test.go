package scenarios_test

import (
	"os"
	"testing"

	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/appconfig"
)

// TestAppConfigScenarios runs the AppConfig scenarios of fixtures/scenarios/appconfig, each in a lab of its own
// on virtual time, and logs each run's digest: the same seed gives the same digest.
func TestAppConfigScenarios(t *testing.T) {
	specs, err := appconfig.ReadSpecs(os.DirFS("../fixtures/scenarios/appconfig"), ".")
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) < 12 {
		t.Fatalf("%d AppConfig scenarios, want at least 12", len(specs))
	}
	for _, spec := range specs {
		t.Run(spec.Name, func(t *testing.T) {
			res := appconfig.Run(t, spec, harness.DefaultSeed)
			t.Logf("sequence %s seed %d: %d events, digest %s", spec.Name, harness.DefaultSeed, len(res.Log),
				res.Digest)
			if t.Failed() {
				for _, line := range res.Log {
					t.Log(line)
				}
			}
		})
	}
}
