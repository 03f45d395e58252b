package agent_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
)

// watchingLamp is a lamp that watches the device: it records, each time it looks, whether the device is idle.
type watchingLamp struct {
	lamp
	mu      *sync.Mutex
	looks   *[]bool
	ended   *bool
	nothing bool // nothing to watch: Watch returns nil
}

func (l watchingLamp) Watch(w *agent.Watch) func(ctx context.Context) {
	if l.nothing {
		return nil
	}
	return func(ctx context.Context) {
		defer func() { l.mu.Lock(); *l.ended = true; l.mu.Unlock() }()
		for ctx.Err() == nil {
			idle, err := w.Idle()
			if err != nil {
				w.Error(err)
			}
			l.mu.Lock()
			*l.looks = append(*l.looks, idle)
			l.mu.Unlock()
			clock.Wait(ctx, w.Clock(), time.Millisecond)
		}
	}
}

// TestWatcher: a kind that watches runs its watch from the agent's start until Run returns, and sees the device
// idle between executions; one whose Watch returns nil gets no goroutine.
func TestWatcher(t *testing.T) {
	agenttest.LeakTest(t)
	svc := agenttest.New(nil)
	defer svc.Close()
	var mu sync.Mutex
	var looks []bool
	var ended, unused bool
	a, err := agent.New(agent.Options{
		Thing: "lab-1", Seed: 1,
		Kinds: []agent.Kind{watchingLamp{lamp: lamp{"lamp"}, mu: &mu, looks: &looks, ended: &ended},
			watchingLamp{lamp: lamp{"torch"}, mu: &mu, looks: new([]bool), ended: &unused, nothing: true}},
		Executors: agent.Executors{Transport: svc.Transport("lab-1")},
		PollMin:   10 * time.Millisecond, PollMax: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	svc.Enqueue("lab-1", "job-1", agenttest.Doc("lamp", lampDoc{Color: "red"}))
	if !agenttest.Eventually(10*time.Second, func() bool {
		e, _ := svc.Execution("lab-1", "job-1")
		mu.Lock()
		defer mu.Unlock()
		return e.Status == wire.StatusSucceeded && len(looks) > 0 && looks[len(looks)-1]
	}) {
		t.Fatal("the watch never saw the device idle after job-1")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !ended {
		t.Error("the watch outlived Run")
	}
	if unused {
		t.Error("a kind with nothing to watch was run")
	}
	a.Close()
}
