package scenarios_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/robomaker"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/clock"
)

// inventory is what the test-only agent keeps for its whole fleet: how many robots run the new version.
type inventory struct {
	clock clock.Clock
	mu    sync.Mutex
	count int
}

// countingRunner carries the planted bug. As part of its post-launch step, each robot of the test-only agent
// adds itself to the fleet's inventory — but it reads the count, announces itself to the fleet (which lets the
// other robots ready at that instant run first: a yield), and only then writes the count it read plus one. When
// another robot's post-launch step runs in between, an update is lost. Nothing but the order in which the world
// runs the robots decides whether that happens; atomic makes the update correct.
type countingRunner struct {
	agent.ScriptRunner
	inv    *inventory
	atomic bool
}

func (r *countingRunner) Run(ctx context.Context, s agent.Script) error {
	if s.Name != bundles.PostLaunchFile {
		return r.ScriptRunner.Run(ctx, s)
	}
	r.inv.mu.Lock()
	n := r.inv.count
	if r.atomic {
		r.inv.count++
	}
	r.inv.mu.Unlock()
	clock.Yield(r.inv.clock) // the announcement
	if !r.atomic {
		r.inv.mu.Lock()
		r.inv.count = n + 1
		r.inv.mu.Unlock()
	}
	return r.ScriptRunner.Run(ctx, s)
}

// inventoried is a clean rollout to two robots of the test-only agent, deployed at once, that must leave the
// fleet's inventory at two.
func inventoried(atomic bool) harness.Spec {
	inv := &inventory{}
	return harness.Spec{
		Name:  "inventoried-rollout",
		Fleet: harness.FleetSpec{Robots: 2},
		Options: []harness.Option{harness.WithBackend(harness.InProc{Agent: agent.Options{
			Wrap: func(ex agent.Executors) agent.Executors {
				ex.Scripts = &countingRunner{ScriptRunner: ex.Scripts, inv: inv, atomic: atomic}
				return ex
			}}})},
		Run: func(env *harness.Env, _ harness.Spec) string {
			inv.clock, inv.count = env.Clock(), 0
			job := env.Deploy(bundles.Hello, robomaker.Deployment{})
			env.WaitJob(job)
			if inv.count != 2 {
				env.T().Errorf("the fleet's inventory counts %d robots on the new version; 2 are in sync", inv.count)
			}
			return job
		},
		Expect: harness.Expect{Status: robomaker.JobSucceeded, Others: &harness.RobotExpect{Status: robomaker.RobotInSync}},
	}
}

// TestSeedSweepFindsThePlantedBug: a sweep of seeds finds the lost update of the test-only agent (which one seed
// alone may well miss), the seed it names fails again when rerun alone, and the same sweep over the corrected
// agent finds nothing.
func TestSeedSweepFindsThePlantedBug(t *testing.T) {
	const seeds = 20
	found := harness.Sweep(inventoried(false), harness.DefaultSeed, seeds, nil)
	if found.Err == nil {
		t.Fatalf("%d seeds from %d ran the planted lost update without noticing it", seeds, harness.DefaultSeed)
	}
	if !strings.Contains(found.Err.Error(), "inventory counts 1") {
		t.Fatalf("seed %d failed otherwise than by the lost update: %v", found.Seed, found.Err)
	}
	t.Logf("the sweep found the lost update with seed %d, after %d seeds", found.Seed, found.Runs)
	again := inventoried(false)
	again.Seed = found.Seed
	if _, err := harness.Execute(again, nil, ""); err == nil || err.Error() != found.Err.Error() {
		t.Fatalf("seed %d rerun alone: %v, want the same failure: %v", found.Seed, err, found.Err)
	}
	if fixed := harness.Sweep(inventoried(true), harness.DefaultSeed, seeds, nil); fixed.Err != nil {
		t.Fatalf("the corrected agent fails with seed %d: %v", fixed.Seed, fixed.Err)
	}
}
