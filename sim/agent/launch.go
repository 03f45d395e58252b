package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fleetlab/fleetlab/sim/clock"
)

// App is an application to run: the launch file inside the launch package of a version.
type App struct {
	Version Version
	// Package and LaunchFile name the application in the version: the file <Package>/<LaunchFile>, run as
	// an executable from the version's directory.
	Package    string
	LaunchFile string
	// Env is the whole environment, "KEY=value".
	Env []string
}

// Launcher runs the device's application — exactly one at a time — as the device's supervisor: it keeps
// what it started running (starting it again when it exits on its own) and records it on the device, so
// that the launcher of a later agent, after a crash, a kill or an upgrade of the agent, takes it over rather
// than start a second copy beside it.
type Launcher interface {
	// Adopt reconciles the launcher with what an earlier agent left on the device; the agent calls it once,
	// at start, before Start. When the application the device's record names still runs — the very process,
	// not another that reused its pid — and is want's version, the launcher supervises it from now on as if it
	// had started it, and Adopt reports true. Everything else left behind is stopped before Adopt returns:
	// another version, a copy whose start was cut short, what scripts left. want nil: nothing should run.
	// An error says the device could not be reconciled entirely; what could be stopped was.
	Adopt(ctx context.Context, want *App) (bool, error)
	// Start runs app as the device's application, stopping any application running before. An error means
	// the application did not start.
	Start(ctx context.Context, app App) error
	// Stop stops the running application, if any: first a graceful signal, then, after the launcher's grace
	// period or when ctx ends, a kill. It returns once the application is gone.
	Stop(ctx context.Context) error
	// Running returns the version id of the running application, "" when none.
	Running() string
}

// ProcessLauncherOptions configure a ProcessLauncher. Zero fields take the defaults listed.
type ProcessLauncherOptions struct {
	// Log receives the application's output. Default: discarded.
	Log io.Writer
	// Clock times the grace period and restart backoff. Default: the real clock.
	Clock clock.Clock
	// Grace is how long a stopping application gets between the graceful signal and the kill. Default 10s.
	Grace time.Duration
	// Dir is the device directory. The launcher records the application it runs in Dir/app.json and tags
	// every process it starts with the device (DeviceTag), which is what Adopt finds again. Empty: nothing
	// is recorded and Adopt finds nothing.
	Dir string
}

// ProcessLauncher runs the application as a child process leading a process group of its own, with its
// output in the device log. An application that exits on its own is started again after a backoff on the
// clock (1s doubling to 1m), as a device's process supervisor would; Stop ends supervision first.
//
// The application outlives the agent when the agent dies without stopping it (a crash, SIGKILL, the OOM
// killer): that is how a device supervisor behaves, and what lets an agent be restarted or upgraded without
// restarting the device's application. The record in the device directory — pid, start time and boot id,
// written once the process runs — lets the next agent's launcher adopt it (Adopt); the device tag in the
// environment of everything the agent starts lets it find and stop whatever the record does not name. On
// systems other than Linux nothing is adopted.
//
// On a virtual-time world's clock, Stop waits for the process in wall-clock time (the grace, at most
// WorldProcessCap) while the agent holds its turn, so stopping takes no virtual time. An application that
// exits by itself is a real event, noticed when it happens: its restart backoff then runs on the world's time
// as an outside caller, and the run no longer depends on its seed alone.
type ProcessLauncher struct {
	log    io.Writer
	clock  clock.Clock
	grace  time.Duration
	record string // the record's path; "" when none is kept
	tag    string // the device tag, "FLEETLAB_DEVICE=<dir>"; "" when none

	mu  sync.Mutex
	cur *supervised
}

var _ Launcher = (*ProcessLauncher)(nil)

// DeviceTag is the environment variable every process the OS family starts carries, set to the device
// directory: FLEETLAB_DEVICE=<dir>. An application must pass it on to what it starts, for those to be found
// and stopped with it.
const DeviceTag = "FLEETLAB_DEVICE"

// deviceEnv returns the tag of the device in dir, "" when dir is empty.
func deviceEnv(dir string) string {
	if dir == "" {
		return ""
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return DeviceTag + "=" + dir
}

// withTag returns env with the device tag set to tag (replacing one already there).
func withTag(env []string, tag string) []string {
	if tag == "" {
		return env
	}
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, DeviceTag+"=") {
			out = append(out, kv)
		}
	}
	return append(out, tag)
}

