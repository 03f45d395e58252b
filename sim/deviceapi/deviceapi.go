// Package deviceapi is the device-facing side of the deployment service: the IoT Jobs data plane
// (the AWS service model iot-jobs-data, 2017-09-29) over the engine's device methods, a websocket notify channel that
// tells a thing an execution is pending, and read-only artifact downloads. Devices never see the control-plane
// APIs.
//
// Routes, relative to the service endpoint:
//
//	GET  /things/{thingName}/jobs             GetPendingJobExecutions
//	GET  /things/{thingName}/jobs/{jobId}     DescribeJobExecution (jobId may be $next)
//	PUT  /things/{thingName}/jobs/$next       StartNextPendingJobExecution
//	POST /things/{thingName}/jobs/{jobId}     UpdateJobExecution
//	GET  /things/{thingName}/notify           websocket: wire.Notify messages
//	GET  /artifacts/{bucket}/{key}            the artifact store's device handler (Range, ETag)
package deviceapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	"github.com/fleetlab/fleetlab/sim/engine"
)

// maxBody bounds request bodies; statusDetails are at most 10 entries of ≤ 1 KiB values in practice.
const maxBody = 64 << 10

// Options are the device API's dependencies.
type Options struct {
	// Engine holds the executions; required.
	Engine *engine.Engine
	// Clock is the service clock; nil means the real clock.
	Clock clock.Clock
	// Artifacts serves GET/HEAD /{bucket}/{key} for downloads; nil answers 404 under /artifacts/.
	Artifacts http.Handler
	// NotifyPing is how often a notify websocket is pinged (default 30 s), NotifyTimeout how long it may go
	// without a pong or any other frame from the device before it is dropped (default 75 s). Both are wall-clock
	// times: they bound a real connection, not policy time.
	NotifyPing, NotifyTimeout time.Duration
	// Things reports whether a dialect knows the thing (a RoboMaker robot of that name). A thing that no
	// dialect knows and that has no execution polls in vain — its name is mistyped, or its robot was never
	// created — so GetPendingJobExecutions answers it ResourceNotFoundException, which the agent reports. Nil:
	// every thing is known.
	Things func(thing string) bool
}

// API serves the device API. Close ends its notify connections.
type API struct {
	eng       *engine.Engine
	clock     clock.Clock
	artifacts http.Handler
	things    func(string) bool
	hub       *hub
	cancel    func()
	mux       *http.ServeMux
	ping      time.Duration
	pongWait  time.Duration
}

// New returns the device API over opts.Engine and subscribes to its events for notifications.
func New(opts Options) (*API, error) {
	if opts.Engine == nil {
		return nil, errors.New("deviceapi: an engine is required")
	}
	c := clock.Or(opts.Clock)
	a := &API{eng: opts.Engine, clock: c, artifacts: opts.Artifacts, things: opts.Things,
		hub: newHub(c), ping: opts.NotifyPing, pongWait: opts.NotifyTimeout}
	if a.ping <= 0 {
		a.ping = 30 * time.Second
	}
	if a.pongWait <= 0 {
		a.pongWait = 75 * time.Second
	}
	a.cancel = opts.Engine.Subscribe(a.hub)
	a.mux = http.NewServeMux()
	for _, rt := range []struct {
		pattern string
		serve   http.HandlerFunc
	}{
		{routeGetPending, a.pending},
		{routeDescribe, a.describe},
		{routeStartNext, a.startNext},
		{routeUpdate, a.update},
		{routeNotify, a.notify},
	} {
		a.mux.HandleFunc(rt.pattern, rt.serve)
	}
	return a, nil
}

// The routes of the data plane and the notify channel, and the operation each one is.
const (
	routeGetPending = "GET /things/{thing}/jobs"
	routeDescribe   = "GET /things/{thing}/jobs/{job}"
	routeStartNext  = "PUT /things/{thing}/jobs/{job}"
	routeUpdate     = "POST /things/{thing}/jobs/{job}"
	routeNotify     = "GET /things/{thing}/notify"
)

var operations = map[string]string{
	routeGetPending: "GetPendingJobExecutions",
	routeDescribe:   "DescribeJobExecution",
	routeStartNext:  "StartNextPendingJobExecution",
	routeUpdate:     "UpdateJobExecution",
	routeNotify:     "Notify",
}

// Name is the name the device API goes by in the calls an awsapi.Intercept sees (Operation).
const Name = "device"

var _ awsapi.OperationNamer = (*API)(nil)

