// Package containertest sets up tests of robots in containers: it says what a machine lacks to run them (a Docker
// engine that answers, Debian's busybox-static), builds the agent once per test binary, and fails a test binary
// that leaves anything of its fleets on the engine.
//
// Without a Docker engine the tests skip with a message saying so — unless FLEETLAB_REQUIRE_DOCKER=1 (CI sets
// it), where a machine that cannot run them fails them instead.
package containertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/sim/fleet/container"
	"github.com/fleetlab/fleetlab/sim/fleet/process"
)

// RequireEnv is the environment variable that turns a missing Docker engine or busybox into a failure.
const RequireEnv = "FLEETLAB_REQUIRE_DOCKER"

// Missing says what this machine lacks to run robots in containers, or nil: a Docker engine that answers (the
// one DOCKER_HOST names, else the default socket) and a static busybox at container.DefaultBusybox.
func Missing(ctx context.Context) error {
	var errs []error
	if err := container.Ping(ctx, container.Engine{}); err != nil {
		errs = append(errs, fmt.Errorf("no Docker engine answers (%v): start one, or point DOCKER_HOST at one", err))
	}
	if _, err := os.Stat(container.DefaultBusybox); err != nil {
		errs = append(errs, fmt.Errorf("%s is missing: apt-get install busybox-static (the robots' shell)", container.DefaultBusybox))
	}
	return errors.Join(errs...)
}

// Require skips tb, or fails it where RequireEnv is set, when robots cannot run in containers here.
func Require(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := Missing(ctx)
	switch {
	case err == nil:
	case os.Getenv(RequireEnv) == "1":
		tb.Fatalf("robots in containers cannot run here, and %s=1 requires them: %v", RequireEnv, err)
	default:
		tb.Skipf("robots in containers cannot run here: %v", err)
	}
}

// BinaryEnv names a fleetlab-agent binary for Main to use instead of building one: a test that runs its own
// test binary as a child, and kills it, sets it so the child builds nothing a kill would leave behind.
const BinaryEnv = "FLEETLAB_TEST_AGENT_BINARY"

// Main runs the tests of a package that starts container fleets: it builds the fleetlab-agent into a temporary
// directory (or takes the one BinaryEnv names) and sets *binary (left empty when the build fails: Require-ing
// tests then fail on it), runs m, and then fails the run if anything of this process's fleets is left on the
// engine — and removes it.
func Main(m *testing.M, binary *string) int {
	if bin := os.Getenv(BinaryEnv); bin != "" {
		*binary = bin
	} else {
		dir, err := os.MkdirTemp("", "fleetlab-agent-build-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		bin, err := process.Build(ctx, dir)
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		*binary = bin
	}
	code := m.Run()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if Missing(ctx) != nil {
		return code
	}
	left, err := container.FindOwned(ctx, container.Engine{}, container.ThisProcess())
	if err != nil {
		fmt.Fprintf(os.Stderr, "containertest: list what the tests left: %v\n", err)
		return 1
	}
	if !left.Empty() {
		fmt.Fprintf(os.Stderr, "containertest: the tests left %v on the Docker engine\n", left)
		container.RemoveOwned(ctx, container.Engine{}, container.ThisProcess())
		return 1
	}
	return code
}
