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

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/robomaker"
	rmtypes "github.com/aws/aws-sdk-go-v2/service/robomaker/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/onsi/gomega"

	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/artifacts"
	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/fleet"
	"github.com/fleetlab/fleetlab/sim/service"
)

// Env is a running environment: the deployment service, a fleet of robots registered in the RoboMaker fleet
// FleetName, the SDK clients, the run's event stream and the faults armed in it. New makes one; the test's
// cleanup tears it down. Its methods are safe for concurrent use.
type Env struct {
	t      T
	cfg    config
	clock  clock.Clock
	ctx    context.Context // ends at cleanup
	cancel context.CancelFunc
	dir    string // the service's data
	events *Stream

	transport *http.Transport
	rm        *robomaker.Client
	s3        *s3.Client

	svcMu        sync.Mutex
	svc          *service.Service // nil while stopped
	addr, s3Addr string           // kept across restarts
	ids          io.Reader        // the service's id source, from the seed, going on across restarts

	fleet    fleet.Fleet
	robots   []string // every hosted robot, sorted
	late     []string
	fleetARN string

	hooks hooks

	faultMu sync.Mutex
	faults  []*faults.Handle

	appMu  sync.Mutex
	apps   int
	bucket map[string]bool
}

// New starts an environment for t and registers its teardown with t.Cleanup: the service on loopback ports,
// the fleet on the chosen backend, its robots registered in the RoboMaker fleet FleetName (all but the late
// ones). A failure to start is an infrastructure failure and stops the test.
func New(t T, opts ...Option) *Env {
	t.Helper()
	cfg, err := resolve(opts)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	e := &Env{t: t, cfg: cfg, clock: clock.NewScaled(nil, cfg.scale), dir: t.TempDir(),
		hooks: newHooks(), bucket: map[string]bool{}}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.events = newStream(cfg.scenario, cfg.sinks)
	t.Cleanup(e.close)
	e.transport = &http.Transport{MaxIdleConnsPerHost: 16}

	svc, err := service.New(e.serviceOptions())
	if err != nil {
		infraFatal(t, "start service: %v", err)
	}
	if err := svc.Start("127.0.0.1:0", "127.0.0.1:0"); err != nil {
		infraFatal(t, "start service: %v", err)
	}
	e.svc = svc
	e.addr = strings.TrimPrefix(svc.Endpoint(), "http://")
	e.s3Addr = strings.TrimPrefix(svc.S3Endpoint(), "http://")
	creds := credentials.NewStaticCredentialsProvider("fleetlab", "fleetlab", "")
	e.rm = robomaker.New(robomaker.Options{BaseEndpoint: aws.String(svc.Endpoint()), Region: "us-east-1",
		Credentials: creds, RetryMaxAttempts: 1, HTTPClient: &http.Client{Transport: e.transport}})
	e.s3 = s3.New(s3.Options{BaseEndpoint: aws.String(svc.S3Endpoint()), UsePathStyle: true, Region: "us-east-1",
		Credentials: creds, Retryer: aws.NopRetryer{}, HTTPClient: &http.Client{Transport: e.transport}})

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
	ctx, cancel := e.waitContext()
	defer cancel()
	f, err := cfg.backend.Start(ctx, FleetSetup{Service: svc, Endpoint: svc.Endpoint(), Names: e.robots,
		Architectures: archs, Clock: e.clock, Scale: cfg.scale, Seed: cfg.seed, Dir: t.TempDir(), OnEvent: e.agentEvent, Events: e.events})
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
	if err := e.createRobots(ctx, devs); err != nil {
		infraFatal(t, "register robots: %v", err)
	}
	if e.fleetARN, err = fleet.RegisterRoboMaker(ctx, e.rm, FleetName, devs); err != nil {
		infraFatal(t, "register robots: %v", err)
	}
	e.log("environment up: %d robots on %s, seed %d, time scale %gx, service %s", len(e.robots),
		cfg.backend.Name(), cfg.seed, cfg.scale, svc.Endpoint())
	return e
}

// createRobots creates the RoboMaker robots of devs one after another, in name order. RoboMaker releases a
// job's robots in the order they were created, so creating them in a fixed order makes the release order — who
// deploys first, who is still queued when a threshold trips — the same in every run. (RegisterRoboMaker, which
// then registers them, creates robots concurrently.)
func (e *Env) createRobots(ctx context.Context, devs []fleet.Device) error {
	for _, d := range devs {
		_, err := e.rm.CreateRobot(ctx, &robomaker.CreateRobotInput{Name: aws.String(d.Name()),
			Architecture: rmtypes.Architecture(d.Architecture()), GreengrassGroupId: aws.String(fleet.GreengrassGroupID)})
		if err != nil && !errors.As(err, new(*rmtypes.ResourceAlreadyExistsException)) {
			return fmt.Errorf("create robot %s: %w", d.Name(), err)
		}
	}
	return nil
}

