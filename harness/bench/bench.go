// Package bench measures rollout throughput: one deployment of a fixture bundle to N devices on a fleet host,
// through a dialect's driver, with what it cost — setup, rollout wall time, devices per minute, each device's
// deployment time, the process's CPU and peak memory, the device-API request rate — and beside it the limit of
// the machine: the raw loopback HTTP request rate of a minimal handler at the same client concurrency (Loopback).
//
// A point is one Run. It starts the service (in-memory store), the fleet on the host's backend (any
// harness.Backend: in-process goroutines, processes, containers, the boards of a rig file), opens the dialect's
// session (harness.Drivers) and registers the devices, arms the fault mix, deploys, waits until the deployment
// and every device's execution are over, and stops everything again. Everything is measured, nothing assumed:
// a device counts as succeeded only when the engine recorded its execution SUCCEEDED and the dialect's own
// description of the job reports it in its success status.
//
// Time is the wall clock (policy time runs TimeScale times faster): a benchmark measures the machine, so unlike
// a scenario it does not run on virtual time.
package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/dialect"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/fleet"
	"github.com/fleetlab/fleetlab/sim/service"
)

// Config is one benchmark point. Zero fields get defaults in Run.
type Config struct {
	// Backend hosts the devices (default harness.InProc with the in-memory transport); Host names it in the
	// result (default the backend's name).
	Backend harness.Backend
	Host    string
	// Driver is the dialect (default the harness's default, RoboMaker).
	Driver dialect.Driver
	// Devices is how many devices the deployment targets (required, ≥ 1).
	Devices int
	// Job is the deployment's policy, as a scenario spec gives it (concurrency, failure threshold, timeout);
	// the dialect checks it. Its Bundle is the fixture bundle deployed (default hello).
	Job dialect.JobSpec
	// BundleSize, when above the fixture bundle's own size, pads the bundle with an incompressible payload file
	// (Payload inside its package directory) to about that many bytes; every device downloads it whole and
	// checks its ETag.
	BundleSize int
	// Faults are armed and injected before the deployment starts (the harness's fault catalog, or Registry).
	Faults   []faults.Spec
	Registry *faults.Registry
	// Link is how the in-process host over HTTP (harness.InProc{Transport: harness.HTTP}) links its devices to
	// the service: LinkDirect, each agent straight to the service's listener (inproc.Options.DirectHTTP: no link
	// proxy, HTTP transports shared by the fleet), which refuses link faults; LinkProxied, through a link proxy
	// of each device's own (what link faults shape). Empty: LinkDirect unless a fault of the mix is of the link
	// layer, then LinkProxied. Other hosts take empty or LinkProxied, what they have (Result.Link says it).
	Link string
	// Register is how the devices are registered: "sdk" (default), through the dialect's SDK calls as a user
	// would, or "bulk", in one update inside the service's process (dialect.BulkRegisterer), for fleets so large
	// that the wire's registration would dominate the setup.
	Register string
	// Seed picks the faults' targets and seeds the agents' jitter (default 1).
	Seed uint64
	// TimeScale runs policy time (timeouts, rates, retries) that many times faster than the wall clock
	// (default 1). Backends whose agents run elsewhere have their timings divided by it.
	TimeScale float64
	// DialectOptions are passed to the service (service.Options.DialectOptions): large fleets need the
	// RoboMaker quota of robots per fleet raised.
	DialectOptions map[string]any
	// Wait bounds the rollout in wall time (default 10m); a rollout still running then is an error.
	Wait time.Duration
	// MemoryLimit, when positive, is the Go runtime's soft memory limit for this process during the point
	// (GOMEMLIMIT): the collector works harder rather than the heap and the stacks growing past it.
	MemoryLimit int64
	// GCPercent, when non-zero, is the collector's GOGC for this process during the point (negative: off): a
	// higher one collects less often, at the cost of a larger heap.
	GCPercent int
	// Loopback is how long the loopback limit is measured after the rollout (default 1s); negative skips it.
	Loopback time.Duration
	// Progress, when set, is called about every ProgressEvery (default 200ms) of the rollout, and once at the end.
	Progress      func(Progress)
	ProgressEvery time.Duration
	// Dir is where the service and the fleet keep their files (default a new temporary directory, removed).
	Dir string
}

// The ways of Config.Register.
const (
	RegisterSDK  = "sdk"
	RegisterBulk = "bulk"
)

// The links of Config.Link and Result.Link.
const (
	// LinkDirect: no link between the agents and the service's listener (inproc.Options.DirectHTTP).
	LinkDirect = "direct"
	// LinkProxied: a link proxy per device on loopback, where its link is shaped (every host over HTTP).
	LinkProxied = "proxied"
	// LinkAdapter: the memory transport's in-process adapter, where its link is shaped.
	LinkAdapter = "adapter"
)

// Payload is the name of the padding file BundleSize adds to the bundle's package directory.
const Payload = "payload.bin"

