package agent

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/clock/clocktest"
)

// writeScript writes an executable script into dir.
func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// processGone reports whether pid has exited (it is absent, or a zombie nobody reaped yet).
func processGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// waitFor polls cond every few milliseconds of real time, failing the test after ten seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	c := clock.Real{}
	deadline := c.Now().Add(10 * time.Second)
	for !cond() {
		if c.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		clock.Sleep(c, 5*time.Millisecond, nil)
	}
}

func readPid(t *testing.T, p string) int {
	t.Helper()
	var pid int
	waitFor(t, "pid file "+p, func() bool {
		b, err := os.ReadFile(p)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	return pid
}

func TestProcessRunnerExitAndEnv(t *testing.T) {
	dir := t.TempDir()
	var log syncBuffer
	r := NewProcessRunner(ProcessRunnerOptions{Log: &log, Timeout: time.Minute})
	p := writeScript(t, dir, "pre.sh", `env | sort > env.txt; echo hello from pre; exit 3`)
	err := r.Run(context.Background(), Script{Name: "pre.sh", Path: p, Dir: dir, Env: []string{"PATH=" + os.Getenv("PATH"), "ROBOT_NAME=r1"}})
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 3 {
		t.Fatalf("err = %v, want exit status 3", err)
	}
	env, err := os.ReadFile(filepath.Join(dir, "env.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(env), "ROBOT_NAME=r1\n") || strings.Contains(string(env), "HOME=") {
		t.Errorf("script environment %q: want exactly the given variables", env)
	}
	out := log.String()
	for _, want := range []string{"--- pre.sh: start", "hello from pre", "--- pre.sh: exit status 3"} {
		if !strings.Contains(out, want) {
			t.Errorf("device log %q lacks %q", out, want)
		}
	}
	if err := r.Run(context.Background(), Script{Name: "ok.sh", Path: writeScript(t, dir, "ok.sh", "exit 0"), Dir: dir}); err != nil {
		t.Fatalf("exit 0: %v", err)
	}
	if err := r.Run(context.Background(), Script{Name: "missing.sh", Path: filepath.Join(dir, "missing.sh"), Dir: dir}); err == nil {
		t.Fatal("a missing script ran")
	}
}

func TestProcessRunnerTimeoutKillsTheGroup(t *testing.T) {
	dir := t.TempDir()
	clk := clocktest.New(time.Time{})
	r := NewProcessRunner(ProcessRunnerOptions{Clock: clk, Timeout: 30 * time.Second})
	p := writeScript(t, dir, "slow.sh", `sleep 60 & echo $! > child.pid; wait`)
	done := make(chan error, 1)
	go func() {
		done <- r.Run(context.Background(), Script{Name: "slow.sh", Path: p, Dir: dir, Env: []string{"PATH=" + os.Getenv("PATH")}})
	}()
	child := readPid(t, filepath.Join(dir, "child.pid"))
	<-clk.BlockUntil(1)
	clk.Advance(30 * time.Second)
	if err := <-done; !errors.Is(err, ErrScriptTimeout) {
		t.Fatalf("err = %v, want ErrScriptTimeout", err)
	}
	waitFor(t, "the script's child to be killed", func() bool { return processGone(child) })
}

func TestProcessRunnerContextKills(t *testing.T) {
	dir := t.TempDir()
	r := NewProcessRunner(ProcessRunnerOptions{})
	p := writeScript(t, dir, "slow.sh", `echo $$ > self.pid; sleep 60`)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- r.Run(ctx, Script{Name: "slow.sh", Path: p, Dir: dir, Env: []string{"PATH=" + os.Getenv("PATH")}})
	}()
	pid := readPid(t, filepath.Join(dir, "self.pid"))
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	waitFor(t, "the script to be killed", func() bool { return processGone(pid) })
}

func TestParseTrivialScript(t *testing.T) {
	tests := []struct {
		text   string
		code   int
		echoes []string
		ok     bool
	}{
		{"#!/bin/sh\nexit 0\n", 0, nil, true},
		{"#!/bin/sh\n# comment\n\necho pre-launch ok\n:\ntrue\nexit 3", 3, []string{"pre-launch ok"}, true},
		{"#!/bin/sh\nexit 255\n# trailing comment\n", 255, nil, true},
		{"#!/bin/bash\nexit 0\n", 0, nil, false},
		{"#!/bin/sh\necho no exit\n", 0, nil, false},
		{"#!/bin/sh\nsleep 1\nexit 0\n", 0, nil, false},
		{"#!/bin/sh\nexit 0\necho after\n", 0, nil, false},
		{"#!/bin/sh\nexit $CODE\n", 0, nil, false},
		{"#!/bin/sh\nexit 256\n", 0, nil, false},
		{"", 0, nil, false},
	}
	for _, tt := range tests {
		code, echoes, err := ParseTrivialScript([]byte(tt.text))
		if !tt.ok {
			if !errors.Is(err, ErrNotSimulable) {
				t.Errorf("%q: err = %v, want ErrNotSimulable", tt.text, err)
			}
			continue
		}
		if err != nil || code != tt.code || strings.Join(echoes, "|") != strings.Join(tt.echoes, "|") {
			t.Errorf("%q = %d, %q, %v; want %d, %q", tt.text, code, echoes, err, tt.code, tt.echoes)
		}
	}
}

func TestSimRunner(t *testing.T) {
	var log bytes.Buffer
	r := NewSimRunner(&log)
	run := func(text string) error {
		return r.Run(context.Background(), Script{Name: "s", Read: func() ([]byte, error) { return []byte(text), nil }})
	}
	if err := run("#!/bin/sh\necho fine\nexit 0\n"); err != nil {
		t.Fatal(err)
	}
	var ee *ExitError
	if err := run("#!/bin/sh\nexit 4\n"); !errors.As(err, &ee) || ee.Code != 4 {
		t.Fatalf("err = %v, want exit status 4", err)
	}
	if err := run("#!/bin/sh\ncurl http://x\nexit 0\n"); !errors.Is(err, ErrNotSimulable) {
		t.Fatalf("err = %v, want ErrNotSimulable", err)
	}
	if log.String() != "fine\n" {
		t.Errorf("log %q, want the echoed line", log.String())
	}
}

func TestProcessLauncherStopsGracefully(t *testing.T) {
	dir := t.TempDir()
	app := writeScript(t, dir, "launch.sh", `echo $$ > app.pid; trap 'echo stopped > stopped; exit 0' TERM; while :; do sleep 0.05; done`)
	l := NewProcessLauncher(ProcessLauncherOptions{Grace: 10 * time.Second})
	v := Version{ID: "v1", Dir: dir}
	if err := l.Start(context.Background(), App{Version: v, Package: ".", LaunchFile: filepath.Base(app), Env: []string{"PATH=" + os.Getenv("PATH")}}); err != nil {
		t.Fatal(err)
	}
	pid := readPid(t, filepath.Join(dir, "app.pid"))
	if l.Running() != "v1" || l.Pid() != pid {
		t.Fatalf("Running() = %q, Pid() = %d; want v1, %d", l.Running(), l.Pid(), pid)
	}
	if err := l.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "stopped")); err != nil || string(b) != "stopped\n" {
		t.Fatalf("the application did not stop on its signal: %q, %v", b, err)
	}
	if !processGone(pid) || l.Running() != "" {
		t.Fatalf("after Stop: gone %v, Running() %q", processGone(pid), l.Running())
	}
}

