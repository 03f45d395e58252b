package deviceapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/sim/clock/clocktest"
	"github.com/fleetlab/fleetlab/sim/deviceapi"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/store"
)

// FuzzDeviceRequests sends arbitrary bodies to every data-plane write: the service must answer (never panic),
// answer 2xx or a modeled error, and keep the deployment's counters consistent with its executions.
func FuzzDeviceRequests(f *testing.F) {
	f.Add("POST", "job-1", `{"status":"IN_PROGRESS","statusDetails":{"step":"Launching"}}`)
	f.Add("POST", "job-1", `{"status":"SUCCEEDED","expectedVersion":2}`)
	f.Add("POST", "job-1", `{"status":"FAILED","statusDetails":{"failureCode":"PreLaunchFileFailure"}}`)
	f.Add("POST", "job-1", `{"status":"TIMED_OUT"}`)
	f.Add("POST", "job-1", `{"status":"IN_PROGRESS","stepTimeoutInMinutes":-5}`)
	f.Add("PUT", "$next", `{"statusDetails":{"step":"Validating"},"stepTimeoutInMinutes":3}`)
	f.Add("PUT", "$next", `{"statusDetails":{"":"\u0000"}}`)
	f.Add("POST", "$next", `[]`)
	f.Add("GET", "job-1?includeJobDocument=maybe", ``)
	f.Fuzz(func(t *testing.T, method, job, body string) {
		c := clocktest.New(time.Time{})
		eng, err := engine.New(engine.Options{Clock: c, Store: store.NewMemory()})
		if err != nil {
			t.Fatal(err)
		}
		api, err := deviceapi.New(deviceapi.Options{Engine: eng, Clock: c})
		if err != nil {
			t.Fatal(err)
		}
		defer api.Close()
		if _, err := eng.Create(engine.Spec{ID: "job-1", Targets: []string{"r1", "r2"}}); err != nil {
			t.Fatal(err)
		}
		switch method {
		case "GET", "PUT", "POST":
		default:
			method = "POST"
		}
		for _, thing := range []string{"r1", "r1", "r2"} {
			req, err := http.NewRequest(method, "http://fleetlab/things/"+thing+"/jobs/"+job, strings.NewReader(body))
			if err != nil {
				return // not a URL at all: nothing reaches the service
			}
			w := httptest.NewRecorder()
			api.ServeHTTP(w, req)
			switch w.Code {
			case 200, 301, 307, 400, 404, 405, 409, 410: // 3xx: the mux cleaning a path with . or //
			default:
				t.Fatalf("%s %s %q: status %d %s", method, job, body, w.Code, w.Body)
			}
			if w.Code >= 400 && w.Code != 405 && w.Header().Get("X-Amzn-ErrorType") == "" && w.Code != 404 {
				t.Fatalf("error %d without an error type", w.Code)
			}
		}
		d, err := eng.Deployment("job-1")
		if err != nil {
			t.Fatal(err)
		}
		xs, _ := eng.Executions("job-1")
		var c2 engine.Counters
		for _, x := range xs {
			switch x.Status {
			case engine.ExecQueued:
				c2.Queued++
			case engine.ExecInProgress:
				c2.InProgress++
			case engine.ExecSucceeded:
				c2.Succeeded++
			case engine.ExecFailed:
				c2.Failed++
			case engine.ExecRejected:
				c2.Rejected++
			default:
				t.Fatalf("a device request produced status %s", x.Status)
			}
		}
		got := d.Counters
		if got.Queued != c2.Queued || got.InProgress != c2.InProgress || got.Succeeded != c2.Succeeded ||
			got.Failed != c2.Failed || got.Rejected != c2.Rejected || got.Total != 2 {
			t.Fatalf("counters %+v disagree with executions %+v", got, c2)
		}
	})
}