// Progress is how far a point has got: in the "setup" phase Done devices are up (Result.ReadyS), in the
// "rollout" phase Done devices have ended their execution.
type Progress struct {
	Phase            string // "setup", "rollout" or "done"
	Devices          int
	Done, Succeeded  int
	Elapsed          time.Duration
	DeploymentStatus string
}

// Result is one measured point, in the units its JSON names say.
type Result struct {
	Devices int    `json:"devices"`
	Host    string `json:"host"`
	Dialect string `json:"dialect"`
	// Transport is how the devices reach the service: "http" (loopback sockets) or "memory" (in process).
	Transport string `json:"transport"`
	// Link is what stands between each device and the service, where its link is shaped: "direct" (nothing;
	// link faults refused), "proxied" (a link proxy of its own) or "adapter" (the memory transport's).
	Link    string `json:"link"`
	Policy  string `json:"policy"`
	BundleB int    `json:"bundle_bytes"`
	Faults  string `json:"faults,omitempty"`
	Rep     int    `json:"rep"`
	// Register is how the devices were registered: "sdk" or "bulk" (Config.Register).
	Register string `json:"register"`

	// SetupS is the wall time to start the service and the fleet, register every device (through the
	// dialect's SDK path, or in bulk) and have every device up: its notify channel connected and a poll of its
	// pending jobs answered after that. StartS, RegisterS and ReadyS split it; the rollout starts once the fleet
	// is up, so its window holds the rollout and not the fleet's own start.
	SetupS    float64 `json:"setup_s"`
	StartS    float64 `json:"start_s"`
	RegisterS float64 `json:"register_s"`
	ReadyS    float64 `json:"ready_s"`
	// RolloutS is the wall time from the deployment's creation to its end with every device's execution over.
	RolloutS      float64 `json:"rollout_s"`
	DevicesPerMin float64 `json:"devices_per_min"`
	// Succeeded, Failed and Other count the devices by outcome (engine and dialect agreeing on success).
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	Other     int `json:"other"`
	// JobStatus is the deployment's final status as the dialect names it.
	JobStatus string `json:"job_status"`
	// FirstSuccessS and LastSuccessS are when the first and the last device succeeded, from the deployment's
	// creation; P50S, P95S and P99S the per-device deployment time (release to its execution's end) of every
	// device that finished.
	FirstSuccessS float64 `json:"first_success_s"`
	LastSuccessS  float64 `json:"last_success_s"`
	P50S          float64 `json:"p50_s"`
	P95S          float64 `json:"p95_s"`
	P99S          float64 `json:"p99_s"`
	// ServiceCPUSPer1000 is this process's CPU time (user+system) during the rollout per 1,000 devices: the
	// service's alone for hosts whose agents run in other processes, the service's and the agents' for inproc.
	ServiceCPUSPer1000 float64 `json:"service_cpu_s_per_1000"`
	// PeakRSSBytes is this process's peak resident set during the point (setup and rollout); IdleBytesPerDevice
	// the resident set added by starting and registering the fleet, per device.
	PeakRSSBytes uint64 `json:"peak_rss_bytes"`
	// MemoryLimitBytes is Config.MemoryLimit, 0 for none; GCPercent the collector's GOGC during the point (-1: off).
	MemoryLimitBytes int64 `json:"memory_limit_bytes,omitempty"`
	GCPercent        int   `json:"gc_percent"`
	// PeakStackBytes, PeakHeapBytes and PeakGoroutines are the Go runtime's peaks during the point, sampled
	// every 50 ms: goroutine stacks, heap objects (live and not yet collected), goroutines.
	PeakStackBytes     uint64  `json:"peak_stack_bytes"`
	PeakHeapBytes      uint64  `json:"peak_heap_bytes"`
	PeakGoroutines     uint64  `json:"peak_goroutines"`
	IdleBytesPerDevice float64 `json:"idle_bytes_per_device"`
	DeviceRequests     int64   `json:"device_requests"`
	RequestsPerDevice  float64 `json:"requests_per_device"`
	DeviceAPIRPS       float64 `json:"device_api_rps"`
	// PeakInFlight is the most device requests the service's handler ran at once; PeakClientInFlight the most
	// the devices had outstanding at once, counted where they call (agents in this process; 0 for other hosts).
	// LoopbackClients is the larger, at most 512. DeviceConns is how many connections the devices' requests
	// came over during the rollout (0 on the memory transport). The loopback limit's clients share as many
	// (LoopbackConns, at most one a client; one each when DeviceConns is 0): clients sharing fewer connections
	// are served more here — a third more at 2,000 devices' 126 than over one each — so the limit is measured
	// the way the devices used the service.
	PeakInFlight       int64   `json:"peak_in_flight"`
	PeakClientInFlight int64   `json:"peak_client_in_flight"`
	DeviceConns        int64   `json:"device_conns"`
	LoopbackClients    int     `json:"loopback_clients"`
	LoopbackConns      int     `json:"loopback_conns"`
	LoopbackLimitRPS   float64 `json:"loopback_limit_rps"`
	FractionOfLoopback float64 `json:"fraction_of_loopback"`
	// CPUUsPerRequest is this process's CPU time during the rollout per device request (everything in the
	// process: with inproc the agents' work too); LoopbackCPUUsPerRequest the same during the loopback limit's
	// measurement, per request of its clients. On a shared machine they compare where the rates cannot.
	CPUUsPerRequest         float64 `json:"cpu_us_per_request"`
	LoopbackCPUUsPerRequest float64 `json:"loopback_cpu_us_per_request"`
	// Completed is the completion curve: when each finished device's execution ended, from the deployment's
	// creation, sorted; past 1,001 devices, the times by which 0, 0.1 %, …, 100 % of them had (see Finished).
	Completed []float64 `json:"completed_s,omitempty"`
	Finished  int       `json:"finished"`
}

