package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Options tune the on-disk store. The zero value is ready to use.
type Options struct {
	// LockTimeout bounds the wait for the data file's lock, which another process holding the same file keeps
	// for as long as it has the file open. Zero means one second.
	LockTimeout time.Duration
	// MaxBatchSize is how many Batch calls one commit takes at most. Zero means 1000.
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
	if opts.MaxBatchSize <= 0 {
		opts.MaxBatchSize = 1000
	}
	return &boltStore{db: db, maxBatch: opts.MaxBatchSize}, nil
}

type boltStore struct {
	db       *bolt.DB
	maxBatch int

	lead  sync.Mutex // held by the Batch caller committing a batch
	qmu   sync.Mutex // guards queue and the calls' done and err
	queue []*batchCall
}

// batchCall is one Batch call waiting for, or taken into, a commit.
type batchCall struct {
	fn   func(Tx) error
	err  error
	done bool
}

var _ Store = (*boltStore)(nil)

func (s *boltStore) View(fn func(Tx) error) error {
	return boltErr(s.db.View(func(btx *bolt.Tx) error { return runBolt(btx, false, fn) }))
}

func (s *boltStore) Update(fn func(Tx) error) error {
	return boltErr(s.db.Update(func(btx *bolt.Tx) error { return runBolt(btx, true, fn) }))
}

// Batch is a group commit without a wait: a caller queues its function and, unless a commit is running, commits
// everything queued so far at once, in one transaction with one disk sync; callers that arrive meanwhile queue
// and are committed together by whichever of them leads next. A lone writer is committed at once, and writers
// under load share syncs (bbolt's own Batch instead waits up to 10 ms for company).
//
// The functions of a batch run one after another in its transaction, in the order they were queued, so each
// sees what the earlier ones wrote. A function that fails before writing anything just fails; one that fails
// after writing, or a commit that fails, rolls the whole transaction back, and then each function of the batch
// is run again alone, so every caller gets its own outcome.
func (s *boltStore) Batch(fn func(Tx) error) error {
	c := &batchCall{fn: fn}
	s.qmu.Lock()
	s.queue = append(s.queue, c)
	s.qmu.Unlock()
	for {
		s.lead.Lock()
		s.qmu.Lock()
		if c.done {
			s.qmu.Unlock()
			s.lead.Unlock()
			return c.err
		}
		n := min(len(s.queue), s.maxBatch)
		calls := s.queue[:n:n]
		s.queue = s.queue[n:]
		s.qmu.Unlock()
		s.commitBatch(calls)
		s.qmu.Lock()
		for _, bc := range calls {
			bc.done = true
		}
		s.qmu.Unlock()
		s.lead.Unlock()
	}
}

// errBatchRetry rolls a batch back so its functions are run alone.
var errBatchRetry = errors.New("store: batch member failed after writing")

// commitBatch runs calls in one transaction and sets each call's err.
func (s *boltStore) commitBatch(calls []*batchCall) {
	err := s.db.Update(func(btx *bolt.Tx) error {
		for _, c := range calls {
			tx := &boltTx{tx: btx, txState: txState{writable: true}}
			c.err = runGuarded(tx, c.fn)
			tx.done = true
			if c.err != nil && tx.wrote {
				return errBatchRetry
			}
		}
		return nil
	})
	if err == nil {
		return
	}
	for _, c := range calls {
		c.err = boltErr(s.db.Update(func(btx *bolt.Tx) error {
			tx := &boltTx{tx: btx, txState: txState{writable: true}}
			defer func() { tx.done = true }()
			return runGuarded(tx, c.fn)
		}))
	}
}

// runGuarded runs fn, turning a panic into its error: the function may be another caller's, and its panic must
// not take the caller committing the batch down with it, nor leave the batch's other callers waiting.
func runGuarded(tx Tx, fn func(Tx) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store: batch function panicked: %v", p)
		}
	}()
	return fn(tx)
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
	tx    *bolt.Tx
	wrote bool // a Put, Delete or NextSequence was attempted
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
	t.wrote = true
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
	t.wrote = true
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
	t.wrote = true
	b, err := t.tx.CreateBucketIfNotExists([]byte(bucket))
	if err != nil {
		return 0, fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	return b.NextSequence()
}
