package store

import (
	"fmt"
	"math/bits"
	"testing"
)

// TestMemoryStaysBalanced inserts keys in sorted order, the worst case for an unbalanced tree, and checks the
// treap's depth stays logarithmic, so Put, Get and the start of a ForEach stay cheap at 100,000 executions.
func TestMemoryStaysBalanced(t *testing.T) {
	s := NewMemory().(*memory)
	const n = 1 << 15
	err := s.Update(func(tx Tx) error {
		for i := range n {
			if err := tx.Put("e", fmt.Sprintf("exec/%08d", i), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var depth func(*treapNode) int
	depth = func(n *treapNode) int {
		if n == nil {
			return 0
		}
		return 1 + max(depth(n.left), depth(n.right))
	}
	// A random treap's expected depth is about 3·log2(n); 4·log2(n) leaves room for chance.
	got, limit := depth(s.snap.Load().buckets["e"].root), 4*bits.Len(n)
	if got > limit {
		t.Fatalf("depth %d for %d sorted inserts, want at most %d", got, n, limit)
	}
	t.Logf("depth %d for %d keys", got, n)
}
