package awsapi

import "net/http"

// Call is a request routed to an operation, as an Intercept sees it.
type Call struct {
	// Dialect is the serving dialect's name (Service.Dialect), or the API a mounted handler names ("device");
	// Operation is the model's operation name.
	Dialect, Operation string
	// Thing is the device a mounted device API's call is about ("" for the dialects').
	Thing string
	// HTTP is the request; its body has not been read.
	HTTP *http.Request
}

// Fault is the answer an Intercept puts in place of an operation's: the dialect's server error, or its
// throttling error, written as the dialect writes every error.
type Fault struct {
	// Throttle picks the dialect's throttling error (Service.Throttled); otherwise its server error
	// (Service.Unavailable).
	Throttle bool
	// Status and Code, when set, replace the dialect's HTTP status and error code.
	Status int
	Code   string
	// Message is the error message.
	Message string
	// After serves the request and replaces only its answer: the work is done and the caller never learns it,
	// as when a response is lost.
	After bool
}

// Intercept decides about one routed call: nil lets it through unchanged. It is called concurrently.
type Intercept func(Call) *Fault

// OperationNamer is a mounted handler that names the operations of its requests, so that an Intercept sees
// them as it sees the dialects' (the device API does). ok is false for a request that is no operation of it.
type OperationNamer interface {
	Operation(r *http.Request) (c Call, ok bool)
}

// mountedErrors spell the faults of a mounted API: the IoT Jobs data plane's server and throttling errors, in
// the JSON error form every API of the service writes.
var mountedErrors = &service{contentType: "application/json", Service: Service{MessageMember: "message",
	Unavailable: func(msg string) *Error {
		return NewError("ServiceUnavailableException", http.StatusServiceUnavailable, "%s", msg)
	},
	Throttled: func(msg string) *Error {
		return NewError("ThrottlingException", http.StatusTooManyRequests, "%s", msg)
	},
}}

// intercepted asks the handler's Intercept about a routed request.
func (h *Handler) intercepted(rt *route, r *http.Request) *Fault {
	if h.opts.Intercept == nil {
		return nil
	}
	return h.opts.Intercept(Call{Dialect: rt.svc.Dialect, Operation: rt.op.Name, HTTP: r})
}

// interceptedMount asks the handler's Intercept about a request to a mounted handler that names its operations.
func (h *Handler) interceptedMount(m http.Handler, r *http.Request) *Fault {
	namer, ok := m.(OperationNamer)
	if h.opts.Intercept == nil || !ok {
		return nil
	}
	c, ok := namer.Operation(r)
	if !ok {
		return nil
	}
	c.HTTP = r
	return h.opts.Intercept(c)
}

// writeFault sends f as svc spells its errors, after serving the request into the void when f says After.
func writeFault(w http.ResponseWriter, f *Fault, svc *service, serve func(http.ResponseWriter)) {
	if f.After {
		serve(discard{header: http.Header{}})
	}
	f.answer(svc).Write(w, svc.MessageMember, svc.contentType)
}

// answer is the dialect's error for f.
func (f *Fault) answer(svc *service) *Error {
	e := svc.Unavailable(f.Message)
	if f.Throttle {
		e = svc.Throttled(f.Message)
	}
	if f.Status != 0 {
		e.Status = f.Status
	}
	if f.Code != "" {
		e.Code = f.Code
	}
	return e
}

// discard is a ResponseWriter that drops the answer: a request served and its answer lost.
type discard struct{ header http.Header }

func (d discard) Header() http.Header         { return d.header }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}
