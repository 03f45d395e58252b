package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sync"
	"time"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// Options configure a Fleet. Zero fields take the defaults listed; New resolves them all.
type Options struct {
	// Endpoint is the service's device API base URL, as this process reaches it: the robots' link proxies
	// forward to it. Required.
	Endpoint string
	// Engines are the Docker engines the robots run on, the i-th robot (in name order) on engine i mod
	// len(Engines). Default: one Engine{}, the one DOCKER_HOST names.
	Engines []Engine

	// Image is a robot image present on every engine. Empty: BuildImage builds it from Binary and Busybox.
	Image string
	// Binary is the static fleetlab-agent program the image is built with.
	Binary string
	// Busybox is the static busybox the image is built with (default DefaultBusybox).
	Busybox string

	// Names, Count and Prefix name the robots (see fleet.Names).
	Names  []string
	Count  int
	Prefix string
	// Architecture is every robot's architecture (default amd64; see fleet.CheckArchitecture); Architectures overrides it per name.
	Architecture  string
	Architectures map[string]string

	// Clock times the link proxies (latency, bandwidth) and stamps the events the fleet makes. The agents keep
	// real time. Default: the real clock.
	Clock clock.Clock
	// Seed seeds every agent's jitter (mixed with the robot's name).
	Seed uint64
	// OnEvent receives every event the agents write, tagged with the robot's name, and an EventError when an
	// agent's container stops on its own or a fault cannot be applied through the Docker API. Calls for one
	// robot are serialized.
	OnEvent fleet.EventFunc
	// Agent gives the agents' timings, as flags (see fleet.AgentTimingFlags). Other fields are not used.
	Agent agent.Options
	// Credentials, when set, are the keys every agent signs its requests with (a service that checks
	// signatures); nil leaves them unsigned.
	Credentials *agent.Credentials

	// Limits are every robot's own CPU and memory, which fleet.Limiter lowers and gives back (default one CPU,
	// 256 MiB).
	Limits fleet.Limits
	// Parallel is how many robots are started at once (default 4).
	Parallel int
	// StartTimeout bounds how long a robot's agent may take to connect to the service (default 60s);
	// StopTimeout how long Close waits for an agent to stop cleanly before its container is killed (default
	// 10s; whole seconds).
	StartTimeout, StopTimeout time.Duration
	// RunID labels everything the fleet makes (default NewRunID()).
	RunID string
	// Log receives testcontainers-go's log, the image build's output and the leftovers of dead runs a sweep
	// could not remove (nil: discarded).
	Log io.Writer
}

// Defaults of Options.
const (
	DefaultMemory   = 256 << 20
	DefaultParallel = 4
)

// Fleet is a set of robots running as containers.
type Fleet struct {
	fleet.Roster[*Device]
	opts    Options
	owner   string
	engines []*engine

	closeOnce sync.Once
	closeErr  error
}

var _ fleet.Fleet = (*Fleet)(nil)

