package harness_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/harness/robomaker"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/clock"
	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
)

// TestVirtualTime: an environment runs on virtual time by default. Two hours that a robot spends in a slow step
// pass while Eventually waits, without the wall clock waiting for them; gomega's own Eventually, which polls on
// the wall clock, watches a world that stands still and fails quickly instead of hanging.
func TestVirtualTime(t *testing.T) {
	env := harness.New(t, harness.WithRobots(2))
	if env.World() == nil {
		t.Fatal("an in-process environment without a time scale is not on virtual time")
	}
	env.Inject(faults.Spec{Fault: "slow-step", Params: []byte(`{"delay":"2h"}`),
		Target: faults.Selector{Devices: []string{"robot-0001"}, Step: rmwire.StepLaunching}})
	start := env.Clock().Now()
	job := env.Deploy(bundles.Hello, robomaker.Deployment{})

	var failure string
	g := gomega.NewGomega(func(msg string, _ ...int) { failure = msg })
	wall := clock.Real{}.Now()
	if g.Eventually(env.Job(job)).WithTimeout(300 * time.Millisecond).WithPolling(10 * time.Millisecond).
		Should(harness.HaveStatus(robomaker.JobSucceeded)) {
		t.Fatal("gomega's Eventually saw the job succeed, though no virtual time passed")
	}
	if failure == "" || (clock.Real{}).Now().Sub(wall) > 10*time.Second || env.Clock().Now() != start {
		t.Fatalf("gomega's Eventually: failure %q after %v; virtual time moved %v", failure,
			(clock.Real{}).Now().Sub(wall), env.Clock().Now().Sub(start))
	}

	env.Eventually(env.Job(job)).Should(harness.HaveStatus(robomaker.JobSucceeded))
	if took := env.Clock().Now().Sub(start); took < 2*time.Hour || took > 3*time.Hour {
		t.Fatalf("the job took %v of virtual time, want the two hours of the slow step", took)
	}
	if wall := (clock.Real{}).Now().Sub(wall); wall > time.Minute {
		t.Errorf("two virtual hours took %v of wall time", wall)
	}
}

// blockingLauncher blocks its caller outside the world, on a plain channel, for a while of wall time: the misuse
// the watchdog exists for.
type blockingLauncher struct {
	agent.Launcher
	release <-chan time.Time
}

func (l blockingLauncher) Start(ctx context.Context, app agent.App) error {
	<-l.release
	return l.Launcher.Start(ctx, app)
}

// TestStalledWorldIsAnInfrastructureFailure: a robot whose executor blocks outside the world stalls it; the run
// fails, as an infrastructure failure, with a report naming the stuck actor and its stack, instead of hanging;
// once the executor lets go, the world carries on and the environment is torn down cleanly.
func TestStalledWorldIsAnInfrastructureFailure(t *testing.T) {
	// The watchdog's wall-clock bound is well above what any other actor holds its turn for on a loaded machine
	// under -race (the setup's calls took more than a second there), and the launcher blocks well past it.
	spec := harness.Spec{Name: "stall", Fleet: harness.FleetSpec{Robots: 1},
		Options: []harness.Option{harness.WithWatchdog(4 * time.Second), harness.WithBackend(harness.InProc{
			Agent: agent.Options{Wrap: func(ex agent.Executors) agent.Executors {
				ex.Launcher = blockingLauncher{Launcher: ex.Launcher, release: clock.Real{}.NewTimer(10 * time.Second).C()}
				return ex
			}}})},
		Expect: harness.Expect{Status: robomaker.JobSucceeded, Others: &harness.RobotExpect{Status: robomaker.RobotInSync}}}
	var log strings.Builder
	_, err := harness.Execute(spec, &log, "")
	var infra *harness.InfraError
	if !errors.As(err, &infra) {
		t.Fatalf("a stalled world: %v, want an infrastructure failure", err)
	}
	for _, want := range []string{"stalled", `"robot-0001 agent"`, "blockingLauncher.Start"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the report lacks %q:\n%s", want, err)
		}
	}
	if strings.Contains(log.String(), "tear down") || strings.Contains(log.String(), "still alive") {
		t.Errorf("the environment was not torn down cleanly after the stall:\n%s", log.String())
	}
}

// recorded is a T that keeps the errors a run reports instead of failing the test.
type recorded struct {
	*testing.T
	errs []string
}

func (r *recorded) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// TestSeedsFlag: with -fleetlab.seeds, RunSpec runs a scenario under that many seeds from -fleetlab.seed on and
// reports the first that fails, with the command that reruns it alone.
func TestSeedsFlag(t *testing.T) {
	if err := flag.Set("fleetlab.seeds", "5"); err != nil {
		t.Fatal(err)
	}
	defer flag.Set("fleetlab.seeds", "0")
	var seeds []uint64
	spec := harness.Spec{Name: "unlucky-thirds", Fleet: harness.FleetSpec{Robots: 1},
		Run: func(env *harness.Env, _ harness.Spec) string {
			seeds = append(seeds, env.Seed())
			if env.Seed()%3 == 0 {
				env.T().Errorf("seed %d is unlucky", env.Seed())
			}
			return env.Deploy(bundles.Hello, robomaker.Deployment{})
		},
		Expect: harness.Expect{Status: robomaker.JobSucceeded, Others: &harness.RobotExpect{Status: robomaker.RobotInSync}}}
	r := &recorded{T: t}
	harness.RunSpec(r, spec)
	first := harness.DefaultSeed
	for first%3 != 0 {
		first++
	}
	if len(seeds) != int(first-harness.DefaultSeed)+1 || seeds[0] != harness.DefaultSeed || seeds[len(seeds)-1] != first {
		t.Fatalf("ran seeds %v, want %d on to %d, the first unlucky one", seeds, harness.DefaultSeed, first)
	}
	msg := strings.Join(r.errs, "\n")
	for _, want := range []string{fmt.Sprintf("fails with seed %d", first), fmt.Sprintf("seed %d is unlucky", first),
		fmt.Sprintf("rerun: go test -run '^TestSeedsFlag$' -fleetlab.seed=%d", first)} {
		if !strings.Contains(msg, want) {
			t.Errorf("report lacks %q:\n%s", want, msg)
		}
	}
}
