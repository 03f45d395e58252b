package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/onsi/gomega"

	"github.com/fleetlab/fleetlab/harness/dialect"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/artifacts"
	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/fleet"
	"github.com/fleetlab/fleetlab/sim/fleet/link"
	"github.com/fleetlab/fleetlab/sim/service"
)

// Env is a running environment: the deployment service, a fleet of devices registered with the service by the
// environment's dialect (its Driver: RoboMaker by default), the artifact store's client, the run's event stream
// and the faults armed in it. New makes one; the test's cleanup tears it down. Its methods are safe for
// concurrent use. What only one dialect has — RoboMaker's SDK client and fleet — is the dialect's session's
// (Session; robomaker.Of).
//
// On virtual time the service, the engine and the robots are the actors of one clock.World, and every method
// that acts on them runs as an outside caller of the world (clock.Do): the test's goroutine is never one of its
// actors, and virtual time advances only while a method of Env waits (WaitJob, WaitFor, Eventually).
type Env struct {
	t      T
	cfg    config
	world  *clock.World // nil on scaled wall time
	clock  clock.Clock
	ctx    context.Context // ends at cleanup
	cancel context.CancelFunc
	dir    string // the service's data
	events *Stream

	transport http.RoundTripper // the SDK clients': in process on virtual time
	inproc    *link.InProcess   // on virtual time
	idle      interface{ CloseIdleConnections() }
	s3        *s3.Client // the harness's own, used from within the world on virtual time
	s3Out     *s3.Client // what S3 hands out, for calls from anywhere

	driver  dialect.Driver
	session dialect.Session

	svcMu        sync.Mutex
	svc          *service.Service // nil while stopped
	addr, s3Addr string           // kept across restarts
	ids          io.Reader        // the service's id source, from the seed, going on across restarts

	fleet  fleet.Fleet
	robots []string // every hosted robot, sorted
	late   []string

	hooks *FaultHooks

	faultMu sync.Mutex
	faults  []*faults.Handle

	appMu  sync.Mutex
	bucket map[string]bool
}

// New starts an environment for t and registers its teardown with t.Cleanup: the service on loopback ports,
// the fleet on the chosen backend, its devices registered by the dialect's driver (all but the late ones). A
// failure to start is an infrastructure failure and stops the test.
func New(t T, opts ...Option) *Env {
	t.Helper()
	cfg, err := resolve(opts)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	e := &Env{t: t, cfg: cfg, dir: t.TempDir(), bucket: map[string]bool{}, driver: cfg.driver}
	e.hooks = NewFaultHooks(cfg.backend.Name, func(name string) (fleet.Device, bool) { return e.fleet.Device(name) }, cfg.seed)
	if cfg.virtual() {
		e.world = clock.NewWorld(clock.WorldOptions{Seed: cfg.seed, Watchdog: cfg.watchdog, OnStall: func(report string) {
			infraErrorf(t, "the simulated world stalled: an actor blocked outside it\n%s", report)
		}})
		e.clock = e.world
		e.inproc = &link.InProcess{Clock: e.world, Handler: e.handler}
		e.transport = e.inproc
	} else {
		e.clock = clock.NewScaled(nil, cfg.scale)
		tr := &http.Transport{MaxIdleConnsPerHost: 16}
		e.transport, e.idle = tr, tr
	}
	e.ctx, e.cancel = clock.WithCancel(e.clock, context.Background())
	e.events = newStream(cfg.scenario, cfg.sinks, e.clock)
	t.Cleanup(e.close)
	e.do(func() { e.start(cfg) })
	return e
}

