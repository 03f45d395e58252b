package agenttest_test

import (
	"reflect"
	"testing"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
)

func TestEvents(t *testing.T) {
	var r agenttest.Events
	r.On("a", agent.Event{Kind: agent.EventState, JobID: "j1", State: "Validating"})
	r.On("b", agent.Event{Kind: agent.EventState, JobID: "j1", State: "Validating"})
	r.On("a", agent.Event{Kind: agent.EventState, JobID: "j2", State: "Validating"})
	r.On("a", agent.Event{Kind: agent.EventResume, JobID: "j1", State: "Launching"})
	r.On("a", agent.Event{Kind: agent.EventConnected, JobID: "j1"})
	if got := len(r.Of("a")); got != 4 {
		t.Errorf("a has %d events, want 4", got)
	}
	if got, want := r.States("a", "j1"), []string{"Validating", "resume:Launching"}; !reflect.DeepEqual(got, want) {
		t.Errorf("states of a in j1: %v, want %v", got, want)
	}
	if got := r.Of("c"); len(got) != 0 {
		t.Errorf("c has events %v", got)
	}
}
