// Package process hosts robots as OS processes: one fleetlab-agent per device, each with its own device directory,
// each the leader of its own session so that everything it starts — the application, running scripts — is found
// and signalled with it. The agent's events come back as JSON lines on its stdout.
//
// Every Device implements fleet.Crasher (SIGKILL to the whole session, as a power cut; Restart starts a new agent
// on the same directory), fleet.Freezer (SIGSTOP and SIGCONT to the whole session, as a hung board) and
// fleet.Linker (a per-device link proxy from package link between the agent and the service). Device.Kill kills
// the agent alone, as a crash of the agent does: its application lives on, in the session of the agent that
// started it, and the next agent adopts it. A robot's processes are therefore those of its current agent's session
// and of the sessions of its earlier agents while anything lives in them; the power cut, the freeze and Close reach
// them all.
//
// Processes never outlive Close: each agent is asked to stop cleanly (SIGTERM) and its session is killed after
// Options.StopTimeout. On Linux each agent also gets SIGTERM when the process that started it dies, a backstop
// for a test binary that dies without closing its fleet.
package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/fleet"
	"github.com/fleetlab/fleetlab/sim/fleet/eventlog"
	"github.com/fleetlab/fleetlab/sim/fleet/link"
)

// AgentPackage is the import path of the agent program Build compiles.
const AgentPackage = "github.com/fleetlab/fleetlab/cmd/fleetlab-agent"

// Build compiles the fleetlab-agent program, statically (CGO_ENABLED=0), into dir and returns the binary's path. It
// runs `go build` in the current directory, which must be inside the fleetlab module — as it is for every test of
// the module. A test binary builds once in TestMain and passes the path as Options.Binary to every fleet.
func Build(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "fleetlab-agent")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, AgentPackage)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build fleetlab-agent: %w\n%s", err, b)
	}
	return out, nil
}

// Options configure a Fleet. Zero fields take the defaults listed; New resolves them all.
type Options struct {
	// Endpoint is the service's device API base URL. Required.
	Endpoint string
	// Binary is the fleetlab-agent program. Empty: New builds it into a directory of its own, removed at Close
	// (seconds per fleet; prefer Build once).
	Binary string
	// Dir holds the robots' device directories, Dir/<name>, kept at Close. Empty: a temporary directory removed at
	// Close.
	Dir string

	// Names, Count and Prefix name the robots (see fleet.Names).
	Names  []string
	Count  int
	Prefix string
	// Architecture is every robot's architecture (default amd64; see fleet.CheckArchitecture); Architectures overrides it per name.
	Architecture  string
	Architectures map[string]string

	// Clock times the link proxies (latency, bandwidth). The agents keep real time. Default: the real clock.
	Clock clock.Clock
	// Seed seeds every agent's jitter (mixed with the robot's name).
	Seed uint64
	// OnEvent receives every event the agents write, tagged with the robot's name, and an EventError when an
	// agent process exits on its own. Calls for one robot are serialized.
	OnEvent fleet.EventFunc
	// Agent gives the agents' timing, as flags: PollMin, PollMax, RetryBase, RetryMax, RequestTimeout,
	// ScriptTimeout and StopGrace (zero: the agent's defaults). Other fields are not used.
	Agent agent.Options
	// Credentials, when set, are the keys every agent signs its requests with (a service that checks
	// signatures); nil leaves them unsigned.
	Credentials *agent.Credentials
	// StopTimeout is how long Close waits for an agent to stop cleanly before killing its session. Default 30s.
	StopTimeout time.Duration
}

// Fleet is a set of robots running as fleetlab-agent processes.
type Fleet struct {
	fleet.Roster[*Device]
	opts     Options
	tempDirs []string // removed at Close

	closeOnce sync.Once
	closeErr  error
}

var _ fleet.Fleet = (*Fleet)(nil)

