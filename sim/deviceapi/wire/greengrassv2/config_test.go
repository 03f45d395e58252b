package greengrassv2

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestConfigure(t *testing.T) {
	defaults := `{"port": 8080, "log": {"level": "INFO", "file": "/var/log/app"}, "peers": ["a"]}`
	cases := []struct {
		name    string
		current string
		reset   []string
		merge   string
		want    string
		skipped []string
	}{
		{name: "first install takes the defaults", current: `{}`,
			want: `{"port": 8080, "log": {"level": "INFO", "file": "/var/log/app"}, "peers": ["a"]}`},
		{name: "defaults never overwrite existing values",
			current: `{"port": 9000, "log": {"level": "DEBUG"}}`,
			want:    `{"port": 9000, "log": {"level": "DEBUG", "file": "/var/log/app"}, "peers": ["a"]}`},
		{name: "merge replaces scalars and arrays and merges objects",
			current: `{"port": 9000}`, merge: `{"peers": ["b", "c"], "log": {"level": "WARN"}, "extra": true}`,
			want: `{"port": 9000, "log": {"level": "WARN", "file": "/var/log/app"}, "peers": ["b", "c"],
				"extra": true}`},
		{name: "a reset key falls back to its default",
			current: `{"port": 9000, "log": {"level": "DEBUG", "file": "/tmp/x"}}`, reset: []string{"/port"},
			want: `{"port": 8080, "log": {"level": "DEBUG", "file": "/tmp/x"}, "peers": ["a"]}`},
		{name: "a reset subtree falls back to its defaults",
			current: `{"log": {"level": "DEBUG", "rotate": true}}`, reset: []string{"/log"},
			want: `{"port": 8080, "log": {"level": "INFO", "file": "/var/log/app"}, "peers": ["a"]}`},
		{name: "a reset key without a default is removed",
			current: `{"custom": 1, "port": 1}`, reset: []string{"/custom"},
			want: `{"port": 1, "log": {"level": "INFO", "file": "/var/log/app"}, "peers": ["a"]}`},
		{name: "reset happens before merge",
			current: `{"port": 9000}`, reset: []string{"/port"}, merge: `{"port": 7000}`,
			want: `{"port": 7000, "log": {"level": "INFO", "file": "/var/log/app"}, "peers": ["a"]}`},
		{name: "the empty pointer resets everything and ends the resets",
			current: `{"port": 9000, "custom": {"a": 1}}`, reset: []string{"", "/nothing-after"},
			merge: `{"log": {"level": "ERROR"}}`,
			want:  `{"port": 8080, "log": {"level": "ERROR", "file": "/var/log/app"}, "peers": ["a"]}`},
		{name: "a pointer into an array is skipped",
			current: `{"peers": ["x", "y"]}`, reset: []string{"/peers/0"},
			want:    `{"port": 8080, "log": {"level": "INFO", "file": "/var/log/app"}, "peers": ["x", "y"]}`,
			skipped: []string{"/peers/0"}},
		{name: "a pointer without a leading slash is skipped",
			current: `{"port": 1}`, reset: []string{"port"},
			want:    `{"port": 1, "log": {"level": "INFO", "file": "/var/log/app"}, "peers": ["a"]}`,
			skipped: []string{"port"}},
		{name: "a pointer that names nothing does nothing",
			current: `{"port": 1}`, reset: []string{"/missing/deep", "/port/below-a-leaf"},
			want: `{"port": 1, "log": {"level": "INFO", "file": "/var/log/app"}, "peers": ["a"]}`},
		{name: "keys are case-insensitive in reset and merge; a merged key keeps the existing spelling",
			current: `{"Port": 9000, "LOG": {"Level": "DEBUG"}}`, reset: []string{"/port"},
			merge: `{"log": {"LEVEL": "TRACE"}}`,
			want:  `{"port": 8080, "LOG": {"Level": "TRACE", "file": "/var/log/app"}, "peers": ["a"]}`},
		{name: "escaped pointer tokens",
			current: `{"a/b": 1, "m~n": 2, "port": 3}`, reset: []string{"/a~1b", "/m~0n"},
			want: `{"port": 3, "log": {"level": "INFO", "file": "/var/log/app"}, "peers": ["a"]}`},
		{name: "a merged object replaces a scalar, a merged scalar an object, null a value",
			current: `{"port": {"inner": 1}, "log": "flat"}`, merge: `{"port": 1, "log": {"level": "X"}, "peers": null}`,
			want: `{"port": 1, "log": {"level": "X"}, "peers": null}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			current := decodeObject(t, c.current)
			def := decodeObject(t, defaults)
			before := string(ConfigJSON(current))
			got, skipped, err := Configure(current, def, ConfigurationUpdate{Merge: c.merge, Reset: c.reset})
			if err != nil {
				t.Fatal(err)
			}
			if string(ConfigJSON(got)) != string(ConfigJSON(decodeObject(t, c.want))) {
				t.Errorf("got  %s\nwant %s", ConfigJSON(got), ConfigJSON(decodeObject(t, c.want)))
			}
			if string(ConfigJSON(current)) != before || string(ConfigJSON(def)) != string(ConfigJSON(decodeObject(t, defaults))) {
				t.Error("Configure changed its arguments")
			}
			var ptrs []string
			for _, s := range skipped {
				ptrs = append(ptrs, s.Pointer)
				if s.Reason == "" {
					t.Errorf("skipped %q without a reason", s.Pointer)
				}
			}
			if !reflect.DeepEqual(ptrs, c.skipped) {
				t.Errorf("skipped %v, want %v", ptrs, c.skipped)
			}
		})
	}
}

func TestConfigureRejectsMerge(t *testing.T) {
	for _, m := range []string{`[1]`, `"s"`, `{"a":`, `{} {}`, `3`} {
		if _, _, err := Configure(nil, nil, ConfigurationUpdate{Merge: m}); err == nil {
			t.Errorf("merge %s accepted", m)
		}
	}
}

func decodeObject(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return m
}
