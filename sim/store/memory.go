package store

import (
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// NewMemory returns an empty Store held in memory, for unit tests and benchmarks. It behaves as the on-disk
// store does (the same limits, errors and iteration order) but keeps nothing when the process ends.
//
// Each bucket is a map with a lazily sorted key index. An Update buffers its writes in an overlay that its own
// reads see; when fn returns nil the overlay is applied under the write lock, so a failed Update leaves nothing
// behind and a View (which holds the read lock while fn runs) never sees half a commit. Updating a key that
// exists costs a map assignment; only new or deleted keys invalidate the sorted index, which ForEach rebuilds
// when it needs it. As with bbolt, a View must not start an Update on the same goroutine.
func NewMemory() Store {
	return &memory{buckets: map[string]*memBucket{}}
}

type memory struct {
	wmu     sync.Mutex   // serialises Update and Batch
	mu      sync.RWMutex // guards buckets: Views read under RLock, commits apply under Lock
	buckets map[string]*memBucket
	closed  atomic.Bool
}

var _ Store = (*memory)(nil)

type memBucket struct {
	m   map[string][]byte
	seq uint64

	sortMu sync.Mutex // guards keys and stale among readers
	keys   []string   // sorted keys of m, valid when !stale
	stale  bool
}

// indexLimit is how many new keys a commit merges into a valid sorted index; more, and the index is rebuilt when
// next needed. Merging keeps a bucket that grows one key per Update (robots registering one by one) from being
// sorted again for every ForEach.
const indexLimit = 64

// index adds new keys to the sorted index, or marks it stale. The caller holds m.mu for writing.
func (b *memBucket) index(added []string) {
	if len(added) == 0 || b.stale {
		return
	}
	if len(added) > indexLimit {
		b.stale = true
		return
	}
	// In place: no View is walking the index while the commit holds m.mu, and the Update that walked it has
	// returned.
	for _, k := range added {
		i, _ := slices.BinarySearch(b.keys, k)
		b.keys = slices.Insert(b.keys, i, k)
	}
}

// sorted returns the bucket's keys in order. The caller holds m.mu (read or write).
func (b *memBucket) sorted() []string {
	b.sortMu.Lock()
	defer b.sortMu.Unlock()
	if b.stale {
		// A new slice, never the old array: a transaction may still be walking the previous index.
		keys := make([]string, 0, len(b.m))
		for k := range b.m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b.keys, b.stale = keys, false
	}
	return b.keys
}

func (m *memory) View(fn func(Tx) error) error {
	if m.closed.Load() {
		return ErrClosed
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	tx := &memTx{m: m}
	defer tx.finish()
	return fn(tx)
}

func (m *memory) Update(fn func(Tx) error) error {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	if m.closed.Load() {
		return ErrClosed
	}
	tx := &memTx{m: m, txState: txState{writable: true}}
	defer tx.finish()
	if err := fn(tx); err != nil {
		return err
	}
	if len(tx.writes) == 0 && len(tx.seqs) == 0 {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, w := range tx.writes {
		b := m.buckets[name]
		if b == nil {
			b = &memBucket{m: make(map[string][]byte, len(w)), stale: true}
			m.buckets[name] = b
		}
		var added []string
		for k, v := range w {
			_, had := b.m[k]
			if v == nil {
				delete(b.m, k)
			} else {
				b.m[k] = *v
			}
			switch {
			case had && v == nil:
				b.stale = true
			case !had && v != nil:
				added = append(added, k)
			}
		}
		b.index(added)
	}
	for name, seq := range tx.seqs {
		b := m.buckets[name]
		if b == nil {
			b = &memBucket{m: map[string][]byte{}, stale: true}
			m.buckets[name] = b
		}
		b.seq = seq
	}
	return nil
}

// Batch is Update: with no disk to sync there is nothing to gain by coalescing.
func (m *memory) Batch(fn func(Tx) error) error { return m.Update(fn) }

func (m *memory) Close() error {
	m.wmu.Lock() // let a running Update finish first
	defer m.wmu.Unlock()
	m.closed.Store(true)
	return nil
}

type memTx struct {
	m      *memory
	writes map[string]map[string]*[]byte // this Update's writes by bucket; a nil value is a delete
	seqs   map[string]uint64
	txState
}

func (t *memTx) finish() { t.done = true }

// lookup returns the value of key as this transaction sees it.
func (t *memTx) lookup(bucket, key string) ([]byte, bool) {
	if w, ok := t.writes[bucket][key]; ok {
		if w == nil {
			return nil, false
		}
		return *w, true
	}
	if b := t.m.buckets[bucket]; b != nil {
		v, ok := b.m[key]
		return v, ok
	}
	return nil, false
}

func (t *memTx) write(bucket, key string, v *[]byte) {
	if t.writes == nil {
		t.writes = map[string]map[string]*[]byte{}
	}
	w := t.writes[bucket]
	if w == nil {
		w = map[string]*[]byte{}
		t.writes[bucket] = w
	}
	w[key] = v
}

func (t *memTx) Get(bucket, key string) ([]byte, error) {
	if err := t.checkKey(false, bucket, key); err != nil {
		return nil, err
	}
	v, ok := t.lookup(bucket, key)
	if !ok {
		return nil, ErrNotFound
	}
	return cloneBytes(v), nil
}

func (t *memTx) Put(bucket, key string, value []byte) error {
	if err := t.checkPut(bucket, key, value); err != nil {
		return err
	}
	v := cloneBytes(value)
	t.write(bucket, key, &v)
	return nil
}

func (t *memTx) Delete(bucket, key string) error {
	if err := t.checkKey(true, bucket, key); err != nil {
		return err
	}
	if _, ok := t.lookup(bucket, key); ok {
		t.write(bucket, key, nil)
	}
	return nil
}

func (t *memTx) ForEach(bucket, prefix string, fn func(key string, value []byte) error) error {
	if err := t.checkBucket(false, bucket); err != nil {
		return err
	}
	var committed []string
	if b := t.m.buckets[bucket]; b != nil {
		committed = b.sorted()
	}
	if !t.writable {
		i := sort.SearchStrings(committed, prefix)
		b := t.m.buckets[bucket]
		for ; i < len(committed) && strings.HasPrefix(committed[i], prefix); i++ {
			v := b.m[committed[i]]
			if err := fn(committed[i], v[:len(v):len(v)]); err != nil {
				return err
			}
		}
		return nil
	}
	// fn may change the bucket: find each next key afresh as the bucket is now, as the on-disk store does.
	from, inclusive := prefix, true
	for {
		k, ok := t.next(bucket, committed, from, inclusive)
		if !ok || !strings.HasPrefix(k, prefix) {
			return nil
		}
		v, _ := t.lookup(bucket, k)
		if err := fn(k, v[:len(v):len(v)]); err != nil {
			return err
		}
		from, inclusive = k, false
	}
}

// next returns the least key at or after from (strictly after unless inclusive) that this transaction sees.
func (t *memTx) next(bucket string, committed []string, from string, inclusive bool) (string, bool) {
	after := func(k string) bool { return k > from || (inclusive && k == from) }
	best, found := "", false
	i := sort.SearchStrings(committed, from)
	for ; i < len(committed); i++ {
		k := committed[i]
		if !after(k) {
			continue
		}
		if w, ok := t.writes[bucket][k]; ok && w == nil {
			continue // deleted by this transaction
		}
		best, found = k, true
		break
	}
	for k, w := range t.writes[bucket] {
		if w != nil && after(k) && (!found || k < best) {
			best, found = k, true
		}
	}
	return best, found
}

func (t *memTx) NextSequence(bucket string) (uint64, error) {
	if err := t.checkBucket(true, bucket); err != nil {
		return 0, err
	}
	seq, ok := t.seqs[bucket]
	if !ok {
		if b := t.m.buckets[bucket]; b != nil {
			seq = b.seq
		}
	}
	seq++
	if t.seqs == nil {
		t.seqs = map[string]uint64{}
	}
	t.seqs[bucket] = seq
	return seq, nil
}
