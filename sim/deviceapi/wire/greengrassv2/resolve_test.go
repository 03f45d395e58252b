package greengrassv2

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// catalog builds Versions from "name@version: dep@req, dep@req" lines; "[windows]" after the version restricts
// it to that os.
func catalog(t *testing.T, lines ...string) Versions {
	t.Helper()
	byName := map[string][]*Recipe{}
	for _, line := range lines {
		head, deps, _ := strings.Cut(line, ":")
		name, version, _ := strings.Cut(strings.TrimSpace(head), "@")
		r := &Recipe{RecipeFormatVersion: RecipeFormatVersion, ComponentName: name, ComponentDependencies: map[string]Dependency{}}
		if v, os, ok := strings.Cut(version, "["); ok {
			version = v
			r.Manifests = []Manifest{{Platform: Platform{"os": strings.TrimSuffix(os, "]")}}}
		}
		r.ComponentVersion = version
		for _, d := range strings.Split(deps, ",") {
			if d = strings.TrimSpace(d); d == "" {
				continue
			}
			dn, req, _ := strings.Cut(d, "@")
			r.ComponentDependencies[dn] = Dependency{VersionRequirement: req}
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		byName[name] = append(byName[name], r)
	}
	return func(name string) ([]*Recipe, error) { return byName[name], nil }
}

func TestResolveDependencies(t *testing.T) {
	cat := catalog(t,
		"app@1.0.0: lib@^1.0.0, log@>=2.0.0",
		"app@2.0.0: lib@^2.0.0",
		"tool@1.0.0: lib@<1.5.0",
		"lib@1.0.0: base@1.x",
		"lib@1.4.0: base@1.x",
		"lib@1.9.0[windows]:",
		"lib@1.6.0: base@^2",
		"lib@2.0.0:",
		"base@1.2.0:",
		"base@2.1.0:",
		"log@2.0.0:",
		"log@3.0.0:",
		"bad@1.0.0: missing@1.0.0",
	)
	linux := map[string]string{"os": "linux"}
	cases := []struct {
		name  string
		roots map[string]string
		want  string // name@version, sorted; or the error's component
		err   string
	}{
		{"highest satisfying on the platform", map[string]string{"app": "1.0.0"},
			"app@1.0.0 base@2.1.0 lib@1.6.0 log@3.0.0", ""},
		{"two dependents narrow the choice", map[string]string{"app": "1.0.0", "tool": "1.0.0"},
			"app@1.0.0 base@1.2.0 lib@1.4.0 log@3.0.0 tool@1.0.0", ""},
		{"a dependency dropped with its dependent's old version", map[string]string{"app": "2.0.0"},
			"app@2.0.0 lib@2.0.0", ""},
		{"conflicting dependents", map[string]string{"app": "2.0.0", "tool": "1.0.0"}, "", "lib"},
		{"an unknown dependency", map[string]string{"bad": "1.0.0"}, "", "missing"},
		{"an unknown root version", map[string]string{"app": "9.0.0"}, "", "app"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ResolveDependencies(c.roots, linux, cat)
			if c.err != "" {
				var ce *ConflictError
				if !errors.As(err, &ce) || ce.Component != c.err {
					t.Fatalf("err = %v, want a conflict on %s", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, n := range sortedKeys(got) {
				names = append(names, n+"@"+got[n].ComponentVersion)
			}
			if s := strings.Join(names, " "); s != c.want {
				t.Errorf("resolved %s, want %s", s, c.want)
			}
		})
	}
	// On windows lib 1.9.0 runs, and base is not needed by it.
	got, err := ResolveDependencies(map[string]string{"app": "1.0.0"}, map[string]string{"os": "windows"}, cat)
	if err != nil || got["lib"].ComponentVersion != "1.9.0" || got["base"] != nil {
		t.Errorf("windows: %v %v", got, err)
	}
}

func TestStartOrder(t *testing.T) {
	cat := catalog(t, "app@1.0.0: lib@*, log@*", "lib@1.0.0: base@*", "base@1.0.0:", "log@1.0.0:")
	got, err := ResolveDependencies(map[string]string{"app": "1.0.0"}, nil, cat)
	if err != nil {
		t.Fatal(err)
	}
	order, err := StartOrder(got)
	if err != nil || fmt.Sprint(order) != "[base lib log app]" {
		t.Errorf("order %v %v", order, err)
	}
	cyc := catalog(t, "a@1.0.0: b@*", "b@1.0.0: c@*", "c@1.0.0: a@*")
	set := map[string]*Recipe{}
	for _, n := range []string{"a", "b", "c"} {
		rs, _ := cyc(n)
		set[n] = rs[0]
	}
	if _, err := StartOrder(set); err == nil || !strings.Contains(err.Error(), "a → b → c → a") {
		t.Errorf("cycle: %v", err)
	}
}
