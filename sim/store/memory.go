package store

import (
	"hash/maphash"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
)

// NewMemory returns an empty Store held in memory, for unit tests and benchmarks. It behaves as the on-disk
// store does (the same limits, errors and iteration order) but keeps nothing when the process ends.
//
// Each bucket is a persistent treap ordered by key. An Update copies the nodes on the paths it changes and
// publishes the new trees as one snapshot when fn returns nil, so a failed Update leaves nothing behind, ForEach
// walks keys in order without sorting, and a View reads its snapshot without holding a lock while fn runs.
func NewMemory() Store {
	m := &memory{seed: maphash.MakeSeed()}
	m.snap.Store(&memSnapshot{buckets: map[string]*memBucket{}})
	return m
}

type memory struct {
	mu     sync.Mutex // serialises Update and Batch
	gen    uint64     // the running Update's generation; guarded by mu
	snap   atomic.Pointer[memSnapshot]
	closed atomic.Bool
	seed   maphash.Seed // treap priorities: a hash of the key keeps the tree balanced whatever the insert order
}

var _ Store = (*memory)(nil)

// memSnapshot is one committed state. It is never changed once published.
type memSnapshot struct{ buckets map[string]*memBucket }

type memBucket struct {
	root *treapNode
	seq  uint64
}

// treapNode is a node of a bucket's treap: a binary search tree on key and a heap on prio. Nodes reachable from
// a published snapshot are never changed; an Update copies a node before changing it unless the node was made
// by that same Update (gen), which saves copying a path again for every Put of one transaction.
type treapNode struct {
	key         string
	value       []byte
	prio        uint64
	gen         uint64
	left, right *treapNode
}

func (m *memory) View(fn func(Tx) error) error {
	if m.closed.Load() {
		return ErrClosed
	}
	tx := &memTx{m: m, base: m.snap.Load()}
	defer tx.finish()
	return fn(tx)
}

func (m *memory) Update(fn func(Tx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed.Load() {
		return ErrClosed
	}
	m.gen++
	tx := &memTx{m: m, base: m.snap.Load(), gen: m.gen, writable: true}
	defer tx.finish()
	if err := fn(tx); err != nil {
		return err
	}
	if len(tx.dirty) == 0 {
		return nil
	}
	buckets := maps.Clone(tx.base.buckets)
	maps.Copy(buckets, tx.dirty)
	m.snap.Store(&memSnapshot{buckets: buckets})
	return nil
}

// Batch is Update: with no disk to sync there is nothing to gain by coalescing.
func (m *memory) Batch(fn func(Tx) error) error { return m.Update(fn) }

func (m *memory) Close() error {
	m.mu.Lock() // let a running Update finish first
	defer m.mu.Unlock()
	m.closed.Store(true)
	return nil
}

type memTx struct {
	m        *memory
	base     *memSnapshot
	dirty    map[string]*memBucket // private copies of the buckets this Update changed
	gen      uint64
	writable bool
	done     bool
}

func (t *memTx) finish() { t.done = true }

func (t *memTx) check(write bool) error {
	switch {
	case t.done:
		return ErrTxDone
	case write && !t.writable:
		return ErrReadOnly
	}
	return nil
}

func (t *memTx) bucket(name string) *memBucket {
	if b := t.dirty[name]; b != nil {
		return b
	}
	return t.base.buckets[name]
}

func (t *memTx) writeBucket(name string) *memBucket {
	if b := t.dirty[name]; b != nil {
		return b
	}
	b := &memBucket{}
	if old := t.base.buckets[name]; old != nil {
		*b = *old
	}
	if t.dirty == nil {
		t.dirty = map[string]*memBucket{}
	}
	t.dirty[name] = b
	return b
}

func (t *memTx) Get(bucket, key string) ([]byte, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	if err := checkName(bucket, key); err != nil {
		return nil, err
	}
	b := t.bucket(bucket)
	if b == nil {
		return nil, ErrNotFound
	}
	n := seek(b.root, key, true)
	if n == nil || n.key != key {
		return nil, ErrNotFound
	}
	return cloneBytes(n.value), nil
}

func (t *memTx) Put(bucket, key string, value []byte) error {
	if err := t.check(true); err != nil {
		return err
	}
	if err := checkName(bucket, key); err != nil {
		return err
	}
	if err := checkValue(value); err != nil {
		return err
	}
	b := t.writeBucket(bucket)
	b.root = t.insert(b.root, key, cloneBytes(value), maphash.String(t.m.seed, key))
	return nil
}

func (t *memTx) Delete(bucket, key string) error {
	if err := t.check(true); err != nil {
		return err
	}
	if err := checkName(bucket, key); err != nil {
		return err
	}
	if b := t.bucket(bucket); b == nil {
		return nil
	} else if n := seek(b.root, key, true); n == nil || n.key != key {
		return nil
	}
	b := t.writeBucket(bucket)
	b.root = t.remove(b.root, key)
	return nil
}

func (t *memTx) ForEach(bucket, prefix string, fn func(key string, value []byte) error) error {
	if err := t.check(false); err != nil {
		return err
	}
	if err := checkBucket(bucket); err != nil {
		return err
	}
	b := t.bucket(bucket)
	if b == nil {
		return nil
	}
	if t.writable {
		// fn may change the bucket: find each next key afresh in the current tree, as the on-disk store does.
		from, inclusive := prefix, true
		for {
			n := seek(t.bucket(bucket).root, from, inclusive)
			if n == nil || !strings.HasPrefix(n.key, prefix) {
				return nil
			}
			if err := fn(n.key, n.value[:len(n.value):len(n.value)]); err != nil {
				return err
			}
			from, inclusive = n.key, false
		}
	}
	// A snapshot never changes: walk it in order with a stack of the nodes whose left side is done.
	stack := make([]*treapNode, 0, 64)
	for n := b.root; n != nil; {
		if n.key >= prefix {
			stack = append(stack, n)
			n = n.left
		} else {
			n = n.right
		}
	}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if !strings.HasPrefix(n.key, prefix) {
			return nil
		}
		if err := fn(n.key, n.value[:len(n.value):len(n.value)]); err != nil {
			return err
		}
		for c := n.right; c != nil; c = c.left {
			stack = append(stack, c)
		}
	}
	return nil
}

