package inproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/artifacts"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/deviceapi"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	"github.com/fleetlab/fleetlab/sim/fleet"
	"github.com/fleetlab/fleetlab/sim/fleet/link"
)

// DeviceAPI is the service's device API called in process, as *deviceapi.API provides it. Errors the service
// answers with are *deviceapi.Error.
type DeviceAPI interface {
	GetPending(thing string) (wire.GetPendingJobExecutionsResponse, error)
	Describe(thing, job string, withDoc bool) (wire.DescribeJobExecutionResponse, error)
	StartNext(thing string, req wire.StartNextPendingJobExecutionRequest) (wire.StartNextPendingJobExecutionResponse, error)
	Update(thing, job string, req wire.UpdateJobExecutionRequest) (wire.UpdateJobExecutionResponse, error)
	Subscribe(thing string) (q *clock.Queue[wire.Notify], unsubscribe func(), ok bool)
}

// Objects opens artifacts in process, as *artifacts.Store provides it.
type Objects interface {
	Open(bucket, key string) (artifacts.Object, io.ReadSeekCloser, error)
}

var (
	_ DeviceAPI = (*deviceapi.API)(nil)
	_ Objects   = (*artifacts.Store)(nil)
)

// MemoryTransport is an agent.Transport for one thing that calls the service's device API and artifact store in
// process instead of over HTTP, for fleets too large for a connection each. It keeps the HTTP transport's contract:
// the service's error answers become *agent.APIError with the status and code the HTTP API would send (so the
// agent's retry rules apply unchanged), link failures are agent.Transient, and the link's Shaper applies the same
// partition, latency, drop and bandwidth semantics as the HTTP proxy does.
//
// Artifact downloads read the store directly, so the artifact store's HTTP fault hook (artifacts.Options.Intercept)
// does not see them; cloud faults on downloads need a transport over HTTP (TransportHTTP or TransportInProcess).
type MemoryTransport struct {
	thing   string
	api     DeviceAPI
	objects Objects
	shaper  *link.Shaper
	aws     *agent.HTTPTransport // the AWS APIs a device's software calls (CallAPI); nil: none
}

var _ agent.Transport = (*MemoryTransport)(nil)

// NewMemoryTransport returns the transport of thing over api and objects, shaped by s (nil: a healthy link on the
// real clock).
func NewMemoryTransport(thing string, api DeviceAPI, objects Objects, s *link.Shaper) *MemoryTransport {
	if s == nil {
		s = link.NewShaper(nil)
	}
	return &MemoryTransport{thing: thing, api: api, objects: objects, shaper: s}
}

// WithAWS gives the transport the service's AWS APIs at endpoint over rt (nil: http.DefaultTransport, one
// connection pool for every in-process device rather than a transport each — a kilobyte a device, and more
// once it dials), for the calls a device's own software makes (agent.APICaller: Greengrass's
// ResolveComponentCandidates): they are few, so they go over HTTP, through the link's admission like every
// other call.
func (t *MemoryTransport) WithAWS(endpoint string, rt http.RoundTripper) (*MemoryTransport, error) {
	if rt == nil {
		rt = http.DefaultTransport
	}
	client := &http.Client{Transport: rt}
	ht, err := agent.NewHTTPTransport(endpoint, t.thing, client)
	if err != nil {
		return nil, fmt.Errorf("memory transport: %w", err)
	}
	t.aws = ht
	return t, nil
}

var _ agent.APICaller = (*MemoryTransport)(nil)

// CallAPI implements agent.APICaller over the AWS endpoint WithAWS gave.
func (t *MemoryTransport) CallAPI(ctx context.Context, signingName, method, path string, in, out any) error {
	if t.aws == nil {
		return fmt.Errorf("%s %s: the memory transport was given no endpoint for the AWS APIs", method, path)
	}
	if err := t.admit(ctx, method+" "+path); err != nil {
		return err
	}
	return t.aws.CallAPI(ctx, signingName, method, path, in, out)
}

// admit passes one request through the link: a refused, dropped or cut request is a transient link error.
func (t *MemoryTransport) admit(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := t.shaper.Admit(ctx); err != nil {
		if ctx.Err() != nil {
			return err
		}
		return agent.Transient(fmt.Errorf("%s: %w", op, err))
	}
	return nil
}

// apiErr converts the device API's error answer to the agent's.
func apiErr(err error) error {
	var de *deviceapi.Error
	if errors.As(err, &de) {
		return &agent.APIError{Status: de.Status, Code: de.Code, Message: de.Message}
	}
	if err != nil {
		return &agent.APIError{Status: http.StatusInternalServerError, Code: "InternalFailure", Message: err.Error()}
	}
	return nil
}

// Pending implements agent.Transport.
func (t *MemoryTransport) Pending(ctx context.Context) (wire.GetPendingJobExecutionsResponse, error) {
	if err := t.admit(ctx, "get pending"); err != nil {
		return wire.GetPendingJobExecutionsResponse{}, err
	}
	out, err := t.api.GetPending(t.thing)
	return out, apiErr(err)
}

