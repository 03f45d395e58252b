package container

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/agent/kinds"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/fleet"
	"github.com/fleetlab/fleetlab/sim/fleet/eventlog"
	"github.com/fleetlab/fleetlab/sim/fleet/link"
)

// dockerTimeout bounds one lifecycle call to the Docker API.
const dockerTimeout = 60 * time.Second

// Device is one robot running as a container.
type Device struct {
	f          *Fleet
	e          *engine
	name, arch string
	volume     string
	container  string // the container's name
	shaper     *link.Shaper
	proxy      *link.Proxy
	ctr        *testcontainers.DockerContainer

	// life is the robot's lifecycle: its container's current run, frozen or not, closed or not. Crash,
	// Restart, Freeze, Thaw, SetLink, Limit and close are its lifecycle calls.
	life *fleet.Life[agentRun]
	// mu guards partitioned and the killed mark of every agentRun.
	mu          sync.Mutex
	partitioned bool
}

var (
	_ fleet.Crasher      = (*Device)(nil)
	_ fleet.Freezer      = (*Device)(nil)
	_ fleet.Linker       = (*Device)(nil)
	_ fleet.Limiter      = (*Device)(nil)
	_ fleet.StepHooker   = (*Device)(nil)
	_ fleet.ScriptFailer = (*Device)(nil)
)

// agentRun is one run of a robot's container, from its start to its exit, seen through an attached stream.
type agentRun struct {
	attach    client.HijackedResponse
	killed    bool          // by Crash or close: its exit is expected; guarded by Device.mu
	exited    chan struct{} // closed once the stream has ended
	connected chan struct{} // closed at the agent's first connection to the service
	stderr    tail
}

// newDevice makes the robot's volume, link proxy and container, and starts it. The device it returns, even
// with an error, holds what was made, for close.
func (f *Fleet) newDevice(ctx context.Context, en *engine, name, arch string) (*Device, error) {
	d := &Device{f: f, e: en, name: name, arch: arch, life: fleet.NewLife[agentRun](name, nil),
		volume: "fleetlab-" + f.opts.RunID + "-" + name, container: "fleetlab-" + f.opts.RunID + "-" + name}
	if _, err := en.cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: d.volume,
		Labels: labels(f.opts.RunID, f.owner, LabelRobot, name)}); err != nil {
		d.volume = ""
		return d, fmt.Errorf("robot %s: create volume: %w", name, err)
	}
	d.shaper = link.NewShaper(f.opts.Clock)
	p, err := link.Listen(en.listen+":0", f.opts.Endpoint, d.shaper)
	if err != nil {
		return d, fmt.Errorf("robot %s: %w", name, err)
	}
	d.proxy = p
	lim := f.opts.Limits
	req := testcontainers.ContainerRequest{
		Image:          en.image,
		Name:           d.container,
		Cmd:            d.args(),
		Labels:         labels(f.opts.RunID, f.owner, LabelRobot, name),
		Networks:       []string{en.network},
		NetworkAliases: map[string][]string{en.network: {name}},
		Tmpfs:          map[string]string{"/tmp": "rw,mode=1777,size=64m"},
		WaitingFor:     agentConnected{d: d, timeout: f.opts.StartTimeout},
		HostConfigModifier: func(hc *ctypes.HostConfig) {
			init := true
			hc.Init = &init // reaps what scripts and the application leave behind
			hc.Mounts = []mount.Mount{{Type: mount.TypeVolume, Source: d.volume, Target: DeviceDir}}
			hc.Resources.NanoCPUs = int64(lim.CPUs * 1e9)
			hc.Resources.Memory, hc.Resources.MemorySwap = lim.MemoryBytes, lim.MemoryBytes
		},
	}
	c, err := en.provider.CreateContainer(ctx, req)
	if dc, ok := c.(*testcontainers.DockerContainer); ok && dc != nil {
		d.ctr = dc // removed at close, even when creation failed half way
	}
	if err != nil {
		return d, fmt.Errorf("robot %s: create container: %w", name, err)
	}
	d.life.Lock()
	defer d.life.Unlock()
	if _, err := d.attach(ctx); err != nil {
		return d, err
	}
	if err := d.ctr.Start(ctx); err != nil {
		return d, fmt.Errorf("robot %s: start container: %w%s", name, err, d.lastWords())
	}
	return d, nil
}

