package harness

import (
	"flag"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/fleetlab/fleetlab/harness/dialect"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// Defaults of an environment.
const (
	// DefaultSeed is the seed of a run that names none, so CI runs repeat.
	DefaultSeed uint64 = 20260101
	// DefaultTimeScale is the time scale of an environment on scaled wall time that names none: policy time runs
	// 600 times faster than the wall clock, so RoboMaker's one-minute minimum robot timeout takes 0.1 s, its
	// five-hour default 30 s.
	DefaultTimeScale = 600
	// DefaultRobots is the fleet size when no option names one.
	DefaultRobots = 3
	// DefaultWait bounds, in wall-clock time, how long WaitJob, WaitFor and Eventually wait on scaled wall time;
	// on virtual time it is only a safety net, against a world that would spin without end.
	DefaultWait = 60 * time.Second
	// DefaultVirtualWait bounds, in virtual time, how long WaitJob, WaitFor and Eventually wait on virtual time.
	DefaultVirtualWait = 24 * time.Hour
)

// The harness's test flags. Each is read once per environment or scenario; nothing writes them but the flag
// package.
var (
	// seedFlag is -fleetlab.seed: a number, "time" for a seed from the clock, or empty for DefaultSeed.
	seedFlag = flag.String("fleetlab.seed", "", "seed of fleetlab harness runs: a number, or \"time\" (default: the fixed DefaultSeed)")
	// seedsFlag is -fleetlab.seeds: run each scenario under that many seeds and report the first that fails.
	seedsFlag = flag.Int("fleetlab.seeds", 0, "run each scenario that names no seed under this many seeds, from -fleetlab.seed on, and report the first that fails")
	// scaleFlag is -fleetlab.timescale: run environments that choose no time on scaled wall time at that scale.
	scaleFlag = flag.Float64("fleetlab.timescale", 0, "run fleetlab environments on scaled wall time at this scale instead of virtual time")
)

// hostFlag is the -fleetlab.host test flag: the backend of environments that name none. Nothing writes it but
// the flag package.
var hostFlag = flag.String("fleetlab.host", "", "fleet host of fleetlab harness runs that name none: inproc (default), process or container")

// Option configures an environment.
type Option interface {
	apply(*config) error
}

// optionFunc adapts a function to an Option.
type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

// config is an environment's configuration, resolved by New.
type config struct {
	driver   dialect.Driver
	backend  Backend
	count    int
	names    []string
	arch     string
	archs    map[string]string
	late     []string
	seed     uint64
	seedSet  bool
	scale    float64 // 0: virtual time where the backend allows it
	memory   bool
	sinks    []event.Sink
	scenario string
	wait     time.Duration
	watchdog time.Duration
	registry *faults.Registry
}

// WithDriver makes d the environment's dialect: how its devices are registered, its deployments made and
// described, its statuses and steps named (default: the first of Drivers, RoboMaker).
func WithDriver(d dialect.Driver) Option {
	return optionFunc(func(c *config) error {
		if d == nil {
			return fmt.Errorf("WithDriver: nil driver")
		}
		c.driver = d
		return nil
	})
}

// WithDialect is WithDriver of the named dialect of Drivers.
func WithDialect(name string) Option {
	return optionFunc(func(c *config) error {
		d, err := DriverNamed(name)
		if err != nil {
			return fmt.Errorf("WithDialect: %w", err)
		}
		c.driver = d
		return nil
	})
}

// WithBackend hosts the robots on b (default: InProc{}, goroutines over HTTP).
func WithBackend(b Backend) Option {
	return optionFunc(func(c *config) error {
		if b == nil {
			return fmt.Errorf("WithBackend: nil backend")
		}
		c.backend = b
		return nil
	})
}

// WithRobots makes a fleet of n robots named robot-0001, robot-0002, … (default DefaultRobots).
func WithRobots(n int) Option {
	return optionFunc(func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("WithRobots(%d): want at least one robot", n)
		}
		c.count, c.names = n, nil
		return nil
	})
}

// WithRobotNames names the robots of the fleet.
func WithRobotNames(names ...string) Option {
	return optionFunc(func(c *config) error {
		if len(names) == 0 {
			return fmt.Errorf("WithRobotNames: no names")
		}
		c.names, c.count = slices.Clone(names), 0
		return nil
	})
}

// WithArchitecture sets every robot's architecture by its GOARCH name: amd64 (the default), arm64 or arm. The
// dialect driver names it as its dialect does (RoboMaker: X86_64, ARM64, ARMHF) when it registers the robot.
func WithArchitecture(arch string) Option {
	return optionFunc(func(c *config) error {
		if err := fleet.CheckArchitecture(arch); err != nil {
			return err
		}
		c.arch = arch
		return nil
	})
}

// WithRobotArchitecture sets one robot's architecture.
func WithRobotArchitecture(robot, arch string) Option {
	return optionFunc(func(c *config) error {
		if err := fleet.CheckArchitecture(arch); err != nil {
			return err
		}
		if c.archs == nil {
			c.archs = map[string]string{}
		}
		c.archs[robot] = arch
		return nil
	})
}

// WithLateRobots adds robots that the fleet hosts from the start but that the dialect registers only when
// Env.RegisterLate is called: robots registered after a job (for RoboMaker's SyncDeploymentJob).
func WithLateRobots(names ...string) Option {
	return optionFunc(func(c *config) error {
		c.late = append(c.late, names...)
		return nil
	})
}

