package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// impls are the implementations every behaviour test runs on.
var impls = []struct {
	name string
	open func(t testing.TB) Store
}{
	{"memory", func(t testing.TB) Store {
		s := NewMemory()
		t.Cleanup(func() { s.Close() })
		return s
	}},
	{"bolt", func(t testing.TB) Store {
		s, err := Open(filepath.Join(t.TempDir(), "fleetlab.db"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}},
}

func forEachImpl(t *testing.T, test func(t *testing.T, s Store)) {
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) { test(t, impl.open(t)) })
	}
}

func put(t testing.TB, s Store, bucket string, kv ...string) {
	t.Helper()
	err := s.Update(func(tx Tx) error {
		for i := 0; i < len(kv); i += 2 {
			if err := tx.Put(bucket, kv[i], []byte(kv[i+1])); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func get(t testing.TB, s Store, bucket, key string) (string, error) {
	t.Helper()
	var v []byte
	err := s.View(func(tx Tx) error {
		var err error
		v, err = tx.Get(bucket, key)
		return err
	})
	return string(v), err
}

// keys lists bucket's keys with prefix, and checks each value is "v:" + key (the convention of these tests).
func keys(t testing.TB, s Store, bucket, prefix string) []string {
	t.Helper()
	var got []string
	err := s.View(func(tx Tx) error {
		return tx.ForEach(bucket, prefix, func(k string, v []byte) error {
			got = append(got, k)
			if string(v) != "v:"+k {
				return fmt.Errorf("value of %q is %q", k, v)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestGetPutDelete(t *testing.T) {
	forEachImpl(t, func(t *testing.T, s Store) {
		if _, err := get(t, s, "robots", "r1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get from missing bucket: %v, want ErrNotFound", err)
		}
		put(t, s, "robots", "r1", "one", "r2", "two", "empty", "")
		if _, err := get(t, s, "robots", "r3"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get missing key: %v, want ErrNotFound", err)
		}
		for k, want := range map[string]string{"r1": "one", "r2": "two", "empty": ""} {
			if v, err := get(t, s, "robots", k); err != nil || v != want {
				t.Fatalf("get %s = %q, %v; want %q", k, v, err, want)
			}
		}
		put(t, s, "robots", "r1", "uno")
		if v, _ := get(t, s, "robots", "r1"); v != "uno" {
			t.Fatalf("after overwrite r1 = %q", v)
		}
		if _, err := get(t, s, "fleets", "r1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("buckets are not separate: %v", err)
		}
		err := s.Update(func(tx Tx) error {
			if err := tx.Delete("robots", "r1"); err != nil {
				return err
			}
			if err := tx.Delete("robots", "never"); err != nil {
				return fmt.Errorf("delete missing key: %w", err)
			}
			if err := tx.Delete("nobucket", "r1"); err != nil {
				return fmt.Errorf("delete in missing bucket: %w", err)
			}
			// A delete is visible to the rest of its own transaction.
			if _, err := tx.Get("robots", "r1"); !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("get after delete in same tx: %v", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := get(t, s, "robots", "r1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get deleted: %v", err)
		}
		if v, _ := get(t, s, "robots", "r2"); v != "two" {
			t.Fatalf("r2 = %q after deleting r1", v)
		}
	})
}

func TestValuesAreCopied(t *testing.T) {
	forEachImpl(t, func(t *testing.T, s Store) {
		buf := []byte("original")
		var got []byte
		err := s.Update(func(tx Tx) error {
			if err := tx.Put("b", "k", buf); err != nil {
				return err
			}
			copy(buf, "CHANGED!") // the caller reuses its buffer before the commit
			var err error
			got, err = tx.Get("b", "k")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		copy(got, "mutated!") // and scribbles on what Get returned, after the transaction
		if v, _ := get(t, s, "b", "k"); v != "original" {
			t.Fatalf("stored value = %q, want original", v)
		}
	})
}

func TestForEachPrefixOrder(t *testing.T) {
	all := []string{"a", "a/", "a/1", "a/10", "a/2", "a/\xff", "a0", "ab", "b", "b/1", "\x00", "\xff\xff"}
	forEachImpl(t, func(t *testing.T, s Store) {
		shuffled := slices.Clone(all)
		rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		for _, k := range shuffled {
			put(t, s, "k", k, "v:"+k) // one transaction per key, so the order of commits is random too
		}
		want := slices.Clone(all)
		slices.Sort(want)
		for _, tc := range []struct {
			prefix string
			want   []string
		}{
			{"", want},
			{"a/", []string{"a/", "a/1", "a/10", "a/2", "a/\xff"}},
			{"a/1", []string{"a/1", "a/10"}},
			{"a", []string{"a", "a/", "a/1", "a/10", "a/2", "a/\xff", "a0", "ab"}},
			{"b/", []string{"b/1"}},
			{"\xff", []string{"\xff\xff"}},
			{"c", nil},
			{"a/3", nil},
		} {
			if got := keys(t, s, "k", tc.prefix); !slices.Equal(got, tc.want) {
				t.Errorf("prefix %q: %q, want %q", tc.prefix, got, tc.want)
			}
		}
		if got := keys(t, s, "missing", ""); got != nil {
			t.Errorf("missing bucket: %q", got)
		}
		stop := errors.New("stop")
		var seen []string
		err := s.View(func(tx Tx) error {
			return tx.ForEach("k", "a/", func(k string, _ []byte) error {
				seen = append(seen, k)
				if len(seen) == 2 {
					return stop
				}
				return nil
			})
		})
		if !errors.Is(err, stop) || !slices.Equal(seen, []string{"a/", "a/1"}) {
			t.Errorf("stopping ForEach: %v after %q", err, seen)
		}
	})
}

func TestForEachManyKeysInOrder(t *testing.T) {
	forEachImpl(t, func(t *testing.T, s Store) {
		const n = 5000
		r := rand.New(rand.NewPCG(3, 4))
		var want []string
		err := s.Update(func(tx Tx) error {
			for _, i := range r.Perm(n) {
				k := fmt.Sprintf("exec/%d", i) // decimal without padding: byte order is not numeric order
				want = append(want, k)
				if err := tx.Put("e", k, []byte("v:"+k)); err != nil {
					return err
				}
			}
			// Delete a tenth of them in the same transaction.
			for _, i := range r.Perm(n)[:n/10] {
				k := fmt.Sprintf("exec/%d", i)
				want = slices.DeleteFunc(want, func(w string) bool { return w == k })
				if err := tx.Delete("e", k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(want)
		if got := keys(t, s, "e", "exec/"); !slices.Equal(got, want) {
			t.Fatalf("got %d keys, want %d in order; first difference near %v", len(got), len(want), firstDiff(got, want))
		}
	})
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("index %d: %q vs %q", i, a[i], b[i])
		}
	}
	return "the end"
}

// TestForEachWhileChanging pins what ForEach does when fn changes the bucket inside an Update: iteration goes on
// from the key after the last one visited, in the bucket as it is now.
func TestForEachWhileChanging(t *testing.T) {
	forEachImpl(t, func(t *testing.T, s Store) {
		put(t, s, "q", "j/1", "v:j/1", "j/2", "v:j/2", "j/3", "v:j/3", "j/4", "v:j/4", "other", "v:other")
		var visited []string
		err := s.Update(func(tx Tx) error {
			return tx.ForEach("q", "j/", func(k string, _ []byte) error {
				visited = append(visited, k)
				switch k {
				case "j/1":
					if err := tx.Delete("q", "j/2"); err != nil { // a later key: never visited
						return err
					}
					if err := tx.Put("q", "j/1a", []byte("v:j/1a")); err != nil { // a later new key: visited
						return err
					}
				case "j/3":
					if err := tx.Put("q", "j/0", []byte("v:j/0")); err != nil { // an earlier key: not visited
						return err
					}
				}
				return tx.Delete("q", k) // deleting the current key does not lose the place
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"j/1", "j/1a", "j/3", "j/4"}; !slices.Equal(visited, want) {
			t.Fatalf("visited %q, want %q", visited, want)
		}
		if got := keys(t, s, "q", ""); !slices.Equal(got, []string{"j/0", "other"}) {
			t.Fatalf("left %q", got)
		}
	})
}

func TestNextSequence(t *testing.T) {
	forEachImpl(t, func(t *testing.T, s Store) {
		next := func(bucket string) uint64 {
			t.Helper()
			var n uint64
			if err := s.Update(func(tx Tx) (err error) { n, err = tx.NextSequence(bucket); return err }); err != nil {
				t.Fatal(err)
			}
			return n
		}
		for want := uint64(1); want <= 3; want++ {
			if got := next("deployments"); got != want {
				t.Fatalf("sequence %d, want %d", got, want)
			}
		}
		if got := next("robots"); got != 1 {
			t.Fatalf("a second bucket starts at %d", got)
		}
		err := s.Update(func(tx Tx) error {
			a, _ := tx.NextSequence("deployments")
			b, _ := tx.NextSequence("deployments")
			if a != 4 || b != 5 {
				return fmt.Errorf("in one tx: %d, %d", a, b)
			}
			return errors.New("roll back")
		})
		if err == nil || err.Error() != "roll back" {
			t.Fatal(err)
		}
		if got := next("deployments"); got != 4 {
			t.Fatalf("after rollback the sequence is %d, want 4", got)
		}
		// A sequence does not depend on keys: the bucket still has none.
		if got := keys(t, s, "deployments", ""); got != nil {
			t.Fatalf("keys %q", got)
		}
	})
}

func TestRollbackOnError(t *testing.T) {
	forEachImpl(t, func(t *testing.T, s Store) {
		put(t, s, "b", "keep", "v:keep", "gone", "v:gone")
		boom := errors.New("boom")
		err := s.Update(func(tx Tx) error {
			for _, op := range []func() error{
				func() error { return tx.Put("b", "new", []byte("v:new")) },
				func() error { return tx.Put("b", "keep", []byte("changed")) },
				func() error { return tx.Delete("b", "gone") },
				func() error { return tx.Put("fresh", "k", []byte("v:k")) },
			} {
				if err := op(); err != nil {
					return err
				}
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Update returned %v, want fn's error", err)
		}
		if got := keys(t, s, "b", ""); !slices.Equal(got, []string{"gone", "keep"}) {
			t.Fatalf("after rollback: %q", got)
		}
		if got := keys(t, s, "fresh", ""); got != nil {
			t.Fatalf("bucket of a rolled back tx has %q", got)
		}
		// A panicking fn rolls back too, and the store stays usable.
		func() {
			defer func() {
				if recover() == nil {
					t.Fatal("panic did not propagate")
				}
			}()
			s.Update(func(tx Tx) error {
				if err := tx.Put("b", "panic", []byte("v:panic")); err != nil {
					return err
				}
				panic("fn panics")
			})
		}()
		put(t, s, "b", "after", "v:after")
		if got := keys(t, s, "b", ""); !slices.Equal(got, []string{"after", "gone", "keep"}) {
			t.Fatalf("after panic: %q", got)
		}
	})
}

func TestReadOnlyAndDoneTx(t *testing.T) {
	forEachImpl(t, func(t *testing.T, s Store) {
		put(t, s, "b", "k", "v:k")
		var kept Tx
		err := s.View(func(tx Tx) error {
			kept = tx
			if err := tx.Put("b", "k", []byte("x")); !errors.Is(err, ErrReadOnly) {
				return fmt.Errorf("Put: %v", err)
			}
			if err := tx.Delete("b", "k"); !errors.Is(err, ErrReadOnly) {
				return fmt.Errorf("Delete: %v", err)
			}
			if _, err := tx.NextSequence("b"); !errors.Is(err, ErrReadOnly) {
				return fmt.Errorf("NextSequence: %v", err)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("in a View, %v; want ErrReadOnly", err)
		}
		if _, err := kept.Get("b", "k"); !errors.Is(err, ErrTxDone) {
			t.Fatalf("Get on a finished tx: %v", err)
		}
		s.Update(func(tx Tx) error { kept = tx; return nil })
		if err := kept.Put("b", "k", []byte("late")); !errors.Is(err, ErrTxDone) {
			t.Fatalf("Put on a finished tx: %v", err)
		}
		if v, _ := get(t, s, "b", "k"); v != "v:k" {
			t.Fatalf("value %q", v)
		}
	})
}

func TestInvalidKeys(t *testing.T) {
	forEachImpl(t, func(t *testing.T, s Store) {
		long := strings.Repeat("k", MaxKeySize+1)
		err := s.Update(func(tx Tx) error {
			for _, c := range []struct{ bucket, key string }{{"", "k"}, {"b", ""}, {"b", long}, {long, "k"}} {
				if err := tx.Put(c.bucket, c.key, nil); !errors.Is(err, ErrInvalidKey) {
					return fmt.Errorf("Put(%.8q, %.8q): %v", c.bucket, c.key, err)
				}
				if _, err := tx.Get(c.bucket, c.key); !errors.Is(err, ErrInvalidKey) {
					return fmt.Errorf("Get(%.8q, %.8q): %v", c.bucket, c.key, err)
				}
			}
			if err := tx.ForEach("", "", nil); !errors.Is(err, ErrInvalidKey) {
				return fmt.Errorf("ForEach with no bucket: %v", err)
			}
			return tx.Put("b", strings.Repeat("k", MaxKeySize), nil) // the longest key is fine
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func TestClose(t *testing.T) {
	forEachImpl(t, func(t *testing.T, s Store) {
		put(t, s, "b", "k", "v:k")
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		nop := func(Tx) error { return nil }
		for name, op := range map[string]func(func(Tx) error) error{"View": s.View, "Update": s.Update, "Batch": s.Batch} {
			if err := op(nop); !errors.Is(err, ErrClosed) {
				t.Errorf("%s after Close: %v, want ErrClosed", name, err)
			}
		}
	})
}

// TestBatchConcurrent runs many concurrent Batch calls, some failing: every successful one is committed, every
// failing one is rolled back and its caller alone gets its error.
func TestBatchConcurrent(t *testing.T) {
	forEachImpl(t, func(t *testing.T, s Store) {
		const writers, each = 40, 10
		rejected := errors.New("rejected")
		var wg sync.WaitGroup
		errs := make([]error, writers*each)
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					n := w*each + i
					errs[n] = s.Batch(func(tx Tx) error {
						k := fmt.Sprintf("dev/%03d", n)
						if err := tx.Put("b", k, []byte("v:"+k)); err != nil {
							return err
						}
						if n%7 == 0 {
							return fmt.Errorf("device %d: %w", n, rejected)
						}
						return nil
					})
				}
			})
		}
		wg.Wait()
		var want []string
		for n, err := range errs {
			if n%7 == 0 {
				if !errors.Is(err, rejected) {
					t.Errorf("batch %d: %v, want its own error", n, err)
				}
				continue
			}
			if err != nil {
				t.Errorf("batch %d: %v", n, err)
			}
			want = append(want, fmt.Sprintf("dev/%03d", n))
		}
		if got := keys(t, s, "b", "dev/"); !slices.Equal(got, want) {
			t.Fatalf("committed %d keys, want %d", len(got), len(want))
		}
	})
}

// TestViewsDuringUpdates checks readers see whole transactions only: every Update writes a pair of keys with
// the same value, and no View may see them differ.
func TestViewsDuringUpdates(t *testing.T) {
	forEachImpl(t, func(t *testing.T, s Store) {
		put(t, s, "p", "a", "0", "b", "0")
		done := make(chan struct{})
		var wg sync.WaitGroup
		var torn error
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				err := s.View(func(tx Tx) error {
					a, err := tx.Get("p", "a")
					if err != nil {
						return err
					}
					b, err := tx.Get("p", "b")
					if err != nil {
						return err
					}
					if string(a) != string(b) {
						return fmt.Errorf("torn read: a=%s b=%s", a, b)
					}
					return nil
				})
				if err != nil {
					torn = err
					return
				}
			}
		})
		for i := range 200 {
			v := fmt.Sprint(i)
			put(t, s, "p", "a", v, "b", v)
		}
		close(done)
		wg.Wait()
		if torn != nil {
			t.Fatal(torn)
		}
	})
}
