package container_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/harness/robomaker/robomakertest"
	"github.com/fleetlab/fleetlab/sim/fleet/container"
	"github.com/fleetlab/fleetlab/sim/fleet/container/containertest"
	"github.com/fleetlab/fleetlab/sim/service"
)

// TestInterruptedRunIsSwept starts a fleet in a child process and kills the child (SIGKILL: no cleanup runs),
// as an interrupted test binary dies: its containers, network and volumes stay behind, labelled with a dead
// owner. The next fleet's New sweeps them all, and leaves alone what a live owner (this process) has.
func TestInterruptedRunIsSwept(t *testing.T) {
	containertest.Require(t)
	w := robomakertest.Start(t, service.Options{InMemoryStore: true})
	live := newFleet(t, w, container.Options{Count: 1, Prefix: "live"})

	run := container.NewRunID()
	child := exec.Command(os.Args[0], "-test.run=^TestChildFleet$")
	child.Env = append(os.Environ(), "FLEETLAB_CHILD_FLEET="+w.Svc.Endpoint(), "FLEETLAB_CHILD_RUN="+run,
		"FLEETLAB_CHILD_BINARY="+binary, containertest.BinaryEnv+"="+binary) // the killed child builds nothing
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, _ := out.Read(buf) // the child says "up" once its fleet runs
	if !strings.HasPrefix(string(buf[:n]), "up") {
		child.Process.Kill()
		child.Wait()
		t.Fatalf("child fleet did not come up: %q", buf[:n])
	}
	child.Process.Kill()
	child.Wait()

	ctx := context.Background()
	left := ofRun(t, ctx, run)
	if len(left.Containers) != 2 || len(left.Volumes) != 2 || len(left.Networks) != 1 {
		t.Fatalf("the killed run left %v, want 2 containers, 2 volumes and its network", left)
	}
	swept, err := container.Sweep(ctx, container.Engine{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range left.Containers {
		if !slices.Contains(swept.Containers, c) {
			t.Errorf("sweep left container %s: swept %v", c, swept)
		}
	}
	if after := ofRun(t, ctx, run); !after.Empty() {
		t.Errorf("after the sweep the killed run still has %v", after)
	}
	if got := ofRun(t, ctx, live.RunID()); len(got.Containers) != 1 {
		t.Errorf("the sweep touched the live fleet: it has %v", got)
	}
}

// ofRun lists the objects of one run.
func ofRun(t *testing.T, ctx context.Context, run string) container.Resources {
	t.Helper()
	all, err := container.Find(ctx, container.Engine{})
	if err != nil {
		t.Fatal(err)
	}
	var out container.Resources
	pick := func(names []string) []string {
		var got []string
		for _, n := range names {
			if strings.Contains(n, run) {
				got = append(got, n)
			}
		}
		return got
	}
	out.Containers, out.Networks, out.Volumes = pick(all.Containers), pick(all.Networks), pick(all.Volumes)
	return out
}

// TestChildFleet is the child of TestInterruptedRunIsSwept: it starts two robots and waits to be killed.
func TestChildFleet(t *testing.T) {
	endpoint := os.Getenv("FLEETLAB_CHILD_FLEET")
	if endpoint == "" {
		t.Skip("the child of TestInterruptedRunIsSwept")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f, err := container.New(ctx, container.Options{Endpoint: endpoint, Count: 2, RunID: os.Getenv("FLEETLAB_CHILD_RUN"),
		Binary: os.Getenv("FLEETLAB_CHILD_BINARY"), Agent: fast})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() // never reached: the parent kills this process
	fmt.Println("up")
	<-ctx.Done()
}
