package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
)

// Executors are the agent's links to the world, each behind a small interface so a fault can wrap it.
type Executors struct {
	Transport  Transport
	Downloader Downloader
	Versions   Versions
	Scripts    ScriptRunner
	Launcher   Launcher
	State      StateStore
}

// Options configure an Agent. Zero fields take the defaults listed; New resolves them all.
type Options struct {
	// Thing is the device's thing name on the device API. Required.
	Thing string
	// Kinds are the kinds of job the agent carries out, by the kind their job documents name. The first is
	// the device's own: it refuses the documents no kind carries out, and owns versions recorded before
	// kinds existed. Required, no two of one name.
	Kinds []Kind
	// Architecture is the device's architecture as a GOARCH name (amd64, arm64, arm); each kind names it
	// in its dialect. Default: the one this binary runs on.
	Architecture string
	// Endpoint is the device API's base URL, for the default HTTP transport. Required when
	// Executors.Transport is nil.
	Endpoint string
	// HTTPClient is the default transport's client. Default: a client of the agent's own, whose idle
	// connections Close releases.
	HTTPClient *http.Client
	// ObjectHTTPClient carries the default transport's artifact downloads. Default: HTTPClient. A host whose
	// clients bound their connections gives downloads a client of their own: a download keeps its connection
	// while the agent reports its progress, which needs another.
	ObjectHTTPClient *http.Client
	// Dir is the device's directory. When set, the default executors are the OS family: files under Dir,
	// scripts and the application as processes, the device log in Dir/device.log. When empty, the
	// defaults are the in-memory family.
	Dir string
	// Executors replace the defaults field by field: nil fields get the family's default.
	Executors Executors
	// Wrap, when set, is given the resolved executors and returns the ones the agent uses: the hook for
	// faults. It must not return nil fields.
	Wrap func(Executors) Executors
	// Log is the device log, where script and application output goes. Default: Dir/device.log, or
	// discarded in the in-memory family.
	Log io.Writer
	// Clock is the agent's time. Default: the real clock.
	Clock clock.Clock
	// Seed seeds the jitter of every backoff (with the thing name, so robots of one fleet differ).
	Seed uint64
	// OnEvent, when set, is told of every state entered and every retry, reconnect and resume. Calls are
	// serialized; it must return quickly and must not call back into the agent.
	OnEvent func(Event)
	// ScriptTimeout bounds each script of the OS family. Default 5m.
	ScriptTimeout time.Duration
	// StopGrace is how long a stopping application gets between the graceful signal and the kill.
	// Default 10s.
	StopGrace time.Duration
	// RequestTimeout bounds each data-plane call; the call is retried after it. Default 30s; negative: none.
	// Downloads are bounded by the execution only, as a bundle may take long.
	RequestTimeout time.Duration
	// RetryBase and RetryMax shape the backoff of retried steps: RetryBase doubling up to RetryMax, with
	// jitter. Defaults 1s and 1m.
	RetryBase, RetryMax time.Duration
	// PollMin and PollMax shape polling when the notify channel is down: PollMin doubling up to PollMax
	// while nothing is pending, with jitter; while it is up the agent polls every PollMax as a safety net.
	// Defaults 5s and 5m.
	PollMin, PollMax time.Duration
	// MaxBundleBytes bounds a bundle's uncompressed size. Default DefaultMaxBundleBytes.
	MaxBundleBytes int64
}

// EventKind says what an Event reports.
type EventKind string

// Event kinds.
const (
	// EventState: an execution entered State (a step, or StateRollingBack, StateFailed, StateRejected,
	// StateAbandoned); Code and Reason are set for a failure.
	EventState EventKind = "state"
	// EventRetry: State failed with a transient Err and runs again after Delay.
	EventRetry EventKind = "retry"
	// EventResume: the agent found an execution in flight at start, at step State.
	EventResume EventKind = "resume"
	// EventConnected and EventDisconnected: the notify channel came up or went down.
	EventConnected    EventKind = "connected"
	EventDisconnected EventKind = "disconnected"
	// EventError: something outside a step went wrong (a poll, the relaunch at boot, a cleanup); the agent
	// carries on.
	EventError EventKind = "error"
	// EventAdopted: at start, the agent took over the application an earlier agent left running, of the
	// version State.
	EventAdopted EventKind = "adopted"
)

