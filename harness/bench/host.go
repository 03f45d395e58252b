package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/dialect"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/sim/artifacts"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/fleet"
	"github.com/fleetlab/fleetlab/sim/fleet/inproc"
)

// callTimeout bounds one call of the dialect's session to the service.
const callTimeout = 2 * time.Minute

// host is the point's environment as a dialect's session sees it. Its calls run on the caller's clock (the
// wall clock), and a Fatalf of the session ends only the Do it was called in, recording the failure.
type host struct {
	r         *runner
	transport *http.Transport

	mu   sync.Mutex
	fail error
}

var (
	_ dialect.Host             = (*host)(nil)
	_ dialect.InProcessService = (*host)(nil)
)

// ServiceDialect implements dialect.InProcessService.
func (h *host) ServiceDialect(name string) (any, bool) { return h.r.svc.Dialect(name) }

func (h *host) Endpoint() string                   { return h.r.svc.Endpoint() }
func (h *host) Transport() http.RoundTripper       { return h.transport }
func (h *host) PublicTransport() http.RoundTripper { return h.transport }
func (h *host) Clock() clock.Clock                 { return h.r.clock }
func (h *host) Logf(string, ...any)                {}

// Device implements dialect.Host: a device of the point's fleet.
func (h *host) Device(name string) (fleet.Device, bool) {
	if h.r.fleet == nil {
		return nil, false
	}
	return h.r.fleet.Device(name)
}

// Do runs f on a goroutine of its own and waits for it, so that a Fatalf inside f ends f alone.
func (h *host) Do(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}

func (h *host) CallContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(h.r.ctx, callTimeout)
}

func (h *host) record(err error) {
	h.mu.Lock()
	if h.fail == nil {
		h.fail = err
	}
	h.mu.Unlock()
}

// failure returns the first failure a session reported, once.
func (h *host) failure() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	err := h.fail
	h.fail = nil
	return err
}

func (h *host) Fatalf(format string, args ...any) {
	h.record(fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), errFailed))
	runtime.Goexit()
}

func (h *host) InfraFatalf(format string, args ...any) {
	h.record(&harness.InfraError{Err: fmt.Errorf(format, args...)})
	runtime.Goexit()
}

// PutBundle stores the point's bundle (the fixture, padded to the point's size) under the fixture's name.
func (h *host) PutBundle(name string) dialect.Object {
	body := h.r.bundle
	if name != h.r.cfg.Job.Bundle {
		b, err := bundles.Build(name)
		if err != nil {
			h.Fatalf("bundle %s: %v", name, err)
		}
		body = b
	}
	return h.put(name+".tar.gz", body)
}

func (h *host) PutScript(name string) dialect.Object {
	b, err := bundles.Script(name)
	if err != nil {
		h.Fatalf("script %s: %v", name, err)
	}
	return h.put("scripts/"+name, b)
}

func (h *host) put(key string, body []byte) dialect.Object {
	store := h.r.svc.Artifacts
	if err := store.CreateBucket(harness.BundleBucket); err != nil && !errors.Is(err, artifacts.ErrBucketExists) {
		h.InfraFatalf("create bucket: %v", err)
	}
	obj, err := store.Put(harness.BundleBucket, key, bytes.NewReader(body))
	if err != nil {
		h.InfraFatalf("put %s: %v", key, err)
	}
	return dialect.Object{Bucket: harness.BundleBucket, Key: key, ETag: obj.ETag}
}

// buildBundle is the fixture bundle name, padded with an incompressible payload to about size bytes when size is
// above its own.
func buildBundle(name string, size int, seed uint64) ([]byte, error) {
	b, err := bundles.Build(name)
	if err != nil || size <= len(b) {
		return b, err
	}
	files, err := bundles.Files(name)
	if err != nil {
		return nil, err
	}
	pad := make([]byte, size-len(b))
	rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24)})
	rng.Read(pad)
	files[path.Join(bundles.Package, Payload)] = string(pad)
	return bundles.Pack(files)
}

// world is the point's environment as faults see it.
type world struct {
	*harness.FaultHooks
	r *runner
}

func (r *runner) world() world { return world{r.hooks, r} }

var _ faults.World = world{}

func (w world) Robots() []string       { return slices.Clone(w.r.names) }
func (w world) Clock() clock.Clock     { return w.r.clock }
func (w world) Emit(event.Event)       {}
func (w world) DevicesOverHTTP() error { return w.r.cfg.Backend.DevicesOverHTTP() }

func (w world) CanRestartService() error {
	return errors.New("a benchmark keeps the service's store in memory: a restart would lose everything")
}
func (w world) StopService(context.Context) error  { return w.CanRestartService() }
func (w world) StartService(context.Context) error { return w.CanRestartService() }

// countingDevices counts the in-memory transport's device-API calls.
type countingDevices struct {
	inproc.DeviceAPI
	c *counter
}

func (d *countingDevices) GetPending(thing string) (out wire.GetPendingJobExecutionsResponse, err error) {
	d.c.begin()
	defer d.c.end()
	d.c.polled(thing, func() { out, err = d.DeviceAPI.GetPending(thing) })
	return out, err
}

func (d *countingDevices) Describe(thing, job string, withDoc bool) (wire.DescribeJobExecutionResponse, error) {
	d.c.begin()
	defer d.c.end()
	return d.DeviceAPI.Describe(thing, job, withDoc)
}

func (d *countingDevices) StartNext(thing string, req wire.StartNextPendingJobExecutionRequest) (wire.StartNextPendingJobExecutionResponse, error) {
	d.c.begin()
	defer d.c.end()
	return d.DeviceAPI.StartNext(thing, req)
}

func (d *countingDevices) Update(thing, job string, req wire.UpdateJobExecutionRequest) (wire.UpdateJobExecutionResponse, error) {
	d.c.begin()
	defer d.c.end()
	return d.DeviceAPI.Update(thing, job, req)
}

// countingObjects counts the in-memory transport's downloads.
type countingObjects struct {
	inproc.Objects
	c *counter
}

func (o *countingObjects) Open(bucket, key string) (artifacts.Object, io.ReadSeekCloser, error) {
	o.c.begin()
	defer o.c.end()
	return o.Objects.Open(bucket, key)
}
