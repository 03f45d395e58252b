package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Options tune the on-disk store. The zero value is ready to use.
type Options struct {
	// LockTimeout bounds the wait for the data file's lock, which another process holding the same file keeps
	// for as long as it has the file open. Zero means one second.
	LockTimeout time.Duration
	// MaxBatchDelay is how long a Batch waits for others to join its commit before committing anyway. Zero
	// means bbolt's default (10ms). A longer delay coalesces more writers into one disk sync.
	MaxBatchDelay time.Duration
	// MaxBatchSize is how many Batch calls one commit takes at most. Zero means bbolt's default (1000).
	MaxBatchSize int
}

// Open opens (creating it and its directory if needed) the bbolt file at path. Only one process may have a
// file open: a second Open waits opts.LockTimeout for the lock and then fails with ErrInUse.
func Open(path string, opts Options) (Store, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = time.Second
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: %w (lock not released within %v)", path, ErrInUse, opts.LockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if opts.MaxBatchDelay > 0 {
		db.MaxBatchDelay = opts.MaxBatchDelay
	}
	if opts.MaxBatchSize > 0 {
		db.MaxBatchSize = opts.MaxBatchSize
	}
	return &boltStore{db: db}, nil
}

type boltStore struct{ db *bolt.DB }

var _ Store = (*boltStore)(nil)

func (s *boltStore) View(fn func(Tx) error) error {
	return boltErr(s.db.View(func(btx *bolt.Tx) error { return runBolt(btx, false, fn) }))
}

func (s *boltStore) Update(fn func(Tx) error) error {
	return boltErr(s.db.Update(func(btx *bolt.Tx) error { return runBolt(btx, true, fn) }))
}

// Batch commits through bbolt's Batch, which runs the functions of concurrent callers in one transaction with one
// disk sync. If one of them fails, the others are committed without it and it is run again alone, so its caller
// sees its own error.
func (s *boltStore) Batch(fn func(Tx) error) error {
	return boltErr(s.db.Batch(func(btx *bolt.Tx) error { return runBolt(btx, true, fn) }))
}

func (s *boltStore) Close() error { return s.db.Close() }

func runBolt(btx *bolt.Tx, writable bool, fn func(Tx) error) error {
	tx := &boltTx{tx: btx, txState: txState{writable: writable}}
	defer func() { tx.done = true }()
	return fn(tx)
}

// boltErr maps bbolt's errors for a whole transaction onto the package's.
func boltErr(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

type boltTx struct {
	txState
	tx *bolt.Tx
}

// Get copies the value out: bbolt's slice points into the memory-mapped file and is unusable after the
// transaction, a mistake that would only show on disk and never with the memory store.
func (t *boltTx) Get(bucket, key string) ([]byte, error) {
	if err := t.checkKey(false, bucket, key); err != nil {
		return nil, err
	}
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return nil, ErrNotFound
	}
	v := b.Get([]byte(key))
	if v == nil {
		return nil, ErrNotFound
	}
	return cloneBytes(v), nil
}

func (t *boltTx) Put(bucket, key string, value []byte) error {
	if err := t.checkPut(bucket, key, value); err != nil {
		return err
	}
	b, err := t.tx.CreateBucketIfNotExists([]byte(bucket))
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	// bbolt keeps the slice until commit, and the caller may reuse it before then.
	return b.Put([]byte(key), cloneBytes(value))
}

func (t *boltTx) Delete(bucket, key string) error {
	if err := t.checkKey(true, bucket, key); err != nil {
		return err
	}
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	return b.Delete([]byte(key))
}

func (t *boltTx) ForEach(bucket, prefix string, fn func(key string, value []byte) error) error {
	if err := t.checkBucket(false, bucket); err != nil {
		return err
	}
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	p := []byte(prefix)
	if !t.writable {
		c := b.Cursor()
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			if err := fn(string(k), v); err != nil {
				return err
			}
		}
		return nil
	}
	// fn may change the bucket, which invalidates a bbolt cursor: seek past the last key with a fresh one.
	k, v := b.Cursor().Seek(p)
	for k != nil && bytes.HasPrefix(k, p) {
		key := string(k)
		if err := fn(key, v); err != nil {
			return err
		}
		c := b.Cursor()
		if k, v = c.Seek([]byte(key)); k != nil && string(k) == key {
			k, v = c.Next()
		}
	}
	return nil
}

func (t *boltTx) NextSequence(bucket string) (uint64, error) {
	if err := t.checkBucket(true, bucket); err != nil {
		return 0, err
	}
	b, err := t.tx.CreateBucketIfNotExists([]byte(bucket))
	if err != nil {
		return 0, fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	return b.NextSequence()
}
