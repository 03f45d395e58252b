package agenttest

import (
	"sync"

	"github.com/fleetlab/fleetlab/sim/agent"
)

// Events records the events of many devices, as a host's OnEvent (fleet.EventFunc) gives them: On is the
// function to pass. The zero value is ready; it is safe for concurrent use.
type Events struct {
	mu  sync.Mutex
	all map[string][]agent.Event
}

// On records e as an event of device.
func (r *Events) On(device string, e agent.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.all == nil {
		r.all = map[string][]agent.Event{}
	}
	r.all[device] = append(r.all[device], e)
}

// Of returns the events of device so far, in the order they came.
func (r *Events) Of(device string) []agent.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]agent.Event(nil), r.all[device]...)
}

// States returns the states device entered for job, with "resume:" before a resumed step.
func (r *Events) States(device, job string) []string {
	var out []string
	for _, e := range r.Of(device) {
		switch {
		case e.JobID != job:
		case e.Kind == agent.EventState:
			out = append(out, e.State)
		case e.Kind == agent.EventResume:
			out = append(out, "resume:"+e.State)
		}
	}
	return out
}