// WithSeed sets the run's seed, over the -fleetlab.seed flag.
func WithSeed(seed uint64) Option {
	return optionFunc(func(c *config) error {
		c.seed, c.seedSet = seed, true
		return nil
	})
}

// WithTimeScale runs the environment on scaled wall time: policy time runs scale times faster than the wall
// clock (1 is real time). Without it, an environment whose backend allows it runs on virtual time (see the
// package documentation), and one whose backend does not at DefaultTimeScale, or at the backend's own when it is
// a TimeScaler.
func WithTimeScale(scale float64) Option {
	return optionFunc(func(c *config) error {
		if err := CheckTimeScale(scale); err != nil {
			return fmt.Errorf("WithTimeScale: %w", err)
		}
		c.scale = scale
		return nil
	})
}

// WithMemoryStore keeps the service's store in memory instead of on disk: faster, but the service cannot be
// restarted on its data (the service-restart fault refuses to arm).
func WithMemoryStore() Option {
	return optionFunc(func(c *config) error {
		c.memory = true
		return nil
	})
}

// WithSink sends every event of the run's stream to s as well, in order (a report, a live view).
func WithSink(s event.Sink) Option {
	return optionFunc(func(c *config) error {
		c.sinks = append(c.sinks, s)
		return nil
	})
}

// WithScenario stamps every event of the run with the scenario's name.
func WithScenario(name string) Option {
	return optionFunc(func(c *config) error {
		c.scenario = name
		return nil
	})
}

// WithWait bounds how long WaitJob, WaitFor and Eventually wait: in virtual time on virtual time (default
// DefaultVirtualWait), in wall-clock time on scaled wall time (default DefaultWait).
func WithWait(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("WithWait(%v): want a positive duration", d)
		}
		c.wait = d
		return nil
	})
}

// WithWatchdog sets, on virtual time, how long an actor of the world may hold its turn, in wall-clock time,
// before the world is reported stalled (default clock.DefaultWatchdog): the test then fails with a report of what
// every actor waits on and every goroutine's stack.
func WithWatchdog(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("WithWatchdog(%v): want a positive duration", d)
		}
		c.watchdog = d
		return nil
	})
}

// WithFaultRegistry makes r the registry Inject and Arm look fault names up in (default faults.Catalog()).
func WithFaultRegistry(r *faults.Registry) Option {
	return optionFunc(func(c *config) error {
		c.registry = r
		return nil
	})
}

// resolve applies opts over the defaults.
func resolve(opts []Option) (config, error) {
	c := config{arch: fleet.ArchAMD64}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.apply(&c); err != nil {
			return c, err
		}
	}
	if c.backend == nil {
		b, err := HostBackend(*hostFlag)
		if err != nil {
			return c, fmt.Errorf("-fleetlab.host: %w", err)
		}
		c.backend = b
	}
	if c.registry == nil {
		c.registry = faults.Catalog()
	}
	if c.driver == nil {
		c.driver = Drivers()[0]
	}
	if c.scale == 0 && *scaleFlag != 0 {
		if err := CheckTimeScale(*scaleFlag); err != nil {
			return c, fmt.Errorf("-fleetlab.timescale: %w", err)
		}
		c.scale = *scaleFlag
	}
	if ts, ok := c.backend.(TimeScaler); ok && c.scale == 0 {
		c.scale = ts.DefaultTimeScale()
	}
	if c.scale == 0 && !hostsWorld(c.backend) {
		c.scale = DefaultTimeScale
	}
	if c.wait == 0 {
		c.wait = DefaultWait
		if c.virtual() {
			c.wait = DefaultVirtualWait
		}
	}
	if c.count == 0 && len(c.names) == 0 {
		c.count = DefaultRobots
	}
	if !c.seedSet {
		seed, err := flagSeed(*seedFlag)
		if err != nil {
			return c, err
		}
		c.seed = seed
	}
	return c, nil
}

// flagSeed reads the -fleetlab.seed flag's value.
func flagSeed(v string) (uint64, error) {
	switch v {
	case "":
		return DefaultSeed, nil
	case "time":
		return uint64(clock.Real{}.Now().UnixNano()), nil
	}
	seed, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("-fleetlab.seed=%q: want a number or \"time\"", v)
	}
	return seed, nil
}

// virtual reports whether the environment runs on virtual time.
func (c config) virtual() bool { return c.scale == 0 }

// virtualWallWait is the wall-clock safety net of a wait on virtual time: a world that keeps advancing time
// without the awaited condition ever holding is stopped there.
const virtualWallWait = 5 * time.Minute

// wallWait is the wall-clock bound of a wait: the wait itself on scaled time, a safety net on virtual time.
func (c config) wallWait() time.Duration {
	if c.virtual() {
		return virtualWallWait
	}
	return c.wait
}

// hostsWorld reports whether b's robots can run on virtual time.
func hostsWorld(b Backend) bool {
	v, ok := b.(VirtualTimeBackend)
	return ok && v.VirtualTime()
}

// HostBackend returns the backend a host name stands for, with its defaults: inproc (also the empty name),
// process or container. The process and container backends build the agent for each environment.
func HostBackend(name string) (Backend, error) {
	switch name {
	case "", "inproc":
		return InProc{}, nil
	case "process":
		return Process{}, nil
	case "container":
		return Container{}, nil
	}
	return nil, fmt.Errorf("host %q: want inproc, process or container", name)
}
