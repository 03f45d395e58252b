//go:build !unix

package inproc

import (
	"context"

	"github.com/fleetlab/fleetlab/sim/agent"
)

// powerOff kills the application of an OS-family launcher at once. Without process groups and job control the
// application is killed rather than stopped first.
func powerOff(l agent.Launcher) {
	pl, ok := l.(*agent.ProcessLauncher)
	if !ok {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = pl.Stop(ctx)
}
