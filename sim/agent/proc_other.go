//go:build !unix

package agent

import (
	"os/exec"
	"syscall"
)

// Without process groups only the process itself is signalled.

func setProcessGroup(*exec.Cmd) {}

// signalGroup kills cmd whatever sig is: there is no graceful signal to send.
func signalGroup(cmd *exec.Cmd, _ syscall.Signal) { killGroup(cmd) }

func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}

func terminateGroup(cmd *exec.Cmd) { killGroup(cmd) }