func TestProcessLauncherKillsAfterGrace(t *testing.T) {
	dir := t.TempDir()
	app := writeScript(t, dir, "launch.sh", `echo $$ > app.pid; trap '' TERM; while :; do sleep 0.05; done`)
	clk := clocktest.New(time.Time{})
	l := NewProcessLauncher(ProcessLauncherOptions{Clock: clk, Grace: 5 * time.Second})
	if err := l.Start(context.Background(), App{Version: Version{ID: "v1", Dir: dir}, Package: ".", LaunchFile: filepath.Base(app), Env: []string{"PATH=" + os.Getenv("PATH")}}); err != nil {
		t.Fatal(err)
	}
	pid := readPid(t, filepath.Join(dir, "app.pid"))
	done := make(chan error, 1)
	go func() { done <- l.Stop(context.Background()) }()
	<-clk.BlockUntil(1)
	if processGone(pid) {
		t.Fatal("the application ignoring its signal is gone before the grace period")
	}
	clk.Advance(5 * time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the application to be killed", func() bool { return processGone(pid) })
}

func TestProcessLauncherRestartsACrashedApplication(t *testing.T) {
	dir := t.TempDir()
	// The first run exits 1 at once; later runs stay up.
	app := writeScript(t, dir, "launch.sh", `echo x >> runs; if [ "$(wc -l < runs)" -eq 1 ]; then exit 1; fi; echo $$ > app.pid; while :; do sleep 0.05; done`)
	clk := clocktest.New(time.Time{})
	l := NewProcessLauncher(ProcessLauncherOptions{Clock: clk, Grace: time.Second})
	if err := l.Start(context.Background(), App{Version: Version{ID: "v1", Dir: dir}, Package: ".", LaunchFile: filepath.Base(app), Env: []string{"PATH=" + os.Getenv("PATH")}}); err != nil {
		t.Fatal(err)
	}
	<-clk.BlockUntil(1) // the supervisor waits before restarting
	if l.Restarts() != 1 {
		t.Fatalf("Restarts() = %d, want 1", l.Restarts())
	}
	clk.Advance(time.Second)
	pid := readPid(t, filepath.Join(dir, "app.pid"))
	if l.Pid() != pid {
		t.Fatalf("Pid() = %d, want the restarted %d", l.Pid(), pid)
	}
	// The application does not trap the signal: Stop returns without the grace period passing.
	if err := l.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the restarted application to stop", func() bool { return processGone(pid) })
}

func TestSimLauncher(t *testing.T) {
	vs := NewMemoryVersions(0)
	v, err := vs.Extract(context.Background(), "v1", BytesBlob(makeBundle(t, tarEntry{name: "pkg/launch.sh", body: "#!/bin/sh\n"})))
	if err != nil {
		t.Fatal(err)
	}
	l := NewSimLauncher()
	if err := l.Start(context.Background(), App{Version: v, Package: "pkg", LaunchFile: "missing.sh"}); err == nil {
		t.Fatal("started a launch file that is not in the version")
	}
	if err := l.Start(context.Background(), App{Version: v, Package: "pkg", LaunchFile: "launch.sh"}); err != nil {
		t.Fatal(err)
	}
	if l.Running() != "v1" || l.Starts() != 1 {
		t.Fatalf("Running() = %q, Starts() = %d", l.Running(), l.Starts())
	}
	if err := l.Stop(context.Background()); err != nil || l.Running() != "" {
		t.Fatalf("Stop: %v, Running() = %q", err, l.Running())
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// leftBehind starts the launch file in dir as an earlier agent would have — tagged with the device, leading a
// process group of its own — and, when record is set, records it as version id in the device directory dev.
// It returns the process, reaped in the background.
func leftBehind(t *testing.T, dev, dir, id string, record bool) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(filepath.Join(dir, "launch.sh"))
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), deviceEnv(dev)}
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	})
	go cmd.Wait()
	if record {
		l := NewProcessLauncher(ProcessLauncherOptions{Dir: dev})
		rec := appRecord{Version: id, Pid: cmd.Process.Pid}
		if err := identify(&rec); err != nil {
			t.Fatal(err)
		}
		if err := l.writeRecord(rec); err != nil {
			t.Fatal(err)
		}
	}
	return cmd
}

