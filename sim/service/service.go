// Package service assembles the deployment service: the store, the rollout engine, every API dialect, the device
// API and the artifact store, behind two listeners — the AWS APIs and the device API on one, the S3-style artifact
// store on the other (S3's path-style routes would collide with every other path). `fleetlab serve` and the
// harness both start it through here.
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fleetlab/fleetlab/sim/artifacts"
	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/awsapi/robomaker"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/deviceapi"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/store"
)

// Default listen addresses of `fleetlab serve`: loopback, fixed, documented.
const (
	DefaultAddr   = "127.0.0.1:4710"
	DefaultS3Addr = "127.0.0.1:4711"
)

// Options configure a Service. Nil fields get defaults in New.
type Options struct {
	// Dir holds the data: the store file and the artifact objects. Required.
	Dir string
	// Memory keeps the store in memory instead of Dir (unit tests); artifacts still live under Dir.
	Memory bool
	// Clock is the service clock; nil means the real clock. Time compression is a clock.NewScaled.
	Clock clock.Clock
	// Region and Account appear in ARNs (defaults us-east-1, 123456789012).
	Region, Account string
	// Auth, when set, requires SigV4 signatures on the AWS APIs.
	Auth *awsapi.SigV4
	// Events receives every engine event.
	Events event.Sink
	// RoboMakerQuotas raise or lower RoboMaker's service limits (zero fields: the AWS defaults). Benchmarks of
	// very large fleets raise RobotsPerFleet above AWS's 1,000.
	RoboMakerQuotas robomaker.Quotas
	// Wrap, when set, wraps the API handler and the artifact handler (the cloud fault layer uses it).
	Wrap func(listener string, h http.Handler) http.Handler
	// Random is the source every generated id comes from — deployment job ids, revision ids, request ids,
	// upload ids — each consumer keying a stream of its own from it (awsapi.IDs). Nil means crypto/rand, so ids
	// are unique across services and data directories as AWS's are; a harness passes a seeded source
	// (awsapi.NewSeededSource) for runs that repeat. A source given to a restarted service should go on where it
	// was, not start again.
	Random io.Reader
	// ArtifactIntercept, when set, is the artifact store's fault hook (artifacts.Options.Intercept): it is asked
	// about every request for an object, from the S3 API and from device downloads alike.
	ArtifactIntercept func(op artifacts.Op, bucket, key string) *artifacts.Fault
}

// Listener names passed to Options.Wrap.
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
	RoboMaker *robomaker.Service
	// API serves the AWS dialects and the device API; S3 serves the artifact store.
	API, S3 http.Handler

	clock   clock.Clock
	cancel  context.CancelFunc
	running sync.WaitGroup
	servers []*http.Server
	addrs   []string
	closeMu sync.Mutex
	closed  bool
}

// New opens the store and artifacts under opts.Dir and builds every part; nothing listens yet.
func New(opts Options) (*Service, error) {
	if opts.Dir == "" {
		return nil, errors.New("service: a data directory is required")
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("service: data directory: %w", err)
	}
	s := &Service{clock: clock.Or(opts.Clock)}
	var err error
	if opts.Memory {
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
	if s.Devices, err = deviceapi.New(deviceapi.Options{Engine: s.Engine, Clock: s.clock,
		Artifacts: s.Artifacts.DeviceHandler()}); err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	if s.RoboMaker, err = robomaker.New(robomaker.Options{Engine: s.Engine, Store: s.Store, Clock: s.clock,
		Objects: s.Artifacts, Region: opts.Region, Account: opts.Account, Quotas: opts.RoboMakerQuotas,
		IDs: ids[1]}); err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	h := awsapi.NewHandler(awsapi.Options{Auth: opts.Auth, IDs: ids[2]})
	if err := s.RoboMaker.Register(h); err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	if err := h.Mount("/things/", s.Devices); err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	if err := h.Mount("/artifacts/", s.Devices); err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	s.API, s.S3 = h, s.Artifacts.Handler()
	if opts.Wrap != nil {
		s.API, s.S3 = opts.Wrap(ListenerAPI, s.API), opts.Wrap(ListenerS3, s.S3)
	}
	ok = true
	return s, nil
}

// Start runs the engine and listens on addr (APIs) and s3Addr (artifacts); ":0"-style addresses pick free
// ports, which Endpoint and S3Endpoint then tell.
func (s *Service) Start(addr, s3Addr string) error {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.running.Add(1)
	go func() {
		defer s.running.Done()
		s.Engine.Run(ctx)
	}()
	for _, l := range []struct {
		addr string
		h    http.Handler
	}{{addr, s.API}, {s3Addr, s.S3}} {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			s.Close()
			return fmt.Errorf("listen on %s: %w", l.addr, err)
		}
		srv := &http.Server{Handler: l.h, ReadHeaderTimeout: 10 * time.Second}
		s.servers = append(s.servers, srv)
		s.addrs = append(s.addrs, ln.Addr().String())
		s.running.Add(1)
		go func() {
			defer s.running.Done()
			srv.Serve(ln)
		}()
	}
	return nil
}

// Endpoint is the URL of the AWS APIs and the device API.
func (s *Service) Endpoint() string { return "http://" + s.addrs[0] }

// S3Endpoint is the URL of the artifact store.
func (s *Service) S3Endpoint() string { return "http://" + s.addrs[1] }

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
	}
	s.running.Wait()
	return s.Store.Close()
}