// serviceOptions are the service's options, the same at every (re)start. Its ids come from the run's seed, so a
// run repeats them; the source goes on across restarts, so a restarted service does not hand them out again.
func (e *Env) serviceOptions() service.Options {
	if e.ids == nil {
		e.ids = awsapi.NewSeededSource(e.cfg.seed)
	}
	return service.Options{Dir: e.dir, Memory: e.cfg.memory, Clock: e.clock, Events: e.events,
		Wrap: e.hooks.wrap, ArtifactIntercept: e.hooks.artifact, Random: e.ids}
}

// close tears everything down, last started first: faults, fleet, service, connections.
func (e *Env) close() {
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
	if e.svc != nil {
		if err := e.svc.Close(); err != nil {
			e.t.Errorf("harness: stop service: %v", err)
		}
		e.svc = nil
	}
	e.svcMu.Unlock()
	if e.transport != nil {
		e.transport.CloseIdleConnections()
	}
	e.cancel()
	if e.t.Failed() {
		e.t.Logf("fleetlab: seed %d; %s", e.cfg.seed, rerunHint(e.t, e.cfg.seed))
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
	msg := fmt.Sprintf(format, args...)
	e.events.Emit(event.Event{Kind: event.Log, Time: e.clock.Now(), Reason: msg})
}

// waitContext returns a context bounded by the environment's wait, in wall-clock time.
func (e *Env) waitContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(e.ctx)
	timer := clock.Real{}.NewTimer(e.cfg.wait)
	go func() {
		select {
		case <-timer.C():
			cancel()
		case <-ctx.Done():
			timer.Stop()
		}
	}()
	return ctx, cancel
}

// agentEvent records an agent's event and hands it to the faults watching agents.
func (e *Env) agentEvent(device string, a agent.Event) {
	e.events.Emit(agentEvent(device, a))
	e.hooks.agentEvent(device, a)
}

// T returns the test the environment runs in.
func (e *Env) T() T { return e.t }

// Seed returns the run's seed.
func (e *Env) Seed() uint64 { return e.cfg.seed }

// Clock returns the run's clock: the service's and the robots' time.
func (e *Env) Clock() clock.Clock { return e.clock }

// Events returns the run's event stream.
func (e *Env) Events() *Stream { return e.events }

// RoboMaker returns the RoboMaker client (AWS SDK for Go v2, retries off) pointed at the service.
func (e *Env) RoboMaker() *robomaker.Client { return e.rm }

// S3 returns the S3 client (path style, retries off) pointed at the artifact store.
func (e *Env) S3() *s3.Client { return e.s3 }

// Endpoint returns the URL of the AWS APIs and the device API; it stays the same across service restarts.
func (e *Env) Endpoint() string { return "http://" + e.addr }

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

// FleetARN returns the ARN of the RoboMaker fleet the robots are registered with.
func (e *Env) FleetARN() string { return e.fleetARN }

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

// RegisterLate registers the late robots (WithLateRobots) with the RoboMaker fleet.
func (e *Env) RegisterLate() {
	e.t.Helper()
	var devs []fleet.Device
	for _, n := range e.late {
		devs = append(devs, e.Device(n))
	}
	ctx, cancel := e.waitContext()
	defer cancel()
	if err := e.createRobots(ctx, devs); err != nil {
		infraFatal(e.t, "register late robots: %v", err)
	}
	if _, err := fleet.RegisterRoboMaker(ctx, e.rm, FleetName, devs); err != nil {
		infraFatal(e.t, "register late robots: %v", err)
	}
	e.log("registered late robots %v", e.late)
}

// Arm decodes spec with the fault registry and arms it in the environment; its Close is registered with the
// test's cleanup. A fault the backend cannot do is refused here.
func (e *Env) Arm(spec faults.Spec) (*faults.Handle, error) {
	h, err := e.cfg.registry.New(spec)
	if err != nil {
		return nil, err
	}
	if err := h.Arm(world{e}); err != nil {
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

// Eventually is gomega's Eventually bound to the environment's test, waiting up to the environment's wait and
// polling every 10 ms: actual is typically a func returned by Job or Robot.
func (e *Env) Eventually(actual any, args ...any) gomega.AsyncAssertion {
	e.t.Helper()
	return gomega.NewWithT(e.t).Eventually(actual, args...).WithTimeout(e.cfg.wait).WithPolling(10 * time.Millisecond)
}

// Expect is gomega's Expect bound to the environment's test.
func (e *Env) Expect(actual any, extra ...any) gomega.Assertion {
	e.t.Helper()
	return gomega.NewWithT(e.t).Expect(actual, extra...)
}

// stopService drops the running service; its data stays on disk.
func (e *Env) stopService() error {
	e.svcMu.Lock()
	defer e.svcMu.Unlock()
	if e.svc == nil {
		return errors.New("stop service: already stopped")
	}
	err := e.svc.Close()
	e.svc = nil
	if err != nil {
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
