//go:build unix

package inproc

import (
	"context"
	"syscall"

	"github.com/fleetlab/fleetlab/sim/agent"
)

// powerOff kills the application of an OS-family launcher as a power cut would: its process group is stopped
// first, so the graceful signal the launcher sends on the way cannot be handled, then killed, and supervision
// ends without a restart. Other launchers are left alone: nothing of theirs outlives the agent.
func powerOff(l agent.Launcher) {
	pl, ok := l.(*agent.ProcessLauncher)
	if !ok {
		return
	}
	if pid := pl.Pid(); pid > 0 {
		_ = syscall.Kill(-pid, syscall.SIGSTOP)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a canceled stop kills at once, after the (pending, never handled) graceful signal
	_ = pl.Stop(ctx)
}
