// Package store keeps the deployment service's state: deployments, executions and every dialect's resources
// (fleets, robots, applications, tags, idempotency tokens). It is a small transactional key-value interface
// with two implementations: bbolt on disk (Open), the default, and memory (NewMemory) for unit tests.
//
// Keys are strings within named buckets; values are opaque bytes (callers encode them, usually as JSON).
// A bucket is created by its first Put. Iteration is in byte order of keys.
package store

import "errors"

// ErrNotFound is returned by Tx.Get for a key that is not in the bucket.
var ErrNotFound = errors.New("store: not found")

// Store is a transactional key-value store. Update transactions are serialised; a successful Update is durable
// before it returns (for the on-disk store: synced to disk).
type Store interface {
	// View runs fn in a read-only transaction.
	View(fn func(Tx) error) error
	// Update runs fn in a read-write transaction, committed when fn returns nil and rolled back otherwise.
	Update(fn func(Tx) error) error
	// Batch is Update that may be coalesced with concurrent Batch calls into one commit, for throughput under
	// many concurrent writers. fn may be run more than once and must be idempotent.
	Batch(fn func(Tx) error) error
	// Close releases the store, after any running Update. Using it afterwards fails with ErrClosed.
	Close() error
}

// Tx is one transaction. It is valid only inside the function it was passed to (afterwards every method returns
// ErrTxDone); byte slices it passes to ForEach's fn are valid only until then too (copy what you keep).
// Bucket names and keys are 1 to MaxKeySize bytes (ErrInvalidKey otherwise).
type Tx interface {
	// Get returns a copy of the value at key, or ErrNotFound.
	Get(bucket, key string) ([]byte, error)
	// Put stores a copy of value at key. It fails with ErrReadOnly in a read-only transaction.
	Put(bucket, key string, value []byte) error
	// Delete removes key; deleting a missing key is not an error.
	Delete(bucket, key string) error
	// ForEach calls fn for every key with the given prefix, in key order, until fn returns an error, which
	// ForEach returns. fn must not modify value. In a read-write transaction fn may Put and Delete, even in the
	// bucket being walked: the walk goes on from the first key after the one just visited, in the bucket as it
	// is then (so keys fn adds further on are visited, keys it deletes further on are not).
	ForEach(bucket, prefix string, fn func(key string, value []byte) error) error
	// NextSequence returns a number one greater than the last returned for the bucket, starting at 1. The
	// number is part of the transaction: rolled back with it. It fails with ErrReadOnly in a View.
	NextSequence(bucket string) (uint64, error)
}
