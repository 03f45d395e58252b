//go:build !linux

package process

import (
	"errors"
	"syscall"
)

// The process backend finds the processes of a robot through /proc and backs Close with Pdeathsig: Linux only. New
// refuses to start elsewhere.

var errUnsupported = errors.New("the process backend needs Linux")

func supported() error { return errUnsupported }

func sysProcAttr() *syscall.SysProcAttr { return nil }

func killSession(int) error { return errUnsupported }

func stopSession(int) error { return errUnsupported }

func continueSession(int) error { return errUnsupported }

func terminate(int) {}

func killProcess(int) error { return errUnsupported }

type member struct{}

func sessionMembers(int) ([]member, error) { return nil, errUnsupported }