// beatingApp writes a launch file that records its pid in app.pid and a marker when asked to stop.
func beatingApp(t *testing.T, dir string) App {
	t.Helper()
	writeScript(t, dir, "launch.sh", `echo $$ > app.pid; trap 'echo stopped >> stopped; exit 0' TERM; while :; do sleep 0.05; done`)
	return App{Version: Version{ID: "v1", Dir: dir}, Package: ".", LaunchFile: "launch.sh", Env: []string{"PATH=" + os.Getenv("PATH")}}
}

func requireSupervision(t *testing.T) {
	if !supervisionSupported {
		t.Skip("adoption needs Linux")
	}
}

// TestProcessLauncherAdopts: the application an earlier agent recorded still runs and is the version wanted: a new
// launcher takes it over — no second copy — restarts it when it dies, records the new process and stops it.
func TestProcessLauncherAdopts(t *testing.T) {
	requireSupervision(t)
	dev, dir := t.TempDir(), t.TempDir()
	app := beatingApp(t, dir)
	old := leftBehind(t, dev, dir, "v1", true)
	pid := readPid(t, filepath.Join(dir, "app.pid"))
	clk := clocktest.New(time.Time{})
	l := NewProcessLauncher(ProcessLauncherOptions{Clock: clk, Grace: 5 * time.Second, Dir: dev})
	adopted, err := l.Adopt(context.Background(), &app)
	if err != nil || !adopted {
		t.Fatalf("Adopt = %v, %v; want the running application adopted", adopted, err)
	}
	if l.Running() != "v1" || l.Pid() != pid || pid != old.Process.Pid || processGone(pid) {
		t.Fatalf("after Adopt: Running() %q, Pid() %d; want v1, %d alive", l.Running(), l.Pid(), pid)
	}
	// It dies: supervision starts it again after the backoff, as its own child, and records it.
	os.Remove(filepath.Join(dir, "app.pid"))
	syscall.Kill(pid, syscall.SIGKILL)
	<-clk.BlockUntil(1)
	clk.Advance(time.Second)
	next := readPid(t, filepath.Join(dir, "app.pid"))
	if next == pid || l.Pid() != next || l.Restarts() != 1 {
		t.Fatalf("after the adopted process died: Pid() %d (restarted %d, was %d), Restarts() %d", l.Pid(), next, pid, l.Restarts())
	}
	rec, err := l.readRecord()
	if err != nil || rec == nil || rec.Pid != next || rec.Version != "v1" || rec.Start == 0 || rec.Boot == "" {
		t.Fatalf("record after the restart: %+v (%v), want v1 at pid %d with its start time and boot", rec, err, next)
	}
	if err := l.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the application to stop", func() bool { return processGone(next) })
	if rec, err := l.readRecord(); err != nil || rec != nil {
		t.Fatalf("record after Stop: %+v (%v), want none", rec, err)
	}
}

