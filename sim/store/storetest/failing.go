// Package storetest provides a store.Store that fails on demand, for tests of what a failed write leaves behind.
package storetest

import (
	"errors"
	"sync"

	"github.com/fleetlab/fleetlab/sim/store"
)

// ErrInjected is the error a Failing store returns for the write it was told to fail.
var ErrInjected = errors.New("storetest: injected store failure")

// Failing wraps a Store and fails its writes on demand. A write is each Put, Delete and NextSequence of an
// Update or Batch, and the commit of each Update or Batch. After FailAt(n) the nth write from then on fails —
// only that one, or every one from it on when sticky (a disk that stays full). A failed Put, Delete or
// NextSequence returns ErrInjected without writing; a failed commit runs the function and then rolls its
// transaction back, and Update returns ErrInjected: the disk refused the sync, nothing of the transaction is
// kept. Reads are passed through. It is safe for concurrent use.
type Failing struct {
	store.Store

	mu     sync.Mutex
	armed  bool
	sticky bool
	left   int // writes to let through before failing
	writes int // writes seen since FailAt
	fired  int // writes failed since FailAt
}

var _ store.Store = (*Failing)(nil)

// NewFailing returns s, failing nothing until FailAt.
func NewFailing(s store.Store) *Failing { return &Failing{Store: s} }

// FailAt makes the nth write from now on fail (n ≥ 1), and with sticky every write after it too. It resets the
// counts of Writes and Fired.
func (f *Failing) FailAt(n int, sticky bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.armed, f.sticky, f.left, f.writes, f.fired = true, sticky, n-1, 0, 0
}

// Disarm lets every write through again.
func (f *Failing) Disarm() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.armed = false
}

// Writes returns how many writes were attempted since FailAt, failed ones included.
func (f *Failing) Writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes
}

// Fired returns how many writes failed since FailAt.
func (f *Failing) Fired() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fired
}

// write counts one write and says whether it fails.
func (f *Failing) write() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	if !f.armed {
		return nil
	}
	if f.left > 0 {
		f.left--
		return nil
	}
	f.fired++
	if !f.sticky {
		f.armed = false
	}
	return ErrInjected
}

// Update implements store.Store.
func (f *Failing) Update(fn func(store.Tx) error) error { return f.Store.Update(f.wrap(fn)) }

// Batch implements store.Store.
func (f *Failing) Batch(fn func(store.Tx) error) error { return f.Store.Batch(f.wrap(fn)) }

func (f *Failing) wrap(fn func(store.Tx) error) func(store.Tx) error {
	return func(tx store.Tx) error {
		if err := fn(&failingTx{Tx: tx, f: f}); err != nil {
			return err
		}
		return f.write() // the commit
	}
}

type failingTx struct {
	store.Tx
	f *Failing
}

func (t *failingTx) Put(bucket, key string, value []byte) error {
	if err := t.f.write(); err != nil {
		return err
	}
	return t.Tx.Put(bucket, key, value)
}

func (t *failingTx) Delete(bucket, key string) error {
	if err := t.f.write(); err != nil {
		return err
	}
	return t.Tx.Delete(bucket, key)
}

func (t *failingTx) NextSequence(bucket string) (uint64, error) {
	if err := t.f.write(); err != nil {
		return 0, err
	}
	return t.Tx.NextSequence(bucket)
}
