package harness_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/harness/robomaker"
)

// FuzzReadSpec reads arbitrary scenario files: a file is refused with an error or accepted, never a panic, and an
// accepted spec written back reads the same; each of its faults either builds a handle from the catalog or is
// refused with an error.
func FuzzReadSpec(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "fixtures", "scenarios", "*.json"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"name":"x","fleet":{"robots":-1}}`))
	f.Add([]byte(`{"name":"x","faults":[{"fault":"latency","params":{"latency":"1e99h"}}]}`))
	catalog := faults.Catalog()
	f.Fuzz(func(t *testing.T, in []byte) {
		spec, err := harness.ReadSpec(bytes.NewReader(in))
		if err != nil {
			return
		}
		out, err := json.Marshal(spec)
		if err != nil {
			t.Fatalf("an accepted spec does not encode: %v", err)
		}
		again, err := harness.ReadSpec(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("an accepted spec, written back, is refused: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(normalize(t, spec), normalize(t, again)) {
			t.Fatalf("spec changed on a round trip:\n%+v\n%+v", spec, again)
		}
		for _, fs := range spec.Faults {
			if h, err := catalog.New(fs, robomaker.Driver{}.Steps()); err == nil {
				h.Close(t.Context())
			}
		}
	})
}

// normalize compares specs by their JSON, where raw parameters are compacted.
func normalize(t *testing.T, s harness.Spec) any {
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	json.Unmarshal(b, &v)
	return v
}