// start starts the service and the fleet and registers the robots, in the world on virtual time.
func (e *Env) start(cfg config) {
	t := e.t
	svc, err := service.New(e.serviceOptions())
	if err != nil {
		infraFatal(t, "start service: %v", err)
	}
	if err := svc.Start("127.0.0.1:0", "127.0.0.1:0"); err != nil {
		infraFatal(t, "start service: %v", err)
	}
	e.svcMu.Lock()
	e.svc = svc
	e.svcMu.Unlock()
	e.addr = strings.TrimPrefix(svc.Endpoint(), "http://")
	e.s3Addr = strings.TrimPrefix(svc.S3Endpoint(), "http://")
	e.s3Out = e.s3Client(e.transport)
	e.s3 = e.s3Client(e.ownTransport())
	if e.session, err = e.driver.Open(host{e}); err != nil {
		infraFatal(t, "open dialect %s: %v", e.driver.Name(), err)
	}

	names, err := fleet.Names(cfg.names, cfg.count, "robot")
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	for _, n := range cfg.late {
		if slices.Contains(names, n) {
			t.Fatalf("harness: late robot %s is also a robot of the fleet", n)
		}
	}
	e.late = slices.Sorted(slices.Values(cfg.late))
	e.robots = slices.Sorted(slices.Values(append(slices.Clone(names), cfg.late...)))
	archs := map[string]string{}
	for _, n := range e.robots {
		archs[n] = cfg.arch
	}
	for n, a := range cfg.archs {
		if _, ok := archs[n]; !ok {
			t.Fatalf("harness: WithRobotArchitecture names %s, which is not a robot of the fleet %v", n, e.robots)
		}
		archs[n] = a
	}
	ctx, cancel := e.callContext()
	defer cancel()
	setup := FleetSetup{Endpoint: svc.Endpoint(), InMemory: &InMemoryService{Devices: svc.Devices, Objects: svc.Artifacts}, Names: e.robots, Architectures: archs,
		Clock: e.clock, Scale: cfg.scale, Seed: cfg.seed, Dir: t.TempDir(), OnEvent: e.agentEvent,
		Events: e.events}
	if e.world != nil {
		setup.HTTP = e.inproc.ForActors()
	}
	f, err := cfg.backend.Start(ctx, setup)
	if err != nil {
		infraFatal(t, "backend %s: %v", cfg.backend.Name(), err)
	}
	e.fleet = f
	var devs []fleet.Device
	for _, d := range f.Devices() {
		if !slices.Contains(e.late, d.Name()) {
			devs = append(devs, d)
		}
	}
	if err := e.session.Register(ctx, devs); err != nil {
		infraFatal(t, "register robots: %v", err)
	}
	e.log("environment up: %d robots on %s, seed %d, %s, service %s", len(e.robots), cfg.backend.Name(),
		cfg.seed, e.timeMode(), svc.Endpoint())
}

// s3Client returns an SDK client of the service's artifact store over rt.
func (e *Env) s3Client(rt http.RoundTripper) *s3.Client {
	return dialect.S3(e.S3Endpoint(), rt)
}

// ownTransport carries the harness's own calls to the service: on virtual time they are made from within the
// world only, so its transport need not ask who calls.
func (e *Env) ownTransport() http.RoundTripper {
	if e.world != nil {
		return e.inproc.ForActors()
	}
	return e.transport
}

// timeMode says how time runs in the environment.
func (e *Env) timeMode() string {
	if e.world != nil {
		return "virtual time"
	}
	return fmt.Sprintf("time scale %gx", e.cfg.scale)
}

// do runs f in the world on virtual time (as an outside caller: see clock.Do), or simply calls it. A world that
// cannot run it any more (stalled) is an infrastructure failure.
func (e *Env) do(f func()) {
	if e.world == nil {
		f()
		return
	}
	if err := e.world.Do(f); err != nil {
		infraFatal(e.t, "%v", err)
	}
}

// handler is what serves a host in process on virtual time: the running service's API or artifact store.
func (e *Env) handler(host string) (http.Handler, error) {
	svc := e.Service()
	switch {
	case svc == nil:
		return nil, errors.New("the service is stopped")
	case host == e.addr:
		return svc.API, nil
	case host == e.s3Addr:
		return svc.S3, nil
	}
	return nil, fmt.Errorf("nothing of the environment serves %s", host)
}

