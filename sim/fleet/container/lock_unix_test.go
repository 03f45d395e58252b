//go:build unix

package container

import (
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// The image lock excludes other holders, and leaves no file behind once released, however many took it in turn.
func TestLockFileExcludesAndLeavesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "robot.lock")
	var inside, most atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				unlock, err := lockFile(path)
				if err != nil {
					t.Error(err)
					return
				}
				n := inside.Add(1)
				if n > most.Load() {
					most.Store(n)
				}
				inside.Add(-1)
				unlock()
			}
		})
	}
	wg.Wait()
	if m := most.Load(); m != 1 {
		t.Errorf("%d holders inside the lock at once, want 1", m)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the lock file is left behind: %v", err)
	}
}
