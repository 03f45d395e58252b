package process

import "syscall"

// SessionAttr returns the process attributes the fleet starts its agents with: a session of their own, and
// SIGTERM when the starting process dies. Other hosts of agent processes (an emulated board) use it too.
func SessionAttr() *syscall.SysProcAttr { return sysProcAttr() }

// KillSession kills every process of session sid with SIGKILL: an agent started with SessionAttr, its
// application and scripts — a power cut.
func KillSession(sid int) error { return killSession(sid) }
