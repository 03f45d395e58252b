//go:build unix

package container

import (
	"fmt"
	"os"
	"syscall"
)

// lockFile takes an exclusive lock on path, made if missing, and returns its release, which removes the file:
// the lock leaves nothing in the temporary directory. A waiter whose lock is on a file removed meanwhile (the
// previous holder's) finds path no longer names it, and locks afresh.
func lockFile(path string) (func(), error) {
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("robot image: lock: %w", err)
		}
		fd := int(f.Fd())
		if err := syscall.Flock(fd, syscall.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("robot image: lock: %w", err)
		}
		var held, named syscall.Stat_t
		if syscall.Fstat(fd, &held) == nil && syscall.Stat(path, &named) == nil &&
			held.Dev == named.Dev && held.Ino == named.Ino {
			return func() {
				os.Remove(path) // before the unlock: a waiter then finds its file gone, not a stranger's lock
				syscall.Flock(fd, syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		syscall.Flock(fd, syscall.LOCK_UN)
		f.Close()
	}
}