// Operation names the data plane's operation that r is ("UpdateJobExecution", or "Notify" for the notify
// channel) and the thing it is about, as cloud faults select them; ok is false for an artifact download and a
// request no route takes.
func (a *API) Operation(r *http.Request) (awsapi.Call, bool) {
	if strings.HasPrefix(r.URL.Path, "/artifacts/") {
		return awsapi.Call{}, false
	}
	_, pattern := a.mux.Handler(r)
	op, ok := operations[pattern]
	if !ok {
		return awsapi.Call{}, false
	}
	thing, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/things/"), "/")
	return awsapi.Call{Dialect: Name, Operation: op, Thing: thing}, true
}

// ServeHTTP serves the routes in the package comment. Artifact downloads bypass the mux: its path cleaning
// would redirect keys holding "//", "." or "..", which S3 keys may contain.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/artifacts/") {
		a.artifact(w, r)
		return
	}
	a.mux.ServeHTTP(w, r)
}

// Close stops notifications and closes every notify connection.
func (a *API) Close() error {
	a.cancel()
	a.hub.close()
	return nil
}

// Connected returns how many notify connections a thing has open.
func (a *API) Connected(thing string) int { return a.hub.count(thing) }

// validName reports whether s is 1 to max characters of [a-zA-Z0-9_-], or of [a-zA-Z0-9:_-] when colon: the
// model's patterns for thingName and statusDetails keys (colon) and jobId, checked on every request without a
// regular expression's machinery.
func validName(s string, max int, colon bool) bool {
	if len(s) < 1 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		case c == ':' && colon:
		default:
			return false
		}
	}
	return true
}

// Error is a data-plane error answer: the HTTP status and error code as the model has them, and a message.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func invalid(format string, args ...any) *Error {
	return &Error{http.StatusBadRequest, wire.ErrInvalidRequest, fmt.Sprintf(format, args...)}
}

// fromEngine maps the engine's errors to the data plane's codes, in one place.
func fromEngine(err error) *Error {
	switch {
	case errors.Is(err, engine.ErrNotFound):
		return &Error{http.StatusNotFound, wire.ErrResourceNotFound, err.Error()}
	case errors.Is(err, engine.ErrTerminal):
		return &Error{http.StatusGone, wire.ErrTerminalState, err.Error()}
	case errors.Is(err, engine.ErrInvalidTransition), errors.Is(err, engine.ErrVersionMismatch):
		return &Error{http.StatusConflict, wire.ErrInvalidStateTransition, err.Error()}
	}
	return &Error{http.StatusServiceUnavailable, wire.ErrServiceUnavailable, err.Error()}
}

func writeError(w http.ResponseWriter, err error) {
	e, ok := err.(*Error)
	if !ok {
		e = fromEngine(err)
	}
	(&awsapi.Error{Code: e.Code, Status: e.Status, Message: e.Message}).Write(w, "message", "application/json")
}

// reply writes v, or the error.
func reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header()["Content-Type"] = jsonContentType
	json.NewEncoder(w).Encode(v)
}

// jsonContentType is the Content-Type of every answer, shared (a header's values are not written to once set):
// Header.Set allocated a slice for it on every request.
var jsonContentType = []string{"application/json"}

func checkThing(name string) error {
	if !validName(name, 128, true) {
		return invalid("thingName %q must match [a-zA-Z0-9:_-]+ and be 1 to 128 characters", name)
	}
	return nil
}

func checkJob(job string) error {
	if !validName(job, 64, false) {
		return invalid("jobId %q must match [a-zA-Z0-9_-]+ and be 1 to 64 characters", job)
	}
	return nil
}

// GetPending is GetPendingJobExecutions for a thing.
func (a *API) GetPending(thing string) (wire.GetPendingJobExecutionsResponse, error) {
	if err := checkThing(thing); err != nil {
		return wire.GetPendingJobExecutionsResponse{}, err
	}
	if a.things != nil && !a.things(thing) {
		if _, ok := a.eng.LatestForDevice(thing); !ok {
			return wire.GetPendingJobExecutionsResponse{}, &Error{http.StatusNotFound, wire.ErrResourceNotFound,
				fmt.Sprintf("thing %s is not known to the service: no robot has this name", thing)}
		}
	}
	inProgress, queued := a.eng.Pending(thing)
	return wire.GetPendingJobExecutionsResponse{InProgressJobs: summaries(inProgress),
		QueuedJobs: summaries(queued)}, nil
}

func summaries(xs []engine.Execution) []wire.JobExecutionSummary {
	out := make([]wire.JobExecutionSummary, 0, len(xs))
	for _, x := range xs {
		out = append(out, wire.JobExecutionSummary{JobID: x.Deployment, QueuedAt: epoch(x.QueuedAt),
			StartedAt: epoch(x.StartedAt), LastUpdatedAt: epoch(x.UpdatedAt), VersionNumber: x.Version,
			ExecutionNumber: x.Number})
	}
	return out
}

