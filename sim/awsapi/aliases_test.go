package awsapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/fleetlab/fleetlab/sim/awsapi"
)

// A dialect signed under another name (the AWS CLI signs IoT for execute-api) routes and verifies as under its
// own; a request on a mounted prefix signed for a dialect is the dialect's (IoT's /things/{thingName} beside
// the device API), while one signed for a device scope, for no dialect, or not at all stays the mount's.
func TestAliasesAndSignedRequestsOnAMount(t *testing.T) {
	for _, auth := range []*awsapi.SigV4{nil, testAuth} {
		var mu sync.Mutex
		var reached []string
		reach := func(kind string) {
			mu.Lock()
			defer mu.Unlock()
			reached = append(reached, kind)
		}
		h := awsapi.NewHandler(awsapi.Options{Auth: auth})
		if err := h.Register(awsapi.Service{Model: loadModel(t, demoModel), Aliases: []string{"execute-api"},
			Invalid: invalidParameter}, map[string]awsapi.Operation{
			"GetThing": {Handle: func(*awsapi.Request) (any, error) { reach("api"); return struct{}{}, nil }},
		}); err != nil {
			t.Fatal(err)
		}
		if err := h.Mount("/things/", http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reach("device") })); err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		e := &oneEndpoint{url: srv.URL}
		for _, tc := range []struct {
			call call
			want string // "" when nothing may be reached
		}{
			{call{method: "GET", path: "/things/x", key: "AK", secret: "SK", service: "demo"}, "api"},
			{call{method: "GET", path: "/things/x", key: "AK", secret: "SK", service: "execute-api"}, "api"},
			{call{method: "GET", path: "/things/x/jobs", key: "DK", secret: "DS", service: "iot-jobs-data"}, "device"},
			{call{method: "GET", path: "/things/x", key: "DK", secret: "DS", service: "iotdata"}, "device"},
			{call{method: "GET", path: "/things/x", key: "AK", secret: "SK", service: "other"}, map[bool]string{
				true: "device", false: ""}[auth == nil]},
			{call{method: "GET", path: "/things/x"}, map[bool]string{true: "device", false: ""}[auth == nil]},
		} {
			status, _, answer := e.do(t, tc.call)
			mu.Lock()
			got := strings.Join(reached, ",")
			reached = nil
			mu.Unlock()
			if got != tc.want || (tc.want == "" && status != http.StatusForbidden) {
				t.Errorf("auth %v: %s %s signed for %q: reached %q (%d %s), want %q", auth != nil, tc.call.method,
					tc.call.path, tc.call.service, got, status, answer, tc.want)
			}
		}
		srv.Close()
	}
}
