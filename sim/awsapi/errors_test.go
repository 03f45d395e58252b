package awsapi_test

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fleetlab/fleetlab/sim/awsapi"
)

// Response renders the answer Write sends, byte for byte in its body and header for header.
func TestErrorResponseIsWhatWriteSends(t *testing.T) {
	e := awsapi.NewError("ThrottlingException", http.StatusTooManyRequests, "slow down").With("quotaCode", "q-1")
	e.Header = http.Header{"Retry-After": {"2"}}
	rec := httptest.NewRecorder()
	e.Write(rec, "Message", "application/x-amz-json-1.1")
	var raw strings.Builder
	if err := e.Response("Message", "application/x-amz-json-1.1").Write(&raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw.String())), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	want := `{"Message":"slow down","__type":"ThrottlingException","quotaCode":"q-1"}`
	if rec.Code != 429 || rec.Body.String() != want || resp.StatusCode != 429 || string(body) != want {
		t.Fatalf("Write: %d %s; Response: %d %s; want 429 %s", rec.Code, rec.Body, resp.StatusCode, body, want)
	}
	for _, h := range []string{"X-Amzn-ErrorType", "Content-Type", "Retry-After"} {
		if got, want := resp.Header.Get(h), rec.Header().Get(h); got != want || got == "" {
			t.Errorf("%s: Response %q, Write %q", h, got, want)
		}
	}
}

// An empty message member and content type are the defaults: "message" and application/json.
func TestErrorWriteDefaults(t *testing.T) {
	rec := httptest.NewRecorder()
	awsapi.NewError("ResourceNotFoundException", http.StatusNotFound, "no %s", "robot").Write(rec, "", "")
	if rec.Code != 404 || rec.Header().Get("Content-Type") != "application/json" ||
		rec.Body.String() != `{"__type":"ResourceNotFoundException","message":"no robot"}` {
		t.Fatalf("%d %v %s", rec.Code, rec.Header(), rec.Body)
	}
}
