package faults_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/harness/faults/faultstest"
	"github.com/fleetlab/fleetlab/harness/robomaker"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/artifacts"
	"github.com/fleetlab/fleetlab/sim/clock/clocktest"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// roboMaker is the dialect the faults are tested in: RoboMaker's steps, as its driver names them.
var roboMaker = robomaker.Driver{}.Steps()

// transport is an agent.Transport that acknowledges everything and records the steps reported.
type transport struct{ steps chan string }

func newTransport() *transport { return &transport{steps: make(chan string, 64)} }

func (t *transport) Pending(context.Context) (wire.GetPendingJobExecutionsResponse, error) {
	return wire.GetPendingJobExecutionsResponse{}, nil
}
func (t *transport) StartNext(context.Context, wire.StartNextPendingJobExecutionRequest) (*wire.JobExecution, error) {
	return nil, nil
}
func (t *transport) Describe(context.Context, string) (*wire.JobExecution, error) { return nil, nil }
func (t *transport) Update(_ context.Context, _ string, req wire.UpdateJobExecutionRequest) (wire.UpdateJobExecutionResponse, error) {
	t.steps <- req.StatusDetails[wire.DetailStep]
	return wire.UpdateJobExecutionResponse{}, nil
}
func (t *transport) Subscribe(context.Context) (agent.Notifications, error) {
	return nil, agent.ErrNoNotify
}
func (t *transport) Fetch(context.Context, string, string, int64) (*agent.Object, error) {
	return nil, io.EOF
}

// scripts is a ScriptRunner that succeeds.
// scripts is a device's script runner that runs what a script says when it is a trivial `exit N` script (as the
// in-memory family does) and succeeds otherwise.
type scripts struct{}

func (scripts) Run(_ context.Context, s agent.Script) error {
	if s.Read == nil {
		return nil
	}
	text, err := s.Read()
	if err != nil {
		return err
	}
	code, _, err := agent.ParseTrivialScript(text)
	if err != nil || code == 0 {
		return err
	}
	return &agent.ExitError{Code: code}
}

// report sends one in-progress report of step through ex.
func report(ex agent.Executors, ctx context.Context, job, step string) error {
	_, err := ex.Transport.Update(ctx, job, wire.UpdateJobExecutionRequest{Status: wire.StatusInProgress,
		StatusDetails: map[string]string{wire.DetailStep: step}})
	return err
}