// appRecord is what the launcher keeps on the device of the application it runs.
type appRecord struct {
	// Version is the version id of the application.
	Version string `json:"version"`
	// Pid leads the application's process group.
	Pid int `json:"pid"`
	// Start is the process's start time, in clock ticks since boot; Boot the kernel's boot id. With Pid
	// they tell the application apart from a later process that got its number.
	Start uint64 `json:"start,omitempty"`
	Boot  string `json:"boot,omitempty"`
}

// supervised is one application under supervision.
type supervised struct {
	app  App
	stop chan struct{} // closed by Stop
	done chan struct{} // closed when supervision ends and the last process is gone

	mu       sync.Mutex
	proc     appProcess
	restarts int
}

// appProcess is one run of the application: a child the launcher started, or a process an earlier agent
// started that the launcher adopted.
type appProcess interface {
	// pid returns the process id, also its process group's.
	pid() int
	// wait returns once the process has exited and the rest of its group has been killed.
	wait() error
	// signal sends sig to the process group, unless wait has returned.
	signal(sig syscall.Signal)
}

// NewProcessLauncher returns a launcher with every default of opts resolved.
func NewProcessLauncher(opts ProcessLauncherOptions) *ProcessLauncher {
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.Grace <= 0 {
		opts.Grace = 10 * time.Second
	}
	l := &ProcessLauncher{log: opts.Log, clock: clock.Or(opts.Clock), grace: opts.Grace, tag: deviceEnv(opts.Dir)}
	if opts.Dir != "" {
		l.record = filepath.Join(opts.Dir, "app.json")
	}
	return l
}

// Adopt implements Launcher.
func (l *ProcessLauncher) Adopt(ctx context.Context, want *App) (bool, error) {
	l.mu.Lock()
	busy := l.cur != nil
	l.mu.Unlock()
	if busy {
		return false, errors.New("adopt: the launcher already runs an application")
	}
	if l.record == "" {
		return false, nil
	}
	rec, recErr := l.readRecord()
	var kept *adopted
	if recErr == nil && rec != nil && want != nil && rec.Version == want.Version.ID {
		if h, err := adoptRecorded(*rec); err == nil {
			kept = &adopted{h: h, tag: l.tag}
		}
	}
	keep := 0
	if kept != nil {
		keep = kept.pid()
	}
	err := l.stopStrays(ctx, keep)
	if kept == nil {
		return false, errors.Join(recErr, err, l.clearRecord())
	}
	s := &supervised{app: *want, stop: make(chan struct{}), done: make(chan struct{}), proc: kept}
	l.mu.Lock()
	l.cur = s
	l.mu.Unlock()
	fmt.Fprintf(l.log, "--- %s: adopted the running application (pid %d)\n", want.file(), keep)
	go l.supervise(s)
	return true, errors.Join(recErr, err)
}

// stopStrays stops every process of the device that is not part of the application kept, whose process
// group is keep (0: none kept; see strays): gracefully, then, after the grace period or when ctx ends, with a
// kill; processes started meanwhile are looked for again until none is left.
func (l *ProcessLauncher) stopStrays(ctx context.Context, keep int) error {
	if l.tag == "" || !supervisionSupported {
		return nil
	}
	t, _ := processTimer(l.clock, l.grace)
	defer t.Stop()
	sig := syscall.SIGTERM
	for round := 0; ; round++ {
		hs, err := strays(l.tag, keep)
		if err != nil {
			return fmt.Errorf("stop what an earlier agent left: %w", err)
		}
		if len(hs) == 0 {
			return nil
		}
		if round >= 100 {
			for _, h := range hs {
				h.close()
			}
			return fmt.Errorf("stop what an earlier agent left: %d processes keep coming back", len(hs))
		}
		if round == 0 {
			var pids []string
			for _, h := range hs {
				pids = append(pids, fmt.Sprint(h.pid))
			}
			fmt.Fprintf(l.log, "--- stopping what an earlier agent left running: pids %s\n", strings.Join(pids, " "))
		}
		gone := make(chan struct{})
		var wg sync.WaitGroup
		for _, h := range hs {
			h.signal(sig)
			wg.Go(func() { h.wait() })
		}
		go func() {
			wg.Wait()
			close(gone)
		}()
		select {
		case <-gone:
		case <-t.C():
			sig = syscall.SIGKILL
		case <-ctx.Done():
			sig = syscall.SIGKILL
		}
		if sig == syscall.SIGKILL {
			for _, h := range hs {
				h.signal(sig)
			}
			<-gone
		}
		for _, h := range hs {
			h.close()
		}
	}
}

