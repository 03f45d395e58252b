package agent

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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
	r := NewProcessRunner(&log, nil, time.Minute)
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
	r := NewProcessRunner(nil, clk, 30*time.Second)
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
	r := NewProcessRunner(nil, nil, 0)
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
	l := NewProcessLauncher(nil, nil, 10*time.Second)
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
	l := NewProcessLauncher(nil, clk, 5*time.Second)
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
	l := NewProcessLauncher(nil, clk, time.Second)
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
	v, err := vs.Extract(context.Background(), "v1", memBlob(makeBundle(t, tarEntry{name: "pkg/launch.sh", body: "#!/bin/sh\n"})))
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
