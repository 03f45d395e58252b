package engine

import "github.com/fleetlab/fleetlab/sim/event"

// Subscribe delivers every later event to s, in order, until cancel is called. Sinks are called one at a time
// and must not call methods of the engine that change state.
func (e *Engine) Subscribe(s event.Sink) (cancel func()) {
	e.subsMu.Lock()
	defer e.subsMu.Unlock()
	id := e.nextSub
	e.nextSub++
	e.subs[id] = s
	return func() {
		e.subsMu.Lock()
		defer e.subsMu.Unlock()
		delete(e.subs, id)
	}
}

// emit queues ev, numbered in sequence, for delivery after the commit of the writes beside it. Called with e.mu
// held.
func (e *Engine) emit(ev event.Event) {
	if ev.Deployment != "" { // every event of a deployment is emitted with e.mu held
		if r, ok := e.deps[ev.Deployment]; ok {
			ev.Dialect = r.d.Kind
		}
	}
	e.seq++
	ev.Seq = e.seq
	e.evq = append(e.evq, ev)
}

// deliver hands queued events to the subscribers, in sequence order.
func (e *Engine) deliver() {
	e.deliverMu.Lock()
	defer e.deliverMu.Unlock()
	e.mu.Lock()
	evs := e.evq
	e.evq = nil
	e.mu.Unlock()
	if len(evs) == 0 {
		return
	}
	e.subsMu.Lock()
	subs := make([]event.Sink, 0, len(e.subs))
	for id := 0; id < e.nextSub; id++ {
		if s, ok := e.subs[id]; ok {
			subs = append(subs, s)
		}
	}
	e.subsMu.Unlock()
	for _, ev := range evs {
		for _, s := range subs {
			s.Emit(ev)
		}
	}
}