// serviceOptions are the service's options, the same at every (re)start. Its ids come from the run's seed, so a
// run repeats them; the source goes on across restarts, so a restarted service does not hand them out again.
func (e *Env) serviceOptions() service.Options {
	if e.ids == nil {
		e.ids = awsapi.NewSeededSource(e.cfg.seed)
	}
	return service.Options{Dir: e.dir, InMemoryStore: e.cfg.memory, Clock: e.clock, Events: e.events,
		Intercept: e.hooks.Intercept, ArtifactIntercept: e.hooks.Artifact, Random: e.ids}
}

// close tears everything down, last started first: faults, fleet, service, connections, and on virtual time
// the world, which must have no actor left.
func (e *Env) close() {
	if e.world == nil {
		e.teardown()
	} else if err := e.doWhenUnstalled(e.teardown); err != nil {
		e.t.Errorf("harness: tear down: %v", err)
	}
	if e.idle != nil {
		e.idle.CloseIdleConnections()
	}
	e.cancel()
	if e.world != nil {
		if err := e.world.Close(); err != nil {
			e.t.Errorf("harness: %v", err)
		}
	}
	if e.t.Failed() {
		e.t.Logf("fleetlab: seed %d; %s", e.cfg.seed, rerunHint(e.t, e.cfg.seed))
	}
}

// stallGrace is how long, in wall-clock time, the teardown of a stalled world waits for it to recover.
const stallGrace = 30 * time.Second

// doWhenUnstalled runs f in the world, waiting up to stallGrace for a stalled world to recover first: its stuck
// actor may yet come back, and then everything can be torn down.
func (e *Env) doWhenUnstalled(f func()) error {
	deadline := (clock.Real{}).Now().Add(stallGrace)
	for {
		err := e.world.Do(f)
		var stall *clock.StallError
		if !errors.As(err, &stall) || (clock.Real{}).Now().After(deadline) {
			return err
		}
		clock.Sleep(clock.Real{}, 10*time.Millisecond, nil)
	}
}

func (e *Env) teardown() {
	e.faultMu.Lock()
	hs := e.faults
	e.faults = nil
	e.faultMu.Unlock()
	for i := len(hs) - 1; i >= 0; i-- {
		if err := hs[i].Close(context.Background()); err != nil {
			e.t.Errorf("harness: close fault: %v", err)
		}
	}
	if e.fleet != nil {
		if err := e.fleet.Close(); err != nil {
			e.t.Errorf("harness: stop fleet: %v", err)
		}
	}
	e.svcMu.Lock()
	svc := e.svc
	e.svc = nil
	e.svcMu.Unlock()
	if svc != nil {
		if err := svc.Close(); err != nil {
			e.t.Errorf("harness: stop service: %v", err)
		}
	}
}

// rerunHint says how to run the failed test again with its seed.
func rerunHint(t T, seed uint64) string {
	if r, ok := t.(*Recorder); ok && r.rerun != "" {
		return "rerun: " + r.rerun
	}
	parts := strings.Split(t.Name(), "/")
	for i, p := range parts {
		parts[i] = "^" + regexpQuote(p) + "$"
	}
	return fmt.Sprintf("rerun: go test -run '%s' -fleetlab.seed=%d (in the test's package)", strings.Join(parts, "/"), seed)
}

// regexpQuote escapes the characters go test's -run treats specially in a test name.
func regexpQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// log records a harness event in the stream.
func (e *Env) log(format string, args ...any) {
	e.emit(event.Event{Kind: event.Log, Reason: fmt.Sprintf(format, args...)})
}

// emit records ev in the stream, stamped with the run's time, from within the world on virtual time.
func (e *Env) emit(ev event.Event) {
	e.do(func() {
		ev.Time = e.clock.Now()
		e.events.Emit(ev)
	})
}

