package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path"
	"path/filepath"
	"sync"
	"time"

	"github.com/fleetlab/fleetlab/sim/clock"
)

// App is a robot application to run: the launch file inside the launch package of a version.
type App struct {
	Version Version
	// Package and LaunchFile are the launch config's packageName and launchFile: the application is the
	// file <Package>/<LaunchFile> of the version, run as an executable from the version's directory.
	Package    string
	LaunchFile string
	// Env is the whole environment, "KEY=value".
	Env []string
}

// Launcher runs the robot's application: at most one at a time.
type Launcher interface {
	// Start runs app as the robot's application, stopping any application running before. An error means
	// the application did not start.
	Start(ctx context.Context, app App) error
	// Stop stops the running application, if any: first a graceful signal, then, after the launcher's grace
	// period or when ctx ends, a kill. It returns once the application is gone.
	Stop(ctx context.Context) error
	// Running returns the version id of the running application, "" when none.
	Running() string
}

// ProcessLauncher runs the application as a supervised child process in its own process group, with its
// output in the device log. An application that exits on its own is started again after a backoff on the
// clock (1s doubling to 1m), as a robot's process supervisor would; Stop ends supervision first.
//
// On a virtual-time world's clock, Stop waits for the process in wall-clock time (the grace, at most
// WorldProcessCap) while the agent holds its turn, so stopping takes no virtual time. An application that
// exits by itself is a real event, noticed when it happens: its restart backoff then runs on the world's time
// as an outside caller, and the run no longer depends on its seed alone.
type ProcessLauncher struct {
	log   io.Writer
	clock clock.Clock
	grace time.Duration

	mu  sync.Mutex
	cur *supervised
}

var _ Launcher = (*ProcessLauncher)(nil)

// supervised is one application under supervision.
type supervised struct {
	id   string
	stop chan struct{} // closed by Stop
	done chan struct{} // closed when supervision ends and the last process is gone

	mu       sync.Mutex
	cmd      *exec.Cmd
	restarts int
}

// NewProcessLauncher returns a launcher writing application output to log (nil: discarded) and waiting
// grace of c's time (nil: the real clock) after the graceful signal before killing (≤ 0: 10s).
func NewProcessLauncher(log io.Writer, c clock.Clock, grace time.Duration) *ProcessLauncher {
	if log == nil {
		log = io.Discard
	}
	if grace <= 0 {
		grace = 10 * time.Second
	}
	return &ProcessLauncher{log: log, clock: clock.Or(c), grace: grace}
}

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
	file := path.Join(app.Package, app.LaunchFile)
	p := filepath.Join(app.Version.Dir, filepath.FromSlash(file))
	newCmd := func() *exec.Cmd {
		cmd := exec.Command(p)
		cmd.Dir, cmd.Env = app.Version.Dir, app.Env
		cmd.Stdout, cmd.Stderr = l.log, l.log
		cmd.WaitDelay = time.Second
		setProcessGroup(cmd)
		return cmd
	}
	cmd := newCmd()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("launch %s: %w", file, err)
	}
	s := &supervised{id: app.Version.ID, stop: make(chan struct{}), done: make(chan struct{}), cmd: cmd}
	l.mu.Lock()
	l.cur = s
	l.mu.Unlock()
	go l.supervise(s, file, newCmd)
	return nil
}

// supervise waits for the application and starts it again when it exits before Stop.
func (l *ProcessLauncher) supervise(s *supervised, file string, newCmd func() *exec.Cmd) {
	defer close(s.done)
	for {
		s.mu.Lock()
		cmd := s.cmd
		s.mu.Unlock()
		err := cmd.Wait()
		killGroup(cmd) // whatever it left behind in its group goes with it
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
			d := time.Second << min(n-1, 6)
			fmt.Fprintf(l.log, "--- %s: exited (%v); restart %d in %v\n", file, exitText(err), n, min(d, time.Minute))
			if !clock.Sleep(l.clock, min(d, time.Minute), s.stop) {
				return
			}
			next := newCmd()
			s.mu.Lock()
			select {
			case <-s.stop:
				s.mu.Unlock()
				return
			default:
			}
			err = next.Start()
			if err == nil {
				s.cmd = next
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
	terminateGroup(s.cmd)
	s.mu.Unlock()
	t, _ := processTimer(l.clock, l.grace)
	defer t.Stop()
	select {
	case <-s.done:
		return nil
	case <-t.C():
	case <-ctx.Done():
	}
	s.mu.Lock()
	killGroup(s.cmd)
	s.mu.Unlock()
	<-s.done
	return nil
}

// Running implements Launcher.
func (l *ProcessLauncher) Running() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur == nil {
		return ""
	}
	return l.cur.id
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
	return s.cmd.Process.Pid
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

// SimLauncher is the in-memory family's launcher. It does not interpret the launch file: Start checks that
// the file is in the version and records the application as running until Stop. An application that would
// crash is out of its reach; a fault wrapping the Launcher models one.
type SimLauncher struct {
	mu      sync.Mutex
	running string
	starts  int
}

var _ Launcher = (*SimLauncher)(nil)

// NewSimLauncher returns a launcher with nothing running.
func NewSimLauncher() *SimLauncher { return &SimLauncher{} }

// Start implements Launcher.
func (l *SimLauncher) Start(ctx context.Context, app App) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	file := path.Join(app.Package, app.LaunchFile)
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
