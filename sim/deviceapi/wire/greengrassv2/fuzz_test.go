package greengrassv2

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"testing"
)

// FuzzParseRecipe checks that any input either parses into a recipe that validates and survives a JSON and a
// YAML round trip, or is refused with a *RecipeError; never a panic.
func FuzzParseRecipe(f *testing.F) {
	for _, p := range []string{"testdata/hello.json", "testdata/hello.yaml"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"RecipeFormatVersion":"2020-01-25","ComponentName":"a","ComponentVersion":"1.0.0"}`))
	f.Add([]byte("RecipeFormatVersion: 2020-01-25\nComponentName: a\nComponentVersion: 1.0.0-rc.1\n"))
	f.Add([]byte("- 1\n- 2"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRecipe(data)
		if err != nil {
			var re *RecipeError
			if !errors.As(err, &re) {
				t.Fatalf("error %v is not a *RecipeError", err)
			}
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("a parsed recipe does not validate: %v", err)
		}
		for name, enc := range map[string]func() ([]byte, error){"JSON": r.JSON, "YAML": r.YAML} {
			out, err := enc()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			back, err := ParseRecipe(out)
			if err != nil {
				t.Fatalf("%s of a parsed recipe does not parse: %v\n%s", name, err, out)
			}
			if back.ComponentName != r.ComponentName || back.ComponentVersion != r.ComponentVersion ||
				len(back.Manifests) != len(r.Manifests) {
				t.Fatalf("%s round trip changed the recipe:\n%+v\n%+v", name, r, back)
			}
		}
	})
}

// FuzzConfigure checks the properties of the merge: it never panics, never changes its arguments, and what it
// merges is there afterwards; the reset-everything pointer leaves exactly defaults+merge.
func FuzzConfigure(f *testing.F) {
	f.Add(`{"a":1,"b":{"c":2}}`, `{"b":{"d":3}}`, `{"a":5}`, "/b/c")
	f.Add(`{}`, `{}`, ``, "")
	f.Add(`{"A":[1,2]}`, `{"a":{"x":1}}`, `{"a":null}`, "/a/0")
	f.Fuzz(func(t *testing.T, current, defaults, merge, reset string) {
		var cur, def map[string]any
		if json.Unmarshal([]byte(current), &cur) != nil || json.Unmarshal([]byte(defaults), &def) != nil {
			return
		}
		curBefore, defBefore := ConfigJSON(cur), ConfigJSON(def)
		got, _, err := Configure(cur, def, ConfigurationUpdate{Merge: merge, Reset: []string{reset}})
		if !reflect.DeepEqual(ConfigJSON(cur), curBefore) || !reflect.DeepEqual(ConfigJSON(def), defBefore) {
			t.Fatal("Configure changed its arguments")
		}
		if err != nil {
			return
		}
		if got == nil {
			t.Fatal("nil configuration")
		}
		// Every top-level key of merge is there (under some spelling) afterwards.
		var m map[string]any
		if json.Unmarshal([]byte(merge), &m) == nil {
			for k := range m {
				if _, ok := foldKey(got, k); !ok {
					t.Fatalf("merged key %q missing from %s", k, ConfigJSON(got))
				}
			}
		}
		if reset == "" {
			want, _, _ := Configure(nil, def, ConfigurationUpdate{Merge: merge})
			if !reflect.DeepEqual(ConfigJSON(got), ConfigJSON(want)) {
				t.Fatalf("reset of everything: %s, want %s", ConfigJSON(got), ConfigJSON(want))
			}
		}
	})
}