// within returns a context that ends after ten seconds, or with the test.
func within(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func world(names ...string) (*faultstest.World, map[string]*faultstest.Device) {
	devs := map[string]*faultstest.Device{}
	var fl []fleet.Device
	for _, n := range names {
		d := faultstest.NewDevice(n)
		devs[n] = d
		fl = append(fl, d)
	}
	return faultstest.NewWorld(fl...), devs
}

func mustNew(t *testing.T, fault string, params string, sel faults.Selector) *faults.Handle {
	t.Helper()
	h, err := faults.Catalog().New(faults.Spec{Fault: fault, Params: json.RawMessage(params), Target: sel}, roboMaker)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestCatalog(t *testing.T) {
	want := map[string]faults.Layer{
		"no-response": faults.LayerDevice, "crash": faults.LayerDevice, "script-exit": faults.LayerDevice,
		"power-cut": faults.LayerDevice, "slow-device": faults.LayerDevice,
		"slow-step": faults.LayerDevice, "slow-script": faults.LayerDevice, "disk-full": faults.LayerDevice, "clock-skew": faults.LayerDevice,
		"partition": faults.LayerLink, "latency": faults.LayerLink, "drop": faults.LayerLink, "bandwidth": faults.LayerLink,
		"etag-mismatch": faults.LayerCloud, "missing-object": faults.LayerCloud, "http-5xx": faults.LayerCloud,
		"throttle": faults.LayerCloud, "service-restart": faults.LayerCloud,
		"reset": faults.LayerDevice, "serial-noise": faults.LayerLink, "serial-unplug": faults.LayerLink,
	}
	defs := faults.Catalog().Definitions()
	if len(defs) != len(want) {
		t.Fatalf("%d faults, want %d", len(defs), len(want))
	}
	for _, d := range defs {
		if want[d.Name] != d.Layer || d.Summary == "" {
			t.Errorf("%s: layer %s, summary %q", d.Name, d.Layer, d.Summary)
		}
	}
	if _, err := faults.NewRegistry(append(faults.Builtin(), faults.Builtin()[0])...); err == nil ||
		!strings.Contains(err.Error(), "already registered") {
		t.Fatalf("a duplicate name registered: %v", err)
	}
}

func TestSpecDecoding(t *testing.T) {
	r := faults.Catalog()
	for _, tc := range []struct {
		spec string
		err  string
	}{
		{`{"fault":"crash","params":{"down":"30s"},"target":{"devices":["a"],"step":"Launching"}}`, ""},
		{`{"fault":"crash","params":{"down":30}}`, ""},
		{`{"fault":"crash","params":{"dwon":"30s"}}`, `unknown field "dwon"`},
		{`{"fault":"crash","params":{"down":"soon"}}`, "Go duration text"},
		{`{"fault":"crash","params":{"down":"1s","stay":true}}`, "not both"},
		{`{"fault":"meteor"}`, "unknown fault"},
		{`{"fault":"script-exit","params":{"script":"pre-launch","code":300}}`, "outside 1-255"},
		{`{"fault":"script-exit","params":{"script":"boot"}}`, "want download-condition"},
		{`{"fault":"script-exit","params":{"script":"pre-launch"},"target":{"step":"Launching"}}`, "leave the target's step out"},
		{`{"fault":"slow-step","params":{"delay":"1m"}}`, "needs the target's step"},
		{`{"fault":"no-response","target":{"step":"Booting"}}`, "not a RoboMaker step"},
		{`{"fault":"no-response","target":{"devices":["a"],"count":1}}`, "not 2"},
		{`{"fault":"drop","params":{"rate":1.5}}`, "outside (0, 1]"},
		{`{"fault":"etag-mismatch","target":{"devices":["a"]}}`, "takes no device target"},
		{`{"fault":"http-5xx","params":{"api":"robomaker"},"target":{"devices":["a"]}}`, "only the device API names devices"},
		{`{"fault":"http-5xx","params":{"api":"device"},"target":{"devices":["a"]}}`, ""},
		{`{"fault":"throttle","params":{"api":"artifacts","after":true}}`, "cannot be replaced"},
		{`{"fault":"service-restart","params":{"down":"-1s"}}`, "negative"},
	} {
		var s faults.Spec
		if err := json.Unmarshal([]byte(tc.spec), &s); err != nil {
			t.Fatalf("%s: %v", tc.spec, err)
		}
		_, err := r.New(s, roboMaker)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.spec, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want %q", tc.spec, err, tc.err)
		}
	}
}

func TestSelect(t *testing.T) {
	robots := []string{"r5", "r1", "r3", "r2", "r4", "r6", "r7", "r8", "r9", "r10"}
	pick := func(sel faults.Selector, seed uint64, salt string) []string {
		t.Helper()
		got, err := sel.Select(robots, seed, salt)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := pick(faults.Selector{}, 1, "x"); len(got) != 10 || !slices.IsSorted(got) {
		t.Fatalf("no selector picked %v, want every robot sorted", got)
	}
	if got := pick(faults.Selector{Devices: []string{"r3", "r1"}}, 1, "x"); !reflect.DeepEqual(got, []string{"r1", "r3"}) {
		t.Fatalf("devices picked %v", got)
	}
	a := pick(faults.Selector{Percent: 30}, 7, "crash")
	if len(a) != 3 {
		t.Fatalf("30%% of 10 picked %v", a)
	}
	if b := pick(faults.Selector{Percent: 30}, 7, "crash"); !reflect.DeepEqual(a, b) {
		t.Fatalf("the same seed picked %v, then %v", a, b)
	}
	differs := false
	for seed := uint64(8); seed < 20 && !differs; seed++ {
		differs = !reflect.DeepEqual(a, pick(faults.Selector{Count: 3}, seed, "crash"))
	}
	if !differs {
		t.Fatal("twelve other seeds all picked the same robots")
	}
	if got := pick(faults.Selector{Percent: 1}, 7, "crash"); len(got) != 1 {
		t.Fatalf("1%% of 10 picked %v, want 1 (rounded up)", got)
	}
	for _, sel := range []faults.Selector{{Devices: []string{"r99"}}, {Count: 11}, {Percent: 101}, {Count: -1}} {
		if _, err := sel.Select(robots, 1, "x"); err == nil {
			t.Errorf("%+v selected", sel)
		}
	}
}

// TestLifecycleGuard walks every call from every state: only the diagram's edges are allowed.
func TestLifecycleGuard(t *testing.T) {
	ctx := context.Background()
	type call func(h *faults.Handle, w faults.World) error
	calls := map[string]call{
		"arm":     func(h *faults.Handle, w faults.World) error { return h.Arm(w) },
		"inject":  func(h *faults.Handle, _ faults.World) error { return h.Inject(ctx) },
		"recover": func(h *faults.Handle, _ faults.World) error { return h.Recover(ctx) },
		"close":   func(h *faults.Handle, _ faults.World) error { return h.Close(ctx) },
	}
	// paths reach each state from Defined.
	paths := map[faults.State][]string{
		faults.StateDefined:   nil,
		faults.StateArmed:     {"arm"},
		faults.StateInjected:  {"arm", "inject"},
		faults.StateRecovered: {"arm", "inject", "recover"},
		faults.StateClosed:    {"arm", "close"},
	}
	allowed := map[faults.State]map[string]faults.State{
		faults.StateDefined:   {"arm": faults.StateArmed, "close": faults.StateClosed},
		faults.StateArmed:     {"inject": faults.StateInjected, "close": faults.StateClosed},
		faults.StateInjected:  {"recover": faults.StateRecovered, "close": faults.StateClosed},
		faults.StateRecovered: {"inject": faults.StateInjected, "close": faults.StateClosed},
		faults.StateClosed:    {"close": faults.StateClosed},
	}
	for from, path := range paths {
		for name, c := range calls {
			w, devs := world("a")
			h := mustNew(t, "clock-skew", `{"skew":"1h"}`, faults.Selector{})
			for _, p := range path {
				if err := calls[p](h, w); err != nil {
					t.Fatalf("%s: %v", p, err)
				}
			}
			err := c(h, w)
			to, ok := allowed[from][name]
			switch {
			case ok && err != nil:
				t.Errorf("%s from %s: %v", name, from, err)
			case ok && h.State() != to:
				t.Errorf("%s from %s: state %s, want %s", name, from, h.State(), to)
			case !ok && !errors.Is(err, faults.ErrLifecycle):
				t.Errorf("%s from %s: error %v, want ErrLifecycle", name, from, err)
			case !ok && h.State() != from:
				t.Errorf("%s from %s changed the state to %s", name, from, h.State())
			}
			// Closing an injected fault recovers it.
			if from == faults.StateInjected && name == "close" && devs["a"].Skew() != 0 {
				t.Errorf("close from Injected left the clock skewed")
			}
		}
	}
}

func TestUnsupportedAtArm(t *testing.T) {
	for _, tc := range []struct{ fault, params, ability string }{
		{"no-response", "", "fleet.Freezer"},
		{"crash", "", "fleet.Crasher"},
		{"power-cut", `{"duration":"1m"}`, "fleet.Crasher"},
		{"slow-device", `{"cpus":0.1}`, "fleet.Limiter"},
		{"script-exit", `{"script":"pre-launch"}`, "fleet.ExecutorHook"},
		{"slow-step", `{"delay":"1s"}`, "fleet.ExecutorHook"},
		{"disk-full", "", "fleet.ExecutorHook"},
		{"clock-skew", `{"skew":"1h"}`, "fleet.ClockSkewer"},
		{"partition", "", "fleet.Linker"},
		{"bandwidth", `{"bytesPerSecond":10}`, "fleet.Linker"},
		{"reset", "", "fleet.Resetter"},
		{"serial-noise", `{"rate":0.01}`, "fleet.SerialLine"},
		{"serial-unplug", "", "fleet.SerialLine"},
	} {
		w := faultstest.NewWorld(faultstest.Plain{N: "board-1"})
		w.BackendName = "rig"
		sel := faults.Selector{}
		if tc.fault == "slow-step" {
			sel.Step = rmwire.StepLaunching
		}
		h := mustNew(t, tc.fault, tc.params, sel)
		err := h.Arm(w)
		var ue *faults.UnsupportedError
		if !errors.As(err, &ue) || !errors.Is(err, faults.ErrUnsupported) || ue.Ability != tc.ability ||
			!strings.Contains(err.Error(), "backend rig") || !strings.Contains(err.Error(), "board-1") {
			t.Errorf("%s on a plain device: %v, want UnsupportedError naming rig, board-1 and %s", tc.fault, err, tc.ability)
		}
		if h.State() != faults.StateDefined || w.Hooks() != 0 {
			t.Errorf("%s: refused arm left state %s and %d hooks", tc.fault, h.State(), w.Hooks())
		}
	}
	// Cloud faults on device requests need them over HTTP; service-restart needs a restartable service.
	w, _ := world("a")
	w.NoHTTP = errors.New("backend inproc uses the in-memory transport")
	w.NoRestart = errors.New("the store is in memory")
	for _, spec := range []faults.Spec{{Fault: "etag-mismatch"}, {Fault: "missing-object"},
		{Fault: "http-5xx", Params: json.RawMessage(`{"api":"device"}`)}, {Fault: "service-restart"}} {
		h, err := faults.Catalog().New(spec, roboMaker)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Arm(w); err == nil || !strings.Contains(err.Error(), "in memory") && !strings.Contains(err.Error(), "in-memory") {
			t.Errorf("%s armed: %v", spec.Fault, err)
		}
	}
	if err := mustNew(t, "http-5xx", `{"api":"robomaker"}`, faults.Selector{}).Arm(w); err != nil {
		t.Errorf("a RoboMaker API fault needs no device traffic: %v", err)
	}
}

// TestNoResponseAtStep freezes the target in the agent's report of the step, after the service saw it.
func TestNoResponseAtStep(t *testing.T) {
	w, devs := world("a", "b")
	h := mustNew(t, "no-response", "", faults.Selector{Devices: []string{"a"}, Step: rmwire.StepLaunching})
	if err := h.Arm(w); err != nil {
		t.Fatal(err)
	}
	tr := newTransport()
	ex := w.Executors("a", agent.Executors{Transport: tr})
	ctx := context.Background()
	// Armed, not injected: nothing happens at the step.
	report(ex, ctx, "job-1", rmwire.StepLaunching)
	if devs["a"].Frozen() {
		t.Fatal("frozen before Inject")
	}
	if err := h.Inject(ctx); err != nil {
		t.Fatal(err)
	}
	report(ex, ctx, "job-2", rmwire.StepExecutingPreLaunch)
	if devs["a"].Frozen() {
		t.Fatal("frozen at the wrong step")
	}
	report(ex, ctx, "job-2", rmwire.StepLaunching)
	if !devs["a"].Frozen() {
		t.Fatal("not frozen at Launching")
	}
	if len(tr.steps) != 3 {
		t.Fatalf("%d reports reached the service, want 3 (the step is reported before the freeze)", len(tr.steps))
	}
	if devs["b"].Frozen() || len(devs["b"].Calls()) != 0 {
		t.Fatalf("b was touched: %v", devs["b"].Calls())
	}
	if err := h.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if devs["a"].Frozen() {
		t.Fatal("still frozen after Recover")
	}
	h.Close(ctx)
	if w.Hooks() != 0 {
		t.Fatalf("%d hooks left after Close", w.Hooks())
	}
	var struck []string
	for _, e := range w.Events() {
		if e.Kind == event.FaultInjected && e.Device != "" {
			struck = append(struck, e.Device+"@"+e.Step)
		}
	}
	if !reflect.DeepEqual(struck, []string{"a@Launching"}) {
		t.Fatalf("strikes recorded %v", struck)
	}
}

// TestNoResponseByEvents strikes a device without the executor hook from its agent events.
func TestNoResponseByEvents(t *testing.T) {
	d := &freezerOnly{Plain: faultstest.Plain{N: "a"}, frozen: make(chan struct{})}
	w := faultstest.NewWorld(d)
	h := mustNew(t, "no-response", "", faults.Selector{Step: rmwire.StepDownloadingExtracting})
	if err := h.Arm(w); err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	h.Inject(context.Background())
	w.AgentEvent("a", agent.Event{Kind: agent.EventState, JobID: "j", State: rmwire.StepValidating})
	w.AgentEvent("a", agent.Event{Kind: agent.EventState, JobID: "j", State: rmwire.StepDownloadingExtracting})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	select {
	case <-d.frozen:
	case <-ctx.Done():
		t.Fatal("not frozen after the agent entered the step")
	}
}

type freezerOnly struct {
	faultstest.Plain
	frozen chan struct{}
}

func (f *freezerOnly) Freeze() error { close(f.frozen); return nil }
func (f *freezerOnly) Thaw() error   { return nil }

// TestCrashAtStepRestarts kills the device in its report of the step (the report returns when the agent's
// context ends), restarts it after Down, and does not strike again when the agent resumes at the step.
func TestCrashAtStepRestarts(t *testing.T) {
	clk := clocktest.New(time.Time{})
	w, devs := world("a")
	w.Clk = clk
	ctx, stop := context.WithCancel(context.Background())
	devs["a"].OnCrash(stop) // the backend stops the agent
	h := mustNew(t, "crash", `{"down":"30s"}`, faults.Selector{Step: rmwire.StepDownloadingExtracting})
	if err := h.Arm(w); err != nil {
		t.Fatal(err)
	}
	h.Inject(context.Background())
	ex := w.Executors("a", agent.Executors{Transport: newTransport()})
	if err := report(ex, ctx, "job-1", rmwire.StepDownloadingExtracting); !errors.Is(err, context.Canceled) {
		t.Fatalf("the crashed report returned %v, want the agent's context error", err)
	}
	if devs["a"].Running() {
		t.Fatal("running after the crash")
	}
	<-clk.BlockUntil(1)
	clk.Advance(30 * time.Second)
	if err := devs["a"].Await(within(t), (*faultstest.Device).Running); err != nil {
		t.Fatal("not restarted 30 s after the crash")
	}
	// The agent resumes at the step: no second crash for the same execution.
	if err := report(ex, context.Background(), "job-1", rmwire.StepDownloadingExtracting); err != nil {
		t.Fatal(err)
	}
	if got := devs["a"].Calls(); !reflect.DeepEqual(got, []string{"Crash", "Restart"}) {
		t.Fatalf("calls %v", got)
	}
	h.Close(context.Background())
}

func TestScriptExitFailsOnlyItsScript(t *testing.T) {
	w, _ := world("a")
	h := mustNew(t, "script-exit", `{"script":"pre-launch","code":3}`, faults.Selector{})
	if err := h.Arm(w); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h.Inject(ctx)
	ex := w.Executors("a", agent.Executors{Transport: newTransport(), Scripts: scripts{}})
	report(ex, ctx, "j", rmwire.StepExecutingDownloadCondition)
	if err := ex.Scripts.Run(ctx, agent.Script{Name: "cond.sh"}); err != nil {
		t.Fatalf("the download condition failed: %v", err)
	}
	report(ex, ctx, "j", rmwire.StepExecutingPreLaunch)
	var ee *agent.ExitError
	if err := ex.Scripts.Run(ctx, agent.Script{Name: "pre_launch.sh"}); !errors.As(err, &ee) || ee.Code != 3 {
		t.Fatalf("pre-launch returned %v, want exit status 3", err)
	}
	h.Recover(ctx)
	if err := ex.Scripts.Run(ctx, agent.Script{Name: "pre_launch.sh"}); err != nil {
		t.Fatalf("after Recover: %v", err)
	}
	h.Close(ctx)
}

func TestDiskFull(t *testing.T) {
	w, _ := world("a")
	h := mustNew(t, "disk-full", "", faults.Selector{})
	if err := h.Arm(w); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h.Inject(ctx)
	ex := w.Executors("a", agent.Executors{Downloader: agent.NewMemoryDownloader()})
	_, err := ex.Downloader.Download(ctx, newTransport(), agent.Request{Bucket: "b", Key: "k", Name: "j.bundle"}, nil)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("download returned %v, want ENOSPC", err)
	}
	var pe *os.PathError
	if !errors.As(err, &pe) || agent.IsTransient(err) {
		t.Fatalf("%v: want a permanent *os.PathError", err)
	}
	h.Recover(ctx)
	if _, err := ex.Downloader.Download(ctx, newTransport(), agent.Request{Bucket: "b", Key: "k", Name: "j.bundle"}, nil); errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("after Recover: %v", err)
	}
	h.Close(ctx)
}

