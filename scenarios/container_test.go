package scenarios_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/sim/fleet/container/containertest"
)

// TestScenariosInContainers runs every scenario of the suite again with its robots in containers, at the
// container backend's time scale: the same fleet, job, fault plan and expectation, another host. Without a
// Docker engine it skips, saying so.
func TestScenariosInContainers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts robot containers")
	}
	containertest.Require(t)
	for _, spec := range registry(t).All() {
		if spec.Dialect != "" && spec.Dialect != "robomaker" {
			// The Greengrass V2 scenarios check what each core device runs from its storage, which only the
			// in-process host shows the harness.
			continue
		}
		spec.Options = append(slices.Clone(spec.Options), harness.WithBackend(harness.Container{Binary: agentBinary}))
		t.Run(subtest(spec), func(t *testing.T) {
			res := harness.RunSpec(t, spec)
			if res.OK() {
				return
			}
			var b strings.Builder
			res.WriteTable(&b)
			t.Log("\n" + b.String())
		})
	}
}
