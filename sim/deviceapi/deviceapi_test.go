package deviceapi_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fleetlab/fleetlab/sim/clock/clocktest"
	"github.com/fleetlab/fleetlab/sim/deviceapi"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/store"
)

type env struct {
	t     *testing.T
	clock *clocktest.Fake
	eng   *engine.Engine
	api   *deviceapi.API
	srv   *httptest.Server
}

func newEnv(t *testing.T) *env {
	t.Helper()
	c := clocktest.New(time.Time{})
	eng, err := engine.New(engine.Options{Clock: c, Store: store.NewMemory()})
	if err != nil {
		t.Fatal(err)
	}
	api, err := deviceapi.New(deviceapi.Options{Engine: eng, Clock: c, Artifacts: http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("ETag", `"abc"`)
			fmt.Fprintf(w, "object at %s", r.URL.Path)
		})})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		api.Close()
		srv.Close()
	})
	return &env{t: t, clock: c, eng: eng, api: api, srv: srv}
}

// call sends a request and decodes a 2xx body into out; it returns the status and the error code header.
func (e *env) call(method, path string, body any, out any) (int, string) {
	e.t.Helper()
	var rd *bytes.Reader
	if s, ok := body.(string); ok {
		rd = bytes.NewReader([]byte(s))
	} else {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, rd)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 && out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			e.t.Fatal(err)
		}
	}
	if resp.StatusCode/100 != 2 {
		var body wire.Error
		json.NewDecoder(resp.Body).Decode(&body)
		if body.Type != resp.Header.Get("X-Amzn-ErrorType") {
			e.t.Errorf("body __type %q and header %q differ", body.Type, resp.Header.Get("X-Amzn-ErrorType"))
		}
	}
	return resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType")
}