// StartNext implements agent.Transport.
func (t *MemoryTransport) StartNext(ctx context.Context, req wire.StartNextPendingJobExecutionRequest) (*wire.JobExecution, error) {
	if err := t.admit(ctx, "start next"); err != nil {
		return nil, err
	}
	req.StatusDetails = maps.Clone(req.StatusDetails)
	out, err := t.api.StartNext(t.thing, req)
	if err != nil {
		return nil, apiErr(err)
	}
	return out.Execution, nil
}

// Describe implements agent.Transport.
func (t *MemoryTransport) Describe(ctx context.Context, jobID string) (*wire.JobExecution, error) {
	if err := t.admit(ctx, "describe"); err != nil {
		return nil, err
	}
	out, err := t.api.Describe(t.thing, jobID, true)
	if err != nil {
		return nil, apiErr(err)
	}
	if out.Execution == nil {
		return nil, &agent.APIError{Status: http.StatusNotFound, Code: wire.ErrResourceNotFound, Message: "no execution in the answer"}
	}
	return out.Execution, nil
}

// Update implements agent.Transport.
func (t *MemoryTransport) Update(ctx context.Context, jobID string, req wire.UpdateJobExecutionRequest) (wire.UpdateJobExecutionResponse, error) {
	if err := t.admit(ctx, "update"); err != nil {
		return wire.UpdateJobExecutionResponse{}, err
	}
	req.StatusDetails = maps.Clone(req.StatusDetails) // the service keeps what it is given; the wire would copy
	out, err := t.api.Update(t.thing, jobID, req)
	return out, apiErr(err)
}

// Fetch implements agent.Fetcher with the artifact store's answers: 404 NoSuchKey or NoSuchBucket for a missing
// object, 416 InvalidRange for an offset at or past its end, the object from offset on otherwise.
func (t *MemoryTransport) Fetch(ctx context.Context, bucket, key string, offset int64) (*agent.Object, error) {
	if err := t.admit(ctx, "fetch "+bucket+"/"+key); err != nil {
		return nil, err
	}
	obj, rc, err := t.objects.Open(bucket, key)
	switch {
	case errors.Is(err, artifacts.ErrNoSuchKey):
		return nil, &agent.APIError{Status: http.StatusNotFound, Code: "NoSuchKey", Message: "The specified key does not exist."}
	case errors.Is(err, artifacts.ErrNoSuchBucket):
		return nil, &agent.APIError{Status: http.StatusNotFound, Code: "NoSuchBucket", Message: "The specified bucket does not exist"}
	case err != nil:
		return nil, &agent.APIError{Status: http.StatusInternalServerError, Code: "InternalError", Message: err.Error()}
	}
	if offset < 0 || (offset > 0 && offset >= obj.Size) {
		rc.Close()
		return nil, &agent.APIError{Status: http.StatusRequestedRangeNotSatisfiable, Code: "InvalidRange", Message: "The requested range is not satisfiable"}
	}
	if _, err := rc.Seek(offset, io.SeekStart); err != nil {
		rc.Close()
		return nil, &agent.APIError{Status: http.StatusInternalServerError, Code: "InternalError", Message: err.Error()}
	}
	body := &memBody{ctx: ctx, rc: t.shaper.Body(ctx, rc)}
	return &agent.Object{Body: body, Offset: offset, Size: obj.Size, ETag: obj.ETag}, nil
}

// memBody ends reads when the request's context ends, as a canceled HTTP request does, and marks link errors
// transient, as the HTTP transport does for a body cut mid-way.
type memBody struct {
	ctx context.Context
	rc  io.ReadCloser
}

func (b *memBody) Read(p []byte) (int, error) {
	if err := b.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF && b.ctx.Err() == nil {
		err = agent.Transient(fmt.Errorf("read body: %w", err))
	}
	return n, err
}

func (b *memBody) Close() error { return b.rc.Close() }

// Subscribe implements agent.Transport. The stream ends when ctx ends, when the service closes its device API,
// or when the link is cut.
func (t *MemoryTransport) Subscribe(ctx context.Context) (agent.Notifications, error) {
	if err := t.admit(ctx, "notify"); err != nil {
		return nil, err
	}
	q, unsubscribe, ok := t.api.Subscribe(t.thing)
	if !ok {
		return nil, agent.Transient(errors.New("notify: the service is stopping"))
	}
	return newLinkStream(q, unsubscribe, t.shaper), nil
}

// linkStream is a notify channel taken in process over a shaped link: its queue closes when the link is cut.
type linkStream struct {
	q           *clock.Queue[wire.Notify]
	unsubscribe func()
	unwatch     func()
}

func newLinkStream(q *clock.Queue[wire.Notify], unsubscribe func(), s *link.Shaper) *linkStream {
	ls := &linkStream{q: q, unsubscribe: unsubscribe}
	ls.unwatch = s.Watch(func(l fleet.Link) {
		if l.Partition {
			q.Close()
		}
	})
	if s.Link().Partition { // cut between the request and the watch
		q.Close()
	}
	return ls
}

func (s *linkStream) Next(ctx context.Context) (wire.Notify, error) { return s.q.Next(ctx) }

func (s *linkStream) Close() {
	s.unwatch()
	s.unsubscribe()
}