// New starts one agent process per robot.
func New(ctx context.Context, opts Options) (*Fleet, error) {
	if opts.Endpoint == "" {
		return nil, errors.New("process fleet: Endpoint is required")
	}
	if err := supported(); err != nil {
		return nil, fmt.Errorf("process fleet: %w", err)
	}
	names, err := fleet.Names(opts.Names, opts.Count, opts.Prefix)
	if err != nil {
		return nil, fmt.Errorf("process fleet: %w", err)
	}
	archs, err := fleet.Architectures(names, opts.Architecture, opts.Architectures)
	if err != nil {
		return nil, fmt.Errorf("process fleet: %w", err)
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 30 * time.Second
	}
	opts.Clock = clock.Or(opts.Clock)
	if clock.WorldOf(opts.Clock) != nil {
		return nil, errors.New("process fleet: agents in other processes keep wall-clock time; they cannot run on a " +
			"virtual-time world's clock (use a scaled clock)")
	}
	f := &Fleet{}
	ok := false
	defer func() {
		if !ok {
			f.Close()
		}
	}()
	if opts.Dir == "" {
		d, err := os.MkdirTemp("", "fleetlab-process-")
		if err != nil {
			return nil, fmt.Errorf("process fleet: %w", err)
		}
		f.tempDirs = append(f.tempDirs, d)
		opts.Dir = d
	}
	if opts.Binary == "" {
		d, err := os.MkdirTemp("", "fleetlab-agent-build-")
		if err != nil {
			return nil, fmt.Errorf("process fleet: %w", err)
		}
		f.tempDirs = append(f.tempDirs, d)
		if opts.Binary, err = Build(ctx, d); err != nil {
			return nil, fmt.Errorf("process fleet: %w", err)
		}
	}
	f.opts = opts
	f.Roster, err = fleet.StartRoster(opts.Clock, names, func(name string) (*Device, error) {
		return f.newDevice(name, archs[name])
	}, (*Device).close)
	if err != nil {
		return nil, fmt.Errorf("process fleet: %w", err)
	}
	ok = true
	return f, nil
}

// Close stops every agent cleanly — a frozen one is continued first — killing the session of any that does not
// stop within StopTimeout, then closes the link proxies and removes the directories New created. It is safe to
// call more than once.
func (f *Fleet) Close() error {
	f.closeOnce.Do(func() {
		errs := []error{fleet.StopAll(f.opts.Clock, f.Robots(), (*Device).close)}
		for _, dir := range f.tempDirs {
			if err := os.RemoveAll(dir); err != nil {
				errs = append(errs, err)
			}
		}
		f.closeErr = errors.Join(errs...)
	})
	return f.closeErr
}

// Device is one robot running as a fleetlab-agent process.
type Device struct {
	f          *Fleet
	name, arch string
	dir        string
	shaper     *link.Shaper
	proxy      *link.Proxy

	// life is the robot's lifecycle: its current agent process, frozen or not, closed or not. Crash, Kill,
	// Restart, Freeze, Thaw and close are its lifecycle calls.
	life *fleet.Life[agentProc]
	// mu guards the fields below and the killed mark of every agentProc.
	mu sync.Mutex
	// older are the sessions of agents killed alone (Kill), in which what they started may live on.
	older []int
}

var (
	_ fleet.Crasher = (*Device)(nil)
	_ fleet.Freezer = (*Device)(nil)
	_ fleet.Linker  = (*Device)(nil)
)

// agentProc is one run of a robot's agent process.
type agentProc struct {
	cmd    *exec.Cmd
	pid    int
	killed bool          // by Crash or close: its exit is expected; guarded by Device.mu
	exited chan struct{} // closed once the process has exited and its events are read
}

func (f *Fleet) newDevice(name, arch string) (*Device, error) {
	d := &Device{f: f, name: name, arch: arch, dir: filepath.Join(f.opts.Dir, name), life: fleet.NewLife[agentProc](name, nil)}
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return nil, fmt.Errorf("robot %s: %w", name, err)
	}
	d.shaper = link.NewShaper(f.opts.Clock)
	p, err := link.NewProxy(f.opts.Endpoint, d.shaper)
	if err != nil {
		return nil, fmt.Errorf("robot %s: %w", name, err)
	}
	d.proxy = p
	d.life.Lock()
	defer d.life.Unlock()
	if err := d.start(); err != nil {
		p.Close()
		return nil, err
	}
	return d, nil
}