func TestJobsDataPlane(t *testing.T) {
	e := newEnv(t)
	doc := `{"kind":"robomaker","payload":{}}`
	if _, err := e.eng.Create(engine.Spec{ID: "job-1", Targets: []string{"r1", "r2"}, Document: []byte(doc),
		Pacing: engine.Batch(50), Timeouts: engine.Timeouts{Execution: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	var pending wire.GetPendingJobExecutionsResponse
	e.call("GET", "/things/r1/jobs", nil, &pending)
	if len(pending.QueuedJobs) != 1 || pending.QueuedJobs[0].JobID != "job-1" || len(pending.InProgressJobs) != 0 {
		t.Fatalf("pending %+v", pending)
	}
	e.call("GET", "/things/r2/jobs", nil, &pending)
	if len(pending.QueuedJobs) != 0 {
		t.Fatalf("r2 sees an unreleased execution: %+v", pending)
	}

	var next wire.DescribeJobExecutionResponse
	e.call("GET", "/things/r1/jobs/$next", nil, &next)
	if next.Execution == nil || next.Execution.Status != wire.StatusQueued || next.Execution.JobDocument != doc {
		t.Fatalf("$next %+v", next.Execution)
	}
	var started wire.StartNextPendingJobExecutionResponse
	steps := int64(5)
	e.call("PUT", "/things/r1/jobs/$next", wire.StartNextPendingJobExecutionRequest{
		StatusDetails: map[string]string{"step": "Validating"}, StepTimeoutInMinutes: &steps}, &started)
	x := started.Execution
	if x == nil || x.Status != wire.StatusInProgress || x.StatusDetails["step"] != "Validating" ||
		x.ApproximateSecondsBeforeTimedOut != 300 || x.JobDocument != doc {
		t.Fatalf("started %+v", x)
	}

	var upd wire.UpdateJobExecutionResponse
	v := x.VersionNumber
	e.call("POST", "/things/r1/jobs/job-1", wire.UpdateJobExecutionRequest{Status: wire.StatusInProgress,
		StatusDetails: map[string]string{"step": "Launching"}, ExpectedVersion: &v,
		IncludeJobExecutionState: true, IncludeJobDocument: true}, &upd)
	if upd.ExecutionState == nil || upd.ExecutionState.VersionNumber != v+1 || upd.JobDocument != doc {
		t.Fatalf("update %+v", upd)
	}

	errs := []struct {
		name   string
		method string
		path   string
		body   any
		status int
		code   string
	}{
		{"stale version", "POST", "/things/r1/jobs/job-1", wire.UpdateJobExecutionRequest{
			Status: wire.StatusSucceeded, ExpectedVersion: &v}, 409, wire.ErrInvalidStateTransition},
		{"device sets TIMED_OUT", "POST", "/things/r1/jobs/job-1", wire.UpdateJobExecutionRequest{
			Status: wire.StatusTimedOut}, 409, wire.ErrInvalidStateTransition},
		{"unknown status", "POST", "/things/r1/jobs/job-1", `{"status":"DONE"}`, 400, wire.ErrInvalidRequest},
		{"no status", "POST", "/things/r1/jobs/job-1", `{}`, 400, wire.ErrInvalidRequest},
		{"malformed JSON", "POST", "/things/r1/jobs/job-1", `{"status":`, 400, wire.ErrInvalidRequest},
		{"bad detail key", "POST", "/things/r1/jobs/job-1", `{"status":"IN_PROGRESS","statusDetails":{"a b":"x"}}`,
			400, wire.ErrInvalidRequest},
		{"empty detail value", "POST", "/things/r1/jobs/job-1", `{"status":"IN_PROGRESS","statusDetails":{"a":""}}`,
			400, wire.ErrInvalidRequest},
		{"step timeout too long", "POST", "/things/r1/jobs/job-1", `{"status":"IN_PROGRESS","stepTimeoutInMinutes":10081}`,
			400, wire.ErrInvalidRequest},
		{"unknown job", "POST", "/things/r1/jobs/job-9", wire.UpdateJobExecutionRequest{Status: wire.StatusSucceeded},
			404, wire.ErrResourceNotFound},
		{"not released yet", "GET", "/things/r2/jobs/job-1", nil, 404, wire.ErrResourceNotFound},
		{"bad thing name", "GET", "/things/r%20x/jobs", nil, 400, wire.ErrInvalidRequest},
		{"bad job id", "GET", "/things/r1/jobs/a.b", nil, 400, wire.ErrInvalidRequest},
		{"oversized body", "POST", "/things/r1/jobs/job-1", `{"status":"IN_PROGRESS","x":"` +
			strings.Repeat("a", 70<<10) + `"}`, 400, wire.ErrInvalidRequest},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			status, code := e.call(tc.method, tc.path, tc.body, nil)
			if status != tc.status || code != tc.code {
				t.Fatalf("got %d %s, want %d %s", status, code, tc.status, tc.code)
			}
		})
	}

	e.call("POST", "/things/r1/jobs/job-1", wire.UpdateJobExecutionRequest{Status: wire.StatusSucceeded}, nil)
	if status, code := e.call("POST", "/things/r1/jobs/job-1", wire.UpdateJobExecutionRequest{
		Status: wire.StatusFailed}, nil); status != 410 || code != wire.ErrTerminalState {
		t.Fatalf("update after the end: %d %s, want 410 TerminalStateException", status, code)
	}
	var done wire.DescribeJobExecutionResponse
	e.call("GET", "/things/r1/jobs/job-1?includeJobDocument=false", nil, &done)
	if done.Execution.Status != wire.StatusSucceeded || done.Execution.JobDocument != "" {
		t.Fatalf("describe finished %+v", done.Execution)
	}
	// r1 succeeding released r2.
	e.call("GET", "/things/r2/jobs", nil, &pending)
	if len(pending.QueuedJobs) != 1 {
		t.Fatalf("r2 pending %+v", pending)
	}
	var none wire.StartNextPendingJobExecutionResponse
	e.call("PUT", "/things/r1/jobs/$next", nil, &none)
	if none.Execution != nil {
		t.Fatalf("r1 has nothing pending but started %+v", none.Execution)
	}
}

func TestNotify(t *testing.T) {
	e := newEnv(t)
	url := "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/things/r1/notify"
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	read := func() wire.Notify {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		var n wire.Notify
		if err := conn.ReadJSON(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := read(); n.Kind != wire.NotifyHello {
		t.Fatalf("first message %+v, want hello", n)
	}
	if _, err := e.eng.Create(engine.Spec{ID: "job-1", Targets: []string{"r1"}}); err != nil {
		t.Fatal(err)
	}
	if n := read(); n.Kind != wire.NotifyPending || n.JobID != "job-1" {
		t.Fatalf("got %+v, want pending job-1", n)
	}
	if _, err := e.eng.Create(engine.Spec{ID: "job-2", Targets: []string{"r1"}, Start: e.clock.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.eng.Cancel("job-1", "operator"); err != nil {
		t.Fatal(err)
	}
	if n := read(); n.Kind != wire.NotifyCanceled || n.JobID != "job-1" {
		t.Fatalf("got %+v, want canceled job-1", n)
	}
	// Closing the API ends the connection with a close frame.
	e.api.Close()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := conn.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("after close: %v", err)
	}
}

func TestArtifactsMounted(t *testing.T) {
	e := newEnv(t)
	resp, err := http.Get(e.srv.URL + "/artifacts/bundles/hello.tar.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	if got := b.String(); got != "object at /bundles/hello.tar.gz" || resp.Header.Get("ETag") != `"abc"` {
		t.Fatalf("artifact body %q etag %q", got, resp.Header.Get("ETag"))
	}
	// Keys are not paths: "//" and ".." reach the store as they are.
	resp2, err := http.Get(e.srv.URL + "/artifacts/bundles/a//b/../c")
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	b.ReadFrom(resp2.Body)
	resp2.Body.Close()
	if got := b.String(); got != "object at /bundles/a//b/../c" {
		t.Fatalf("key with dots and slashes reached the store as %q", got)
	}
	if status, _ := e.call("PUT", "/artifacts/bundles/x", "data", nil); status != 404 {
		t.Fatalf("PUT through the device API: %d, want 404", status)
	}
}

// TestUnknownThing: a thing no dialect knows and no execution names is told so when it polls
// (ResourceNotFoundException), so its agent can say its name is wrong; a thing with an execution is known
// whatever the dialects say.
func TestUnknownThing(t *testing.T) {
	eng, err := engine.New(engine.Options{Store: store.NewMemory()})
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{"robot-1": true}
	api, err := deviceapi.New(deviceapi.Options{Engine: eng, Things: func(thing string) bool { return known[thing] }})
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	if _, err := api.GetPending("robot-1"); err != nil {
		t.Fatalf("a known thing: %v", err)
	}
	_, err = api.GetPending("robot-l")
	var de *deviceapi.Error
	if !errors.As(err, &de) || de.Status != http.StatusNotFound || de.Code != wire.ErrResourceNotFound || !strings.Contains(de.Message, "robot-l") {
		t.Fatalf("an unknown thing: %v, want 404 ResourceNotFoundException naming it", err)
	}
	if _, err := eng.Create(engine.Spec{ID: "job-1", Targets: []string{"engine-only"}, Document: []byte(`{}`),
		Pacing: engine.AllAtOnce(), Timeouts: engine.Timeouts{Execution: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	if p, err := api.GetPending("engine-only"); err != nil || len(p.QueuedJobs) != 1 {
		t.Fatalf("a thing with an execution: %+v, %v", p, err)
	}
}

// The neutral status-detail keys reach the engine typed: its events carry the step, the percentage, the failure
// code and the reason the device reported.
func TestDetailsReachTheEngineTyped(t *testing.T) {
	e := newEnv(t)
	var evs []event.Event
	cancel := e.eng.Subscribe(event.SinkFunc(func(ev event.Event) {
		if ev.Kind == event.ExecutionStep || ev.Kind == event.ExecutionState {
			evs = append(evs, ev)
		}
	}))
	t.Cleanup(cancel)
	if _, err := e.eng.Create(engine.Spec{ID: "job-1", Targets: []string{"r1"}}); err != nil {
		t.Fatal(err)
	}
	e.call("PUT", "/things/r1/jobs/$next", wire.StartNextPendingJobExecutionRequest{
		StatusDetails: map[string]string{wire.DetailStep: "Downloading", wire.DetailPercentDone: "37.5"}}, nil)
	e.call("POST", "/things/r1/jobs/job-1", wire.UpdateJobExecutionRequest{Status: wire.StatusInProgress,
		StatusDetails: map[string]string{wire.DetailStep: "Extracting", wire.DetailPercentDone: "not a number"}}, nil)
	e.call("POST", "/things/r1/jobs/job-1", wire.UpdateJobExecutionRequest{Status: wire.StatusFailed,
		StatusDetails: map[string]string{wire.DetailStep: "Launching", wire.DetailFailureCode: "LaunchFailure",
			wire.DetailReason: "exit 2"}}, nil)
	var got []string
	for _, ev := range evs {
		got = append(got, fmt.Sprintf("%s %s %v %s %s", ev.Kind, ev.Step, ev.Percent, ev.Code, ev.Reason))
	}
	want := []string{
		"execution.step Downloading 37.5  ",
		"execution.state Downloading 0  ",
		"execution.step Extracting 0  ",
		"execution.step Launching 0  ",
		"execution.state Launching 0 LaunchFailure exit 2",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events\n%q\nwant\n%q", got, want)
	}
}

// Operation names each route's data-plane operation and thing, and nothing else.
func TestOperationNames(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		method, path string
		op           string
	}{
		{"GET", "/things/r1/jobs", "GetPendingJobExecutions"},
		{"GET", "/things/r1/jobs/$next", "DescribeJobExecution"},
		{"GET", "/things/r1/jobs/job-1", "DescribeJobExecution"},
		{"PUT", "/things/r1/jobs/$next", "StartNextPendingJobExecution"},
		{"POST", "/things/r1/jobs/job-1", "UpdateJobExecution"},
		{"GET", "/things/r1/notify", "Notify"},
		{"GET", "/artifacts/bundles/app.tar", ""},
		{"DELETE", "/things/r1/jobs/job-1", ""},
		{"GET", "/things/r1", ""},
	} {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		c, ok := e.api.Operation(r)
		if tc.op == "" {
			if ok {
				t.Errorf("%s %s named %+v", tc.method, tc.path, c)
			}
			continue
		}
		if !ok || c.Dialect != deviceapi.Name || c.Operation != tc.op || c.Thing != "r1" {
			t.Errorf("%s %s = %+v %v, want %s of r1", tc.method, tc.path, c, ok, tc.op)
		}
	}
}