// args are the agent's flags.
func (d *Device) args() []string {
	o := d.f.opts
	args := []string{"--endpoint", d.proxy.URL(), "--thing", d.name, "--dir", DeviceDir, "--arch", d.arch,
		"--events", "-", "--seed", strconv.FormatUint(o.Seed, 10)}
	args = append(args, fleet.CredentialFlags(o.Credentials)...)
	return append(args, fleet.AgentTimingFlags(o.Agent)...)
}

// attach attaches to the container's output before it starts and follows it until the container stops: the
// agent's events (stdout) go to OnEvent, its log (stderr) is kept for error messages; the container's own log
// has both. The caller holds d.life.
func (d *Device) attach(ctx context.Context) (*agentRun, error) {
	res, err := d.e.cli.ContainerAttach(ctx, d.ctr.GetContainerID(), client.ContainerAttachOptions{Stream: true,
		Stdout: true, Stderr: true})
	if err != nil {
		return nil, fmt.Errorf("robot %s: attach: %w", d.name, err)
	}
	r := &agentRun{attach: res.HijackedResponse, exited: make(chan struct{}), connected: make(chan struct{})}
	d.life.Started(r)
	go d.watch(r)
	return r, nil
}

// watch passes the agent's events on until the container's output ends, then reports an exit nobody asked for
// as an EventError.
func (d *Device) watch(r *agentRun) {
	defer close(r.exited)
	events, w := io.Pipe()
	go func() {
		_, err := stdcopy.StdCopy(w, &r.stderr, r.attach.Reader)
		w.CloseWithError(err)
	}()
	on := d.f.opts.OnEvent
	var once sync.Once
	eventlog.Read(events, func(e agent.Event) {
		if e.Kind == agent.EventConnected {
			once.Do(func() { close(r.connected) })
		}
		if on != nil {
			on(d.name, e)
		}
	})
	events.Close()
	r.attach.Close()
	d.mu.Lock()
	expected := r.killed
	d.mu.Unlock()
	d.life.Ended(r)
	if expected {
		return
	}
	ctx, cancel := realTimeout(context.Background(), dockerTimeout)
	defer cancel()
	why := "stopped"
	if in, err := d.e.cli.ContainerInspect(ctx, d.ctr.GetContainerID(), client.ContainerInspectOptions{}); err == nil && in.Container.State != nil {
		why = fmt.Sprintf("exited with code %d", in.Container.State.ExitCode)
		if in.Container.State.OOMKilled {
			why += ", killed for want of memory"
		}
	}
	d.f.report(d.name, fmt.Errorf("container %s on %s %s (docker logs %s)%s", d.container, d.e.Engine, why, d.container, d.lastWords()))
}

// lastWords is the end of what the agent wrote to stderr, for error messages.
func (d *Device) lastWords() string {
	r := d.life.Current()
	if r == nil {
		return ""
	}
	if s := strings.TrimSpace(r.stderr.String()); s != "" {
		return ": " + s
	}
	return ""
}

// Name implements fleet.Device.
func (d *Device) Name() string { return d.name }

// Architecture implements fleet.Device.
func (d *Device) Architecture() string { return d.arch }

// ContainerName returns the name of the robot's container; Volume the name of its data volume; Network the
// name of the Docker network it is on; Engine the engine it runs on.
func (d *Device) ContainerName() string { return d.container }
func (d *Device) Volume() string        { return d.volume }
func (d *Device) Network() string       { return d.e.network }
func (d *Device) Engine() Engine        { return d.e.Engine }

// Endpoint is the URL the agent speaks to: its link proxy's.
func (d *Device) Endpoint() string { return d.proxy.URL() }

// Link returns the robot's link shaper, for its counts.
func (d *Device) Link() *link.Shaper { return d.shaper }

// Inspect returns what the engine says of the robot's container.
func (d *Device) Inspect(ctx context.Context) (ctypes.InspectResponse, error) {
	in, err := d.e.cli.ContainerInspect(ctx, d.ctr.GetContainerID(), client.ContainerInspectOptions{})
	if err != nil {
		return ctypes.InspectResponse{}, fmt.Errorf("inspect %s: %w", d.name, err)
	}
	return in.Container, nil
}

