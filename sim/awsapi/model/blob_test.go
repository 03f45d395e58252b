package model

import (
	"bytes"
	"net/http/httptest"
	"strings"
	"testing"
)

// blobModel has an operation whose payload is a blob with length constraints, and one with a blob member in its
// JSON body.
const blobModel = `{
 "metadata": {"protocol": "rest-json", "endpointPrefix": "demo", "signingName": "demo", "apiVersion": "2020-01-01"},
 "operations": {
  "Upload": {"name": "Upload", "http": {"method": "POST", "requestUri": "/upload"}, "input": {"shape": "UploadRequest"}},
  "Put": {"name": "Put", "http": {"method": "PUT", "requestUri": "/put"}, "input": {"shape": "PutRequest"}}
 },
 "shapes": {
  "UploadRequest": {"type": "structure", "payload": "Content", "required": ["Content"], "members": {
    "Content": {"shape": "Content"},
    "Type": {"shape": "Text", "location": "header", "locationName": "Content-Type"}}},
  "PutRequest": {"type": "structure", "members": {"Data": {"shape": "Content"}}},
  "Content": {"type": "blob", "min": 1, "max": 5, "sensitive": true},
  "Text": {"type": "string"}
 }
}`

// TestBlobPayload: a blob payload binds as the body's bytes and is measured as sent — whatever they are, text
// that is not base64 included, and never decoded as base64 when it happens to be — while a blob member of a
// JSON body is still base64 text.
func TestBlobPayload(t *testing.T) {
	m, err := Load([]byte(blobModel))
	if err != nil {
		t.Fatal(err)
	}
	upload := func(body string) (map[string]any, error) {
		r := httptest.NewRequest("POST", "/upload", strings.NewReader(body))
		r.Header.Set("Content-Type", "text/plain")
		doc, err := m.Bind(m.Operation("Upload"), r, nil, []byte(body))
		if err != nil {
			t.Fatalf("Bind(%q): %v", body, err)
		}
		return doc, m.ValidateInput("Upload", doc)
	}
	for _, body := range []string{"a b%", "{\"x\"", "QUJD", "\x00\xff\x01"} {
		doc, err := upload(body)
		if err != nil {
			t.Errorf("payload %q: %v", body, err)
		}
		if got, ok := doc["Content"].([]byte); !ok || !bytes.Equal(got, []byte(body)) {
			t.Errorf("payload %q bound as %#v, want its bytes", body, doc["Content"])
		}
		if doc["Type"] != "text/plain" {
			t.Errorf("payload %q: header member %v", body, doc["Type"])
		}
	}
	// Six bytes are too many, even when they are the base64 of four ("QUJDRA==" would be eight).
	if _, err := upload("abcdef"); err == nil || !strings.Contains(err.Error(),
		"Member must have length less than or equal to 5") || !strings.Contains(err.Error(), "'Content'") {
		t.Errorf("a 6-byte payload: %v", err)
	}
	if _, err := upload("QUJDRA=="); err == nil || !strings.Contains(err.Error(), "less than or equal to 5") {
		t.Errorf("an 8-byte payload that is base64 of 4: %v", err)
	}
	// No body: the required payload is missing.
	if _, err := upload(""); err == nil || !strings.Contains(err.Error(), "Content") {
		t.Errorf("an empty payload: %v", err)
	}

	put := func(body string) error {
		r := httptest.NewRequest("PUT", "/put", strings.NewReader(body))
		doc, err := m.Bind(m.Operation("Put"), r, nil, []byte(body))
		if err != nil {
			t.Fatalf("Bind(%q): %v", body, err)
		}
		return m.ValidateInput("Put", doc)
	}
	if err := put(`{"Data": "QUJD"}`); err != nil {
		t.Errorf("a base64 member of a JSON body: %v", err)
	}
	if err := put(`{"Data": "a b%"}`); err == nil || !strings.Contains(err.Error(), "base64") {
		t.Errorf("a member of a JSON body that is not base64: %v", err)
	}
	if err := put(`{"Data": "YWJjZGVm"}`); err == nil || !strings.Contains(err.Error(), "less than or equal to 5") {
		t.Errorf("a member of a JSON body of 6 bytes: %v", err)
	}
}