// Run measures one point.
func Run(ctx context.Context, cfg Config) (res Result, err error) {
	if cfg.Devices < 1 {
		return Result{}, fmt.Errorf("bench: %d devices: want at least 1", cfg.Devices)
	}
	if cfg.Backend == nil {
		cfg.Backend = harness.InProc{Transport: harness.InMemory}
	}
	if cfg.Host == "" {
		cfg.Host = cfg.Backend.Name()
	}
	if cfg.Driver == nil {
		cfg.Driver = harness.Drivers()[0]
	}
	if cfg.Job.Bundle == "" {
		cfg.Job.Bundle = "hello"
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	switch cfg.Register {
	case "":
		cfg.Register = RegisterSDK
	case RegisterSDK, RegisterBulk:
	default:
		return Result{}, fmt.Errorf("bench: register %q: want %s or %s", cfg.Register, RegisterSDK, RegisterBulk)
	}
	if cfg.TimeScale == 0 {
		cfg.TimeScale = 1
	}
	if err := harness.CheckTimeScale(cfg.TimeScale); err != nil {
		return Result{}, fmt.Errorf("bench: %w", err)
	}
	if cfg.Wait == 0 {
		cfg.Wait = 10 * time.Minute
	}
	if cfg.Loopback == 0 {
		cfg.Loopback = time.Second
	}
	if cfg.ProgressEvery == 0 {
		cfg.ProgressEvery = 200 * time.Millisecond
	}
	if cfg.Registry == nil {
		cfg.Registry = faults.Catalog()
	}
	if probs := cfg.Driver.CheckJob(cfg.Job); len(probs) > 0 {
		var msgs []string
		for _, p := range probs {
			msgs = append(msgs, p.Path+": "+p.Err.Error())
		}
		return Result{}, fmt.Errorf("bench: %s refuses the job: %s", cfg.Driver.Name(), strings.Join(msgs, "; "))
	}
	if err := resolveLink(&cfg); err != nil {
		return Result{}, err
	}
	if err := checkOpenFiles(cfg); err != nil {
		return Result{}, err
	}
	handles := make([]*faults.Handle, len(cfg.Faults))
	for i, s := range cfg.Faults {
		if handles[i], err = cfg.Registry.New(s, cfg.Driver.Steps()); err != nil {
			return Result{}, fmt.Errorf("bench: fault %d: %w", i+1, err)
		}
	}
	bundle, err := buildBundle(cfg.Job.Bundle, cfg.BundleSize, cfg.Seed)
	if err != nil {
		return Result{}, fmt.Errorf("bench: %w", err)
	}
	if cfg.Dir == "" {
		dir, err := os.MkdirTemp("", "fleetlab-bench-")
		if err != nil {
			return Result{}, fmt.Errorf("bench: %w", err)
		}
		defer os.RemoveAll(dir)
		cfg.Dir = dir
	}

	if cfg.MemoryLimit > 0 {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(cfg.MemoryLimit))
	}
	if cfg.GCPercent != 0 {
		defer debug.SetGCPercent(debug.SetGCPercent(cfg.GCPercent))
	}
	gogc := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(gogc)
	gcPercent := int(gogc[0].Value.Uint64()) // off reads as the uint64 of -1
	r := &runner{cfg: cfg, bundle: bundle, rec: newRecorder()}
	r.hooks = harness.NewFaultHooks(cfg.Backend.Name, func(name string) (fleet.Device, bool) { return r.fleet.Device(name) },
		cfg.Seed)
	defer r.close()
	settle()
	resetPeakRSS()
	baseRSS := currentRSS()
	mem := sampleMemory(50 * time.Millisecond)
	defer mem.peaks()
	wall := clock.Real{}
	began := wall.Now()
	if err := r.start(ctx); err != nil {
		return Result{}, err
	}
	started := wall.Now()
	if err := r.register(ctx); err != nil {
		return Result{}, err
	}
	registered := wall.Now()
	if err := r.awaitReady(ctx); err != nil {
		return Result{}, err
	}
	ready := wall.Now()
	idleRSS := currentRSS()
	for i, h := range handles {
		if err := h.Arm(r.world()); err != nil {
			return Result{}, fmt.Errorf("bench: arm %s: %w", cfg.Faults[i].Fault, err)
		}
		r.faults = append(r.faults, h)
		if err := h.Inject(ctx); err != nil {
			return Result{}, fmt.Errorf("bench: inject %s: %w", cfg.Faults[i].Fault, err)
		}
	}

	res = Result{Devices: cfg.Devices, Host: cfg.Host, Dialect: cfg.Driver.Name(), Transport: r.transport(), Link: cfg.Link,
		Policy: policy(cfg.Job), BundleB: len(bundle), Faults: faultNames(cfg.Faults), Register: cfg.Register,
		StartS: started.Sub(began).Seconds(), RegisterS: registered.Sub(started).Seconds(),
		ReadyS: ready.Sub(registered).Seconds()}
	res.SetupS = res.StartS + res.RegisterS + res.ReadyS
	res.IdleBytesPerDevice = float64(int64(idleRSS)-int64(baseRSS)) / float64(cfg.Devices)

	r.counter.reset()
	r.clients.reset()
	cpu0 := cpuTime()
	created := wall.Now()
	r.rec.origin(created)
	job, err := r.deploy(ctx)
	if err != nil {
		return res, err
	}
	final, err := r.wait(ctx, job, created)
	cpu := cpuTime() - cpu0
	if err != nil {
		return res, err
	}
	res.RolloutS = r.rec.end(harness.JobID(job)).Sub(created).Seconds()
	res.ServiceCPUSPer1000 = cpu.Seconds() / float64(cfg.Devices) * 1000
	res.PeakRSSBytes, res.MemoryLimitBytes, res.GCPercent = peakRSS(), cfg.MemoryLimit, gcPercent
	res.PeakStackBytes, res.PeakHeapBytes, res.PeakGoroutines = mem.peaks()
	res.DeviceRequests = r.counter.total.Load()
	res.PeakInFlight = r.counter.peak.Load()
	res.PeakClientInFlight = r.clients.peak.Load()
	res.DeviceConns = r.counter.conns.Load()
	res.RequestsPerDevice = float64(res.DeviceRequests) / float64(cfg.Devices)
	if res.DeviceRequests > 0 {
		res.CPUUsPerRequest = cpu.Seconds() * 1e6 / float64(res.DeviceRequests)
	}
	if res.RolloutS > 0 {
		res.DeviceAPIRPS = float64(res.DeviceRequests) / res.RolloutS
	}
	r.outcome(&res, final, job)
	if res.RolloutS > 0 {
		res.DevicesPerMin = float64(res.Succeeded) / res.RolloutS * 60
	}
	r.close()

	if cfg.Loopback > 0 {
		// The fleet's garbage collected first, so the limit is the machine's, not what a collection of the
		// point's heap leaves of it.
		settle()
		res.LoopbackClients = int(min(max(res.PeakInFlight, res.PeakClientInFlight, 1), maxLoopbackClients))
		lcpu := cpuTime()
		lim, err := Loopback(ctx, res.LoopbackClients, int(min(res.DeviceConns, int64(res.LoopbackClients))), cfg.Loopback)
		if err != nil {
			return res, fmt.Errorf("bench: loopback limit: %w", err)
		}
		if lim.Requests > 0 {
			res.LoopbackCPUUsPerRequest = (cpuTime() - lcpu).Seconds() * 1e6 / float64(lim.Requests)
		}
		res.LoopbackConns, res.LoopbackLimitRPS = lim.Conns, lim.RPS
		if lim.RPS > 0 {
			res.FractionOfLoopback = res.DeviceAPIRPS / lim.RPS
		}
	}
	return res, nil
}

