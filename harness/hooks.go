package harness

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"net/http"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/artifacts"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/fleet"
	"github.com/fleetlab/fleetlab/sim/service"
)

// hooks are the places faults plug into: the service's HTTP middleware and artifact intercept (installed once,
// at every service start, and consulting the hooks in force at each request), each device's executor wraps and
// link shapes (composed and set on the device whenever they change), and the agent event watchers.
type hooks struct {
	mu       sync.Mutex
	next     int
	http     []idHook[faults.HTTPHook]
	objects  []idHook[faults.ArtifactHook]
	watchers []idHook[func(string, agent.Event)]
	wraps    map[string]*[]idHook[func(agent.Executors) agent.Executors]
	links    map[string]*[]idHook[fleet.Link]
}

type idHook[T any] struct {
	id int
	h  T
}

func newHooks() hooks {
	return hooks{wraps: map[string]*[]idHook[func(agent.Executors) agent.Executors]{},
		links: map[string]*[]idHook[fleet.Link]{}}
}

// add appends h to list under a new id and returns the function that removes it; changed, when set, is given
// the list after every change, with the lock held (so changes reach a device in the order they were made).
func add[T any](hs *hooks, list *[]idHook[T], h T, changed func([]idHook[T])) func() {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	id := hs.next
	hs.next++
	*list = append(*list, idHook[T]{id, h})
	if changed != nil {
		changed(*list)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			hs.mu.Lock()
			defer hs.mu.Unlock()
			*list = slices.DeleteFunc(*list, func(x idHook[T]) bool { return x.id == id })
			if changed != nil {
				changed(*list)
			}
		})
	}
}

// deviceList returns the device's list in m, made on first use.
func deviceList[T any](hs *hooks, m map[string]*[]idHook[T], dev string) *[]idHook[T] {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	l, ok := m[dev]
	if !ok {
		l = &[]idHook[T]{}
		m[dev] = l
	}
	return l
}

func snapshot[T any](hs *hooks, list *[]idHook[T]) []T {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	out := make([]T, len(*list))
	for i, x := range *list {
		out[i] = x.h
	}
	return out
}

// wrap is the service's Options.Wrap: on the API listener it asks the HTTP hooks about each request.
func (hs *hooks) wrap(listener string, h http.Handler) http.Handler {
	if listener != service.ListenerAPI {
		return h // the S3 listener's faults go through the artifact intercept, which sees every object request
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := classify(r)
		var reply *faults.Reply
		if ok {
			for _, hook := range snapshot(hs, &hs.http) {
				if reply = hook(c); reply != nil {
					break
				}
			}
		}
		if reply == nil {
			h.ServeHTTP(w, r)
			return
		}
		if reply.After {
			h.ServeHTTP(discard{header: http.Header{}}, r)
		}
		w.Header().Set("X-Amzn-ErrorType", reply.Code)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(reply.Status)
		json.NewEncoder(w).Encode(map[string]string{"__type": reply.Code, "message": reply.Message})
	})
}

// classify names the API and operation of a request to the API listener. Artifact downloads are left to the
// artifact intercept.
func classify(r *http.Request) (faults.Call, bool) {
	p := strings.Trim(r.URL.Path, "/")
	seg := strings.Split(p, "/")
	switch {
	case seg[0] == "artifacts":
		return faults.Call{}, false
	case seg[0] == "things" && len(seg) >= 3:
		c := faults.Call{API: faults.APIDevice, Thing: seg[1]}
		switch {
		case seg[2] == "notify":
			c.Operation = "Notify"
		case len(seg) == 3:
			c.Operation = "GetPendingJobExecutions"
		case r.Method == http.MethodPut:
			c.Operation = "StartNextPendingJobExecution"
		case r.Method == http.MethodPost:
			c.Operation = "UpdateJobExecution"
		default:
			c.Operation = "DescribeJobExecution"
		}
		return c, true
	case seg[0] == "tags":
		op := map[string]string{http.MethodGet: "ListTagsForResource", http.MethodPost: "TagResource",
			http.MethodDelete: "UntagResource"}[r.Method]
		return faults.Call{API: faults.APIRoboMaker, Operation: op}, true
	case seg[0] != "":
		first, n := utf8.DecodeRuneInString(seg[0])
		return faults.Call{API: faults.APIRoboMaker, Operation: string(unicode.ToUpper(first)) + seg[0][n:]}, true
	}
	return faults.Call{}, false
}

