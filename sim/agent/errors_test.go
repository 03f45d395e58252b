package agent

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
	"testing"
)

func TestIsTransientErrno(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&fs.PathError{Op: "write", Path: "/x", Err: syscall.ENOSPC}, false},
		{&os.PathError{Op: "open", Path: "/x", Err: syscall.EACCES}, false},
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, true},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{&APIError{Status: 503}, true},
		{&APIError{Status: 404}, false},
	}
	for _, tc := range tests {
		if got := IsTransient(tc.err); got != tc.want {
			t.Errorf("IsTransient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
