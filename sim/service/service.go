// Package service assembles the deployment service: the store, the rollout engine, every API dialect, the device
// API and the artifact store, behind one endpoint, as LocalStack users know it: the AWS APIs, the device API and
// S3 (routed by the SigV4 credential scope, and unsigned requests no API route takes by S3's path-style rules;
// see awsapi). A second listener serving the artifact store alone may be started too, for clients that want one.
// `fleetlab serve` and the harness both start it through here.
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/fleetlab/fleetlab/sim/artifacts"
	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/deviceapi"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/store"
)

// DefaultAddr is the listen address of `fleetlab serve`: loopback, fixed, documented.
const DefaultAddr = "127.0.0.1:4710"

// Options configure a Service. Nil fields get defaults in New.
type Options struct {
	// Dir holds the data: the store file and the artifact objects. Required.
	Dir string
	// InMemoryStore keeps the store in memory instead of in Dir (unit tests; nothing survives a restart);
	// artifacts still live under Dir.
	InMemoryStore bool
	// Clock is the service clock; nil means the real clock. Time compression is a clock.NewScaled.
	Clock clock.Clock
	// Region and Account appear in ARNs (defaults us-east-1, 123456789012).
	Region, Account string
	// Auth, when set, requires SigV4 signatures on every request: the operators' keys for the AWS APIs and S3,
	// the devices' own keys for the device API.
	Auth *awsapi.SigV4
	// Events receives every engine event.
	Events event.Sink
	// DialectOptions are the dialects' own options, by dialect name, each of the type its package documents
	// (for "robomaker" a robomaker.Quotas: benchmarks of very large fleets raise RobotsPerFleet above AWS's
	// 1,000). A dialect without an entry gets its defaults; a name no dialect has is an error.
	DialectOptions map[string]any
	// Wrap, when set, wraps the handler of the AWS APIs and the device API (ListenerAPI) and that of S3
	// (ListenerS3), whichever listener a request came in on, before any routing (a test that holds or watches
	// requests uses it; cloud faults use Intercept, which knows the operation).
	Wrap func(listener string, h http.Handler) http.Handler
	// Random is the source every generated id comes from — deployment job ids, revision ids, request ids,
	// upload ids — each consumer keying a stream of its own from it (awsapi.IDs). Nil means crypto/rand, so ids
	// are unique across services and data directories as AWS's are; a harness passes a seeded source
	// (awsapi.NewSeededSource) for runs that repeat. A source given to a restarted service should go on where it
	// was, not start again.
	Random io.Reader
	// Limits bound what clients can hold of each listener: timeouts, the connection cap, notify pings.
	Limits Limits
	// Intercept, when set, is asked about every request routed to an operation of a dialect (awsapi.Intercept):
	// the cloud faults answer through it in the dialect's own error form.
	Intercept awsapi.Intercept
	// ArtifactIntercept, when set, is the artifact store's fault hook (artifacts.Options.Intercept): it is asked
	// about every request for an object, from the S3 API and from device downloads alike.
	ArtifactIntercept func(op artifacts.Op, bucket, key string) *artifacts.Fault
}

// Names of the handlers passed to Options.Wrap.
const (
	ListenerAPI = "api"
	ListenerS3  = "s3"
)

// Service is a running deployment service.
type Service struct {
	Engine    *engine.Engine
	Store     store.Store
	Artifacts *artifacts.Store
	Devices   *deviceapi.API
	// API is the one endpoint: the AWS dialects, the device API and S3. S3 serves the artifact store alone.
	API, S3 http.Handler

	clock    clock.Clock
	limits   Limits
	dialects []awsapi.Dialect // in registration order
	cancel   context.CancelFunc
	engine   *clock.Group   // the engine's Run
	serving  sync.WaitGroup // the listeners' Serve
	servers  []*http.Server
	lns      []*capped
	addrs    []string
	closeMu  sync.Mutex
	closed   bool
}