// Exec runs cmd in the robot's container, as the robot user, and returns its exit code and output.
func (d *Device) Exec(ctx context.Context, cmd ...string) (int, string, error) {
	code, r, err := d.ctr.Exec(ctx, cmd, tcexec.Multiplexed())
	if err != nil {
		return 0, "", fmt.Errorf("exec in %s: %w", d.name, err)
	}
	b, err := io.ReadAll(r)
	return code, string(b), err
}

// Throttled returns how many CPU periods the kernel has held the container back for want of CPU quota.
func (d *Device) Throttled(ctx context.Context) (uint64, error) {
	res, err := d.e.cli.ContainerStats(ctx, d.ctr.GetContainerID(), client.ContainerStatsOptions{})
	if err != nil {
		return 0, fmt.Errorf("stats %s: %w", d.name, err)
	}
	defer res.Body.Close()
	var s ctypes.StatsResponse
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		return 0, fmt.Errorf("stats %s: %w", d.name, err)
	}
	return s.CPUStats.ThrottlingData.ThrottledPeriods, nil
}

// State reads the robot's saved device state from its volume.
func (d *Device) State(ctx context.Context) (agent.DeviceState, error) {
	var st agent.DeviceState
	b, err := d.readFile(ctx, path.Join(DeviceDir, "state.json"))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("state of %s: %w", d.name, err)
	}
	return st, nil
}

// readFile reads a file of the container through the Docker API.
func (d *Device) readFile(ctx context.Context, p string) ([]byte, error) {
	res, err := d.e.cli.CopyFromContainer(ctx, d.ctr.GetContainerID(), client.CopyFromContainerOptions{SourcePath: p})
	if err != nil {
		return nil, fmt.Errorf("read %s of %s: %w", p, d.name, err)
	}
	defer res.Content.Close()
	tr := tar.NewReader(res.Content)
	if _, err := tr.Next(); err != nil {
		return nil, fmt.Errorf("read %s of %s: %w", p, d.name, err)
	}
	b, err := io.ReadAll(io.LimitReader(tr, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s of %s: %w", p, d.name, err)
	}
	return b, nil
}

// Running implements fleet.Crasher: whether the container runs.
func (d *Device) Running() bool { return d.life.Running() }

// Crash kills the container with SIGKILL — the agent, its application, running scripts, all at once, as a power
// cut — and returns once it has stopped. The volume is kept as it was.
func (d *Device) Crash() error {
	return d.life.Stop("crash", func(r *agentRun) error { return d.kill(r, "crash") })
}

// kill kills the container of run r and waits until its output has ended. The caller holds d.life.
func (d *Device) kill(r *agentRun, op string) error {
	d.mu.Lock()
	r.killed = true
	d.mu.Unlock()
	ctx, cancel := realTimeout(context.Background(), dockerTimeout)
	defer cancel()
	_, err := d.e.cli.ContainerKill(ctx, d.ctr.GetContainerID(), client.ContainerKillOptions{Signal: "KILL"})
	if err != nil {
		r.attach.Close() // the stream ends, whatever the container does
	}
	select {
	case <-r.exited:
	case <-ctx.Done():
		err = errors.Join(err, errors.New("its output did not end"))
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, d.name, err)
	}
	return nil
}

// Restart starts the crashed container again on its volume; the agent relaunches the committed application and
// resumes the execution that was cut short. It returns once the container runs, not waiting for the agent to
// reach the service (a partitioned robot cannot). It fails when the robot runs, the fleet is closed, or ctx has
// ended.
func (d *Device) Restart(ctx context.Context) error {
	return d.life.Restart(ctx, func() error { return d.restart(ctx) })
}

// restart starts the container again. The caller holds the lifecycle lock.
func (d *Device) restart(ctx context.Context) error {
	ctx, cancel := realTimeout(ctx, dockerTimeout)
	defer cancel()
	r, err := d.attach(ctx)
	if err != nil {
		return fmt.Errorf("restart %s: %w", d.name, err)
	}
	if _, err := d.e.cli.ContainerStart(ctx, d.ctr.GetContainerID(), client.ContainerStartOptions{}); err != nil {
		d.mu.Lock()
		r.killed = true
		d.mu.Unlock()
		r.attach.Close()
		<-r.exited
		return fmt.Errorf("restart %s: %w", d.name, err)
	}
	return nil
}