// file is the application's launch file within its version.
func (app App) file() string { return path.Join(app.Package, app.LaunchFile) }

// Start implements Launcher.
func (l *ProcessLauncher) Start(ctx context.Context, app App) error {
	if err := l.Stop(ctx); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if app.Version.Dir == "" {
		return fmt.Errorf("launch %s: version %s has no directory", app.LaunchFile, app.Version.ID)
	}
	p, err := l.spawn(app)
	if err != nil {
		return err
	}
	s := &supervised{app: app, stop: make(chan struct{}), done: make(chan struct{}), proc: p}
	l.mu.Lock()
	l.cur = s
	l.mu.Unlock()
	go l.supervise(s)
	return nil
}

// spawn starts the application as a child and records it. A process that cannot be recorded is killed: a
// later agent could not find it.
func (l *ProcessLauncher) spawn(app App) (*child, error) {
	file := app.file()
	cmd := exec.Command(filepath.Join(app.Version.Dir, filepath.FromSlash(file)))
	cmd.Dir, cmd.Env = app.Version.Dir, withTag(app.Env, l.tag)
	cmd.Stdout, cmd.Stderr = l.log, l.log
	cmd.WaitDelay = time.Second
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("launch %s: %w", file, err)
	}
	c := &child{cmd: cmd}
	if l.record != "" {
		rec := appRecord{Version: app.Version.ID, Pid: cmd.Process.Pid}
		err := identify(&rec)
		if err == nil {
			err = l.writeRecord(rec)
		}
		if err != nil {
			c.signal(syscall.SIGKILL)
			c.wait()
			return nil, fmt.Errorf("launch %s: record it: %w", file, err)
		}
	}
	return c, nil
}

// supervise waits for the application and starts it again when it exits before Stop.
func (l *ProcessLauncher) supervise(s *supervised) {
	defer close(s.done)
	file := s.app.file()
	for {
		s.mu.Lock()
		p := s.proc
		s.mu.Unlock()
		err := p.wait()
		select {
		case <-s.stop:
			return
		default:
		}
		for {
			s.mu.Lock()
			s.restarts++
			n := s.restarts
			s.mu.Unlock()
			d := min(time.Second<<min(n-1, 6), time.Minute)
			fmt.Fprintf(l.log, "--- %s: exited (%v); restart %d in %v\n", file, exitText(err), n, d)
			if !clock.Sleep(l.clock, d, s.stop) {
				return
			}
			s.mu.Lock()
			select {
			case <-s.stop:
				s.mu.Unlock()
				return
			default:
			}
			var next *child
			next, err = l.spawn(s.app)
			if err == nil {
				s.proc = next
			}
			s.mu.Unlock()
			if err == nil {
				break
			}
		}
	}
}

func exitText(err error) string {
	if err == nil {
		return "exit 0"
	}
	return err.Error()
}

// Stop implements Launcher.
func (l *ProcessLauncher) Stop(ctx context.Context) error {
	l.mu.Lock()
	s := l.cur
	l.cur = nil
	l.mu.Unlock()
	if s == nil {
		return nil
	}
	s.mu.Lock()
	close(s.stop)
	// Process groups and sessions the application started of its own (roslaunch starts every node in one) are
	// not reached through its group: they are found as its descendants now, while they still are, and stopped
	// with it.
	var own []*handle
	if l.tag != "" {
		own = ownGroups(l.tag, s.proc.pid())
	}
	s.proc.signal(syscall.SIGTERM)
	for _, h := range own {
		h.signal(syscall.SIGTERM)
	}
	s.mu.Unlock()
	defer func() {
		for _, h := range own {
			h.signal(syscall.SIGKILL)
			h.wait()
			h.close()
		}
	}()
	t, _ := processTimer(l.clock, l.grace)
	defer t.Stop()
	select {
	case <-s.done:
		return l.clearRecord()
	case <-t.C():
	case <-ctx.Done():
	}
	s.mu.Lock()
	s.proc.signal(syscall.SIGKILL)
	s.mu.Unlock()
	<-s.done
	return l.clearRecord()
}

// Running implements Launcher.
func (l *ProcessLauncher) Running() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur == nil {
		return ""
	}
	return l.cur.app.Version.ID
}