// args are the agent's flags.
func (d *Device) args() []string {
	o := d.f.opts
	args := []string{"--endpoint", d.proxy.URL(), "--thing", d.name, "--dir", d.dir, "--arch", d.arch,
		"--events", "-", "--seed", strconv.FormatUint(o.Seed, 10)}
	args = append(args, fleet.CredentialFlags(o.Credentials)...)
	return append(args, fleet.AgentTimingFlags(o.Agent)...)
}

// start runs a new agent process on the robot's directory. Its stderr goes to <dir>/agent.log. The caller holds
// d.life.
func (d *Device) start() error {
	logf, err := os.OpenFile(filepath.Join(d.dir, "agent.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("robot %s: agent log: %w", d.name, err)
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(d.f.opts.Binary, d.args()...)
	cmd.Dir = d.dir
	cmd.Stderr = logf
	cmd.SysProcAttr = sysProcAttr()
	events, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("robot %s: %w", d.name, err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("robot %s: start agent: %w", d.name, err)
	}
	p := &agentProc{cmd: cmd, pid: cmd.Process.Pid, exited: make(chan struct{})}
	go d.watch(p, events)
	d.life.Started(p)
	return nil
}

// watch passes the agent's events on until its stdout ends, then reaps it; an exit nobody asked for is reported
// as an EventError.
func (d *Device) watch(p *agentProc, events io.Reader) {
	defer close(p.exited)
	on := d.f.opts.OnEvent
	readErr := eventlog.Read(events, func(e agent.Event) {
		if on != nil {
			on(d.name, e)
		}
	})
	err := p.cmd.Wait()
	d.mu.Lock()
	expected := p.killed
	d.mu.Unlock()
	d.life.Ended(p)
	if expected || on == nil {
		return
	}
	if err == nil {
		err = errors.Join(errors.New("exited"), readErr)
	}
	on(d.name, agent.Event{Time: d.f.opts.Clock.Now(), Kind: agent.EventError, Thing: d.name,
		Err: fmt.Errorf("agent process %d: %w (see %s)", p.pid, err, filepath.Join(d.dir, "agent.log"))})
}

// Name implements fleet.Device.
func (d *Device) Name() string { return d.name }

// Architecture implements fleet.Device.
func (d *Device) Architecture() string { return d.arch }

// Dir returns the robot's device directory.
func (d *Device) Dir() string { return d.dir }

// Endpoint is the URL the agent speaks to: its link proxy's.
func (d *Device) Endpoint() string { return d.proxy.URL() }

// Pid returns the agent process's id (also its session id), 0 when it does not run.
func (d *Device) Pid() int {
	if p := d.life.Current(); p != nil {
		return p.pid
	}
	return 0
}

// State reads the robot's saved device state from its directory.
func (d *Device) State() (agent.DeviceState, error) {
	return agent.NewFileState(filepath.Join(d.dir, "state.json")).Load()
}

// Running implements fleet.Crasher: whether the agent process runs.
func (d *Device) Running() bool { return d.life.Running() }

// Crash kills the agent's whole session with SIGKILL — the agent, its application, running scripts — as a power
// cut would, and waits until the agent has been reaped. The directory is kept as it was.
func (d *Device) Crash() error {
	return d.life.Stop("crash", func(p *agentProc) error { return d.kill(p, "crash") })
}

// kill kills p's session, and those of the robot's earlier agents, and waits for p to be reaped. The caller holds
// d.life.
func (d *Device) kill(p *agentProc, op string) error {
	d.mu.Lock()
	p.killed = true
	d.mu.Unlock()
	err := killSession(p.pid)
	<-p.exited
	if kerr := d.killOlder(); kerr != nil {
		err = errors.Join(err, kerr)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, d.name, err)
	}
	return nil
}

// killOlder kills what lives on in the sessions of the robot's earlier agents. The caller holds d.life.
func (d *Device) killOlder() error {
	d.mu.Lock()
	older := d.older
	d.older = nil
	d.mu.Unlock()
	var errs []error
	for _, sid := range older {
		errs = append(errs, killSession(sid))
	}
	return errors.Join(errs...)
}

// sessions returns the sessions of the robot that have live processes: p's, and the earlier agents' still in use.
// Sessions found empty are forgotten, before their numbers can be given to other processes. The caller holds
// d.life.
func (d *Device) sessions(p *agentProc) []int {
	d.mu.Lock()
	defer d.mu.Unlock()
	live := d.older[:0]
	for _, sid := range d.older {
		if members, err := sessionMembers(sid); err != nil || len(members) > 0 {
			live = append(live, sid)
		}
	}
	d.older = live
	out := append([]int(nil), live...)
	if p != nil {
		out = append(out, p.pid)
	}
	return out
}

// Kill kills the agent process alone with SIGKILL — as a crash of the agent, the OOM killer or kill -9 would —
// and waits until it has been reaped. What it started lives on: its application, and a script until the kernel
// stops it. Restart starts an agent that finds what this one left; Crash and Close stop it with the rest.
func (d *Device) Kill() error {
	return d.life.Stop("kill", func(p *agentProc) error {
		frozen := d.life.Frozen()
		d.mu.Lock()
		p.killed = true
		d.mu.Unlock()
		if err := killProcess(p.pid); err != nil {
			return fmt.Errorf("kill %s: %w", d.name, err)
		}
		if frozen {
			continueSession(p.pid) // a stopped process dies of SIGKILL; what it leaves must not stay stopped
		}
		<-p.exited
		d.mu.Lock()
		d.older = append(d.older, p.pid)
		d.mu.Unlock()
		d.sessions(nil)
		return nil
	})
}

// Restart starts a new agent process on the robot's directory; it relaunches the committed application and
// resumes the execution that was cut short. It fails when the robot runs, the fleet is closed, or ctx has ended.
func (d *Device) Restart(ctx context.Context) error { return d.life.Restart(ctx, d.start) }

// Freeze stops every process of the robot's session with SIGSTOP — the agent, its application and scripts — as
// a hung board; Thaw continues them exactly where they were. Freezing a frozen or crashed robot is an error.
func (d *Device) Freeze() error { return d.setFrozen(true, stopSession) }

// Thaw continues a frozen robot.
func (d *Device) Thaw() error { return d.setFrozen(false, continueSession) }

// setFrozen moves a running robot to frozen or back, signalling each of its sessions through signal.
func (d *Device) setFrozen(frozen bool, signal func(sid int) error) error {
	return d.life.SetFrozen(frozen, func(p *agentProc) error {
		for _, sid := range d.sessions(p) {
			if err := signal(sid); err != nil {
				return err
			}
		}
		return nil
	})
}

// Frozen reports whether the robot is frozen.
func (d *Device) Frozen() bool { return d.life.Frozen() }

// SetLink implements fleet.Linker.
func (d *Device) SetLink(l fleet.Link) { d.shaper.Set(l) }

// Link returns the robot's link shaper, for its counts.
func (d *Device) Link() *link.Shaper { return d.shaper }

// close stops the agent for good: continued if frozen, asked to stop with SIGTERM (it stops its application),
// its session killed after StopTimeout or once the agent is gone, whichever is first.
func (d *Device) close() error {
	d.life.Lock()
	defer d.life.Unlock()
	p, frozen := d.life.Closing()
	var err error
	if p == nil {
		err = d.killOlder()
	}
	if p != nil {
		if frozen {
			for _, sid := range d.sessions(p) {
				continueSession(sid)
			}
		}
		d.mu.Lock()
		p.killed = true
		d.mu.Unlock()
		terminate(p.pid)
		t := clock.Real{}.NewTimer(d.f.opts.StopTimeout) // a bound on real processes, whatever the fleet's clock
		select {
		case <-p.exited:
		case <-t.C():
			err = fmt.Errorf("close %s: the agent did not stop within %v; killed", d.name, d.f.opts.StopTimeout)
		}
		t.Stop()
		// Whatever is left of the session goes: an application the agent could not stop, or everything after
		// the timeout.
		if kerr := d.kill(p, "close"); kerr != nil {
			err = errors.Join(err, kerr)
		}
	}
	return errors.Join(err, d.proxy.Close())
}
