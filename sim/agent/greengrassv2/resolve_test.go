package greengrassv2

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/fleetlab/fleetlab/sim/agent"
	ggwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/greengrassv2"
)

func testRecipe(name, version string, deps map[string]string) *ggwire.Recipe {
	r := &ggwire.Recipe{RecipeFormatVersion: ggwire.RecipeFormatVersion, ComponentName: name, ComponentVersion: version,
		Manifests: []ggwire.Manifest{{Platform: ggwire.Platform{"os": "linux"}}}}
	for d, req := range deps {
		if r.ComponentDependencies == nil {
			r.ComponentDependencies = map[string]ggwire.Dependency{}
		}
		r.ComponentDependencies[d] = ggwire.Dependency{VersionRequirement: req}
	}
	return r
}

// TestResolveSetSettles: a requirement found late (D's, two levels under A) revises a version chosen in an
// earlier round, and what only the revised-away version needed (E) is dropped.
//
//	A 1.0.0  depends on B ^1.0.0, C ^1.0.0
//	B 1.0.0  depends on D ^1.0.0
//	D 1.0.0  depends on C <1.5.0
//	C 1.4.0; C 1.5.0 depends on E ^1.0.0
//	E 1.0.0
func TestResolveSetSettles(t *testing.T) {
	cat := &Catalog{}
	if err := cat.Add(
		testRecipe("A", "1.0.0", map[string]string{"B": "^1.0.0", "C": "^1.0.0"}),
		testRecipe("B", "1.0.0", map[string]string{"D": "^1.0.0"}),
		testRecipe("D", "1.0.0", map[string]string{"C": "<1.5.0"}),
		testRecipe("C", "1.4.0", nil),
		testRecipe("C", "1.5.0", map[string]string{"E": "^1.0.0"}),
		testRecipe("E", "1.0.0", nil),
	); err != nil {
		t.Fatal(err)
	}
	linux := map[string]string{"os": "linux", "architecture": "amd64"}
	got, err := resolveSet(context.Background(), cat, linux, map[string]string{"A": "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	versions := map[string]string{}
	for name, r := range got {
		versions[name] = r.ComponentVersion
	}
	if want := map[string]string{"A": "1.0.0", "B": "1.0.0", "C": "1.4.0", "D": "1.0.0"}; !reflect.DeepEqual(versions, want) {
		t.Fatalf("resolved %v, want %v", versions, want)
	}
	if asked := cat.Asked(); !reflect.DeepEqual(asked, []string{"A", "B", "C", "D", "E"}) {
		t.Errorf("asked about %q", asked)
	}

	_, err = resolveSet(context.Background(), cat, map[string]string{"os": "windows"}, map[string]string{"A": "1.0.0"})
	var ce *ggwire.ConflictError
	if !errors.As(err, &ce) || ce.Known || ce.Component != "A" {
		t.Errorf("on windows: %v, want A unknown", err)
	}
}

// TestResolveSetRefusesBadRequirement: a recipe's requirement that does not parse fails with the recipe code.
func TestResolveSetRefusesBadRequirement(t *testing.T) {
	cat := &Catalog{}
	bad := testRecipe("A", "1.0.0", nil)
	bad.ComponentDependencies = map[string]ggwire.Dependency{"B": {VersionRequirement: "not a range"}}
	cat.recipes = map[string][]*ggwire.Recipe{"A": {bad}}
	_, err := resolveSet(context.Background(), cat, map[string]string{"os": "linux"}, map[string]string{"A": "1.0.0"})
	var se *agent.StepError
	if !errors.As(err, &se) || se.Code != CodeRecipeError {
		t.Fatalf("%v, want %s", err, CodeRecipeError)
	}
}
