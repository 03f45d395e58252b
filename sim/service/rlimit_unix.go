//go:build unix

package service

import "syscall"

// OpenFileLimit is the process's limit on open files (the soft limit, which Go raises to the hard one at start).
func OpenFileLimit() int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur == 0 || r.Cur > 1<<30 {
		return 1 << 16
	}
	return int(r.Cur)
}
