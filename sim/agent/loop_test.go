package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
)

// lamp is a kind of job the loop has never heard of: a document {"color": …} lights a lamp in two steps,
// Checking and Switching, and succeeds as Lit. fail makes a step fail: "check" with BadColor, "switch" with
// SwitchStuck (after the switch: it rolls back), "device" with a plain error (the kind's device code).
type lamp struct{ name string }

type lampDoc struct {
	Color string `json:"color"`
	Fail  string `json:"fail,omitempty"`
}

func (k lamp) Name() string { return k.name }

func (k lamp) Parse(payload json.RawMessage) (agent.Job, error) {
	var d lampDoc
	if err := json.Unmarshal(payload, &d); err != nil {
		return nil, fmt.Errorf("%s job document: %w", k.name, err)
	}
	return lampJob{d}, nil
}

func (k lamp) Refuse(err error) agent.State { return checking{refuse: err} }

func (lamp) RollsBack(st agent.State) bool { _, ok := st.(switching); return ok }

func (lamp) App(agent.Device, agent.Installed, agent.Version) (*agent.App, error) { return nil, nil }

func (lamp) DeviceErrorCode() string { return "LampBroken" }

type lampJob struct{ d lampDoc }

func (j lampJob) First() agent.State { return checking{j: j} }

func (j lampJob) Resume(step string) agent.State {
	switch step {
	case "Checking":
		return checking{j: j}
	case "Switching":
		return switching{j}
	case "Lit":
		return agent.Finished("Lit")
	}
	return nil
}

func (j lampJob) Record() (json.RawMessage, error) {
	return json.Marshal(map[string]string{"color": j.d.Color})
}

func (lampJob) Staging() []string { return nil }

type checking struct {
	j      lampJob
	refuse error
}

func (checking) Name() string { return "Checking" }

func (s checking) Handle(x *agent.Execution) (agent.State, error) {
	if err := x.Step("Checking", nil); err != nil {
		return nil, err
	}
	if s.refuse != nil {
		return nil, agent.Reject(s.refuse)
	}
	if s.j.d.Fail == "check" {
		return nil, agent.Failf("BadColor", "no such color %q", s.j.d.Color)
	}
	return switching{s.j}, nil
}

type switching struct{ j lampJob }

func (switching) Name() string { return "Switching" }

func (s switching) Handle(x *agent.Execution) (agent.State, error) {
	if err := x.Step("Switching", nil); err != nil {
		return nil, err
	}
	switch s.j.d.Fail {
	case "switch":
		return nil, agent.Failf("SwitchStuck", "the switch is stuck")
	case "device":
		return nil, errors.New("no power")
	}
	return agent.Finished("Lit"), nil
}

// TestLoopOverKinds runs the loop over two kinds it knows nothing of: each document goes to the kind it
// names, the kind's states run in order, failures get the kind's codes and roll back where the kind says,
// a document of no kind of the agent is refused by its first kind, and what succeeded is recorded as the
// kind's.
func TestLoopOverKinds(t *testing.T) {
	doc := func(kind string, d lampDoc) []byte {
		p, _ := json.Marshal(d)
		b, _ := json.Marshal(wire.Document{Kind: kind, Payload: p})
		return b
	}
	tests := []struct {
		name  string
		doc   []byte
		chain []string
		told  string // the outcome reported, with its step
		kind  string // the kind of the committed version; "" for none
	}{
		{"lamp", doc("lamp", lampDoc{Color: "red"}), []string{"Checking", "Switching", "Lit"}, "SUCCEEDED(Lit)", "lamp"},
		{"the second kind", doc("torch", lampDoc{Color: "white"}), []string{"Checking", "Switching", "Lit"}, "SUCCEEDED(Lit)", "torch"},
		{"a step fails", doc("lamp", lampDoc{Color: "ultraviolet", Fail: "check"}),
			[]string{"Checking", "Failed(BadColor)"}, "FAILED(Checking)", ""},
		{"a step after the switch fails", doc("lamp", lampDoc{Color: "red", Fail: "switch"}),
			[]string{"Checking", "Switching", agent.StateRollingBack, "Failed(SwitchStuck)"}, "FAILED(Switching)", ""},
		{"a device-side error", doc("torch", lampDoc{Color: "red", Fail: "device"}),
			[]string{"Checking", "Switching", agent.StateRollingBack, "Failed(LampBroken)"}, "FAILED(Switching)", ""},
		{"a kind the agent has not", doc("siren", lampDoc{}), []string{"Checking", agent.StateRejected}, "REJECTED(Checking)", ""},
		{"a payload the kind refuses", []byte(`{"kind":"torch","payload":[1]}`), []string{"Checking", agent.StateRejected}, "REJECTED(Checking)", ""},
		{"not a job document", []byte(`"lamp"`), []string{"Checking", agent.StateRejected}, "REJECTED(Checking)", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := agenttest.New(nil)
			defer svc.Close()
			var mu sync.Mutex
			var chain []string
			state := agent.NewMemoryState()
			a, err := agent.New(agent.Options{
				Thing: "lab-1", Kinds: []agent.Kind{lamp{"lamp"}, lamp{"torch"}}, Seed: 1,
				Executors: agent.Executors{Transport: svc.Transport("lab-1"), State: state},
				OnEvent: func(e agent.Event) {
					if e.Kind != agent.EventState {
						return
					}
					s := e.State
					if s == agent.StateFailed {
						s += "(" + e.Code + ")"
					}
					mu.Lock()
					chain = append(chain, s)
					mu.Unlock()
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run: %v", err)
				}
				a.Close()
			}()
			svc.Enqueue("lab-1", "job-1", tt.doc)
			var e wire.JobExecution
			ok := agenttest.Eventually(10*time.Second, func() bool {
				e, _ = svc.Execution("lab-1", "job-1")
				st, err := state.Load()
				return e.Status != wire.StatusQueued && e.Status != wire.StatusInProgress && err == nil && st.InFlight == nil
			})
			if !ok {
				t.Fatalf("execution %+v, want it ended", e)
			}
			mu.Lock()
			got := chain
			mu.Unlock()
			if !reflect.DeepEqual(got, tt.chain) {
				t.Fatalf("chain %q, want %q", got, tt.chain)
			}
			// Every step entered is reported, then the outcome.
			var want []string
			for _, s := range tt.chain[:len(tt.chain)-1] {
				if s != agent.StateRollingBack {
					want = append(want, s)
				}
			}
			if steps := svc.Steps("lab-1", "job-1"); !reflect.DeepEqual(steps, append(want, tt.told)) {
				t.Fatalf("the service was told %q, want %q", steps, append(want, tt.told))
			}
			st, _ := state.Load()
			switch {
			case tt.kind == "" && st.Current != nil:
				t.Fatalf("committed %+v, want nothing", st.Current)
			case tt.kind != "" && (st.Current == nil || st.Current.Kind != tt.kind || st.Current.JobID != "job-1" || len(st.Current.Record) == 0):
				t.Fatalf("committed %+v, want job-1 of kind %s with its record", st.Current, tt.kind)
			}
		})
	}
}