// openFilesPerDevice is what a device of an in-process fleet over HTTP holds open in this process, both ends of
// each connection counted: its notify websocket, its share of the pools' connections on the direct path, and on
// the proxied path its link proxy's connections too (measured at 1,000 devices: 2,270 open files direct, 9,014
// proxied), with some room.
func openFilesPerDevice(link string) float64 {
	if link == LinkProxied {
		return 9.5
	}
	return 2.5
}

// checkOpenFiles refuses an in-process fleet over HTTP that would run this process out of open files: the
// connections past the limit would fail, and the devices retry them, so the point would measure the retries.
func checkOpenFiles(cfg Config) error {
	b, ok := cfg.Backend.(harness.InProc)
	if !ok || b.Transport != harness.HTTP {
		return nil
	}
	limit := service.OpenFileLimit()
	per := openFilesPerDevice(cfg.Link)
	if need := int(float64(cfg.Devices)*per) + 256; need > limit {
		return fmt.Errorf("bench: %d in-process devices over HTTP (%s path) need about %d open files in this process "+
			"(%.1f a device, both ends of each connection); the open-file limit is %d: raise it (ulimit -n) to bench "+
			"this many over HTTP, or use the memory transport (--transport memory), or at most %d devices",
			cfg.Devices, cfg.Link, need, per, limit, int(float64(limit-256)/per))
	}
	return nil
}

