package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/harness/robomaker/robomakertest"
	"github.com/fleetlab/fleetlab/sim/fleet"
	"github.com/fleetlab/fleetlab/sim/fleet/process"
	"github.com/fleetlab/fleetlab/sim/service"
)

// agentProcess is the built agent running as a process, its stderr kept.
type agentProcess struct {
	cmd    *exec.Cmd
	stderr syncWriter
}

func startAgent(t *testing.T, bin string, args ...string) *agentProcess {
	t.Helper()
	p := &agentProcess{cmd: exec.Command(bin, args...)}
	p.stderr.w = &bytes.Buffer{}
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	return p
}

func (p *agentProcess) log() string {
	p.stderr.mu.Lock()
	defer p.stderr.mu.Unlock()
	return p.stderr.w.String()
}

// waitLog waits until the agent's log holds every one of want.
func (p *agentProcess) waitLog(t *testing.T, want ...string) {
	t.Helper()
	if !robomakertest.Eventually(20*time.Second, func() bool {
		l := p.log()
		for _, w := range want {
			if !strings.Contains(l, w) {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("the agent's log lacks one of %q:\n%s", want, p.log())
	}
}

// stop sends SIGTERM and expects a clean exit.
func (p *agentProcess) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("agent after SIGTERM: %v\n%s", err, p.log())
	}
}

// TestLogs: the agent says on stderr what it does, by default: each step of a job, the notify channel, a service
// it cannot reach (with the retries) and a thing name the service does not know, with what to do about it; with
// --quiet only errors.
func TestLogs(t *testing.T) {
	bin, err := process.Build(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fast := []string{"--poll-min", "50ms", "--poll-max", "1s", "--retry-base", "50ms", "--retry-max", "200ms"}

	t.Run("unreachable", func(t *testing.T) {
		a := startAgent(t, bin, append([]string{"--endpoint", "http://127.0.0.1:1", "--thing", "robot-1", "--dir", t.TempDir()}, fast...)...)
		a.waitLog(t, "level=INFO msg=started", "level=ERROR msg=error", "connection refused", "level=WARN msg=retry robot=robot-1 state=notify")
		a.stop(t)
	})

	w := robomakertest.Start(t, service.Options{InMemoryStore: true})
	t.Run("unknown thing", func(t *testing.T) {
		a := startAgent(t, bin, append([]string{"--endpoint", w.Svc.Endpoint(), "--thing", "robot-l", "--dir", t.TempDir()}, fast...)...)
		a.waitLog(t, `level=ERROR msg="the service does not know this robot" robot=robot-l`, "ResourceNotFoundException",
			"create the robot with this name")
		a.stop(t)
	})

	t.Run("steps", func(t *testing.T) {
		fleetARN, err := w.Register(context.Background(), "lab", []fleet.Device{device{"robot-1"}, device{"robot-2"}})
		if err != nil {
			t.Fatal(err)
		}
		loud := startAgent(t, bin, append([]string{"--endpoint", w.Svc.Endpoint(), "--thing", "robot-1", "--dir", filepath.Join(t.TempDir(), "r1")}, fast...)...)
		quiet := startAgent(t, bin, append([]string{"--endpoint", w.Svc.Endpoint(), "--thing", "robot-2", "--dir", filepath.Join(t.TempDir(), "r2"), "--quiet"}, fast...)...)
		id := deployBeat(t, w, fleetARN)
		var want []string
		for _, s := range []string{"Validating", "DownloadingExtracting", "ExecutingDownloadCondition", "ExecutingPreLaunch",
			"Launching", "ExecutingPostLaunch", "Finished"} {
			want = append(want, "level=INFO msg="+s+" robot=robot-1 job="+id)
		}
		loud.waitLog(t, append(want, "msg=\"notify channel connected\"")...)
		loud.stop(t)
		quiet.stop(t)
		if l := quiet.log(); l != "" {
			t.Errorf("--quiet logged more than errors:\n%s", l)
		}
	})
}
