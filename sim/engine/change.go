package engine

import (
	"strings"

	"github.com/fleetlab/fleetlab/sim/store"
)

// A control operation (Create, Cancel, Alarm, AddTarget, RemoveTarget) is all or nothing: its changes reach
// memory, and so the API and the devices, only together with their commit. It runs with commitMu and mu held
// from its first check to the end of its commit, so nobody sees or builds on a change that is not yet durable,
// and it keeps a change: what it must restore if the commit fails. Device updates and Tick keep the cheaper
// write-behind path (queue, then group commit) because a device retries and Tick writes again.
//
// The change records state lazily, the first time a helper is about to modify it: a rollout's deployment and
// bookkeeping (touch), an execution's value (saveExec), a device's execution list (addExecution). Details
// maps are never modified in place by control operations, so a shallow copy of an execution is enough.
type change struct {
	seq     uint64
	evq     int
	order   int
	pending map[string][]byte // writes queued before the operation, committed with it
	pendSeq uint64

	created  map[*rollout]bool
	rollouts map[*rollout]rolloutState
	execs    map[*Execution]Execution
	devices  map[string]int // length of byDevice[dev] before
}

// rolloutState is what a control operation may change in a rollout besides its executions' values.
type rolloutState struct {
	d                       Deployment
	execs                   []*Execution
	cursor, inFlight, paced int
	live                    bool
}

// begin starts a control operation; the caller holds commitMu and mu. Writes queued from now on are the
// operation's own.
func (e *Engine) begin() {
	e.chg = &change{seq: e.seq, evq: len(e.evq), order: len(e.order), pending: e.pending, pendSeq: e.pendSeq,
		created: map[*rollout]bool{}, rollouts: map[*rollout]rolloutState{}, execs: map[*Execution]Execution{},
		devices: map[string]int{}}
	e.pending = map[string][]byte{}
}

// touch records r as it is before a control operation first changes it.
func (e *Engine) touch(r *rollout) {
	c := e.chg
	if c == nil || c.created[r] {
		return
	}
	if _, ok := c.rollouts[r]; ok {
		return
	}
	_, live := e.live[r]
	c.rollouts[r] = rolloutState{d: r.d, execs: r.execs, cursor: r.cursor, inFlight: r.inFlight, paced: r.paced,
		live: live}
}

// saveExec records x as it is before a control operation first changes it.
func (e *Engine) saveExec(x *Execution) {
	if c := e.chg; c != nil {
		if _, ok := c.execs[x]; !ok {
			c.execs[x] = *x
		}
	}
}

// finish commits a control operation — the writes queued before it, its own, and extra's, in one transaction
// — and ends it: on success everything queued is durable; on failure memory is as it was before begin and the
// earlier writes are queued again. The caller still holds commitMu and mu.
func (e *Engine) finish(extra func(store.Tx) error) error {
	c := e.chg
	e.chg = nil
	mine := e.pending
	err := e.store.Update(func(tx store.Tx) error {
		for _, batch := range []map[string][]byte{c.pending, mine} {
			for k, v := range batch {
				bucket, key, _ := strings.Cut(k, "\x00")
				if err := tx.Put(bucket, key, v); err != nil {
					return err
				}
			}
		}
		if extra != nil {
			return extra(tx)
		}
		return nil
	})
	if err != nil {
		e.undo(c)
		return err
	}
	e.pending = map[string][]byte{}
	e.durable = e.pendSeq
	return nil
}

// undo puts memory back as it was when c began.
func (e *Engine) undo(c *change) {
	for x, v := range c.execs {
		*x = v
	}
	for r, st := range c.rollouts {
		for _, x := range r.execs[len(st.execs):] {
			delete(r.byDev, x.Device)
		}
		r.d, r.execs, r.cursor, r.inFlight, r.paced = st.d, st.execs, st.cursor, st.inFlight, st.paced
		if st.live {
			e.live[r] = struct{}{}
		} else {
			delete(e.live, r)
		}
	}
	for r := range c.created {
		delete(e.deps, r.d.ID)
		delete(e.live, r)
	}
	e.order = e.order[:c.order]
	for dev, n := range c.devices {
		if n == 0 {
			delete(e.byDevice, dev)
		} else {
			e.byDevice[dev] = e.byDevice[dev][:n]
		}
	}
	// Deadlines pushed meanwhile stay in the heap; Tick skips those of executions that are not current.
	e.seq = c.seq
	e.evq = e.evq[:c.evq]
	e.pending, e.pendSeq = c.pending, c.pendSeq
}