func (t *memTx) NextSequence(bucket string) (uint64, error) {
	if err := t.check(true); err != nil {
		return 0, err
	}
	if err := checkBucket(bucket); err != nil {
		return 0, err
	}
	b := t.writeBucket(bucket)
	b.seq++
	return b.seq, nil
}

// own returns n itself if this transaction made it, else a copy this transaction may change.
func (t *memTx) own(n *treapNode) *treapNode {
	if n.gen == t.gen {
		return n
	}
	c := *n
	c.gen = t.gen
	return &c
}

func (t *memTx) insert(n *treapNode, key string, value []byte, prio uint64) *treapNode {
	if n == nil {
		return &treapNode{key: key, value: value, prio: prio, gen: t.gen}
	}
	c := t.own(n)
	switch {
	case key < n.key:
		c.left = t.insert(n.left, key, value, prio)
		if c.left.prio > c.prio { // rotate right; c.left is owned, being fresh from insert
			l := c.left
			c.left, l.right = l.right, c
			return l
		}
	case key > n.key:
		c.right = t.insert(n.right, key, value, prio)
		if c.right.prio > c.prio { // rotate left
			r := c.right
			c.right, r.left = r.left, c
			return r
		}
	default:
		c.value = value
	}
	return c
}

// remove deletes key, which must be in the tree under n.
func (t *memTx) remove(n *treapNode, key string) *treapNode {
	switch {
	case key < n.key:
		c := t.own(n)
		c.left = t.remove(n.left, key)
		return c
	case key > n.key:
		c := t.own(n)
		c.right = t.remove(n.right, key)
		return c
	}
	return t.merge(n.left, n.right)
}

// merge joins two treaps where every key of a is less than every key of b.
func (t *memTx) merge(a, b *treapNode) *treapNode {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case a.prio > b.prio:
		c := t.own(a)
		c.right = t.merge(a.right, b)
		return c
	}
	c := t.own(b)
	c.left = t.merge(a, b.left)
	return c
}

// seek returns the node with the least key at or after key (strictly after when inclusive is false), or nil.
func seek(n *treapNode, key string, inclusive bool) *treapNode {
	var best *treapNode
	for n != nil {
		if n.key > key || (inclusive && n.key == key) {
			best = n
			n = n.left
		} else {
			n = n.right
		}
	}
	return best
}