// TestProcessLauncherStopsWhatItDoesNotAdopt: what an earlier agent left that is not the version wanted is
// stopped — gracefully — and so is a tagged process nobody recorded (an application whose start was cut short, what
// a script left), while a process that took a recorded pid is left alone.
func TestProcessLauncherStopsWhatItDoesNotAdopt(t *testing.T) {
	requireSupervision(t)
	t.Run("another version", func(t *testing.T) {
		dev, dir := t.TempDir(), t.TempDir()
		app := beatingApp(t, dir)
		leftBehind(t, dev, dir, "v0", true)
		pid := readPid(t, filepath.Join(dir, "app.pid"))
		l := NewProcessLauncher(ProcessLauncherOptions{Dir: dev})
		if adopted, err := l.Adopt(context.Background(), &app); adopted || err != nil {
			t.Fatalf("Adopt = %v, %v; want nothing adopted", adopted, err)
		}
		if !processGone(pid) || l.Running() != "" {
			t.Fatalf("the other version %d still runs (%v), Running() %q", pid, !processGone(pid), l.Running())
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "stopped")); string(b) != "stopped\n" {
			t.Errorf("the other version was not stopped gracefully: %q", b)
		}
		if rec, err := l.readRecord(); err != nil || rec != nil {
			t.Errorf("record %+v (%v), want none", rec, err)
		}
	})
	t.Run("nothing wanted", func(t *testing.T) {
		dev, dir := t.TempDir(), t.TempDir()
		beatingApp(t, dir)
		leftBehind(t, dev, dir, "v1", true)
		pid := readPid(t, filepath.Join(dir, "app.pid"))
		l := NewProcessLauncher(ProcessLauncherOptions{Dir: dev})
		if adopted, err := l.Adopt(context.Background(), nil); adopted || err != nil || !processGone(pid) {
			t.Fatalf("Adopt(nil) = %v, %v; application gone: %v", adopted, err, processGone(pid))
		}
	})
	t.Run("start cut short", func(t *testing.T) {
		dev, dir := t.TempDir(), t.TempDir()
		app := beatingApp(t, dir)
		leftBehind(t, dev, dir, "", false)
		pid := readPid(t, filepath.Join(dir, "app.pid"))
		l := NewProcessLauncher(ProcessLauncherOptions{Dir: dev})
		if adopted, err := l.Adopt(context.Background(), &app); adopted || err != nil || !processGone(pid) {
			t.Fatalf("Adopt = %v, %v; the unrecorded copy gone: %v", adopted, err, processGone(pid))
		}
	})
	t.Run("pid reused", func(t *testing.T) {
		dev, dir := t.TempDir(), t.TempDir()
		app := beatingApp(t, dir)
		// An unrelated process has the recorded pid now: its start time differs from the record's.
		other := exec.Command("sleep", "60")
		if err := other.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			other.Process.Kill()
			other.Wait()
		})
		l := NewProcessLauncher(ProcessLauncherOptions{Dir: dev})
		rec := appRecord{Version: "v1", Pid: other.Process.Pid}
		if err := identify(&rec); err != nil {
			t.Fatal(err)
		}
		rec.Start--
		if err := l.writeRecord(rec); err != nil {
			t.Fatal(err)
		}
		if adopted, err := l.Adopt(context.Background(), &app); adopted || err != nil {
			t.Fatalf("Adopt = %v, %v; want the impostor not adopted", adopted, err)
		}
		if processGone(other.Process.Pid) {
			t.Fatal("Adopt killed a process that only shares the recorded pid")
		}
	})
}

