package model

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// testModel is a small model with one member of every kind of constraint and every HTTP binding.
const testModel = `{
 "metadata": {"protocol": "rest-json", "endpointPrefix": "demo", "signingName": "demo-sign", "apiVersion": "2020-01-01"},
 "operations": {
  "PutThing": {"name": "PutThing", "http": {"method": "PUT", "requestUri": "/things/{thingName}/parts/{part+}", "responseCode": 201},
   "input": {"shape": "PutThingRequest"}, "output": {"shape": "Empty"}, "errors": [{"shape": "BadThing"}]},
  "Raw": {"name": "Raw", "http": {"method": "POST", "requestUri": "/raw?upload"}, "input": {"shape": "RawRequest"}}
 },
 "shapes": {
  "PutThingRequest": {"type": "structure", "required": ["thingName", "name", "count"], "members": {
    "thingName": {"shape": "Name", "location": "uri", "locationName": "thingName"},
    "part": {"shape": "Text", "location": "uri", "locationName": "part"},
    "limit": {"shape": "Count", "location": "querystring", "locationName": "max"},
    "keys": {"shape": "Names", "location": "querystring", "locationName": "key"},
    "token": {"shape": "Text", "location": "header", "locationName": "X-Token"},
    "meta": {"shape": "Labels", "location": "headers", "locationName": "x-meta-"},
    "name": {"shape": "Name"},
    "count": {"shape": "Count"},
    "ratio": {"shape": "Ratio"},
    "kind": {"shape": "Kind"},
    "flag": {"shape": "Flag"},
    "when": {"shape": "When"},
    "data": {"shape": "Data"},
    "items": {"shape": "Items"},
    "labels": {"shape": "Labels"},
    "big": {"shape": "Big"}
  }},
  "RawRequest": {"type": "structure", "payload": "body", "members": {"body": {"shape": "Text"}}},
  "Empty": {"type": "structure", "members": {}},
  "BadThing": {"type": "structure", "members": {"message": {"shape": "Text"}}, "error": {"httpStatusCode": 409}, "exception": true},
  "Name": {"type": "string", "min": 1, "max": 8, "pattern": "[a-z]*"},
  "Names": {"type": "list", "member": {"shape": "Name"}},
  "Text": {"type": "string"},
  "Count": {"type": "integer", "min": 1, "max": 100},
  "Big": {"type": "long"},
  "Ratio": {"type": "double", "min": 0.5, "max": 2.5},
  "Kind": {"type": "string", "enum": ["A", "B"]},
  "Flag": {"type": "boolean"},
  "When": {"type": "timestamp"},
  "Data": {"type": "blob", "max": 3},
  "Items": {"type": "list", "member": {"shape": "Item"}, "min": 1, "max": 2},
  "Item": {"type": "structure", "required": ["id"], "members": {"id": {"shape": "Name"}}},
  "Labels": {"type": "map", "key": {"shape": "Name"}, "value": {"shape": "Text"}, "max": 2}
 }
}`

func loadTest(t *testing.T) *Model {
	t.Helper()
	m, err := Load([]byte(testModel))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return m
}

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	v, err := decodeObject([]byte(s))
	if err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return v
}

func TestLoad(t *testing.T) {
	m := loadTest(t)
	if got := m.Metadata.Signing(); got != "demo-sign" {
		t.Errorf("Signing = %q", got)
	}
	op := m.Operation("PutThing")
	if op == nil || op.HTTP.Method != "PUT" || op.HTTP.Status() != 201 || op.Input != "PutThingRequest" {
		t.Fatalf("PutThing = %+v", op)
	}
	if got := m.Operation("Raw").HTTP.Status(); got != 200 {
		t.Errorf("default status = %d, want 200", got)
	}
	in := m.Shape("PutThingRequest")
	var names []string
	for _, mem := range in.Members {
		names = append(names, mem.Name)
	}
	if names[0] != "thingName" || names[len(names)-1] != "big" || len(names) != 16 {
		t.Errorf("members not in model order: %v", names)
	}
	if s := m.Shape("BadThing"); !s.Exception || s.ErrorStatus != 409 {
		t.Errorf("BadThing = %+v", s)
	}
	if got := m.OperationNames(); !reflect.DeepEqual(got, []string{"PutThing", "Raw"}) {
		t.Errorf("OperationNames = %v", got)
	}
}

func TestLoadRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"not json":      `{`,
		"dangling ref":  `{"metadata":{},"operations":{},"shapes":{"A":{"type":"list","member":{"shape":"B"}}}}`,
		"dangling op":   `{"metadata":{},"operations":{"X":{"http":{},"input":{"shape":"Nope"}}},"shapes":{}}`,
		"bad pattern":   `{"metadata":{},"operations":{},"shapes":{"A":{"type":"string","pattern":"(?<=x)y"}}}`,
		"members array": `{"metadata":{},"operations":{},"shapes":{"A":{"type":"structure","members":[]}}}`,
	} {
		if _, err := Load([]byte(doc)); err == nil {
			t.Errorf("%s: Load succeeded", name)
		}
	}
}

func TestValidate(t *testing.T) {
	m := loadTest(t)
	const ok = `"thingName": "abc", "name": "x", "count": 5`
	tests := []struct {
		name, body string
		want       string // substring of the error; empty: valid
	}{
		{"valid minimal", `{` + ok + `}`, ""},
		{"valid full", `{` + ok + `, "ratio": 1.5, "kind": "B", "flag": true, "when": 1700000000.5, "data": "AAEC",
			"items": [{"id": "a"}], "labels": {"a": "1", "b": "2"}, "big": 9007199254740993, "extra": [1, 2]}`, ""},
		{"iso timestamp", `{` + ok + `, "when": "2026-01-01T00:00:00.123Z"}`, ""},
		{"null is absent", `{` + ok + `, "kind": null}`, ""},
		{"missing required", `{"thingName": "abc", "count": 5}`,
			"Value null at 'name' failed to satisfy constraint: Member must not be null"},
		{"too short", `{"thingName": "abc", "name": "", "count": 5}`,
			"Value '' at 'name' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{"too long", `{"thingName": "abc", "name": "abcdefghi", "count": 5}`,
			"at 'name' failed to satisfy constraint: Member must have length less than or equal to 8"},
		{"length counts characters", `{"thingName": "abc", "name": "ééééééé", "count": 5}`,
			"Member must satisfy regular expression pattern: [a-z]*"},
		{"pattern", `{"thingName": "abc", "name": "ABC", "count": 5}`,
			"Value 'ABC' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-z]*"},
		{"pattern is whole-value", `{"thingName": "abc", "name": "ab1", "count": 5}`, "regular expression pattern"},
		{"below min", `{"thingName": "abc", "name": "x", "count": 0}`,
			"Value '0' at 'count' failed to satisfy constraint: Member must have value greater than or equal to 1"},
		{"above max", `{"thingName": "abc", "name": "x", "count": 101}`,
			"Member must have value less than or equal to 100"},
		{"not integral", `{"thingName": "abc", "name": "x", "count": 1.5}`, "Member must be an integer"},
		{"int32 overflow", `{"thingName": "abc", "name": "x", "count": 5, "big": 1, "ratio": 1}`, ""},
		{"integer out of int32", `{"thingName": "abc", "name": "x", "count": 4294967296}`, "32-bit integer"},
		{"string for number", `{"thingName": "abc", "name": "x", "count": "5"}`,
			"Value '5' at 'count' failed to satisfy constraint: Member must be a number"},
		{"double range", `{` + ok + `, "ratio": 2.6}`, "Member must have value less than or equal to 2.5"},
		{"double min", `{` + ok + `, "ratio": 0.4}`, "Member must have value greater than or equal to 0.5"},
		{"enum", `{` + ok + `, "kind": "C"}`,
			"Value 'C' at 'kind' failed to satisfy constraint: Member must satisfy enum value set: [A, B]"},
		{"boolean", `{` + ok + `, "flag": "true"}`, "at 'flag' failed to satisfy constraint: Member must be a boolean"},
		{"timestamp", `{` + ok + `, "when": "yesterday"}`, "Member must be a timestamp"},
		{"timestamp type", `{` + ok + `, "when": true}`, "Member must be a timestamp"},
		{"blob encoding", `{` + ok + `, "data": "!!"}`, "base64"},
		{"blob length", `{` + ok + `, "data": "AAECAw=="}`, "at 'data' failed to satisfy constraint: Member must have length less than or equal to 3"},
		{"list type", `{` + ok + `, "items": {"id": "a"}}`, "Member must be a list"},
		{"list min", `{` + ok + `, "items": []}`,
			"Value '[]' at 'items' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{"list max", `{` + ok + `, "items": [{"id": "a"}, {"id": "b"}, {"id": "c"}]}`, "less than or equal to 2"},
		{"nested path", `{` + ok + `, "items": [{"id": "a"}, {"id": "B"}]}`,
			"Value 'B' at 'items.2.member.id' failed to satisfy constraint"},
		{"nested required", `{` + ok + `, "items": [{}]}`, "Value null at 'items.1.member.id'"},
		{"null list element", `{` + ok + `, "items": [null]}`, "at 'items.1.member' failed to satisfy constraint: Member must not be null"},
		{"structure type", `{` + ok + `, "items": ["a"]}`, "Member must be a structure"},
		{"map type", `{` + ok + `, "labels": []}`, "Member must be a map"},
		{"map max", `{` + ok + `, "labels": {"a": "1", "b": "2", "c": "3"}}`, "at 'labels' failed to satisfy constraint: Member must have length less than or equal to 2"},
		{"map key", `{` + ok + `, "labels": {"A": "1"}}`,
			"Value '{A=1}' at 'labels' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-z]*]"},
		{"map value", `{` + ok + `, "labels": {"a": 1}}`, "Map value must satisfy constraint: [Member must be a string]"},
		{"map null value", `{` + ok + `, "labels": {"a": null}}`, "Map value must satisfy constraint: [Member must not be null]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := m.ValidateInput("PutThing", decode(t, tc.body))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error = %v, want a *ValidationError", err)
			}
			if !strings.HasPrefix(err.Error(), "1 validation error detected: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %q\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestValidateFirstViolationInModelOrder(t *testing.T) {
	m := loadTest(t)
	// Both name and count break constraints; name comes first in the model.
	err := m.ValidateInput("PutThing", decode(t, `{"thingName": "abc", "count": 0, "name": ""}`))
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Path != "name" {
		t.Fatalf("error = %v, want the violation at name", err)
	}
	if err := m.ValidateInput("Nope", map[string]any{}); err == nil {
		t.Error("unknown operation validated")
	}
}

func TestRenderTruncates(t *testing.T) {
	long := strings.Repeat("é", 300)
	got := (&ValidationError{Path: "p", Value: long, Constraint: "c"}).Error()
	if !strings.Contains(got, "...'") || len(got) > 400 {
		t.Errorf("message not cut: %d bytes", len(got))
	}
	if strings.ContainsRune(got, '\uFFFD') {
		t.Error("cut inside a character")
	}
}

func TestURIMatch(t *testing.T) {
	tests := []struct {
		template, path string
		want           map[string]string // nil: no match
	}{
		{"/createFleet", "/createFleet", map[string]string{}},
		{"/createFleet", "/createFleet/", nil},
		{"/createFleet", "/createfleet", nil},
		{"/", "/", map[string]string{}},
		{"/", "/x", nil},
		{"/tags/{resourceArn}", "/tags/arn%3Aaws%3Arobomaker%3Aus-east-1%3A1%3Adeployment-fleet%2Ff%2F1",
			map[string]string{"resourceArn": "arn:aws:robomaker:us-east-1:1:deployment-fleet/f/1"}},
		{"/tags/{resourceArn}", "/tags/", nil},
		{"/tags/{resourceArn}", "/tags/a/b", nil},
		{"/things/{thing}/jobs/$next", "/things/t1/jobs/%24next", map[string]string{"thing": "t1"}},
		{"/things/{thing}/parts/{part+}", "/things/t1/parts/a/b%20c", map[string]string{"thing": "t1", "part": "a/b c"}},
		{"/things/{thing}/parts/{part+}", "/things/t1/parts", nil},
		{"/things/{thing}", "/things/%zz", nil},
	}
	for _, tc := range tests {
		u, err := ParseURI(tc.template)
		if err != nil {
			t.Fatalf("ParseURI(%q): %v", tc.template, err)
		}
		got, ok := u.Match(tc.path)
		if tc.want == nil {
			if ok {
				t.Errorf("%s matched %s: %v", tc.template, tc.path, got)
			}
			continue
		}
		if !ok || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s on %s = %v, %v; want %v", tc.template, tc.path, got, ok, tc.want)
		}
	}
	for _, bad := range []string{"createFleet", "/{}/x", "/{a+}/b"} {
		if _, err := ParseURI(bad); err == nil {
			t.Errorf("ParseURI(%q) succeeded", bad)
		}
	}
	u, _ := ParseURI("/raw?upload&kind=x")
	if u.MatchQuery(map[string][]string{"upload": {""}}) || !u.MatchQuery(map[string][]string{"upload": {""}, "kind": {"x"}}) {
		t.Error("MatchQuery does not require the template's literal query")
	}
}

func TestBind(t *testing.T) {
	m := loadTest(t)
	r := httptest.NewRequest("PUT", "/things/abc/parts/x/y?max=7&key=a&key=b&other=z", strings.NewReader(`{"name": "n", "count": 3, "thingName": "ignored"}`))
	r.Header.Set("X-Token", "tok")
	r.Header.Set("X-Meta-Color", "red")
	labels, ok := mustURI(t, "/things/{thingName}/parts/{part+}").Match(r.URL.EscapedPath())
	if !ok {
		t.Fatal("no match")
	}
	body := []byte(`{"name": "n", "count": 3, "thingName": "ignored"}`)
	doc, err := m.Bind(m.Operation("PutThing"), r, labels, body)
	if err != nil {
		t.Fatalf("Bind: %v", err)
	}
	want := map[string]any{
		"thingName": "abc", "part": "x/y", "limit": json.Number("7"), "keys": []any{"a", "b"}, "token": "tok",
		"meta": map[string]any{"color": "red"}, "name": "n", "count": json.Number("3"),
	}
	if !reflect.DeepEqual(doc, want) {
		t.Fatalf("Bind =\n%#v\nwant\n%#v", doc, want)
	}
	if err := m.ValidateInput("PutThing", doc); err != nil {
		t.Fatalf("bound input invalid: %v", err)
	}

	// A query parameter that is not a number stays a string, so validation names it.
	r = httptest.NewRequest("PUT", "/things/abc/parts/x?max=lots", nil)
	doc, err = m.Bind(m.Operation("PutThing"), r, map[string]string{"thingName": "abc"}, []byte(`{"name":"n","count":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.ValidateInput("PutThing", doc); err == nil || !strings.Contains(err.Error(), "'lots' at 'limit'") {
		t.Fatalf("validation of a bad query number = %v", err)
	}

	// The payload member takes the raw body.
	r = httptest.NewRequest("POST", "/raw?upload", strings.NewReader("not json"))
	doc, err = m.Bind(m.Operation("Raw"), r, nil, []byte("not json"))
	if err != nil || doc["body"] != "not json" {
		t.Fatalf("payload bind = %v, %v", doc, err)
	}
}

func TestBindRejectsBadBodies(t *testing.T) {
	m := loadTest(t)
	r := httptest.NewRequest("PUT", "/things/a/parts/b", nil)
	for body, want := range map[string]string{
		`{`:         "not valid JSON",
		`[1]`:       "must be a JSON object, not an array",
		`null`:      "must be a JSON object, not null",
		`"s"`:       "not a string",
		`{} {}`:     "data after the JSON object",
		`{"a":1}xx`: "data after",
	} {
		_, err := m.Bind(m.Operation("PutThing"), r, nil, []byte(body))
		var be *BindError
		if !errors.As(err, &be) || !strings.Contains(err.Error(), strings.TrimPrefix(want, "not ")) {
			t.Errorf("Bind(%q) = %v, want %q", body, err, want)
		}
	}
	if doc, err := m.Bind(m.Operation("PutThing"), r, nil, []byte("  ")); err != nil || len(doc) != 0 {
		t.Errorf("empty body = %v, %v; want an empty document", doc, err)
	}
}

func mustURI(t *testing.T, s string) URI {
	t.Helper()
	u, err := ParseURI(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestParseTimestamp(t *testing.T) {
	for in, want := range map[string]int64{
		"1551218369":                    1551218369000,
		"1551218369.123":                1551218369123,
		"1.621884415241E9":              1621884415241,
		"-1.5":                          -1500,
		"2019-06-18T17:04:44.761Z":      1560877484761,
		"2013-07-25T18:57:49+00:00":     1374778669000,
		"Tue, 18 Jun 2019 17:04:44 GMT": 1560877484000,
	} {
		got, err := ParseTimestamp(in)
		if err != nil || got.UnixMilli() != want {
			t.Errorf("ParseTimestamp(%q) = %v (%d), %v; want %d", in, got, got.UnixMilli(), err, want)
		}
	}
	if _, err := ParseTimestamp("soon"); err == nil {
		t.Error("ParseTimestamp accepted garbage")
	}
}