// discard is a ResponseWriter that drops the answer: a request served and its answer lost.
type discard struct{ header http.Header }

func (d discard) Header() http.Header         { return d.header }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}

// artifact is the artifact store's Options.Intercept.
func (hs *hooks) artifact(op artifacts.Op, bucket, key string) *artifacts.Fault {
	for _, hook := range snapshot(hs, &hs.objects) {
		if f := hook(op, bucket, key); f != nil {
			return f
		}
	}
	return nil
}

// agentEvent hands an agent event to the watchers.
func (hs *hooks) agentEvent(device string, a agent.Event) {
	for _, w := range snapshot(hs, &hs.watchers) {
		w(device, a)
	}
}

// world is the environment as faults see it.
type world struct{ e *Env }

var _ faults.World = world{}

func (w world) Backend() string                         { return w.e.cfg.backend.Name() }
func (w world) Robots() []string                        { return w.e.Robots() }
func (w world) Device(name string) (fleet.Device, bool) { return w.e.fleet.Device(name) }
func (w world) Clock() clock.Clock                      { return w.e.clock }
func (w world) Seed() uint64                            { return w.e.cfg.seed }
func (w world) Emit(e event.Event)                      { w.e.events.Emit(e) }

func (w world) WrapExecutors(dev string, wrap func(agent.Executors) agent.Executors) (func(), error) {
	d, ok := w.e.fleet.Device(dev)
	if !ok {
		return nil, errors.New("no robot " + dev)
	}
	hook, ok := d.(fleet.ExecutorHook)
	if !ok {
		return nil, &faults.UnsupportedError{Fault: "executor wrap", Backend: w.Backend(), Device: dev, Ability: "fleet.ExecutorHook"}
	}
	hs := &w.e.hooks
	remove := add(hs, deviceList(hs, hs.wraps, dev), wrap, func(list []idHook[func(agent.Executors) agent.Executors]) {
		wraps := make([]func(agent.Executors) agent.Executors, len(list))
		for i, x := range list {
			wraps[i] = x.h
		}
		if len(wraps) == 0 {
			hook.SetExecutorWrap(nil)
			return
		}
		hook.SetExecutorWrap(func(ex agent.Executors) agent.Executors {
			for _, wr := range wraps {
				ex = wr(ex)
			}
			return ex
		})
	})
	return remove, nil
}

func (w world) ShapeLink(dev string, l fleet.Link) (func(), error) {
	d, ok := w.e.fleet.Device(dev)
	if !ok {
		return nil, errors.New("no robot " + dev)
	}
	lk, ok := d.(fleet.Linker)
	if !ok {
		return nil, &faults.UnsupportedError{Fault: "link shape", Backend: w.Backend(), Device: dev, Ability: "fleet.Linker"}
	}
	hs := &w.e.hooks
	h := fnv.New64a()
	h.Write([]byte(dev))
	seed := w.e.cfg.seed ^ h.Sum64()
	return add(hs, deviceList(hs, hs.links, dev), l, func(list []idHook[fleet.Link]) {
		ls := make([]fleet.Link, len(list))
		for i, x := range list {
			ls[i] = x.h
		}
		combined := faults.CombineLinks(ls...)
		if combined.Seed == 0 {
			combined.Seed = seed
		}
		lk.SetLink(combined)
	}), nil
}

func (w world) WatchAgents(fn func(string, agent.Event)) func() {
	return add(&w.e.hooks, &w.e.hooks.watchers, fn, nil)
}

func (w world) InterceptHTTP(h faults.HTTPHook) func() {
	return add(&w.e.hooks, &w.e.hooks.http, h, nil)
}

func (w world) InterceptArtifacts(h faults.ArtifactHook) func() {
	return add(&w.e.hooks, &w.e.hooks.objects, h, nil)
}

func (w world) DevicesOverHTTP() error { return w.e.cfg.backend.DevicesOverHTTP() }

func (w world) CanRestartService() error {
	if w.e.cfg.memory {
		return errors.New("the environment keeps the service's store in memory (WithMemoryStore): a restart would lose everything")
	}
	if err := w.e.cfg.backend.DevicesOverHTTP(); err != nil {
		return err
	}
	return nil
}

func (w world) StopService(context.Context) error  { return w.e.stopService() }
func (w world) StartService(context.Context) error { return w.e.startService() }
