package inproc

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
)

// errPowerCut is what every executor call of a crashed agent returns: the device has no power, nothing it would
// still do happens.
var errPowerCut = errors.New("the device is down")

// gate decides whether an agent's executor calls may run:
//
//	open ──freeze──▶ frozen ──thaw──▶ open
//	  │                │
//	  └──────kill──────┴──▶ dead   (every call fails with errPowerCut, at once)
//
// A frozen gate holds every call until thaw or kill, whatever the call's context says: a hung device does not
// run its own timeouts either.
type gate struct {
	clock  clock.Clock
	mu     sync.Mutex
	frozen bool
	thawed chan struct{} // closed at thaw
	dead   bool
	killed chan struct{} // closed at kill
}

func newGate(c clock.Clock) *gate {
	return &gate{clock: c, thawed: make(chan struct{}), killed: make(chan struct{})}
}

// pass waits until the gate is open; it fails once the gate is dead.
func (g *gate) pass() error {
	g.mu.Lock()
	for {
		if g.dead {
			g.mu.Unlock()
			return errPowerCut
		}
		if !g.frozen {
			g.mu.Unlock()
			return nil
		}
		thawed := g.thawed
		g.mu.Unlock()
		clock.Wait(nil, g.clock, clock.Forever, clock.Done(thawed), clock.Done(g.killed))
		g.mu.Lock()
	}
}

func (g *gate) freeze() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.frozen || g.dead {
		return false
	}
	g.frozen, g.thawed = true, make(chan struct{})
	return true
}

func (g *gate) thaw() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.frozen {
		return false
	}
	g.frozen = false
	close(g.thawed)
	return true
}

func (g *gate) isFrozen() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.frozen
}

func (g *gate) kill() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.dead {
		g.dead = true
		close(g.killed)
	}
}

// layer is what the agent's Options.Wrap installs between the agent and its executors: every call passes the
// gate, then goes to the current executors — the base ones, or a fault's wrap of them, swapped at run time.
type layer struct {
	gate *gate
	base agent.Executors
	cur  atomic.Pointer[agent.Executors]
}

func newLayer(g *gate, base agent.Executors, wrap func(agent.Executors) agent.Executors) *layer {
	l := &layer{gate: g, base: base}
	l.setWrap(wrap)
	return l
}

