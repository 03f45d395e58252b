package greengrassv2

import (
	"testing"
)

// The model loads, every operation the dialect serves is in it, and its patterns mean what the service means.
func TestModel(t *testing.T) {
	m, err := LoadModel()
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(Options{Store: nil})
	if err == nil || svc != nil {
		t.Fatal("New without a store succeeded")
	}
	for name := range (&Service{}).operations() {
		if m.Operation(name) == nil {
			t.Errorf("operation %s is not in the model", name)
		}
	}
	for shape, cases := range map[string]map[string]bool{
		"ComponentVersionARN": {
			"arn:aws:greengrass:us-east-1:123456789012:components:a.b:versions:1.0.0": true,
			"arn:aws:greengrass:us-east-1:123456789012:components:a.b":                false,
		},
		"ComponentARN": {
			"arn:aws:greengrass:us-east-1:123456789012:components:a.b":                true,
			"arn:aws:greengrass:us-east-1:123456789012:components:a.b:versions:1.0.0": false,
		},
		"ClientTokenString": {"0AF5F0D9-abc": true, "tok en": false},
		"GenericV2ARN": {
			"arn:aws:greengrass:us-east-1:123456789012:components:a": true,
			"arn:aws:iot:us-east-1:123456789012:thing/a":             false,
		},
	} {
		s := m.Shape(shape)
		if s == nil || s.Pattern == nil {
			t.Fatalf("no pattern for shape %s", shape)
		}
		for v, want := range cases {
			if got := s.Pattern.MatchString(v); got != want {
				t.Errorf("%s on %q = %v, want %v", shape, v, got, want)
			}
		}
	}
}
