package rigs_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/rigs"
	"github.com/fleetlab/fleetlab/sim/fleet/process"
	"github.com/fleetlab/fleetlab/sim/service"
)

var agentBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fleetlab-rigs-test-")
	if err != nil {
		panic(err)
	}
	agentBin, err = process.Build(context.Background(), dir)
	if err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// serve starts a service for the bridges to call.
func serve(t *testing.T) string {
	svc, err := service.New(service.Options{Dir: t.TempDir(), InMemoryStore: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start("127.0.0.1:0", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return svc.Endpoint()
}

func open(t *testing.T, f *rigs.File) *rigs.Rig {
	r, err := rigs.Open(f, rigs.Options{Endpoint: serve(t), Dir: t.TempDir(), Agent: agentBin,
		AgentArgs: []string{"--poll-min", "50ms", "--poll-max", "500ms"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestCheckEmulatedRig(t *testing.T) {
	f, err := rigs.Load("../fixtures/rigs/emulated-4.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := open(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, h := range r.Check(ctx) {
		if !h.Healthy() || !h.Booted || !h.Agent || h.Status == nil || !*h.Status {
			t.Errorf("%s: %+v", h.Board, h)
		}
	}
	for _, b := range r.Boards() {
		if b.Hello() != b.Thing() {
			t.Errorf("%s: agent says %q", b.Name(), b.Hello())
		}
		if st := b.Stats(); st.FramesReceived == 0 || st.Sessions != 1 {
			t.Errorf("%s: %+v", b.Name(), st)
		}
	}
}

func TestBoardThatNeverShowsThePromptIsARigFailure(t *testing.T) {
	f, err := rigs.Parse("panic.yaml", strings.NewReader(`
rig: broken
boards:
  - name: board-1
    thing: robot-0001
    emulate: {panic: "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)"}
    power: {chip: emulated, line: power}
    expect: {bootTimeout: 2s}
`))
	if err != nil {
		t.Fatal(err)
	}
	r := open(t, f)
	hs := r.Check(context.Background())
	var re *rigs.RigError
	if len(hs) != 1 || hs[0].Healthy() || hs[0].Booted || !errors.As(hs[0].Err, &re) {
		t.Fatalf("health %+v", hs)
	}
	if !strings.Contains(hs[0].Err.Error(), "Kernel panic") {
		t.Errorf("the error does not show the console: %v", hs[0].Err)
	}
}