// maxLoopbackClients bounds the loopback measurement's clients: past a few hundred connections a loopback
// server on two cores serves no more, and each costs a file descriptor.
const maxLoopbackClients = 512

// settle returns what earlier points left to the OS, so a point's memory figures are its own.
func settle() {
	runtime.GC()
	debug.FreeOSMemory()
}

func policy(j dialect.JobSpec) string {
	var parts []string
	if j.Concurrency != 0 {
		parts = append(parts, fmt.Sprintf("concurrency=%d%%", j.Concurrency))
	}
	if j.FailureThreshold != 0 {
		parts = append(parts, fmt.Sprintf("threshold=%d%%", j.FailureThreshold))
	}
	if j.Timeout != 0 {
		parts = append(parts, "timeout="+j.Timeout.D().String())
	}
	if len(parts) == 0 {
		return "defaults"
	}
	return strings.Join(parts, ",")
}

func faultNames(fs []faults.Spec) string {
	var names []string
	for _, f := range fs {
		n := f.Fault
		switch {
		case f.Target.Percent != 0:
			n += fmt.Sprintf("@%g%%", f.Target.Percent)
		case f.Target.Count != 0:
			n += fmt.Sprintf("@%d", f.Target.Count)
		case len(f.Target.Devices) > 0:
			n += "@" + strings.Join(f.Target.Devices, "+")
		}
		names = append(names, n)
	}
	return strings.Join(names, ",")
}

// runner is one point's environment.
type runner struct {
	cfg     Config
	bundle  []byte
	rec     *recorder
	hooks   *harness.FaultHooks
	counter counter // at the service's handler
	clients counter // where the devices call, for hosts in this process

	svc     *service.Service
	fleet   fleet.Fleet
	session dialect.Session
	names   []string
	host    *host
	faults  []*faults.Handle
	clock   clock.Clock
	ctx     context.Context
	cancel  context.CancelFunc
	closed  bool
}

func (r *runner) transport() string {
	if r.cfg.Link == LinkAdapter {
		return "memory"
	}
	return "http"
}

