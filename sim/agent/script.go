package agent

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fleetlab/fleetlab/sim/clock"
)

// Script is a script the agent runs: a download condition, a pre-launch or a post-launch file.
type Script struct {
	// Name is how the deployment names it (the launch config's file name, or the condition object's key).
	Name string
	// Path is the file to execute; empty in the in-memory family.
	Path string
	// Dir is the working directory; empty in the in-memory family.
	Dir string
	// Env is the whole environment, "KEY=value".
	Env []string
	// Read returns the script's text.
	Read func() ([]byte, error)
	// Timeout, when positive, bounds this script instead of the runner's own bound (a recipe's step
	// timeout).
	Timeout time.Duration
}

// ScriptRunner runs a script to completion. It returns nil when the script exits 0, *ExitError for another
// status, an error wrapping ErrScriptTimeout when it ran too long and was killed, ErrNotSimulable from the
// in-memory runner for a script it cannot interpret, and ctx's error when ctx ended first (the script is
// killed then too).
type ScriptRunner interface {
	Run(ctx context.Context, s Script) error
}

// ProcessRunner runs scripts as OS processes, each in its own process group so a timeout or a stop kills
// everything the script started, and on Linux killed by the kernel when the agent dies: the agent that
// resumes the step runs the script again, and two copies must never run at once. What a script started
// and left behind when the agent died is found by the device tag and stopped by the next agent's launcher
// (Launcher.Adopt). Output goes to the device log, framed by a line naming the script and one giving its
// exit status.
//
// On a virtual-time world's clock (clock.World) a script runs while the agent holds its turn: it takes no
// virtual time, and its timeout is wall-clock time, at most WorldProcessCap (see processTimer).
type ProcessRunner struct {
	log     io.Writer
	clock   clock.Clock
	timeout time.Duration
	tag     string
	logMu   *sync.Mutex
}

var _ ScriptRunner = (*ProcessRunner)(nil)

// ProcessRunnerOptions configure a ProcessRunner. Zero fields take the defaults listed.
type ProcessRunnerOptions struct {
	// Log receives the scripts' output. Default: discarded.
	Log io.Writer
	// Clock times Timeout. Default: the real clock.
	Clock clock.Clock
	// Timeout bounds each script; one that runs longer is killed. Zero or negative: no bound.
	Timeout time.Duration
	// Dir is the device directory, whose tag (DeviceTag) every script carries. Empty: no tag.
	Dir string
}

// NewProcessRunner returns a runner with every default of opts resolved.
func NewProcessRunner(opts ProcessRunnerOptions) *ProcessRunner {
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	return &ProcessRunner{log: opts.Log, clock: clock.Or(opts.Clock), timeout: opts.Timeout, tag: deviceEnv(opts.Dir),
		logMu: &sync.Mutex{}}
}

