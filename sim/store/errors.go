package store

import "errors"

// Errors shared by both implementations, so callers can test for them with errors.Is whichever store they hold.
var (
	// ErrClosed is returned by a Store used after Close.
	ErrClosed = errors.New("store: closed")
	// ErrReadOnly is returned by Put, Delete and NextSequence in a View transaction.
	ErrReadOnly = errors.New("store: read-only transaction")
	// ErrTxDone is returned by a Tx used after the function it was passed to has returned.
	ErrTxDone = errors.New("store: transaction done")
	// ErrInvalidKey is returned for an empty bucket name or key, or one longer than MaxKeySize.
	ErrInvalidKey = errors.New("store: empty or oversized bucket name or key")
	// ErrValueTooLarge is returned by Put for a value longer than MaxValueSize.
	ErrValueTooLarge = errors.New("store: value too large")
	// ErrInUse is returned by Open when another process holds the data file.
	ErrInUse = errors.New("store: data directory is in use by another fleetlab")
)

// Limits on keys and values, the same for both implementations (they are bbolt's), so code tested against the
// memory store cannot write what the on-disk store would refuse.
const (
	// MaxKeySize is the longest bucket name or key, in bytes.
	MaxKeySize = 32768
	// MaxValueSize is the longest value, in bytes.
	MaxValueSize = 1<<31 - 2
)

// txState is what the transactions of both stores keep alike: whether one may write, and whether the function it
// was passed to has returned. Every Tx method of both opens with one of its checks, so both refuse a bad call with
// the same error, tested in the same order: the transaction, then the names, then the value.
type txState struct {
	writable bool
	done     bool
}

// checkBucket checks a call on a bucket (ForEach, NextSequence) that writes when write is set.
func (t *txState) checkBucket(write bool, bucket string) error {
	switch {
	case t.done:
		return ErrTxDone
	case write && !t.writable:
		return ErrReadOnly
	case bucket == "" || len(bucket) > MaxKeySize:
		return ErrInvalidKey
	}
	return nil
}

// checkKey checks a call on one key (Get, Delete) that writes when write is set.
func (t *txState) checkKey(write bool, bucket, key string) error {
	if err := t.checkBucket(write, bucket); err != nil {
		return err
	}
	if key == "" || len(key) > MaxKeySize {
		return ErrInvalidKey
	}
	return nil
}

// checkPut checks a Put.
func (t *txState) checkPut(bucket, key string, value []byte) error {
	if err := t.checkKey(true, bucket, key); err != nil {
		return err
	}
	if int64(len(value)) > MaxValueSize {
		return ErrValueTooLarge
	}
	return nil
}

// cloneBytes returns a copy of b that is never nil, so an empty stored value reads back as empty, not absent.
func cloneBytes(b []byte) []byte {
	c := make([]byte, len(b))
	copy(c, b)
	return c
}
