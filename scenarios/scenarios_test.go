package scenarios_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/fleetlab/fleetlab/harness"
)

// registry holds every scenario: the data-only ones from fixtures/scenarios and the ones declared in code.
func registry(t *testing.T) *harness.Registry {
	t.Helper()
	r := harness.NewRegistry()
	specs, err := harness.ReadSpecs(os.DirFS("../fixtures/scenarios"), ".")
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) == 0 {
		t.Fatal("no scenario files in fixtures/scenarios")
	}
	if err := r.Add(specs...); err != nil {
		t.Fatal(err)
	}
	// Each other dialect with a driver keeps its files in fixtures/scenarios/<dialect> (AppConfig's run in its
	// own lab: TestAppConfigScenarios), and its code scenarios beside them.
	for _, d := range []struct {
		dir  string
		min  int
		code []harness.Spec
	}{{"greengrassv2", 15, ggCodeScenarios()}, {"greengrass", 8, greengrassCodeScenarios()}, {"opsworks", 8, opsworksCodeScenarios()}} {
		specs, err := harness.ReadSpecs(os.DirFS("../fixtures/scenarios"), d.dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(specs)+len(d.code) < d.min {
			t.Fatalf("%d scenarios in fixtures/scenarios/%s and in code, want at least %d", len(specs)+len(d.code), d.dir, d.min)
		}
		if err := r.Add(append(specs, d.code...)...); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Add(codeScenarios()...); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestScenarios(t *testing.T) {
	for _, spec := range registry(t).All() {
		t.Run(subtest(spec), func(t *testing.T) {
			res := harness.RunSpec(t, reported(t, spec))
			if res.OK() {
				// What the seed decided, for runs to compare: the same digest for every run of one seed.
				t.Logf("sequence %s seed %d: %d events, digest %s", spec.Name, res.Seed, len(res.Events),
					digest(harness.Sequence(res.Events)))
				return
			}
			var b strings.Builder
			res.WriteTable(&b)
			t.Log("\n" + b.String())
		})
	}
}

// subtest is a scenario's subtest name: a dialect other than the default groups its scenarios under its name
// (TestScenarios/greengrassv2/clean-all-at-once).
func subtest(spec harness.Spec) string {
	if spec.Dialect != "" && spec.Dialect != "robomaker" {
		return spec.Dialect + "/" + spec.Name
	}
	return spec.Name
}

// digest is a short hash of an event sequence.
func digest(seq []string) string {
	h := sha256.Sum256([]byte(strings.Join(seq, "\n")))
	return hex.EncodeToString(h[:8])
}
