//go:build !linux

package agent

import (
	"errors"
	"os/exec"
	"syscall"
)

// Without /proc and pidfds the launcher cannot tell a recorded process from a later one that took its
// number, so it adopts nothing and stops nothing it did not start itself: an application left by a killed
// agent keeps running beside the one the next agent starts. Device supervision is a Linux feature.

const supervisionSupported = false

var errNoSupervision = errors.New("finding processes again needs Linux")

func setScriptAttrs(cmd *exec.Cmd) { setProcessGroup(cmd) }

type handle struct{ pid int }

func identify(*appRecord) error                { return nil }
func adoptRecorded(appRecord) (*handle, error) { return nil, errNoSupervision }
func strays(string, int) ([]*handle, error)    { return nil, nil }
func killTaggedGroup(int, string)              {}
func waitNoReap(int)                           {}
func (h *handle) signal(syscall.Signal)        {}
func (h *handle) wait() error                  { return errNoSupervision }
func (h *handle) close()                       {}
