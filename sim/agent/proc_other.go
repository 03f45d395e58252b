//go:build !unix

package agent

import "os/exec"

// Without process groups only the process itself is signalled.

func setProcessGroup(*exec.Cmd) {}

func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}

func terminateGroup(cmd *exec.Cmd) { killGroup(cmd) }
