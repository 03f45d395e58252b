package inproc

import (
	"context"
	"errors"
	"testing"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/clock"
)

// apiTransport is a transport with the ability to call the cloud's other APIs, counting the calls.
type apiTransport struct {
	agent.Transport
	calls int
}

func (a *apiTransport) CallAPI(context.Context, string, string, string, any, any) error {
	a.calls++
	return nil
}

// plainTransport is a fault's wrap of the transport that knows nothing of APICaller.
type plainTransport struct{ agent.Transport }

// TestLayerCallsAPIThroughItsGate: the layer's transport has the base transport's APICaller, and only when
// the base has it; its calls go to the base past a wrap that has none, wait while the device is frozen and
// fail once it is dead.
func TestLayerCallsAPIThroughItsGate(t *testing.T) {
	if _, ok := newLayer(newGate(clock.Real{}), agent.Executors{Transport: plainTransport{}}, nil).executors().Transport.(agent.APICaller); ok {
		t.Fatal("the layer over a transport without APICaller has one")
	}
	g := newGate(clock.Real{})
	base := &apiTransport{}
	l := newLayer(g, agent.Executors{Transport: base}, func(ex agent.Executors) agent.Executors {
		return agent.Executors{Transport: plainTransport{ex.Transport}}
	})
	c, ok := l.executors().Transport.(agent.APICaller)
	if !ok {
		t.Fatal("the layer over an APICaller has none")
	}
	if !g.freeze() {
		t.Fatal("freeze")
	}
	done := make(chan error, 1)
	go func() { done <- c.CallAPI(context.Background(), "greengrass", "POST", "/x", nil, nil) }()
	g.thaw()
	if err := <-done; err != nil || base.calls != 1 {
		t.Fatalf("call after thaw: %v, %d calls", err, base.calls)
	}
	g.kill()
	if err := c.CallAPI(context.Background(), "greengrass", "POST", "/x", nil, nil); !errors.Is(err, errPowerCut) || base.calls != 1 {
		t.Fatalf("call of a dead device: %v, %d calls", err, base.calls)
	}
}