// Freeze pauses the container — every process in it stops where it is, as on a hung board; Thaw unpauses it
// and they carry on. Freezing a frozen or crashed robot is an error.
func (d *Device) Freeze() error {
	return d.setFrozen(true, func(ctx context.Context, id string) error {
		_, err := d.e.cli.ContainerPause(ctx, id, client.ContainerPauseOptions{})
		return err
	})
}

// Thaw unpauses a frozen robot.
func (d *Device) Thaw() error {
	return d.setFrozen(false, func(ctx context.Context, id string) error {
		_, err := d.e.cli.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{})
		return err
	})
}

// setFrozen pauses (frozen) or unpauses the running container through call, a Docker API call.
func (d *Device) setFrozen(frozen bool, call func(ctx context.Context, id string) error) error {
	return d.life.SetFrozen(frozen, func(*agentRun) error {
		ctx, cancel := realTimeout(context.Background(), dockerTimeout)
		defer cancel()
		return call(ctx, d.ctr.GetContainerID())
	})
}

// Frozen reports whether the robot is frozen.
func (d *Device) Frozen() bool { return d.life.Frozen() }

// SetLink implements fleet.Linker. A partition disconnects the container from its network — its connections
// hang, new ones find no route — and the end of one connects it again; latency, drops and bandwidth are shaped
// by the robot's link proxy. A Docker API call that fails is reported to OnEvent as an EventError.
func (d *Device) SetLink(l fleet.Link) {
	if err := d.setLink(l); err != nil {
		d.f.report(d.name, err)
	}
}

func (d *Device) setLink(l fleet.Link) error {
	d.life.Lock()
	defer d.life.Unlock()
	cut := l.Partition
	l.Partition = false
	d.shaper.Set(l)
	d.mu.Lock()
	was := d.partitioned
	d.mu.Unlock()
	if cut == was {
		return nil
	}
	ctx, cancel := realTimeout(context.Background(), dockerTimeout)
	defer cancel()
	id := d.ctr.GetContainerID()
	var err error
	if cut {
		_, err = d.e.cli.NetworkDisconnect(ctx, d.e.network, client.NetworkDisconnectOptions{Container: id, Force: true})
	} else {
		_, err = d.e.cli.NetworkConnect(ctx, d.e.network, client.NetworkConnectOptions{Container: id})
	}
	if err != nil {
		return fmt.Errorf("partition %s (%v): network %s: %w", d.name, cut, d.e.network, err)
	}
	d.mu.Lock()
	d.partitioned = cut
	d.mu.Unlock()
	return nil
}

// Partitioned reports whether the container is disconnected from its network.
func (d *Device) Partitioned() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.partitioned
}

// Limit implements fleet.Limiter through docker update; the zero Limits restores Options.Limits.
func (d *Device) Limit(l fleet.Limits) error {
	d.life.Lock()
	defer d.life.Unlock()
	if l == (fleet.Limits{}) {
		l = d.f.opts.Limits
	}
	var r ctypes.Resources
	if l.CPUs > 0 {
		r.NanoCPUs = int64(l.CPUs * 1e9)
	}
	if l.MemoryBytes > 0 {
		r.Memory, r.MemorySwap = l.MemoryBytes, l.MemoryBytes
	}
	ctx, cancel := realTimeout(context.Background(), dockerTimeout)
	defer cancel()
	if _, err := d.e.cli.ContainerUpdate(ctx, d.ctr.GetContainerID(), client.ContainerUpdateOptions{Resources: &r}); err != nil {
		return fmt.Errorf("limit %s: %w", d.name, err)
	}
	return nil
}

// HookSteps implements fleet.StepHooker: the robot's link proxy holds the answer to each step report until fn
// returns.
func (d *Device) HookSteps(fn func(ctx context.Context, job, step string) error) (remove func()) {
	return d.proxy.HookSteps(fn)
}

