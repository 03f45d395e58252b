package greengrassv2_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	gg "github.com/fleetlab/fleetlab/sim/agent/greengrassv2"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	ggwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/greengrassv2"
)

// TestInMemory runs deployments with the in-memory executors, whose script runner reads the outcome of
// trivial scripts: a clean two-component set with a dependency and an artifact, then a set whose install
// exits 2, rolled back to the first set and its configuration.
func TestInMemory(t *testing.T) {
	svc := agenttest.New(nil)
	t.Cleanup(svc.Close)
	data := []byte("lib")
	svc.PutObject(bucket, "lib.bin", data)
	trivial := func(lines string) map[string]any { return map[string]any{"install": "echo " + lines + "\nexit 0"} }
	recipe := func(name string, deps map[string]string, lc map[string]any, arts ...ggwire.Artifact) *ggwire.Recipe {
		c := &core{}
		return c.recipe(name, "1.0.0", deps, map[string]any{"mode": "default"}, lc, arts...)
	}
	cat := &gg.Catalog{}
	if err := cat.Add(
		recipe("App", map[string]string{"Lib": ">=1.0.0"}, trivial("app")),
		recipe("Lib", nil, trivial("lib"), ggwire.Artifact{URI: "s3://" + bucket + "/lib.bin", Digest: digest(data)}),
		recipe("Bad", nil, map[string]any{"install": "exit 2"}),
	); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	a := runInMemory(t, svc, []agent.Kind{gg.Kind{Resolver: cat}}, rec)
	c := &core{t: t, svc: svc, rec: rec, a: a}
	enqueue := func(job string, roots map[string]string, merge string) wire.JobExecution {
		t.Helper()
		d := deployment{roots: roots, update: map[string]*ggwire.ConfigurationUpdate{"Lib": {Merge: merge}}}
		c.enqueue(job, d)
		return c.waitEnded(job)
	}
	if e := enqueue("job-1", map[string]string{"App": "1.0.0", "Lib": "1.0.0"}, `{"mode":"fast"}`); e.Status != wire.StatusSucceeded {
		t.Fatalf("job-1 ended %s %v, chain %q", e.Status, e.StatusDetails, rec.chain("job-1"))
	}
	e := enqueue("job-2", map[string]string{"Lib": "1.0.0", "Bad": "1.0.0"}, `{"mode":"slow"}`)
	if got, want := rec.chain("job-2"), []string{R, D, I, RB, failed(gg.CodeComponentBroken)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("chain %q, want %q", got, want)
	}
	if e.StatusDetails[gg.DetailDeploymentStatus] != gg.StatusFailedRollbackComplete {
		t.Errorf("details %v", e.StatusDetails)
	}
	job, v := c.active()
	if job != "job-1" {
		t.Fatalf("the device runs the set of %s, want job-1", job)
	}
	if got := c.config(v, "Lib")["mode"]; got != "fast" {
		t.Errorf("Lib mode %v after the rollback, want fast", got)
	}
	if set, _ := gg.Components(v); !reflect.DeepEqual(set, []string{"Lib", "App"}) {
		t.Errorf("set %q, want Lib, App", set)
	}
}

// runInMemory runs an agent of kinds with the in-memory executors over svc until the test ends.
func runInMemory(t *testing.T, svc *agenttest.Service, kinds []agent.Kind, rec *recorder) *agent.Agent {
	t.Helper()
	ex := agent.Executors{Transport: svc.Transport("core-1"), State: agent.NewMemoryState(), Versions: agent.NewMemoryVersions(0),
		Downloader: agent.NewMemoryDownloader(), Launcher: agent.NewSimLauncher()}
	a, err := agent.New(agent.Options{Thing: "core-1", Kinds: kinds, Executors: ex, Seed: 7,
		RetryBase: 2 * time.Millisecond, RetryMax: 20 * time.Millisecond, PollMin: 20 * time.Millisecond,
		PollMax: 500 * time.Millisecond, OnEvent: rec.add})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := a.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return a
}