// start starts the service and the fleet.
func (r *runner) start(ctx context.Context) error {
	r.clock = clock.Real{} // a scaled clock at scale 1 would cost a goroutine per timer
	if r.cfg.TimeScale != 1 {
		r.clock = clock.NewScaled(nil, r.cfg.TimeScale)
	}
	r.ctx, r.cancel = context.WithCancel(ctx)
	// Polls are watched from the fleet's first: a device that comes up before registration ends still counts.
	r.counter.up.Store(newReadiness(r.cfg.Devices, func(thing string) bool { return r.svc.Devices.Connected(thing) > 0 }))
	// The service may hold as many connections as the process has files for: checkOpenFiles has checked that an
	// in-process fleet's ends of them fit beside it, and the default cap, a share of the limit a listener, would
	// answer the last devices of a large fleet 503.
	svc, err := service.New(service.Options{Dir: r.cfg.Dir, InMemoryStore: true, Clock: r.clock,
		Limits: service.Limits{MaxConns: service.OpenFileLimit()},
		Events: r.rec, DialectOptions: r.cfg.DialectOptions, Intercept: r.hooks.Intercept,
		ArtifactIntercept: r.hooks.Artifact, Wrap: r.counter.wrap})
	if err != nil {
		return &harness.InfraError{Err: fmt.Errorf("start service: %w", err)}
	}
	r.svc = svc
	if err := svc.Start("127.0.0.1:0", "127.0.0.1:0"); err != nil {
		return &harness.InfraError{Err: fmt.Errorf("start service: %w", err)}
	}
	r.names, err = fleet.Names(nil, r.cfg.Devices, "robot")
	if err != nil {
		return err
	}
	archs := make(map[string]string, len(r.names))
	for _, n := range r.names {
		archs[n] = fleet.ArchAMD64
	}
	fleetDir, err := os.MkdirTemp(r.cfg.Dir, "fleet-")
	if err != nil {
		return err
	}
	setup := harness.FleetSetup{Endpoint: svc.Endpoint(), Names: r.names, Architectures: archs, Clock: r.clock,
		Scale: r.cfg.TimeScale, Seed: r.cfg.Seed, Dir: fleetDir, OnEvent: r.hooks.AgentEvent, Events: r.rec,
		InMemory: &harness.InMemoryService{Devices: &countingDevices{DeviceAPI: svc.Devices, c: &r.counter},
			Objects: &countingObjects{Objects: svc.Artifacts, c: &r.counter}}}
	backend := r.cfg.Backend
	switch b := backend.(type) {
	case harness.InProc:
		backend = countCalls(b, &r.clients)
	}
	f, err := backend.Start(r.ctx, setup)
	if err != nil {
		return &harness.InfraError{Err: fmt.Errorf("backend %s: %w", r.cfg.Backend.Name(), err)}
	}
	r.fleet = f
	r.host = &host{r: r, transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	if r.session, err = r.cfg.Driver.Open(r.host); err != nil {
		return &harness.InfraError{Err: fmt.Errorf("open dialect %s: %w", r.cfg.Driver.Name(), err)}
	}
	return r.host.failure()
}

// register registers every device through the dialect's session.
func (r *runner) register(ctx context.Context) error {
	var err error
	if r.cfg.Register == RegisterBulk {
		bulk, ok := r.session.(dialect.BulkRegisterer)
		if !ok {
			return fmt.Errorf("bench: dialect %s cannot register in bulk (use the SDK path)", r.cfg.Driver.Name())
		}
		r.host.Do(func() { err = bulk.RegisterBulk(ctx, r.fleet.Devices()) })
	} else {
		r.host.Do(func() { err = r.session.Register(ctx, r.fleet.Devices()) })
	}
	if err == nil {
		err = r.host.failure()
	}
	if err != nil {
		return &harness.InfraError{Err: fmt.Errorf("register %d devices: %w", r.cfg.Devices, err)}
	}
	return nil
}

func (r *runner) deploy(ctx context.Context) (string, error) {
	var job string
	var err error
	r.host.Do(func() {
		job, err = r.session.Deploy(ctx, r.cfg.Job.Bundle, r.cfg.Job.Architectures, r.cfg.Driver.Config(r.cfg.Job))
	})
	if err == nil {
		err = r.host.failure()
	}
	if err != nil {
		return "", fmt.Errorf("bench: deploy: %w", err)
	}
	return job, nil
}

// wait waits until the deployment is over in the engine and every device's execution has ended, reporting
// progress, and returns the dialect's description of the job.
func (r *runner) wait(ctx context.Context, job string, created time.Time) (dialect.Job, error) {
	id := harness.JobID(job)
	wall := clock.Real{}
	deadline := created.Add(r.cfg.Wait)
	tick := min(r.cfg.ProgressEvery, 10*time.Millisecond)
	lastReport := created
	for {
		d, derr := r.svc.Engine.Deployment(id)
		done, ok := r.rec.counts(id)
		// Over once every device's execution has ended and the deployment has too — or, for a continuous one
		// (Greengrass V2's thing-group deployments stay active), once every targeted device's has.
		// allEnded copies every execution: asked only when the cheap conditions hold (at 100,000 devices a copy
		// a tick was a quarter of a GiB of garbage every 10 ms).
		over := derr == nil && (d.Status.Terminal() || done >= r.cfg.Devices) && r.allEnded(id)
		now := wall.Now()
		status := ""
		if derr == nil {
			status = string(d.Status)
		}
		if r.cfg.Progress != nil && (over || now.Sub(lastReport) >= r.cfg.ProgressEvery) {
			lastReport = now
			r.cfg.Progress(Progress{Phase: "rollout", Devices: r.cfg.Devices, Done: done, Succeeded: ok,
				Elapsed: now.Sub(created), DeploymentStatus: status})
		}
		if over {
			break
		}
		if now.After(deadline) {
			return dialect.Job{}, fmt.Errorf("bench: deployment %s still %s after %v: %d of %d devices done", id,
				status, r.cfg.Wait, done, r.cfg.Devices)
		}
		if !clock.Sleep(wall, tick, ctx.Done()) {
			return dialect.Job{}, ctx.Err()
		}
	}
	var j dialect.Job
	var err error
	r.host.Do(func() {
		ctx, cancel := r.host.CallContext()
		defer cancel()
		j, err = r.session.Describe(ctx, job)
	})
	if err != nil {
		return dialect.Job{}, &harness.InfraError{Err: fmt.Errorf("describe %s: %w", id, err)}
	}
	return j, nil
}

// allEnded reports whether every execution of the deployment has ended in the engine and its end reached the
// recorder.
func (r *runner) allEnded(id string) bool {
	xs, err := r.svc.Engine.Executions(id)
	if err != nil {
		return false
	}
	for _, x := range xs {
		if !x.Status.Terminal() {
			return false
		}
	}
	done, _ := r.rec.counts(id)
	return done >= len(xs)
}

// outcome fills in the outcome and the timings of the rollout.
func (r *runner) outcome(res *Result, j dialect.Job, job string) {
	id := harness.JobID(job)
	st := r.cfg.Driver.Statuses()
	res.JobStatus = j.Status
	success := successStatuses(st)
	reported := make(map[string]string, len(j.Robots))
	for _, rb := range j.Robots {
		reported[rb.Name] = rb.Status
	}
	times := r.rec.devices(id)
	var durations []float64
	for _, name := range r.names {
		t, ok := times[name]
		switch {
		case ok && t.status == engine.ExecSucceeded && success[reported[name]]:
			res.Succeeded++
			s := t.end.Sub(r.rec.createdAt()).Seconds()
			if res.Succeeded == 1 || s < res.FirstSuccessS {
				res.FirstSuccessS = s
			}
			res.LastSuccessS = max(res.LastSuccessS, s)
		case ok && (t.status == engine.ExecFailed || t.status == engine.ExecTimedOut || t.status == engine.ExecRejected):
			res.Failed++
		default:
			res.Other++
		}
		if ok && !t.released.IsZero() {
			durations = append(durations, t.end.Sub(t.released).Seconds())
		}
		if ok {
			res.Completed = append(res.Completed, t.end.Sub(r.rec.createdAt()).Seconds())
			res.Finished++
		}
	}
	slices.Sort(durations)
	slices.Sort(res.Completed)
	res.Completed = curve(res.Completed)
	res.P50S, res.P95S, res.P99S = Quantile(durations, 0.5), Quantile(durations, 0.95), Quantile(durations, 0.99)
}

// successNames are the device statuses that mean a device has the deployment, across the dialects' names:
// RoboMaker's InSync, Greengrass V2's SUCCEEDED and COMPLETED, Greengrass V1's Success, OpsWorks' successful.
var successNames = []string{"InSync", "SUCCEEDED", "COMPLETED", "Succeeded", "Success", "successful"}

// successStatuses are the device statuses of a dialect that mean success: those of its device statuses, not
// failed ones, that successNames has. A dialect with none counts no device as deployed, so a bench of it
// reports every device undeployed rather than any wrongly deployed.
func successStatuses(st dialect.Statuses) map[string]bool {
	out := map[string]bool{}
	for _, s := range st.Device {
		if !st.IsDeviceFailed(s) && slices.Contains(successNames, s) {
			out[s] = true
		}
	}
	return out
}

// curvePoints bounds the completion curve a result keeps.
const curvePoints = 1000

// curve thins sorted completion times to at most curvePoints+1: the times by which 0, 1/curvePoints, …, all of
// the finished devices had ended. Fewer times are kept whole.
func curve(sorted []float64) []float64 {
	if len(sorted) <= curvePoints+1 {
		return sorted
	}
	out := make([]float64, curvePoints+1)
	for i := range out {
		out[i] = sorted[(len(sorted)-1)*i/curvePoints]
	}
	return out
}

// Quantile is the q-quantile of sorted values (nearest rank); 0 for none.
func Quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// close stops the faults, the fleet and the service; it is safe to call twice.
func (r *runner) close() {
	if r.closed {
		return
	}
	r.closed = true
	for i := len(r.faults) - 1; i >= 0; i-- {
		r.faults[i].Close(context.Background())
	}
	if r.fleet != nil {
		r.fleet.Close()
	}
	if r.svc != nil {
		r.svc.Close()
	}
	if r.host != nil {
		r.host.transport.CloseIdleConnections()
	}
	if r.cancel != nil {
		r.cancel()
	}
}

// counter counts the devices' requests to the device API and the artifact downloads, and the most in flight
// at once.
type counter struct {
	total, inFlight, peak atomic.Int64
	// up, until the fleet is up, is told of every poll of a device's pending jobs.
	up atomic.Pointer[readiness]
	// seen holds the remote address of every connection a counted request came over since reset; conns counts
	// them.
	seen  sync.Map
	conns atomic.Int64
}

// over notes the connection a request came over.
func (c *counter) over(remote string) {
	if _, ok := c.seen.Load(remote); ok {
		return
	}
	if _, loaded := c.seen.LoadOrStore(remote, struct{}{}); !loaded {
		c.conns.Add(1)
	}
}

// polled runs poll, a device's GetPendingJobExecutions, and tells the readiness watch, if any, when it began with
// the device's notify channel connected.
func (c *counter) polled(thing string, poll func()) {
	up := c.up.Load()
	if up == nil {
		poll()
		return
	}
	connected := up.connected(thing)
	poll()
	if connected {
		up.mark(thing)
	}
}

// readiness watches a fleet come up: a device is up once its notify channel is connected and a poll of its
// pending jobs begun after that has been answered — whatever the answer: a device polling before it was
// registered is told its thing is unknown and backs off, and the next deployment's notification wakes it. From
// then on the device only waits to be told of a deployment.
type readiness struct {
	connected func(thing string) bool
	want      int
	mu        sync.Mutex
	up        map[string]bool
	all       chan struct{} // closed when want devices are up
}

func newReadiness(want int, connected func(string) bool) *readiness {
	return &readiness{connected: connected, want: want, up: make(map[string]bool, want), all: make(chan struct{})}
}

func (u *readiness) mark(thing string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.up[thing] {
		return
	}
	u.up[thing] = true
	if len(u.up) == u.want {
		close(u.all)
	}
}

func (u *readiness) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.up)
}