// FailScript implements fleet.ScriptFailer: it finds the file of the step in the job's launch config (the
// agent's saved state on the volume has the job document) and writes, in its place in the unpacked version
// (versions/<version id>/ of the device directory: the job id and the document's digest), a script that exits
// code.
func (d *Device) FailScript(ctx context.Context, job, step string, code int) error {
	st, err := d.State(ctx)
	if err != nil {
		return fmt.Errorf("fail script of %s: %w", d.name, err)
	}
	if st.InFlight == nil || st.InFlight.JobID != job {
		return fmt.Errorf("fail script of %s: job %s is not in flight", d.name, job)
	}
	file, ok, err := kinds.ScriptFile(st.InFlight.Document, step)
	if err != nil {
		return fmt.Errorf("fail script of %s: %w", d.name, err)
	}
	if !ok {
		return fmt.Errorf("fail script of %s: step %s runs no file of the version", d.name, step)
	}
	if file == "" {
		return fmt.Errorf("fail script of %s: the job's launch config has no file for %s: %w", d.name, step, fleet.ErrNoScript)
	}
	version := agent.VersionID(job, agent.DocumentDigest(st.InFlight.Document))
	dest := path.Join(DeviceDir, "versions", version, path.Clean("/" + file)[1:])
	text := fmt.Sprintf("#!/bin/sh\n# %s, failed by a fault\nexit %d\n", path.Base(file), code)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: path.Base(dest), Mode: 0o755, Size: int64(len(text)), Uid: RobotUID,
		Gid: RobotUID, Typeflag: tar.TypeReg, ModTime: clock.Real{}.Now()})
	tw.Write([]byte(text))
	tw.Close()
	// The file must be there to be replaced: a path the agent does not use would make the fault a silent no-op.
	if _, err := d.e.cli.ContainerStatPath(ctx, d.ctr.GetContainerID(), client.ContainerStatPathOptions{Path: dest}); err != nil {
		return fmt.Errorf("fail script of %s: %s is not on the device: %w", d.name, dest, err)
	}
	if _, err := d.e.cli.CopyToContainer(ctx, d.ctr.GetContainerID(), client.CopyToContainerOptions{
		DestinationPath: path.Dir(dest), Content: &buf}); err != nil {
		return fmt.Errorf("fail script of %s: write %s: %w", d.name, dest, err)
	}
	return nil
}

// close stops the robot for good: unpaused if frozen, its agent asked to stop (SIGTERM through the container's
// init), the container killed after StopTimeout, then removed with its volume and link proxy.
func (d *Device) close() error {
	d.life.Lock()
	defer d.life.Unlock()
	r, frozen := d.life.Closing()
	if r != nil {
		d.mu.Lock()
		r.killed = true
		d.mu.Unlock()
	}
	ctx, cancel := realTimeout(context.Background(), d.f.opts.StopTimeout+dockerTimeout)
	defer cancel()
	var errs []error
	if d.ctr != nil {
		if frozen {
			d.e.cli.ContainerUnpause(ctx, d.ctr.GetContainerID(), client.ContainerUnpauseOptions{})
		}
		// Stopped and removed through the fleet's own client, not testcontainers-go's Terminate: Terminate
		// closes the provider's client, which every robot of the engine shares, and so cuts the Docker calls
		// other robots are making as they close beside this one.
		id := d.ctr.GetContainerID()
		grace := int(max(d.f.opts.StopTimeout.Round(time.Second)/time.Second, 1))
		if _, err := d.e.cli.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &grace}); err != nil {
			errs = append(errs, fmt.Errorf("close %s: stop: %w", d.name, err))
		}
		if _, err := d.e.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			errs = append(errs, fmt.Errorf("close %s: remove: %w", d.name, err))
		}
		if r != nil {
			select {
			case <-r.exited:
			case <-ctx.Done():
				r.attach.Close()
			}
		}
	}
	if d.proxy != nil {
		errs = append(errs, d.proxy.Close())
	}
	if d.volume != "" {
		if _, err := d.e.cli.VolumeRemove(ctx, d.volume, client.VolumeRemoveOptions{Force: true}); err != nil {
			errs = append(errs, fmt.Errorf("close %s: remove volume: %w", d.name, err))
		}
	}
	return errors.Join(errs...)
}

// tail keeps the last few KiB written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

const tailBytes = 2048

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailBytes {
		t.buf = t.buf[len(t.buf)-tailBytes:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
