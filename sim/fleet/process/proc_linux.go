//go:build linux

package process

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fleetlab/fleetlab/sim/clock"
)

func supported() error { return nil }

// sysProcAttr makes the agent the leader of a new session — its application and scripts, in process groups of
// their own, stay in that session even once orphaned — and has it sent SIGTERM, a clean stop, if the process
// that started it dies first.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGTERM}
}

// member is a live process of a session.
type member struct {
	pid     int
	stopped bool
}

// sessionMembers lists the live processes (zombies excluded) of session sid from /proc.
func sessionMembers(sid int) ([]member, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var out []member
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid pgrp session ...; comm may hold spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 4 {
			continue
		}
		if n, err := strconv.Atoi(f[3]); err != nil || n != sid {
			continue
		}
		switch f[0] {
		case "Z", "X":
			continue
		case "T", "t":
			out = append(out, member{pid: pid, stopped: true})
		default:
			out = append(out, member{pid: pid})
		}
	}
	return out, nil
}

// killSession kills every process of session sid and returns once none is left.
func killSession(sid int) error { return signalSession(sid, syscall.SIGKILL) }

// stopSession stops every process of session sid and returns once all are stopped.
func stopSession(sid int) error { return signalSession(sid, syscall.SIGSTOP) }

// continueSession continues every process of session sid.
func continueSession(sid int) error { return signalSession(sid, syscall.SIGCONT) }

// killProcess kills process pid alone.
func killProcess(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }

// terminate asks process pid to stop cleanly.
func terminate(pid int) { _ = syscall.Kill(pid, syscall.SIGTERM) }

// signalSession sends sig to every process of session sid until it holds: for SIGKILL until none is left, for
// SIGSTOP until all are stopped (a process may fork while the others are being signalled); SIGCONT is sent once
// to each. It gives up after ten seconds.
func signalSession(sid int, sig syscall.Signal) error {
	c := clock.Real{}
	deadline := c.Now().Add(10 * time.Second)
	for {
		members, err := sessionMembers(sid)
		if err != nil {
			return err
		}
		pending := 0
		for _, m := range members {
			if sig == syscall.SIGSTOP && m.stopped {
				continue
			}
			pending++
			_ = syscall.Kill(m.pid, sig)
		}
		if pending == 0 || sig == syscall.SIGCONT {
			return nil
		}
		if c.Now().After(deadline) {
			return fmt.Errorf("session %d: %d processes still not %v after 10s", sid, pending, sig)
		}
		clock.Sleep(c, time.Millisecond, nil)
	}
}