// New starts one container per robot and returns when every agent has connected to the service. It first
// sweeps each engine of what dead runs left (see Sweep). On failure everything it made is removed.
func New(ctx context.Context, opts Options) (*Fleet, error) {
	if u, err := url.Parse(opts.Endpoint); opts.Endpoint == "" || err != nil || u.Host == "" {
		return nil, fmt.Errorf("container fleet: Endpoint %q: want the service's http(s)://host:port", opts.Endpoint)
	}
	names, err := fleet.Names(opts.Names, opts.Count, opts.Prefix)
	if err != nil {
		return nil, fmt.Errorf("container fleet: %w", err)
	}
	archs, err := fleet.Architectures(names, opts.Architecture, opts.Architectures)
	if err != nil {
		return nil, fmt.Errorf("container fleet: %w", err)
	}
	if len(opts.Engines) == 0 {
		opts.Engines = []Engine{{}}
	}
	if opts.Busybox == "" {
		opts.Busybox = DefaultBusybox
	}
	if opts.Limits.CPUs <= 0 {
		opts.Limits.CPUs = 1
	}
	if opts.Limits.MemoryBytes <= 0 {
		opts.Limits.MemoryBytes = DefaultMemory
	}
	if opts.Parallel <= 0 {
		opts.Parallel = DefaultParallel
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 60 * time.Second
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 10 * time.Second
	}
	if opts.RunID == "" {
		opts.RunID = NewRunID()
	}
	opts.Clock = clock.Or(opts.Clock)
	if clock.WorldOf(opts.Clock) != nil {
		return nil, errors.New("container fleet: agents in containers keep wall-clock time; they cannot run on a " +
			"virtual-time world's clock (use a scaled clock)")
	}
	if opts.Image == "" {
		if err := CheckInputs(ImageOptions{Binary: opts.Binary, Busybox: opts.Busybox}); err != nil {
			return nil, fmt.Errorf("container fleet: %w", err)
		}
	}
	if err := disableReaper(); err != nil {
		return nil, fmt.Errorf("container fleet: %w", err)
	}
	f := &Fleet{opts: opts, owner: ThisProcess()}
	ok := false
	defer func() {
		if !ok {
			f.Close()
		}
	}()
	for i, e := range opts.Engines {
		en, err := startEngine(ctx, e, opts.RunID, f.owner, fmt.Sprintf("fleetlab-%s-%d", opts.RunID, i), opts.Log)
		if en != nil {
			f.engines = append(f.engines, en) // removed at Close, even half made
		}
		if err != nil {
			return nil, fmt.Errorf("container fleet: %w", err)
		}
		if en.image, err = f.image(ctx, en); err != nil {
			return nil, fmt.Errorf("container fleet: %w", err)
		}
	}
	devs := make([]*Device, len(names))
	err = inParallel(ctx, len(names), opts.Parallel, func(ctx context.Context, i int) error {
		d, err := f.newDevice(ctx, f.engines[i%len(f.engines)], names[i], archs[names[i]])
		devs[i] = d
		return err
	})
	if err != nil {
		var started []*Device
		for _, d := range devs {
			if d != nil {
				started = append(started, d)
			}
		}
		fleet.StopAll(opts.Clock, started, (*Device).close)
		return nil, fmt.Errorf("container fleet: %w", err)
	}
	f.Roster, err = fleet.StartRoster(opts.Clock, names, func(name string) (*Device, error) {
		for _, d := range devs {
			if d.name == name {
				return d, nil
			}
		}
		return nil, fmt.Errorf("robot %s: not started", name)
	}, (*Device).close)
	if err != nil {
		return nil, fmt.Errorf("container fleet: %w", err)
	}
	ok = true
	return f, nil
}

// image returns the robot image on en: Options.Image when it is there, else the one BuildImage makes.
func (f *Fleet) image(ctx context.Context, en *engine) (string, error) {
	if f.opts.Image != "" {
		if _, err := en.cli.ImageInspect(ctx, f.opts.Image); err != nil {
			return "", fmt.Errorf("docker engine %s: image %s: %w (there is no registry to pull it from: build it with BuildImage)", en.Engine, f.opts.Image, err)
		}
		return f.opts.Image, nil
	}
	return BuildImage(ctx, en.Engine, ImageOptions{Binary: f.opts.Binary, Busybox: f.opts.Busybox, Log: f.opts.Log,
		RunID: f.opts.RunID, Owner: f.owner})
}

// RunID returns the run id that labels everything the fleet made.
func (f *Fleet) RunID() string { return f.opts.RunID }

// Engines returns the engines the fleet runs on, in the order of Options.Engines.
func (f *Fleet) Engines() []Engine {
	out := make([]Engine, len(f.engines))
	for i, e := range f.engines {
		out[i] = e.Engine
	}
	return out
}

// Close stops every agent cleanly — a paused container is unpaused first — killing the containers that do not
// stop within StopTimeout, and removes the containers, their volumes, the link proxies and the networks. It is
// safe to call more than once.
func (f *Fleet) Close() error {
	f.closeOnce.Do(func() {
		errs := []error{fleet.StopAll(f.opts.Clock, f.Robots(), (*Device).close)}
		ctx, cancel := realTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, en := range f.engines {
			errs = append(errs, en.close(ctx))
		}
		f.closeErr = errors.Join(errs...)
	})
	return f.closeErr
}

// report hands an error about a robot to OnEvent.
func (f *Fleet) report(robot string, err error) {
	if on := f.opts.OnEvent; on != nil {
		on(robot, agent.Event{Time: f.opts.Clock.Now(), Kind: agent.EventError, Thing: robot, Err: err})
	}
}

// inParallel runs fn for 0..n-1 on up to workers goroutines and returns the errors joined; after the first
// error the indexes not yet begun are skipped.
func inParallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	next := make(chan int)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	failed := make(chan struct{})
	var once sync.Once
	for range min(workers, n) {
		wg.Go(func() {
			for i := range next {
				if err := fn(ctx, i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					once.Do(func() { close(failed) })
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-failed:
			break feed
		case <-ctx.Done():
			mu.Lock()
			errs = append(errs, ctx.Err())
			mu.Unlock()
			break feed
		}
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}

// realTimeout is ctx bounded by d of wall-clock time: Docker calls take real time, whatever the fleet's clock.
func realTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	t := clock.Real{}.NewTimer(d)
	go func() {
		select {
		case <-t.C():
			cancel()
		case <-ctx.Done():
			t.Stop()
		}
	}()
	return ctx, cancel
}