// readyWait bounds the wait for a fleet to come up, in wall time.
const readyWait = 2 * time.Minute

// awaitReady waits until every device is up (the readiness start put on the counter), reporting progress; then
// stops watching.
func (r *runner) awaitReady(ctx context.Context) error {
	up := r.counter.up.Load()
	defer r.counter.up.Store(nil)
	wall := clock.Real{}
	timeout := wall.NewTimer(readyWait)
	defer timeout.Stop()
	every := max(r.cfg.ProgressEvery, 10*time.Millisecond)
	began := wall.Now()
	progress := func() {
		if r.cfg.Progress != nil {
			r.cfg.Progress(Progress{Phase: "setup", Devices: r.cfg.Devices, Done: up.count(), Elapsed: wall.Now().Sub(began)})
		}
	}
	for {
		progress()
		report := wall.NewTimer(every)
		select {
		case <-up.all:
			report.Stop()
			progress() // every device up
			return nil
		case <-ctx.Done():
			report.Stop()
			return ctx.Err()
		case <-timeout.C():
			report.Stop()
			return &harness.InfraError{Err: fmt.Errorf("%d of %d devices came up within %s (a device is up once "+
				"its notify channel is connected and a poll of its pending jobs begun after that is answered): see the agents' errors",
				up.count(), r.cfg.Devices, readyWait)}
		case <-report.C():
		}
	}
}