func epoch(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// execution renders x as the data plane's JobExecution, with the job document when withDoc.
func (a *API) execution(x engine.Execution, withDoc bool) (*wire.JobExecution, error) {
	d, err := a.eng.Deployment(x.Deployment)
	if err != nil {
		return nil, fromEngine(err)
	}
	out := &wire.JobExecution{JobID: x.Deployment, ThingName: x.Device, Status: string(x.Status),
		StatusDetails: x.Details, QueuedAt: epoch(x.QueuedAt), StartedAt: epoch(x.StartedAt),
		LastUpdatedAt: epoch(x.UpdatedAt), VersionNumber: x.Version, ExecutionNumber: x.Number}
	if dl := x.Deadline(d.Timeouts); !dl.IsZero() {
		out.ApproximateSecondsBeforeTimedOut = max(0, int64(dl.Sub(a.clock.Now())/time.Second))
	}
	if withDoc {
		out.JobDocument = string(d.Document)
	}
	return out, nil
}

// Describe is DescribeJobExecution: job may be "$next" for the thing's next pending execution, which is then
// nil when it has none.
func (a *API) Describe(thing, job string, withDoc bool) (wire.DescribeJobExecutionResponse, error) {
	var none wire.DescribeJobExecutionResponse
	if err := checkThing(thing); err != nil {
		return none, err
	}
	var x engine.Execution
	if job == "$next" {
		inProgress, queued := a.eng.Pending(thing)
		switch {
		case len(inProgress) > 0:
			x = inProgress[0]
		case len(queued) > 0:
			x = queued[0]
		default:
			return none, nil
		}
	} else {
		if err := checkJob(job); err != nil {
			return none, err
		}
		var err error
		if x, err = a.eng.Execution(job, thing); err != nil {
			return none, fromEngine(err)
		}
		if !x.Released {
			return none, fromEngine(fmt.Errorf("execution of %s on %s: %w", job, thing, engine.ErrNotFound))
		}
	}
	out, err := a.execution(x, withDoc)
	return wire.DescribeJobExecutionResponse{Execution: out}, err
}

// StartNext is StartNextPendingJobExecution.
func (a *API) StartNext(thing string, req wire.StartNextPendingJobExecutionRequest) (wire.StartNextPendingJobExecutionResponse, error) {
	var none wire.StartNextPendingJobExecutionResponse
	if err := checkThing(thing); err != nil {
		return none, err
	}
	if err := checkDetails(req.StatusDetails); err != nil {
		return none, err
	}
	stepTimeout, err := stepTimeout(req.StepTimeoutInMinutes)
	if err != nil {
		return none, err
	}
	x, found, err := a.eng.StartNext(thing, engine.Update{Details: req.StatusDetails,
		Reported: stepReport(req.StatusDetails), StepTimeout: stepTimeout})
	if err != nil {
		return none, fromEngine(err)
	}
	if !found {
		return none, nil
	}
	out, err := a.execution(x, true)
	return wire.StartNextPendingJobExecutionResponse{Execution: out}, err
}

// Update is UpdateJobExecution.
func (a *API) Update(thing, job string, req wire.UpdateJobExecutionRequest) (wire.UpdateJobExecutionResponse, error) {
	var out wire.UpdateJobExecutionResponse
	if err := checkThing(thing); err != nil {
		return out, err
	}
	if err := checkJob(job); err != nil {
		return out, err
	}
	var u engine.Update
	switch req.Status {
	case wire.StatusInProgress, wire.StatusSucceeded, wire.StatusFailed, wire.StatusRejected:
		u.Status = engine.ExecStatus(req.Status)
	case wire.StatusQueued, wire.StatusTimedOut, wire.StatusRemoved, wire.StatusCanceled:
		// Valid statuses that only the service sets.
		return out, &Error{http.StatusConflict, wire.ErrInvalidStateTransition,
			fmt.Sprintf("a device cannot set status %s", req.Status)}
	case "":
		return out, invalid("status is required")
	default:
		return out, invalid("status %q is not one of IN_PROGRESS, SUCCEEDED, FAILED, REJECTED", req.Status)
	}
	if err := checkDetails(req.StatusDetails); err != nil {
		return out, err
	}
	u.Details, u.Reported = req.StatusDetails, stepReport(req.StatusDetails)
	var err error
	if u.StepTimeout, err = stepTimeout(req.StepTimeoutInMinutes); err != nil {
		return out, err
	}
	if req.ExpectedVersion != nil {
		if *req.ExpectedVersion < 1 {
			return out, invalid("expectedVersion %d must be positive", *req.ExpectedVersion)
		}
		u.ExpectedVersion = *req.ExpectedVersion
	}
	if req.ExecutionNumber != nil && *req.ExecutionNumber != 1 {
		return out, fromEngine(fmt.Errorf("execution number %d of %s on %s: %w", *req.ExecutionNumber, job, thing,
			engine.ErrNotFound))
	}
	x, err := a.eng.Report(thing, job, u)
	if err != nil {
		return out, fromEngine(err)
	}
	if req.IncludeJobExecutionState {
		out.ExecutionState = &wire.JobExecutionState{Status: string(x.Status), StatusDetails: x.Details,
			VersionNumber: x.Version}
	}
	if req.IncludeJobDocument {
		if d, err := a.eng.Deployment(job); err == nil {
			out.JobDocument = string(d.Document)
		}
	}
	return out, nil
}

// Subscribe returns the thing's notifications, beginning with a hello, in a queue of the service's clock that
// is closed when unsubscribe is called or the API is closed; ok is false, and there is no queue, once the API is
// closed. It is the in-process form of the websocket notify channel.
func (a *API) Subscribe(thing string) (q *clock.Queue[wire.Notify], unsubscribe func(), ok bool) {
	return a.hub.subscribe(thing)
}

func (a *API) pending(w http.ResponseWriter, r *http.Request) {
	out, err := a.GetPending(r.PathValue("thing"))
	reply(w, out, err)
}

func (a *API) describe(w http.ResponseWriter, r *http.Request) {
	withDoc := true
	if v := r.URL.Query().Get("includeJobDocument"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, invalid("includeJobDocument %q is not a boolean", v))
			return
		}
		withDoc = b
	}
	out, err := a.Describe(r.PathValue("thing"), r.PathValue("job"), withDoc)
	reply(w, out, err)
}