// setWrap makes wrap(base) the executors of every call from now on (nil: base). Fields wrap leaves nil are the
// base ones.
func (l *layer) setWrap(wrap func(agent.Executors) agent.Executors) {
	ex := l.base
	if wrap != nil {
		w := wrap(l.base)
		ex = agent.Executors{Transport: or(w.Transport, l.base.Transport), Downloader: or(w.Downloader, l.base.Downloader),
			Versions: or(w.Versions, l.base.Versions), Scripts: or(w.Scripts, l.base.Scripts),
			Launcher: or(w.Launcher, l.base.Launcher), State: or(w.State, l.base.State)}
	}
	l.cur.Store(&ex)
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// executors returns the layer as the agent's executors. Its transport has the base transport's ability to call
// the cloud's other APIs (agent.APICaller) when the base has it, and then those calls pass the gate too.
func (l *layer) executors() agent.Executors {
	var tr agent.Transport = layerTransport{l}
	if _, ok := l.base.Transport.(agent.APICaller); ok {
		tr = layerCaller{layerTransport{l}}
	}
	return agent.Executors{Transport: tr, Downloader: layerDownloader{l}, Versions: layerVersions{l},
		Scripts: layerScripts{l}, Launcher: layerLauncher{l}, State: layerState{l}}
}

func (l *layer) now() *agent.Executors { return l.cur.Load() }

type layerTransport struct{ l *layer }

func (t layerTransport) Pending(ctx context.Context) (wire.GetPendingJobExecutionsResponse, error) {
	if err := t.l.gate.pass(); err != nil {
		return wire.GetPendingJobExecutionsResponse{}, err
	}
	return t.l.now().Transport.Pending(ctx)
}

func (t layerTransport) StartNext(ctx context.Context, req wire.StartNextPendingJobExecutionRequest) (*wire.JobExecution, error) {
	if err := t.l.gate.pass(); err != nil {
		return nil, err
	}
	return t.l.now().Transport.StartNext(ctx, req)
}

func (t layerTransport) Describe(ctx context.Context, jobID string) (*wire.JobExecution, error) {
	if err := t.l.gate.pass(); err != nil {
		return nil, err
	}
	return t.l.now().Transport.Describe(ctx, jobID)
}

func (t layerTransport) Update(ctx context.Context, jobID string, req wire.UpdateJobExecutionRequest) (wire.UpdateJobExecutionResponse, error) {
	if err := t.l.gate.pass(); err != nil {
		return wire.UpdateJobExecutionResponse{}, err
	}
	return t.l.now().Transport.Update(ctx, jobID, req)
}

// Subscribe passes the gate to connect. Notifications already connected keep arriving while frozen, but the
// agent can act on them only through calls, which the gate holds.
func (t layerTransport) Subscribe(ctx context.Context) (agent.Notifications, error) {
	if err := t.l.gate.pass(); err != nil {
		return nil, err
	}
	return t.l.now().Transport.Subscribe(ctx)
}

func (t layerTransport) Fetch(ctx context.Context, bucket, key string, offset int64) (*agent.Object, error) {
	if err := t.l.gate.pass(); err != nil {
		return nil, err
	}
	return t.l.now().Transport.Fetch(ctx, bucket, key, offset)
}

// layerCaller is the layer's transport over a base transport that is an agent.APICaller: a frozen device holds
// its calls to the cloud's other APIs as it holds its data-plane calls, a dead one fails them. A fault's wrap of
// the transport that knows nothing of APICaller leaves the calls to the base transport, whose link the fault's
// shaping still applies to (the in-process transport's client passes the device's link).
type layerCaller struct{ layerTransport }

var _ agent.APICaller = layerCaller{}

// CallAPI implements agent.APICaller.
func (t layerCaller) CallAPI(ctx context.Context, signingName, method, path string, in, out any) error {
	if err := t.l.gate.pass(); err != nil {
		return err
	}
	c, ok := t.l.now().Transport.(agent.APICaller)
	if !ok {
		c = t.l.base.Transport.(agent.APICaller)
	}
	return c.CallAPI(ctx, signingName, method, path, in, out)
}

type layerDownloader struct{ l *layer }

func (d layerDownloader) Download(ctx context.Context, src agent.Fetcher, req agent.Request, progress agent.Progress) (agent.Blob, error) {
	if err := d.l.gate.pass(); err != nil {
		return nil, err
	}
	return d.l.now().Downloader.Download(ctx, src, req, progress)
}

func (d layerDownloader) Discard(name string) error {
	if err := d.l.gate.pass(); err != nil {
		return err
	}
	return d.l.now().Downloader.Discard(name)
}

type layerVersions struct{ l *layer }

func (v layerVersions) Extract(ctx context.Context, id string, bundle agent.Blob) (agent.Version, error) {
	if err := v.l.gate.pass(); err != nil {
		return agent.Version{}, err
	}
	return v.l.now().Versions.Extract(ctx, id, bundle)
}

func (v layerVersions) Open(id string) (agent.Version, error) {
	if err := v.l.gate.pass(); err != nil {
		return agent.Version{}, err
	}
	return v.l.now().Versions.Open(id)
}

func (v layerVersions) Activate(id string) error {
	if err := v.l.gate.pass(); err != nil {
		return err
	}
	return v.l.now().Versions.Activate(id)
}

func (v layerVersions) Active() (string, error) {
	if err := v.l.gate.pass(); err != nil {
		return "", err
	}
	return v.l.now().Versions.Active()
}

func (v layerVersions) Remove(id string) error {
	if err := v.l.gate.pass(); err != nil {
		return err
	}
	return v.l.now().Versions.Remove(id)
}

type layerScripts struct{ l *layer }

func (s layerScripts) Run(ctx context.Context, sc agent.Script) error {
	if err := s.l.gate.pass(); err != nil {
		return err
	}
	return s.l.now().Scripts.Run(ctx, sc)
}

type layerLauncher struct{ l *layer }

func (s layerLauncher) Adopt(ctx context.Context, want *agent.App) (bool, error) {
	if err := s.l.gate.pass(); err != nil {
		return false, err
	}
	return s.l.now().Launcher.Adopt(ctx, want)
}

func (s layerLauncher) Start(ctx context.Context, app agent.App) error {
	if err := s.l.gate.pass(); err != nil {
		return err
	}
	return s.l.now().Launcher.Start(ctx, app)
}

func (s layerLauncher) Stop(ctx context.Context) error {
	if err := s.l.gate.pass(); err != nil {
		return err
	}
	return s.l.now().Launcher.Stop(ctx)
}

// Running answers "" once the device is down: nothing runs without power.
func (s layerLauncher) Running() string {
	if s.l.gate.pass() != nil {
		return ""
	}
	return s.l.now().Launcher.Running()
}

type layerState struct{ l *layer }

func (s layerState) Load() (agent.DeviceState, error) {
	if err := s.l.gate.pass(); err != nil {
		return agent.DeviceState{}, err
	}
	return s.l.now().State.Load()
}

func (s layerState) Save(st agent.DeviceState) error {
	if err := s.l.gate.pass(); err != nil {
		return err
	}
	return s.l.now().State.Save(st)
}