// New opens the store and artifacts under opts.Dir and builds every part; nothing listens yet.
func New(opts Options) (*Service, error) {
	if opts.Dir == "" {
		return nil, errors.New("service: a data directory is required")
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("service: data directory: %w", err)
	}
	s := &Service{clock: clock.Or(opts.Clock), limits: opts.Limits}
	var err error
	if opts.InMemoryStore {
		s.Store = store.NewMemory()
	} else if s.Store, err = store.Open(filepath.Join(opts.Dir, "fleetlab.db"), store.Options{}); err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			s.Store.Close()
		}
	}()
	// One stream per consumer, keyed in a fixed order, so a seeded source gives the same ids run after run.
	var ids [3]*awsapi.IDs
	for i := range ids {
		if ids[i], err = awsapi.NewIDs(opts.Random); err != nil {
			return nil, fmt.Errorf("service: %w", err)
		}
	}
	if s.Artifacts, err = artifacts.Open(filepath.Join(opts.Dir, "artifacts"), artifacts.Options{Clock: s.clock,
		Intercept: opts.ArtifactIntercept, Random: ids[0]}); err != nil {
		return nil, fmt.Errorf("service: artifacts: %w", err)
	}
	if s.Engine, err = engine.New(engine.Options{Clock: s.clock, Store: s.Store, Events: opts.Events}); err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	notify := opts.Limits.withDefaults(1)
	if s.Devices, err = deviceapi.New(deviceapi.Options{Engine: s.Engine, Clock: s.clock,
		Artifacts: s.Artifacts.DeviceHandler(), NotifyPing: notify.NotifyPing,
		NotifyTimeout: notify.NotifyTimeout, Things: s.knownThing}); err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	if s.dialects, err = buildDialects(dialectList(), opts.DialectOptions, awsapi.DialectDeps{Engine: s.Engine,
		Store: s.Store, Clock: s.clock, Objects: s.Artifacts, Region: opts.Region, Account: opts.Account,
		IDs: ids[1]}); err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	s3 := s.Artifacts.Handler()
	if opts.Wrap != nil {
		s3 = opts.Wrap(ListenerS3, s3)
	}
	h := awsapi.NewHandler(awsapi.Options{Auth: opts.Auth, IDs: ids[2], S3: s3, Intercept: opts.Intercept})
	for _, d := range s.dialects {
		if err := d.Register(h); err != nil {
			return nil, fmt.Errorf("service: %w", err)
		}
	}
	if err := h.Mount("/things/", s.Devices); err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	if err := h.Mount("/artifacts/", s.Devices); err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	api := http.Handler(h)
	if opts.Wrap != nil {
		api = opts.Wrap(ListenerAPI, h)
	}
	s.S3 = h.S3()
	// S3 requests are told apart before the API's wrapper sees them, so it sees the same requests on one
	// endpoint as it did when S3 had a listener of its own.
	s.API = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.RoutesToS3(r) {
			s.S3.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
	ok = true
	return s, nil
}

// Start runs the engine and listens on addr, the one endpoint, and, unless s3Addr is empty, on s3Addr for the
// artifact store alone; ":0"-style addresses pick free ports, which Endpoint and S3Endpoint then tell.
//
// On a virtual-time world's clock (clock.World) the engine is one of the world's actors, and the listeners serve
// callers outside the world — the AWS CLI, a browser, a person looking around — each request as an outside
// caller of the world (clock.Do), at the instant the world is at. The world's own clients do not use the sockets:
// they call API and S3 in process (link.InProcess). The device notify websocket, which would hold the world for
// as long as it is open, is not served on such a listener: devices of a world take it in process.
func (s *Service) Start(addr, s3Addr string) error {
	ctx, cancel := clock.WithCancel(s.clock, context.Background())
	s.cancel = cancel
	s.engine = clock.NewGroup(s.clock)
	s.engine.Go("engine", func() { s.Engine.Run(ctx) })
	type listener struct {
		addr string
		h    http.Handler
	}
	ls := []listener{{addr, s.API}}
	if s3Addr != "" {
		ls = append(ls, listener{s3Addr, s.S3})
	}
	limits := s.limits.withDefaults(len(ls))
	for _, l := range ls {
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			s.Close()
			return fmt.Errorf("listen on %s: %w", l.addr, err)
		}
		h := l.h
		if clock.WorldOf(s.clock) != nil {
			h = fromOutside(s.clock, h)
		}
		cl := &capped{Listener: ln, max: limits.MaxConns}
		srv := limits.server(h)
		s.servers = append(s.servers, srv)
		s.lns = append(s.lns, cl)
		s.addrs = append(s.addrs, ln.Addr().String())
		s.serving.Go(func() { srv.Serve(cl) })
	}
	return nil
}

