package model

import (
	"bytes"
	"net/http/httptest"
	"testing"
)

// FuzzBindValidate feeds arbitrary bodies and queries through binding and validation: neither may panic, and
// validating the same document twice gives the same answer.
func FuzzBindValidate(f *testing.F) {
	m, err := Load([]byte(testModel))
	if err != nil {
		f.Fatal(err)
	}
	f.Add("max=3&key=a", []byte(`{"name":"ab","count":5,"items":[{"id":"x"}],"labels":{"a":"b"}}`))
	f.Add("", []byte(`{"name":"ab","count":1e400,"ratio":"x","when":"2026-01-01T00:00:00Z","data":"AA=="}`))
	f.Add("max=-1", []byte(`[]`))
	op := m.Operation("PutThing")
	f.Fuzz(func(t *testing.T, query string, body []byte) {
		r := httptest.NewRequest("PUT", "/things/abc/parts/p", bytes.NewReader(body))
		r.URL.RawQuery = query
		doc, err := m.Bind(op, r, map[string]string{"thingName": "abc", "part": "p"}, body)
		if err != nil {
			if _, ok := err.(*BindError); !ok {
				t.Fatalf("Bind error %T: %v", err, err)
			}
			return
		}
		first := m.ValidateInput("PutThing", doc)
		second := m.ValidateInput("PutThing", doc)
		if (first == nil) != (second == nil) || (first != nil && first.Error() != second.Error()) {
			t.Fatalf("validation is not deterministic: %v / %v", first, second)
		}
	})
}