// Pid returns the process id of the running application, 0 when none.
func (l *ProcessLauncher) Pid() int {
	l.mu.Lock()
	s := l.cur
	l.mu.Unlock()
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc.pid()
}

// Restarts returns how many times supervision restarted the running application.
func (l *ProcessLauncher) Restarts() int {
	l.mu.Lock()
	s := l.cur
	l.mu.Unlock()
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restarts
}

func (l *ProcessLauncher) readRecord() (*appRecord, error) {
	b, err := os.ReadFile(l.record)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read application record: %w", err)
	}
	var rec appRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("decode application record %s: %w", l.record, err)
	}
	return &rec, nil
}

func (l *ProcessLauncher) writeRecord(rec appRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return writeFileAtomic(l.record, append(b, '\n'), 0o600)
}

// clearRecord says nothing runs.
func (l *ProcessLauncher) clearRecord() error {
	if l.record == "" {
		return nil
	}
	if err := os.Remove(l.record); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("clear application record: %w", err)
	}
	return nil
}

// child is an application process the launcher started.
type child struct {
	cmd *exec.Cmd

	mu     sync.Mutex
	exited bool
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// wait waits for the child to exit and kills what it left in its group. On Linux the child is waited for
// without being reaped and its group killed while the unreaped child keeps the group's number from being
// reused; elsewhere the group is killed just after.
func (c *child) wait() error {
	if !supervisionSupported {
		err := c.cmd.Wait()
		c.mu.Lock()
		killGroup(c.cmd)
		c.exited = true
		c.mu.Unlock()
		return err
	}
	waitNoReap(c.cmd.Process.Pid)
	c.mu.Lock()
	killGroup(c.cmd)
	c.exited = true
	c.mu.Unlock()
	return c.cmd.Wait()
}

func (c *child) signal(sig syscall.Signal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.exited {
		signalGroup(c.cmd, sig)
	}
}

// adopted is an application process an earlier agent started, held through a handle.
type adopted struct {
	h   *handle
	tag string

	mu     sync.Mutex
	exited bool
}

func (a *adopted) pid() int { return a.h.pid }

// wait waits for the process to exit; as it is not the agent's child, the rest of its group is found by
// the device tag.
func (a *adopted) wait() error {
	err := a.h.wait()
	a.mu.Lock()
	a.exited = true
	a.mu.Unlock()
	killTaggedGroup(a.h.pid, a.tag)
	a.h.close()
	if err != nil {
		return err
	}
	return errors.New("exit status unknown: an earlier agent started it")
}

func (a *adopted) signal(sig syscall.Signal) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.exited {
		a.h.signal(sig)
	}
}

// SimLauncher is the in-memory family's launcher. It does not interpret the launch file: Start checks that
// the file is in the version and records the application as running until Stop. An application that would
// crash is out of its reach; a fault wrapping the Launcher models one.
//
// Its record is itself: a host that gives the same SimLauncher to the agent it starts after killing one
// models an application that outlived its agent, which the new agent adopts (or stops, when it is not the
// version wanted); a fresh SimLauncher models a device whose power was cut, where nothing runs.
type SimLauncher struct {
	mu      sync.Mutex
	running string
	starts  int
	adopted int
}

var _ Launcher = (*SimLauncher)(nil)

// NewSimLauncher returns a launcher with nothing running.
func NewSimLauncher() *SimLauncher { return &SimLauncher{} }

// Adopt implements Launcher.
func (l *SimLauncher) Adopt(ctx context.Context, want *App) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if want != nil && l.running != "" && l.running == want.Version.ID {
		l.adopted++
		return true, nil
	}
	l.running = ""
	return false, nil
}

// Start implements Launcher.
func (l *SimLauncher) Start(ctx context.Context, app App) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	file := app.file()
	if app.Version.Files == nil {
		return fmt.Errorf("launch %s: version %s has no files", file, app.Version.ID)
	}
	fi, err := app.Version.Files.Stat(file)
	if err != nil {
		return fmt.Errorf("launch %s: %w", file, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("launch %s: %w", file, errors.New("not a regular file"))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.running = app.Version.ID
	l.starts++
	return nil
}

// Stop implements Launcher.
func (l *SimLauncher) Stop(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.running = ""
	return nil
}

// Running implements Launcher.
func (l *SimLauncher) Running() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.running
}

// Starts returns how many times an application was started.
func (l *SimLauncher) Starts() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.starts
}

// Adoptions returns how many times Adopt took over the running application.
func (l *SimLauncher) Adoptions() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.adopted
}