// TestProcessLauncherKeepsWhatTheAdoptedApplicationStarted: an adopted application's children in process groups
// of their own (as roslaunch starts its nodes) are the application's, not strays: adopting it leaves them alone,
// and stopping it stops them too.
func TestProcessLauncherKeepsWhatTheAdoptedApplicationStarted(t *testing.T) {
	requireSupervision(t)
	dev, dir := t.TempDir(), t.TempDir()
	writeScript(t, dir, "launch.sh", `setsid sh -c 'echo $$ > node.pid; while :; do sleep 0.05; done' & echo $$ > app.pid; while :; do sleep 0.05; done`)
	app := App{Version: Version{ID: "v1", Dir: dir}, Package: ".", LaunchFile: "launch.sh", Env: []string{"PATH=" + os.Getenv("PATH")}}
	leftBehind(t, dev, dir, "v1", true)
	pid, node := readPid(t, filepath.Join(dir, "app.pid")), readPid(t, filepath.Join(dir, "node.pid"))
	t.Cleanup(func() { syscall.Kill(-node, syscall.SIGKILL) })
	l := NewProcessLauncher(ProcessLauncherOptions{Dir: dev})
	if adopted, err := l.Adopt(context.Background(), &app); !adopted || err != nil {
		t.Fatalf("Adopt = %v, %v", adopted, err)
	}
	if processGone(pid) || processGone(node) {
		t.Fatalf("after Adopt: application alive %v, its node in a session of its own alive %v", !processGone(pid), !processGone(node))
	}
	// Stopped, the application takes its node along.
	if err := l.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !processGone(pid) || !processGone(node) {
		t.Fatalf("after Stop: application gone %v, its node gone %v", processGone(pid), processGone(node))
	}
}