// fromOutside serves the requests of a listener of a virtual-time world (see Start).
func fromOutside(c clock.Clock, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/things/") && strings.HasSuffix(r.URL.Path, "/notify") {
			http.Error(w, "the notify channel is not served on virtual time: poll GET /things/{thing}/jobs",
				http.StatusServiceUnavailable)
			return
		}
		if err := clock.Do(c, func() { h.ServeHTTP(w, r) }); err != nil {
			http.Error(w, "the simulated world is not running: "+err.Error(), http.StatusServiceUnavailable)
		}
	})
}

// Conns returns how many connections each listener holds open, the one endpoint first.
func (s *Service) Conns() []int {
	out := make([]int, len(s.lns))
	for i, l := range s.lns {
		out[i] = l.Open()
	}
	return out
}

// Endpoint is the URL of the one endpoint: the AWS APIs, S3 and the device API.
func (s *Service) Endpoint() string { return "http://" + s.addrs[0] }

// S3Endpoint is the URL of the artifact store's own listener, or the endpoint when it has none.
func (s *Service) S3Endpoint() string { return "http://" + s.addrs[len(s.addrs)-1] }

// Close stops listening (open connections are closed, notify channels told the service is going away), stops
// the engine and closes the store. Every acknowledged change is already on disk: Close adds nothing a crash
// would lose.
func (s *Service) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.Devices.Close()
	for _, srv := range s.servers {
		srv.Close()
	}
	if s.cancel != nil {
		s.cancel()
		s.engine.Wait()
	}
	s.serving.Wait()
	return s.Store.Close()
}

// Dialect returns the dialect of that name.
func (s *Service) Dialect(name string) (awsapi.Dialect, bool) {
	for _, d := range s.dialects {
		if d.Name() == name {
			return d, true
		}
	}
	return nil, false
}

// knownThing reports whether a dialect knows the thing (a RoboMaker robot has its name).
func (s *Service) knownThing(name string) bool {
	for _, d := range s.dialects {
		if d.KnowsThing(name) {
			return true
		}
	}
	return false
}

// buildDialects builds every dialect of specs over deps, in order, each with its entry of options; an entry that
// names no dialect is an error. The dialect that is the thing registry (IoT) is deps.Registry for those after it.
func buildDialects(specs []awsapi.DialectSpec, options map[string]any, deps awsapi.DialectDeps) ([]awsapi.Dialect,
	error) {
	known := make(map[string]bool, len(specs))
	out := make([]awsapi.Dialect, 0, len(specs))
	for _, spec := range specs {
		if known[spec.Name] {
			return nil, fmt.Errorf("dialect %s listed twice", spec.Name)
		}
		known[spec.Name] = true
		d, err := spec.New(deps, options[spec.Name])
		if err != nil {
			return nil, err
		}
		if d.Name() != spec.Name {
			return nil, fmt.Errorf("dialect %s calls itself %s", spec.Name, d.Name())
		}
		// A dialect that is the thing registry is given to the dialects built after it.
		if r, ok := d.(awsapi.Registry); ok {
			if deps.Registry != nil {
				return nil, fmt.Errorf("dialect %s is a second thing registry", spec.Name)
			}
			deps.Registry = r
		}
		out = append(out, d)
	}
	for name := range options {
		if !known[name] {
			return nil, fmt.Errorf("options for dialect %q: the service has no such dialect (it has %s)", name,
				strings.Join(slices.Sorted(maps.Keys(known)), ", "))
		}
	}
	return out, nil
}