// States the loop enters besides its kinds' states.
const (
	// StateRollingBack: a step after the switch failed; the previous version is being restored.
	StateRollingBack = "RollingBack"
	// StateFailed: the execution is reported FAILED with a failure code.
	StateFailed = "Failed"
	// StateRejected: the device cannot carry out the job document; reported REJECTED.
	StateRejected = "Rejected"
	// StateAbandoned: the service ended the execution (canceled, timed out, removed); the agent restores
	// the previous version unless the new one was committed, and reports nothing.
	StateAbandoned = "Abandoned"
)

// Event is something the agent did.
type Event struct {
	Time   time.Time
	Kind   EventKind
	Thing  string
	JobID  string
	State  string
	Code   string
	Reason string
	Err    error
	Delay  time.Duration
}

// Agent carries out deployments on one device. See the package documentation for the state machine.
type Agent struct {
	thing   string
	arch    string
	ex      Executors
	clock   clock.Clock
	dataDir string

	requestTimeout   time.Duration
	pollMin, pollMax time.Duration
	retry            *backoff
	poll             *backoff
	reconnect        *backoff

	eventMu sync.Mutex
	onEvent func(Event)

	logFile   *os.File
	idleConns interface{ CloseIdleConnections() }
	caller    APICaller // the transport's, before Wrap; nil when it has none

	running   atomic.Bool
	connected atomic.Bool
	closed    atomic.Bool

	kinds []Kind

	mu  sync.Mutex
	cur *Execution
}