func (a *API) startNext(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("job") != "$next" {
		writeError(w, invalid("PUT is only for $next"))
		return
	}
	var req wire.StartNextPendingJobExecutionRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	out, err := a.StartNext(r.PathValue("thing"), req)
	reply(w, out, err)
}

func (a *API) update(w http.ResponseWriter, r *http.Request) {
	var req wire.UpdateJobExecutionRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	out, err := a.Update(r.PathValue("thing"), r.PathValue("job"), req)
	reply(w, out, err)
}

// decode reads a JSON body of at most maxBody bytes into v; an empty body is an empty object.
func decode(r *http.Request, v any) error {
	buf := bodies.Get().(*bytes.Buffer)
	defer func() {
		buf.Reset()
		bodies.Put(buf) // at most maxBody+1 bytes: every buffer is worth keeping
	}()
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, maxBody+1)); err != nil {
		return invalid("read body: %v", err)
	}
	body := buf.Bytes()
	if len(body) > maxBody {
		return invalid("body is larger than %d bytes", maxBody)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	// Unmarshal copies what it keeps, so the buffer goes back to the pool.
	if err := json.Unmarshal(body, v); err != nil {
		return invalid("body is not valid JSON for this operation: %v", err)
	}
	return nil
}

// bodies are the buffers request bodies are read into.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func checkDetails(m map[string]string) error {
	for k, v := range m {
		if !validName(k, 128, true) {
			return invalid("statusDetails key %q must match [a-zA-Z0-9:_-]+ and be 1 to 128 characters", k)
		}
		if len(v) < 1 || len(v) > 1024 {
			return invalid("statusDetails value of %q must be 1 to 1024 characters", k)
		}
		for _, c := range v {
			if unicode.IsControl(c) || unicode.Is(unicode.Cf, c) || c == unicode.ReplacementChar {
				return invalid("statusDetails value of %q has a control character", k)
			}
		}
	}
	return nil
}

// stepReport reads the neutral status-detail keys of the wire into the engine's typed report. A percentage that
// is not a number from 0 to 100 is left out.
func stepReport(d map[string]string) engine.StepReport {
	r := engine.StepReport{Step: d[wire.DetailStep], Code: d[wire.DetailFailureCode], Reason: d[wire.DetailReason]}
	if f, err := strconv.ParseFloat(d[wire.DetailPercentDone], 64); err == nil && f >= 0 && f <= 100 {
		r.Percent = f
	}
	return r
}

// stepTimeout converts stepTimeoutInMinutes (1 to 10080, as IoT Jobs takes it) to a duration.
func stepTimeout(m *int64) (time.Duration, error) {
	if m == nil {
		return 0, nil
	}
	if *m < 1 || *m > 10080 {
		return 0, invalid("stepTimeoutInMinutes %d must be between 1 and 10080", *m)
	}
	return time.Duration(*m) * time.Minute, nil
}

func (a *API) artifact(w http.ResponseWriter, r *http.Request) {
	if a.artifacts == nil || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		writeError(w, &Error{http.StatusNotFound, wire.ErrResourceNotFound, "no artifact store"})
		return
	}
	http.StripPrefix("/artifacts", a.artifacts).ServeHTTP(w, r)
}
