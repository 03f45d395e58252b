package faults

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"github.com/fleetlab/fleetlab/sim/artifacts"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	"github.com/fleetlab/fleetlab/sim/event"
)

// HTTPError answers requests to one of the service's APIs with an error instead of the service: a 5xx
// (http-5xx) or the API's throttling answer (throttle). It matches the API, optionally one operation and, for the
// device API, the target devices; Times limits it to the first N matching requests after Inject. With After,
// the request is served and only its answer is replaced — the change is made and the caller never hears of it,
// which is what an idempotency token is for.
//
// The answers, unless Status and Code say otherwise:
//
//	                 http-5xx                            throttle
//	robomaker        500 InternalServerException         400 ThrottlingException (RoboMaker's 4xx are all 400)
//	device           503 ServiceUnavailableException     429 ThrottlingException
//	artifacts        500 InternalError                   503 SlowDown
type HTTPError struct {
	// API is robomaker (the default), device, artifacts or greengrassv2.
	API API `json:"api,omitempty"`
	// Operation, when set, limits the fault to one operation: a RoboMaker operation ("CreateDeploymentJob"),
	// a device API one ("UpdateJobExecution", "StartNextPendingJobExecution", "GetPendingJobExecutions",
	// "DescribeJobExecution", "Notify") or an S3 one ("GetObject").
	Operation string `json:"operation,omitempty"`
	// Times, when positive, fails only the first Times matching requests after each Inject.
	Times int `json:"times,omitempty"`
	// After serves the request and replaces its answer (robomaker and device only).
	After bool `json:"after,omitempty"`
	// Status and Code override the answer's HTTP status and error code.
	Status int    `json:"status,omitempty"`
	Code   string `json:"code,omitempty"`

	throttle bool
}

func (*HTTPError) targetsDevices() {}

// answers are the default status and code of each API, for 5xx and for throttling.
var answers = map[API][2]struct {
	status int
	code   string
}{
	APIRoboMaker: {{http.StatusInternalServerError, "InternalServerException"}, {http.StatusBadRequest, "ThrottlingException"}},
	APIDevice:    {{http.StatusServiceUnavailable, wire.ErrServiceUnavailable}, {http.StatusTooManyRequests, wire.ErrThrottling}},
	APIArtifacts: {{http.StatusInternalServerError, "InternalError"}, {http.StatusServiceUnavailable, "SlowDown"}},
	APIGreengrassV2: {{http.StatusInternalServerError, "InternalServerException"},
		{http.StatusTooManyRequests, "ThrottlingException"}},
}

// Check implements Fault.
func (h *HTTPError) Check(sel Selector, _ Dialect) error {
	if h.API == "" {
		h.API = APIRoboMaker
	}
	def, ok := answers[h.API]
	if !ok {
		return fmt.Errorf("api %q: want %s, %s, %s or %s", h.API, APIRoboMaker, APIDevice, APIArtifacts, APIGreengrassV2)
	}
	if err := noStep(sel); err != nil {
		return err
	}
	if sel.selectsDevices() && h.API != APIDevice {
		return fmt.Errorf("only the %s API names devices; %s requests cannot be aimed at one", APIDevice, h.API)
	}
	if h.After && h.API == APIArtifacts {
		return fmt.Errorf("after: the artifact store's answers cannot be replaced after the fact")
	}
	if h.Times < 0 {
		return fmt.Errorf("times %d is negative", h.Times)
	}
	i := 0
	if h.throttle {
		i = 1
	}
	if h.Status == 0 {
		h.Status = def[i].status
	}
	if h.Code == "" {
		h.Code = def[i].code
	}
	if h.Status < 400 || h.Status > 599 {
		return fmt.Errorf("status %d is not an error status", h.Status)
	}
	return nil
}

// Arm implements Fault.
func (h *HTTPError) Arm(a Arming) (Armed, error) {
	x := &httpError{p: *h, a: a}
	if h.API != APIRoboMaker {
		if err := a.World.DevicesOverHTTP(); err != nil {
			return nil, fmt.Errorf("fault %s acts on the %s API's requests at the service: %w", a.Name, h.API, err)
		}
	}
	if h.API == APIArtifacts {
		x.remove = a.World.InterceptArtifacts(func(op artifacts.Op, bucket, key string) *artifacts.Fault {
			if !x.take(string(op), "") {
				return nil
			}
			return &artifacts.Fault{Status: h.Status, Code: h.Code}
		})
		return x, nil
	}
	x.remove = a.World.InterceptHTTP(func(c Call) *Reply {
		if c.API != h.API || !x.take(c.Operation, c.Thing) {
			return nil
		}
		return &Reply{Status: h.Status, Code: h.Code, After: h.After,
			Message: fmt.Sprintf("fleetlab fault %s: %s answers %d", a.Name, c.Operation, h.Status)}
	})
	return x, nil
}

type httpError struct {
	p      HTTPError
	a      Arming
	remove func()

	mu     sync.Mutex
	active bool
	left   int // requests still to fail when Times is set
}

// take decides whether a request of op (by thing) fails, and counts it.
func (x *httpError) take(op, thing string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.active || (x.p.Operation != "" && op != x.p.Operation) {
		return false
	}
	if len(x.a.Targets) > 0 && !slices.Contains(x.a.Targets, thing) {
		return false
	}
	if x.p.Times > 0 {
		if x.left == 0 {
			return false
		}
		x.left--
	}
	x.a.emit(event.FaultInjected, thing, "", fmt.Sprintf("%s answered %d %s", op, x.p.Status, x.p.Code))
	return true
}

func (x *httpError) Inject(context.Context) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.active, x.left = true, x.p.Times
	return nil
}

func (x *httpError) Recover(context.Context) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.active = false
	return nil
}

func (x *httpError) Disarm() { x.remove() }

// Throttle is an HTTPError with the API's throttling answer.
type Throttle struct{ HTTPError }

// newThrottle returns a throttle fault with its defaults.
func newThrottle() Fault { return &Throttle{HTTPError{throttle: true}} }