// Run implements ScriptRunner.
func (r *ProcessRunner) Run(ctx context.Context, s Script) error {
	if s.Path == "" {
		return fmt.Errorf("run %s: no file on the device", s.Name)
	}
	cmd := exec.Command(s.Path)
	cmd.Dir, cmd.Env = s.Dir, withTag(s.Env, r.tag)
	cmd.Stdout, cmd.Stderr = r.log, r.log
	cmd.WaitDelay = time.Second
	setScriptAttrs(cmd)
	r.logf("--- %s: start\n", s.Name)
	if err := cmd.Start(); err != nil {
		r.logf("--- %s: %v\n", s.Name, err)
		return fmt.Errorf("run %s: %w", s.Name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var timeout <-chan time.Time
	limit := r.timeout
	if s.Timeout > 0 {
		limit = s.Timeout
	}
	if t, d := processTimer(r.clock, limit); t != nil {
		defer t.Stop()
		timeout, limit = t.C(), d
	}
	var err error
	select {
	case err = <-done:
	case <-timeout:
		killGroup(cmd)
		<-done
		r.logf("--- %s: killed after %v\n", s.Name, limit)
		return fmt.Errorf("run %s: after %v: %w", s.Name, limit, ErrScriptTimeout)
	case <-ctx.Done():
		killGroup(cmd)
		<-done
		r.logf("--- %s: killed, the agent is stopping\n", s.Name)
		return ctx.Err()
	}
	// A script that exited may leave children behind in its group; they are not part of the result.
	killGroup(cmd)
	var ee *exec.ExitError
	switch {
	case err == nil:
		r.logf("--- %s: exit 0\n", s.Name)
		return nil
	case errors.As(err, &ee):
		r.logf("--- %s: %v\n", s.Name, ee)
		return &ExitError{Code: ee.ExitCode()}
	default:
		r.logf("--- %s: %v\n", s.Name, err)
		return fmt.Errorf("run %s: %w", s.Name, err)
	}
}

func (r *ProcessRunner) logf(format string, args ...any) {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	fmt.Fprintf(r.log, format, args...)
}

// SimRunner is the in-memory family's script runner. It does not start processes: it reads the script and,
// when it is a trivial #!/bin/sh script — echo lines, ':' or 'true', comments and blank lines, ending in
// `exit N` — returns the outcome N; echo lines are copied to the log unexpanded. Anything else returns
// ErrNotSimulable: the trade-off for running thousands of robots in one process is that only scripts whose
// outcome is written in their text can run. Bundles with real scripts need the OS family.
type SimRunner struct {
	log io.Writer
	mu  sync.Mutex
}

var _ ScriptRunner = (*SimRunner)(nil)

// NewSimRunner returns a runner writing echoed lines to log (nil: discarded).
func NewSimRunner(log io.Writer) *SimRunner {
	if log == nil {
		log = io.Discard
	}
	return &SimRunner{log: log}
}

// Run implements ScriptRunner.
func (r *SimRunner) Run(ctx context.Context, s Script) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.Read == nil {
		return fmt.Errorf("run %s: no contents", s.Name)
	}
	text, err := s.Read()
	if err != nil {
		return fmt.Errorf("run %s: %w", s.Name, err)
	}
	code, echoes, err := ParseTrivialScript(text)
	if err != nil {
		return fmt.Errorf("run %s: %w", s.Name, err)
	}
	r.mu.Lock()
	for _, e := range echoes {
		fmt.Fprintln(r.log, e)
	}
	r.mu.Unlock()
	if code != 0 {
		return &ExitError{Code: code}
	}
	return nil
}

// ParseTrivialScript reads the outcome of a trivial #!/bin/sh script: its exit status and the arguments of
// its echo lines. It returns an error wrapping ErrNotSimulable for any other script.
func ParseTrivialScript(text []byte) (code int, echoes []string, err error) {
	sc := bufio.NewScanner(bytes.NewReader(text))
	first := true
	exited := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if first {
			first = false
			if line != "#!/bin/sh" {
				return 0, nil, fmt.Errorf("first line %q: %w", line, ErrNotSimulable)
			}
			continue
		}
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
			continue
		case exited:
			return 0, nil, fmt.Errorf("%q after exit: %w", line, ErrNotSimulable)
		case line == ":" || line == "true":
		case line == "echo" || strings.HasPrefix(line, "echo "):
			echoes = append(echoes, strings.TrimSpace(strings.TrimPrefix(line, "echo")))
		case strings.HasPrefix(line, "exit "):
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "exit ")))
			if err != nil || n < 0 || n > 255 {
				return 0, nil, fmt.Errorf("%q: %w", line, ErrNotSimulable)
			}
			code, exited = n, true
		default:
			return 0, nil, fmt.Errorf("%q: %w", line, ErrNotSimulable)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, nil, fmt.Errorf("read script: %w", err)
	}
	if first {
		return 0, nil, fmt.Errorf("empty script: %w", ErrNotSimulable)
	}
	if !exited {
		return 0, nil, fmt.Errorf("no final `exit N`: %w", ErrNotSimulable)
	}
	return code, echoes, nil
}

// WorldProcessCap bounds, in wall-clock time, how long an agent on a virtual-time world's clock waits for an OS
// process — a script to exit, an application to stop — while it holds the world's turn. Virtual time stands
// still meanwhile, so a process that hangs must not hold the whole world for longer than this; a script still
// running then is killed and fails as timed out. It is well below the world's watchdog (clock.DefaultWatchdog).
const WorldProcessCap = 30 * time.Second

// processTimer returns the timer that bounds a wait for a process: d of c's time (none when d ≤ 0), or, on a
// virtual-time world's clock, d of wall-clock time capped at WorldProcessCap. It also returns the limit used.
func processTimer(c clock.Clock, d time.Duration) (clock.Timer, time.Duration) {
	if clock.WorldOf(c) != nil {
		if d <= 0 || d > WorldProcessCap {
			d = WorldProcessCap
		}
		return clock.Real{}.NewTimer(d), d
	}
	if d <= 0 {
		return nil, d
	}
	return c.NewTimer(d), d
}