func (c *counter) reset() {
	c.seen.Clear()
	c.conns.Store(0)
	c.total.Store(0)
	c.peak.Store(c.inFlight.Load())
}

func (c *counter) begin() {
	c.total.Add(1)
	n := c.inFlight.Add(1)
	for {
		p := c.peak.Load()
		if n <= p || c.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

func (c *counter) end() { c.inFlight.Add(-1) }

// wrap is the service's Options.Wrap: it counts the device requests of the API listener.
func (c *counter) wrap(listener string, h http.Handler) http.Handler {
	if listener != service.ListenerAPI {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		p := req.URL.Path
		if !strings.HasPrefix(p, "/things/") && !strings.HasPrefix(p, "/artifacts/") || strings.HasSuffix(p, "/notify") {
			h.ServeHTTP(w, req)
			return
		}
		c.begin()
		defer c.end()
		c.over(req.RemoteAddr)
		if rest, ok := strings.CutPrefix(p, "/things/"); ok && req.Method == http.MethodGet && c.up.Load() != nil {
			if thing, tail, _ := strings.Cut(rest, "/"); tail == "jobs" {
				c.polled(thing, func() { h.ServeHTTP(w, req) })
				return
			}
		}
		h.ServeHTTP(w, req)
	})
}

// recorder keeps, per deployment and device, when its execution was released and when it ended: the engine's
// events, stamped on arrival with the wall clock.
type recorder struct {
	mu      sync.Mutex
	created time.Time
	byDep   map[string]map[string]*deviceTimes
	done    map[string]int
	ok      map[string]int
	ended   map[string]time.Time // when the deployment reached a final status
}

type deviceTimes struct {
	released, end time.Time
	status        engine.ExecStatus
}

func newRecorder() *recorder {
	return &recorder{byDep: map[string]map[string]*deviceTimes{}, done: map[string]int{}, ok: map[string]int{},
		ended: map[string]time.Time{}}
}

func (c *recorder) origin(t time.Time) {
	c.mu.Lock()
	c.created = t
	c.mu.Unlock()
}

func (c *recorder) createdAt() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.created
}

// Emit implements event.Sink.
func (c *recorder) Emit(e event.Event) {
	if e.Kind == event.DeploymentState && engine.Status(e.To).Terminal() {
		now := clock.Real{}.Now()
		c.mu.Lock()
		if _, ok := c.ended[e.Deployment]; !ok {
			c.ended[e.Deployment] = now
		}
		c.mu.Unlock()
		return
	}
	if e.Device == "" || e.Deployment == "" || e.Kind != event.ExecutionReleased && e.Kind != event.ExecutionState {
		return
	}
	now := clock.Real{}.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	devs := c.byDep[e.Deployment]
	if devs == nil {
		devs = map[string]*deviceTimes{}
		c.byDep[e.Deployment] = devs
	}
	t := devs[e.Device]
	if t == nil {
		t = &deviceTimes{}
		devs[e.Device] = t
	}
	switch {
	case e.Kind == event.ExecutionReleased:
		if t.released.IsZero() {
			t.released = now
		}
	case engine.ExecStatus(e.To).Terminal() && t.end.IsZero():
		t.end, t.status = now, engine.ExecStatus(e.To)
		c.done[e.Deployment]++
		if t.status == engine.ExecSucceeded {
			c.ok[e.Deployment]++
		}
	}
}

// end is when the deployment and every device's execution were over: the later of the deployment's final
// status and the last execution's end.
func (c *recorder) end(dep string) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	end := c.ended[dep]
	for _, t := range c.byDep[dep] {
		if t.end.After(end) {
			end = t.end
		}
	}
	return end
}

func (c *recorder) counts(dep string) (done, succeeded int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.done[dep], c.ok[dep]
}

func (c *recorder) devices(dep string) map[string]deviceTimes {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]deviceTimes, len(c.byDep[dep]))
	for n, t := range c.byDep[dep] {
		if !t.end.IsZero() {
			out[n] = *t
		}
	}
	return out
}

var _ event.Sink = (*recorder)(nil)

// errFailed is what a host's Fatalf records.
var errFailed = errors.New("failed")