// TestSlowStepHoldsForDelay holds the report of the step until the delay has passed on the run's clock.
func TestSlowStepHoldsForDelay(t *testing.T) {
	clk := clocktest.New(time.Time{})
	w, _ := world("a")
	w.Clk = clk
	h := mustNew(t, "slow-step", `{"delay":"5m"}`, faults.Selector{Step: rmwire.StepLaunching})
	if err := h.Arm(w); err != nil {
		t.Fatal(err)
	}
	h.Inject(context.Background())
	ex := w.Executors("a", agent.Executors{Transport: newTransport()})
	done := make(chan error, 1)
	go func() { done <- report(ex, context.Background(), "j", rmwire.StepLaunching) }()
	<-clk.BlockUntil(1)
	clk.Advance(4 * time.Minute)
	select {
	case <-done:
		t.Fatal("released after 4 of 5 minutes")
	default:
	}
	clk.Advance(time.Minute)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Recover releases a held device at once.
	go func() { done <- report(ex, context.Background(), "k", rmwire.StepLaunching) }()
	<-clk.BlockUntil(1)
	h.Recover(context.Background())
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	h.Close(context.Background())
}

// TestLinkShapesCombineAndHeal arms two link faults on one device: their shapes combine, and a partition with
// a duration heals by itself.
func TestLinkShapesCombineAndHeal(t *testing.T) {
	clk := clocktest.New(time.Time{})
	w, devs := world("a")
	w.Clk, w.SeedValue = clk, 42
	ctx := context.Background()
	lat := mustNew(t, "latency", `{"latency":"2s"}`, faults.Selector{})
	part := mustNew(t, "partition", `{"duration":"1m"}`, faults.Selector{})
	for _, h := range []*faults.Handle{lat, part} {
		if err := h.Arm(w); err != nil {
			t.Fatal(err)
		}
		if err := h.Inject(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if l := devs["a"].Link(); !l.Partition || l.Latency != 2*time.Second || l.Seed == 0 {
		t.Fatalf("link %+v, want partitioned with 2 s latency and a seed", l)
	}
	<-clk.BlockUntil(1)
	clk.Advance(time.Minute)
	if err := devs["a"].Await(within(t), func(d *faultstest.Device) bool { return !d.Link().Partition }); err != nil {
		t.Fatal("the partition did not heal after its minute")
	}
	if l := devs["a"].Link(); l.Latency != 2*time.Second {
		t.Fatalf("healing the partition took the latency too: %+v", l)
	}
	lat.Close(ctx)
	part.Close(ctx)
	if l := devs["a"].Link(); l != (fleet.Link{}) {
		t.Fatalf("link after Close %+v", l)
	}
}

func TestCombineLinks(t *testing.T) {
	got := faults.CombineLinks(fleet.Link{DropRate: 0.5, BytesPerSecond: 100, Seed: 3},
		fleet.Link{DropRate: 0.5, Latency: time.Second}, fleet.Link{BytesPerSecond: 50})
	want := fleet.Link{DropRate: 0.75, Latency: time.Second, BytesPerSecond: 50, Seed: 3}
	if got != want {
		t.Fatalf("%+v, want %+v", got, want)
	}
}

func TestObjectFaults(t *testing.T) {
	w, _ := world("a")
	ctx := context.Background()
	etag := mustNew(t, "etag-mismatch", `{"bucket":"bundles","key":"hello.tar.gz"}`, faults.Selector{})
	missing := mustNew(t, "missing-object", `{"key":"cond.sh"}`, faults.Selector{})
	for _, h := range []*faults.Handle{etag, missing} {
		if err := h.Arm(w); err != nil {
			t.Fatal(err)
		}
	}
	if f := w.Artifact(artifacts.OpGetObject, "bundles", "hello.tar.gz"); f != nil {
		t.Fatalf("armed, not injected: %+v", f)
	}
	etag.Inject(ctx)
	missing.Inject(ctx)
	if f := w.Artifact(artifacts.OpGetObject, "bundles", "hello.tar.gz"); f == nil || len(f.Body) == 0 {
		t.Fatalf("GetObject of the bundle: %+v, want another body", f)
	}
	if f := w.Artifact(artifacts.OpPutObject, "bundles", "hello.tar.gz"); f != nil {
		t.Fatalf("PutObject was intercepted: %+v", f)
	}
	if f := w.Artifact(artifacts.OpHeadObject, "scripts", "cond.sh"); f == nil || !f.Missing {
		t.Fatalf("HeadObject of the script: %+v, want missing", f)
	}
	if f := w.Artifact(artifacts.OpGetObject, "bundles", "other.tar.gz"); f != nil {
		t.Fatalf("another object was intercepted: %+v", f)
	}
	etag.Close(ctx)
	missing.Close(ctx)
	if w.Hooks() != 0 {
		t.Fatal("hooks left")
	}
}

func TestHTTPErrors(t *testing.T) {
	w, _ := world("a", "b")
	ctx := context.Background()
	h := mustNew(t, "http-5xx", `{"api":"robomaker","operation":"CreateDeploymentJob","times":1,"after":true}`, faults.Selector{})
	if err := h.Arm(w); err != nil {
		t.Fatal(err)
	}
	h.Inject(ctx)
	create := faults.Call{API: faults.APIRoboMaker, Operation: "CreateDeploymentJob"}
	if r := w.Call(faults.Call{API: faults.APIRoboMaker, Operation: "DescribeDeploymentJob"}); r != nil {
		t.Fatalf("another operation failed: %+v", r)
	}
	r := w.Call(create)
	if r == nil || r.Status != http.StatusInternalServerError || r.Code != "InternalServerException" || !r.After {
		t.Fatalf("first CreateDeploymentJob: %+v", r)
	}
	if r := w.Call(create); r != nil {
		t.Fatalf("second CreateDeploymentJob failed though times is 1: %+v", r)
	}
	h.Recover(ctx)
	h.Inject(ctx) // re-injecting starts the count again
	if r := w.Call(create); r == nil {
		t.Fatal("re-injected fault did not answer")
	}
	h.Close(ctx)

	th := mustNew(t, "throttle", `{"api":"device"}`, faults.Selector{Devices: []string{"b"}})
	if err := th.Arm(w); err != nil {
		t.Fatal(err)
	}
	th.Inject(ctx)
	if r := w.Call(faults.Call{API: faults.APIDevice, Operation: "UpdateJobExecution", Thing: "a"}); r != nil {
		t.Fatalf("a is not a target: %+v", r)
	}
	r = w.Call(faults.Call{API: faults.APIDevice, Operation: "UpdateJobExecution", Thing: "b"})
	if r == nil || r.Status != http.StatusTooManyRequests || r.Code != wire.ErrThrottling {
		t.Fatalf("b's update: %+v", r)
	}
	th.Close(ctx)

	s3 := mustNew(t, "throttle", `{"api":"artifacts","operation":"GetObject"}`, faults.Selector{})
	if err := s3.Arm(w); err != nil {
		t.Fatal(err)
	}
	s3.Inject(ctx)
	if f := w.Artifact(artifacts.OpGetObject, "b", "k"); f == nil || f.Status != 503 || f.Code != "SlowDown" {
		t.Fatalf("GetObject: %+v, want 503 SlowDown", f)
	}
	s3.Close(ctx)
}

func TestServiceRestart(t *testing.T) {
	clk := clocktest.New(time.Time{})
	w, _ := world("a")
	w.Clk = clk
	ctx := context.Background()
	now := mustNew(t, "service-restart", "", faults.Selector{})
	if err := now.Arm(w); err != nil {
		t.Fatal(err)
	}
	if err := now.Inject(ctx); err != nil {
		t.Fatal(err)
	}
	if running, stops, starts := w.Service(); !running || stops != 1 || starts != 1 {
		t.Fatalf("restart at once: running %v, %d stops, %d starts", running, stops, starts)
	}
	now.Close(ctx)

	later := mustNew(t, "service-restart", `{"down":"2m"}`, faults.Selector{})
	later.Arm(w)
	later.Inject(ctx)
	if running, _, _ := w.Service(); running {
		t.Fatal("running during its two minutes down")
	}
	<-clk.BlockUntil(1)
	clk.Advance(2 * time.Minute)
	if err := w.AwaitService(within(t), true); err != nil {
		t.Fatal("not started after two minutes")
	}
	later.Recover(ctx) // already running: a no-op
	later.Close(ctx)
	if _, stops, starts := w.Service(); stops != 2 || starts != 2 {
		t.Fatalf("%d stops, %d starts", stops, starts)
	}
}

func TestClockSkew(t *testing.T) {
	w, devs := world("a", "b")
	h := mustNew(t, "clock-skew", `{"skew":"-90m"}`, faults.Selector{Devices: []string{"b"}})
	if err := h.Arm(w); err != nil {
		t.Fatal(err)
	}
	h.Inject(context.Background())
	if devs["b"].Skew() != -90*time.Minute || devs["a"].Skew() != 0 {
		t.Fatalf("skews a %v, b %v", devs["a"].Skew(), devs["b"].Skew())
	}
	h.Close(context.Background())
	if devs["b"].Skew() != 0 {
		t.Fatal("skew left after Close")
	}
}

func TestDurationJSON(t *testing.T) {
	var d faults.Duration
	if err := json.Unmarshal([]byte(`"1m30s"`), &d); err != nil || d.D() != 90*time.Second {
		t.Fatalf("%v %v", d, err)
	}
	if err := json.Unmarshal([]byte(`1.5`), &d); err != nil || d.D() != 1500*time.Millisecond {
		t.Fatalf("%v %v", d, err)
	}
	b, _ := json.Marshal(faults.Duration(2 * time.Minute))
	if string(b) != `"2m0s"` {
		t.Fatalf("%s", b)
	}
}

// TestResetAtStep pulses the target's reset in its report of the step, once per execution.
func TestResetAtStep(t *testing.T) {
	w, devs := world("a", "b")
	h := mustNew(t, "reset", "", faults.Selector{Devices: []string{"a"}, Step: rmwire.StepExecutingPreLaunch})
	if err := h.Arm(w); err != nil {
		t.Fatal(err)
	}
	if err := h.Inject(context.Background()); err != nil {
		t.Fatal(err)
	}
	ex := w.Executors("a", agent.Executors{Transport: newTransport()})
	for _, step := range []string{rmwire.StepDownloadingExtracting, rmwire.StepExecutingPreLaunch, rmwire.StepExecutingPreLaunch} {
		if err := report(ex, context.Background(), "job-1", step); err != nil {
			t.Fatal(err)
		}
	}
	resets := 0
	for _, c := range devs["a"].Calls() {
		if c == "Reset" {
			resets++
		}
	}
	if resets != 1 {
		t.Fatalf("calls %v, want one Reset (at the step, once per execution)", devs["a"].Calls())
	}
	if got := devs["b"].Calls(); slices.Contains(got, "Reset") {
		t.Fatalf("b was reset: %v", got)
	}
	h.Close(context.Background())
}

// TestSerialNoiseAndUnplug makes the target's line noisy from Inject to Recover, with the line's counts in the
// recovery's event, and unplugs a line for a duration of the run's clock.
func TestSerialNoiseAndUnplug(t *testing.T) {
	clk := clocktest.New(time.Time{})
	w, devs := world("a")
	w.Clk = clk
	ctx := context.Background()
	if _, err := faults.Catalog().New(faults.Spec{Fault: "serial-noise", Params: json.RawMessage(`{"rate":0.01}`),
		Target: faults.Selector{Step: rmwire.StepLaunching}}, roboMaker); err == nil {
		t.Error("serial-noise took a step")
	}
	for _, bad := range []string{`{"rate":0}`, `{"rate":0.9}`, `{}`} {
		if _, err := faults.Catalog().New(faults.Spec{Fault: "serial-noise", Params: json.RawMessage(bad)}, roboMaker); err == nil {
			t.Errorf("serial-noise %s accepted", bad)
		}
	}
	noise := mustNew(t, "serial-noise", `{"rate":0.01}`, faults.Selector{})
	if err := noise.Arm(w); err != nil {
		t.Fatal(err)
	}
	devs["a"].SetSerialStats(fleet.SerialStats{BytesChanged: 1, FramesSent: 10, FramesResent: 2, FramesCorrupt: 1})
	noise.Inject(ctx)
	if r, _ := devs["a"].Serial(); r != 0.01 {
		t.Fatalf("noise %v, want 0.01", r)
	}
	devs["a"].SetSerialStats(fleet.SerialStats{BytesChanged: 41, FramesSent: 110, FramesResent: 27, FramesCorrupt: 13})
	noise.Recover(ctx)
	if r, _ := devs["a"].Serial(); r != 0 {
		t.Fatalf("noise %v after recover", r)
	}
	var recovered string
	for _, e := range w.Events() {
		if e.Kind == event.FaultRecovered && e.Fault == "serial-noise" && e.Device == "a" {
			recovered = e.Reason
		}
	}
	if want := "40 bytes changed; lab side: 100 frames sent, 25 resent, 12 received damaged"; recovered != want {
		t.Errorf("recovery event %q, want %q", recovered, want)
	}
	noise.Close(ctx)

	unplug := mustNew(t, "serial-unplug", `{"for":"30s"}`, faults.Selector{})
	if err := unplug.Arm(w); err != nil {
		t.Fatal(err)
	}
	unplug.Inject(ctx)
	if _, u := devs["a"].Serial(); !u {
		t.Fatal("not unplugged")
	}
	<-clk.BlockUntil(1)
	clk.Advance(30 * time.Second)
	if err := devs["a"].Await(within(t), func(d *faultstest.Device) bool { _, u := d.Serial(); return !u }); err != nil {
		t.Fatal("not plugged back after 30 s")
	}
	unplug.Close(ctx)
}

// TestScriptExitLifecycle: in a dialect whose step runs several scripts (Greengrass V2's lifecycle), the
// script names the ones of its step the fault fails, and a component narrows it; a dialect without them
// refuses them.
func TestScriptExitLifecycle(t *testing.T) {
	gg := faults.Dialect{Name: "GG", Steps: []string{"Installing", "Starting"},
		Scripts:      map[string]string{"install": "Installing", "shutdown": "Installing", "run": "Starting"},
		ScriptSuffix: map[string]string{"install": " install", "shutdown": " shutdown", "run": " run"}}
	rm := faults.Dialect{Name: "RM", Steps: []string{"Pre"}, Scripts: map[string]string{"pre-launch": "Pre"}}
	for _, tc := range []struct {
		params string
		d      faults.Dialect
		err    string
	}{
		{`{"script":"install","component":"a"}`, gg, ""},
		{`{"script":"run"}`, gg, ""},
		{`{"script":"startup"}`, gg, "runs no such script"},
		{`{"script":"install"}`, rm, "runs no such script"},
		{`{"script":"pre-launch","component":"a"}`, rm, "belongs to no component"},
		{`{"script":"bootstrap"}`, gg, "want download-condition"},
	} {
		_, err := faults.Catalog().New(faults.Spec{Fault: "script-exit", Params: json.RawMessage(tc.params)}, tc.d)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s in %s: %v, want %q", tc.params, tc.d.Name, err, tc.err)
		}
		_, err = faults.Catalog().New(faults.Spec{Fault: "slow-script", Params: json.RawMessage(
			strings.Replace(tc.params, "{", `{"delay":"1m",`, 1))}, tc.d)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("slow-script %s in %s: %v, want %q", tc.params, tc.d.Name, err, tc.err)
		}
	}
}