// callContext returns the context of the harness's own calls to the service: bounded in wall-clock time, which
// on virtual time is only a safety net (a call is served within the world's turn, in no virtual time).
func (e *Env) callContext() (context.Context, context.CancelFunc) {
	return e.wallBound(e.ctx, e.cfg.wallWait())
}

// waitContext returns the context of a wait for the world to reach a condition: bounded by the environment's
// wait — in virtual time on virtual time, where it must be called from within the world (e.do), with a
// wall-clock safety net besides.
func (e *Env) waitContext() (context.Context, context.CancelFunc) {
	ctx, cancel := e.wallBound(e.ctx, e.cfg.wallWait())
	if e.world == nil {
		return ctx, cancel
	}
	stop := clock.AfterFunc(e.clock, e.cfg.wait, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

// wallBound returns a child of parent that ends after d of wall-clock time.
func (e *Env) wallBound(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := clock.WithCancel(e.clock, parent)
	stop := clock.AfterFunc(clock.Real{}, d, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

// agentEvent records an agent's event and hands it to the faults watching agents.
func (e *Env) agentEvent(device string, a agent.Event) {
	e.events.Emit(agentEvent(device, a))
	e.hooks.AgentEvent(device, a)
}

// T returns the test the environment runs in.
func (e *Env) T() T { return e.t }

// Seed returns the run's seed.
func (e *Env) Seed() uint64 { return e.cfg.seed }

// Clock returns the run's clock: the service's and the robots' time — the World on virtual time.
func (e *Env) Clock() clock.Clock { return e.clock }

// World returns the virtual-time world the environment runs in, nil on scaled wall time.
func (e *Env) World() *clock.World { return e.world }

// Events returns the run's event stream.
func (e *Env) Events() *Stream { return e.events }

// Driver returns the environment's dialect driver.
func (e *Env) Driver() dialect.Driver { return e.driver }

// Session returns the environment's dialect session: for RoboMaker, robomaker.Of(env) gives it with its type.
func (e *Env) Session() dialect.Session { return e.session }

// S3 returns the S3 client (path style, retries off) pointed at the artifact store.
func (e *Env) S3() *s3.Client { return e.s3Out }

// Endpoint returns the URL of the AWS APIs and the device API; it stays the same across service restarts.
func (e *Env) Endpoint() string { return "http://" + e.addr }

// Transport carries calls to the service from anywhere — a test, a collector of field records, the CLI's
// equivalent — on virtual time as on the wall clock.
func (e *Env) Transport() http.RoundTripper { return e.transport }

// S3Endpoint returns the URL of the artifact store; it stays the same across service restarts.
func (e *Env) S3Endpoint() string { return "http://" + e.s3Addr }

// Service returns the running service, nil while it is stopped (service-restart).
func (e *Env) Service() *service.Service {
	e.svcMu.Lock()
	defer e.svcMu.Unlock()
	return e.svc
}

// Artifacts returns the running service's artifact store (its Go API, which faults do not intercept).
func (e *Env) Artifacts() *artifacts.Store {
	if s := e.Service(); s != nil {
		return s.Artifacts
	}
	infraFatal(e.t, "the service is stopped")
	return nil
}

// Fleet returns the fleet.
func (e *Env) Fleet() fleet.Fleet { return e.fleet }

// Robots returns the names of every robot the fleet hosts, late ones included, sorted.
func (e *Env) Robots() []string { return slices.Clone(e.robots) }

// Device returns a robot; a name the fleet does not have stops the test.
func (e *Env) Device(name string) fleet.Device {
	d, ok := e.fleet.Device(name)
	if !ok {
		e.t.Fatalf("harness: no robot %s in the fleet %v", name, e.robots)
	}
	return d
}

// RegisterLate registers the late robots (WithLateRobots) through the dialect.
func (e *Env) RegisterLate() {
	e.t.Helper()
	var devs []fleet.Device
	for _, n := range e.late {
		devs = append(devs, e.Device(n))
	}
	e.do(func() {
		ctx, cancel := e.callContext()
		defer cancel()
		if err := e.session.Register(ctx, devs); err != nil {
			infraFatal(e.t, "register late robots: %v", err)
		}
		e.log("registered late robots %v", e.late)
	})
}

// Arm decodes spec with the fault registry and arms it in the environment; its Close is registered with the
// test's cleanup. A fault the backend cannot do is refused here.
func (e *Env) Arm(spec faults.Spec) (*faults.Handle, error) {
	h, err := e.cfg.registry.New(spec, e.driver.Steps())
	if err != nil {
		return nil, err
	}
	e.do(func() { err = h.Arm(world{e.hooks, e}) })
	if err != nil {
		return nil, err
	}
	e.faultMu.Lock()
	e.faults = append(e.faults, h)
	e.faultMu.Unlock()
	return h, nil
}

// Inject arms spec and injects it; a fault that cannot be armed or injected stops the test.
func (e *Env) Inject(spec faults.Spec) *faults.Handle {
	e.t.Helper()
	h, err := e.Arm(spec)
	if err != nil {
		e.t.Fatalf("harness: %v", err)
	}
	if err := h.Inject(e.ctx); err != nil {
		infraFatal(e.t, "%v", err)
	}
	return h
}

// Recover recovers an injected fault; a failure stops the test.
func (e *Env) Recover(h *faults.Handle) {
	e.t.Helper()
	if err := h.Recover(e.ctx); err != nil {
		infraFatal(e.t, "%v", err)
	}
}

// Eventually is gomega's Eventually bound to the environment's test, waiting up to the environment's wait:
// actual is typically a func returned by Job or Robot. On scaled wall time it polls every 10 ms. On virtual
// time a func is called again only once the world has changed — after the next event, or a minute of virtual
// time — and the wait is in virtual time (gomega's own timeout stays a wall-clock safety net); gomega's
// Eventually used directly would poll a world that stands still, and time out.
func (e *Env) Eventually(actual any, args ...any) gomega.AsyncAssertion {
	e.t.Helper()
	if e.world == nil {
		return gomega.NewWithT(e.t).Eventually(actual, args...).WithTimeout(e.cfg.wait).WithPolling(10 * time.Millisecond)
	}
	return gomega.NewWithT(e.t).Eventually(e.inVirtualTime(actual), args...).WithTimeout(e.cfg.wallWait()).
		WithPolling(time.Millisecond)
}

// Expect is gomega's Expect bound to the environment's test.
func (e *Env) Expect(actual any, extra ...any) gomega.Assertion {
	e.t.Helper()
	return gomega.NewWithT(e.t).Expect(actual, extra...)
}

// stopService drops the running service; its data stays on disk. Requests meet a stopped service from the
// moment it starts closing.
func (e *Env) stopService() error {
	e.svcMu.Lock()
	svc := e.svc
	e.svc = nil
	e.svcMu.Unlock()
	if svc == nil {
		return errors.New("stop service: already stopped")
	}
	if err := svc.Close(); err != nil {
		return fmt.Errorf("stop service: %w", err)
	}
	e.log("service stopped")
	return nil
}

// startService starts the service on its data and its ports; a no-op while it runs.
func (e *Env) startService() error {
	e.svcMu.Lock()
	defer e.svcMu.Unlock()
	if e.svc != nil {
		return nil
	}
	svc, err := service.New(e.serviceOptions())
	if err != nil {
		return fmt.Errorf("start service: %w", err)
	}
	if err := svc.Start(e.addr, e.s3Addr); err != nil {
		return fmt.Errorf("start service on its ports: %w", err)
	}
	e.svc = svc
	e.log("service started on its data")
	return nil
}