// New returns an agent with every default resolved.
func New(opts Options) (*Agent, error) {
	if opts.Thing == "" {
		return nil, errors.New("new agent: Thing is empty")
	}
	if len(opts.Kinds) == 0 {
		return nil, errors.New("new agent: no Kinds: the agent carries out no job")
	}
	seen := map[string]bool{}
	for i, k := range opts.Kinds {
		if k == nil {
			return nil, fmt.Errorf("new agent: Kinds[%d] is nil", i)
		}
		if seen[k.Name()] {
			return nil, fmt.Errorf("new agent: two kinds named %q", k.Name())
		}
		seen[k.Name()] = true
	}
	a := &Agent{
		thing:          opts.Thing,
		arch:           opts.Architecture,
		kinds:          slices.Clone(opts.Kinds),
		clock:          clock.Or(opts.Clock),
		onEvent:        opts.OnEvent,
		requestTimeout: opts.RequestTimeout,
		pollMin:        orDefault(opts.PollMin, 5*time.Second),
		pollMax:        orDefault(opts.PollMax, 5*time.Minute),
	}
	if a.arch == "" {
		a.arch = runtime.GOARCH
	}
	if a.requestTimeout == 0 {
		a.requestTimeout = 30 * time.Second
	}
	a.pollMax = max(a.pollMax, a.pollMin)
	retryBase := orDefault(opts.RetryBase, time.Second)
	a.retry = newBackoff(retryBase, max(orDefault(opts.RetryMax, time.Minute), retryBase), opts.Seed, opts.Thing, 1)
	a.poll = newBackoff(a.pollMin, a.pollMax, opts.Seed, opts.Thing, 2)
	a.reconnect = newBackoff(retryBase, max(orDefault(opts.RetryMax, time.Minute), retryBase), opts.Seed, opts.Thing, 3)
	scriptTimeout := orDefault(opts.ScriptTimeout, 5*time.Minute)
	grace := orDefault(opts.StopGrace, 10*time.Second)

	ex := opts.Executors
	if ex.Transport == nil {
		if opts.Endpoint == "" {
			return nil, errors.New("new agent: no Transport and no Endpoint")
		}
		ht, err := NewHTTPTransport(opts.Endpoint, opts.Thing, opts.HTTPClient)
		if err != nil {
			return nil, fmt.Errorf("new agent: %w", err)
		}
		if opts.ObjectHTTPClient != nil {
			ht.objects = opts.ObjectHTTPClient
		}
		ex.Transport = ht
		if opts.HTTPClient == nil {
			a.idleConns = ht
		}
	}
	log := opts.Log
	if opts.Dir != "" {
		// Scripts and the application run from their version's directory: every path given them is absolute.
		dir, aerr := filepath.Abs(opts.Dir)
		if aerr != nil {
			return nil, fmt.Errorf("new agent: device dir: %w", aerr)
		}
		opts.Dir = dir
		a.dataDir = filepath.Join(opts.Dir, "data")
		if err := os.MkdirAll(a.dataDir, 0o755); err != nil {
			return nil, fmt.Errorf("new agent: create device dir: %w", err)
		}
		if log == nil {
			f, err := os.OpenFile(filepath.Join(opts.Dir, "device.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
			if err != nil {
				return nil, fmt.Errorf("new agent: open device log: %w", err)
			}
			a.logFile, log = f, f
		}
		var err error
		if ex.Downloader == nil {
			if ex.Downloader, err = NewFileDownloader(filepath.Join(opts.Dir, "downloads")); err != nil {
				return nil, a.abort(err)
			}
		}
		if ex.Versions == nil {
			if ex.Versions, err = NewDirVersions(opts.Dir, opts.MaxBundleBytes); err != nil {
				return nil, a.abort(err)
			}
		}
		if ex.Scripts == nil {
			ex.Scripts = NewProcessRunner(ProcessRunnerOptions{Log: log, Clock: a.clock, Timeout: scriptTimeout, Dir: opts.Dir})
		}
		if ex.Launcher == nil {
			ex.Launcher = NewProcessLauncher(ProcessLauncherOptions{Log: log, Clock: a.clock, Grace: grace, Dir: opts.Dir})
		}
		if ex.State == nil {
			ex.State = NewFileState(filepath.Join(opts.Dir, "state.json"))
		}
	} else {
		if ex.Downloader == nil {
			ex.Downloader = NewMemoryDownloader()
		}
		if ex.Versions == nil {
			ex.Versions = NewMemoryVersions(opts.MaxBundleBytes)
		}
		if ex.Scripts == nil {
			ex.Scripts = NewSimRunner(log)
		}
		if ex.Launcher == nil {
			ex.Launcher = NewSimLauncher()
		}
		if ex.State == nil {
			ex.State = NewMemoryState()
		}
	}
	a.caller, _ = ex.Transport.(APICaller)
	if opts.Wrap != nil {
		ex = opts.Wrap(ex)
		if ex.Transport == nil || ex.Downloader == nil || ex.Versions == nil || ex.Scripts == nil || ex.Launcher == nil || ex.State == nil {
			return nil, a.abort(errors.New("Wrap returned a nil executor"))
		}
	}
	a.ex = ex
	return a, nil
}

// abort releases what New opened before failing.
func (a *Agent) abort(err error) error {
	if a.logFile != nil {
		a.logFile.Close()
	}
	return fmt.Errorf("new agent: %w", err)
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Executors returns the executors the agent uses, after Wrap.
func (a *Agent) Executors() Executors { return a.ex }

// Thing returns the agent's thing name.
func (a *Agent) Thing() string { return a.thing }

// Close stops the running application and releases the device log and idle connections. Call it after Run
// has returned; the agent cannot run again.
func (a *Agent) Close() error {
	if a.running.Load() {
		return errors.New("close agent: Run has not returned")
	}
	if !a.closed.CompareAndSwap(false, true) {
		return nil
	}
	err := a.ex.Launcher.Stop(context.Background())
	if a.idleConns != nil {
		a.idleConns.CloseIdleConnections()
	}
	if a.logFile != nil {
		err = errors.Join(err, a.logFile.Close())
	}
	if err != nil {
		return fmt.Errorf("close agent: %w", err)
	}
	return nil
}

// Run carries out executions, one at a time, until ctx ends; it returns nil then. At start it relaunches
// the active version's application, then finishes, or fails, the execution left in flight before it asks
// for new ones. It returns an error only when the device cannot keep its state.
func (a *Agent) Run(ctx context.Context) error {
	if a.closed.Load() {
		return errors.New("run agent: closed")
	}
	if !a.running.CompareAndSwap(false, true) {
		return errors.New("run agent: already running")
	}
	defer a.running.Store(false)

	wake := clock.NewSignal(a.clock)
	lctx, stopListen := clock.WithCancel(a.clock, ctx)
	listening := clock.NewGroup(a.clock)
	defer func() {
		stopListen()
		listening.Wait()
	}()
	listening.Go(a.thing+" notify", func() { a.listen(lctx, wake) })

	st, err := a.ex.State.Load()
	if err != nil {
		return fmt.Errorf("run agent: %w", err)
	}
	a.boot(ctx, st)
	for _, k := range a.kinds {
		if wk, ok := k.(Watcher); ok {
			if watch := wk.Watch(&Watch{a: a}); watch != nil {
				listening.Go(a.thing+" watch "+k.Name(), func() { watch(lctx) })
			}
		}
	}
	idle, failed := 0, 0
	check := true
	for {
		if ctx.Err() != nil {
			return nil
		}
		if check {
			ran, err := a.checkOnce(ctx)
			if ctx.Err() != nil {
				return nil
			}
			var se *stateError
			if errors.As(err, &se) {
				return fmt.Errorf("run agent: %w", err)
			}
			if err != nil {
				a.emit(Event{Kind: EventError, Err: err})
				failed++
			} else {
				failed = 0
			}
			if ran {
				idle = 0
				continue // something else may be pending
			}
			idle++
		}
		// Connected, the notify channel wakes the agent and the poll is only a safety net. A check that failed
		// (a lost request) is retried on the short backoff whatever the channel says: the notify that woke
		// the agent has been spent, and waiting for the safety net would idle the device for PollMax.
		d := a.poll.delay(64)
		switch {
		case failed > 0:
			d = a.poll.delay(failed - 1)
		case !a.connected.Load():
			d = a.poll.delay(idle)
		}
		switch i, err := clock.Wait(ctx, a.clock, d, wake); {
		case err != nil:
			return nil
		case i == clock.Expired:
			check = true
		default:
			idle, check = 0, true
		}
	}
}

// checkOnce carries on with the execution the device state has in flight, if any; otherwise it asks for
// pending executions and runs the next one. It reports whether an execution ended. An execution that
// could not be closed (its outcome could not be reported) stays in flight, and the next check resumes it.
func (a *Agent) checkOnce(ctx context.Context) (bool, error) {
	st, err := a.ex.State.Load()
	if err != nil {
		return false, &stateError{err}
	}
	if st.InFlight != nil {
		if err := a.resume(ctx, st); err != nil {
			return false, err
		}
		return true, nil
	}
	p, err := call(a, ctx, a.ex.Transport.Pending)
	if err != nil {
		return false, fmt.Errorf("poll: %w", err)
	}
	if len(p.QueuedJobs)+len(p.InProgressJobs) == 0 {
		return false, nil
	}
	je, err := call(a, ctx, func(ctx context.Context) (*wire.JobExecution, error) {
		return a.ex.Transport.StartNext(ctx, wire.StartNextPendingJobExecutionRequest{})
	})
	if err != nil {
		return false, fmt.Errorf("start next: %w", err)
	}
	if je == nil { // nothing left to start: canceled or removed since the poll
		return false, nil
	}
	if je.JobDocument == "" { // not every answer carries the document; the execution's description does
		d, err := call(a, ctx, func(ctx context.Context) (*wire.JobExecution, error) { return a.ex.Transport.Describe(ctx, je.JobID) })
		if err != nil {
			return false, fmt.Errorf("describe %s: %w", je.JobID, err)
		}
		je.JobDocument = d.JobDocument
	}
	st.InFlight = &InFlight{JobID: je.JobID, ExecutionNumber: je.ExecutionNumber, Document: je.JobDocument}
	x := a.newExecution(ctx, st)
	if err := x.drive(x.first()); err != nil {
		return false, err
	}
	return true, nil
}

// stateError is a failure to keep the device state: the agent cannot go on safely.
type stateError struct{ err error }

func (e *stateError) Error() string { return e.err.Error() }
func (e *stateError) Unwrap() error { return e.err }

// listen keeps the notify channel open, reconnecting with backoff, and wakes the main loop.
func (a *Agent) listen(ctx context.Context, wake *clock.Signal) {
	fails := 0
	for {
		stream, err := a.ex.Transport.Subscribe(ctx)
		if errors.Is(err, ErrNoNotify) {
			return
		}
		if err == nil {
			fails = 0
			a.connected.Store(true)
			a.emit(Event{Kind: EventConnected})
			for {
				n, err := stream.Next(ctx)
				if err != nil {
					break
				}
				switch n.Kind {
				case wire.NotifyHello, wire.NotifyPending:
					wake.Notify()
				case wire.NotifyCanceled:
					a.cancelExecution(n.JobID)
				}
			}
			stream.Close()
			a.connected.Store(false)
			if ctx.Err() != nil {
				return
			}
			a.emit(Event{Kind: EventDisconnected})
			wake.Notify() // poll at once: something may have been released while the link was down
		}
		if ctx.Err() != nil {
			return
		}
		fails++
		d := a.reconnect.delay(fails)
		if err != nil {
			a.emit(Event{Kind: EventRetry, State: "notify", Err: err, Delay: d})
		}
		if !clock.Sleep(a.clock, d, ctx.Done()) {
			return
		}
	}
}

// cancelExecution ends the running execution when the service canceled it.
func (a *Agent) cancelExecution(jobID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cur != nil && a.cur.jobID == jobID {
		a.cur.cancel(errCanceledByService)
	}
}

// boot makes the device run what it should, as its supervisor does at start: the application an earlier
// agent left running is adopted when it is the active version's, and stopped otherwise, together with
// anything else left behind; the active version's application is started when none was adopted.
func (a *Agent) boot(ctx context.Context, st DeviceState) {
	var want *App
	active, err := a.ex.Versions.Active()
	if err != nil {
		a.emit(Event{Kind: EventError, Err: fmt.Errorf("boot: %w", err)})
	} else if active != "" {
		if inst := a.installed(st, active); inst == nil {
			a.emit(Event{Kind: EventError, Err: fmt.Errorf("boot: active version %s is not in the device state", active)})
		} else if app, err := a.app(*inst); err != nil {
			a.emit(Event{Kind: EventError, Err: fmt.Errorf("boot: %w", err)})
		} else {
			want = app
		}
	}
	adopted, err := a.ex.Launcher.Adopt(ctx, want)
	if err != nil {
		a.emit(Event{Kind: EventError, Err: fmt.Errorf("boot: %w", err)})
	}
	if adopted {
		a.emit(Event{Kind: EventAdopted, State: want.Version.ID})
	}
	if adopted || want == nil || ctx.Err() != nil {
		return
	}
	if err := a.ex.Launcher.Start(ctx, *want); err != nil {
		a.emit(Event{Kind: EventError, Err: fmt.Errorf("boot: %w", err)})
	}
}

// installed returns what the state knows of version id: the committed, the previous or the in-flight one.
func (a *Agent) installed(s DeviceState, id string) *Installed {
	for _, i := range []*Installed{s.Current, s.Previous} {
		if i != nil && i.VersionID() == id {
			return i
		}
	}
	if f := s.InFlight; f != nil {
		digest := DocumentDigest(f.Document)
		if VersionID(f.JobID, digest) != id {
			return nil
		}
		k, job, err := a.parseDocument(f.Document)
		if err != nil {
			return nil
		}
		rec, err := job.Record()
		if err != nil {
			return nil
		}
		return &Installed{Kind: k.Name(), JobID: f.JobID, Digest: digest, Record: rec}
	}
	return nil
}

// app is the application of an installed version, nil when it runs none.
func (a *Agent) app(inst Installed) (*App, error) {
	k := a.kinds[0]
	if inst.Kind != "" {
		var err error
		if k, err = a.kindOf(inst.Kind); err != nil {
			return nil, fmt.Errorf("version %s: %w", inst.VersionID(), err)
		}
	}
	v, err := a.ex.Versions.Open(inst.VersionID())
	if err != nil {
		return nil, err
	}
	return k.App(a.device(), inst, v)
}

// launch starts the application of an installed version.
func (a *Agent) launch(ctx context.Context, inst Installed) error {
	app, err := a.app(inst)
	if err != nil || app == nil {
		return err
	}
	return a.ex.Launcher.Start(ctx, *app)
}

// device is what the agent's kinds know of the device.
func (a *Agent) device() Device {
	return Device{Thing: a.thing, Architecture: a.arch, DataDir: a.dataDir}
}

// Environ returns the environment of a script or an application: the deployment's variables, then PATH
// (the agent's own, or a standard one), then the kind's own variables, which win over both (a deployment
// cannot change the device's name). It is sorted, "KEY=value".
func Environ(deployed, own map[string]string) []string {
	vars := map[string]string{}
	for k, v := range deployed {
		vars[k] = v
	}
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	vars["PATH"] = path
	for k, v := range own {
		vars[k] = v
	}
	out := make([]string, 0, len(vars))
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// emit delivers an event to OnEvent.
func (a *Agent) emit(e Event) {
	if a.onEvent == nil {
		return
	}
	e.Time = a.clock.Now()
	e.Thing = a.thing
	a.eventMu.Lock()
	defer a.eventMu.Unlock()
	a.onEvent(e)
}

// call runs one data-plane call under the request timeout; a call that times out is a transient error.
func call[T any](a *Agent, ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	rctx, cancel := withTimeout(ctx, a.clock, a.requestTimeout)
	defer cancel()
	v, err := f(rctx)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(rctx), errRequestTimeout) {
		err = Transient(fmt.Errorf("%w after %v: %w", errRequestTimeout, a.requestTimeout, err))
	}
	return v, err
}

// sanitizeDetail makes s a valid statusDetails value: 1 to 1024 characters, no control or format
// characters. It counts bytes, so the value fits whichever way a service counts.
func sanitizeDetail(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.Is(unicode.C, r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if s == "" {
		return "unknown"
	}
	if len(s) > 1024 {
		cut := 1021
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}
