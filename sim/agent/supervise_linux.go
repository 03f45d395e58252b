//go:build linux

package agent

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// On Linux the launcher finds the processes of a device again from /proc, and holds them through pidfds:
//
//   - a process is identified by its pid, its start time (field 22 of /proc/<pid>/stat, clock ticks since
//     boot) and the kernel's boot id, so a pid the kernel gave to another process since — after the
//     application exited, or after a reboot — is never taken for the application;
//   - once identified it is held by a pidfd, so signals reach that process and no other whatever happens
//     to the number, and its exit is seen by polling the pidfd, although it is not the agent's child;
//   - every process the OS family starts carries the device's tag in its environment (deviceEnv), which is
//     how an agent finds, at start, what an earlier agent of the device left behind without recording it:
//     an application whose start was cut short, the children of a script.

const supervisionSupported = true

// setScriptAttrs puts a script in a process group of its own and has the kernel kill it when the agent
// dies: a script only means something to the agent waiting for its outcome, and the agent that resumes
// the step runs it again. (The signal is sent when the thread that started the script exits; the agent
// locks no goroutine to a thread, so its threads live as long as it does.)
func setScriptAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// procStat is what /proc/<pid>/stat says of a live process.
type procStat struct {
	ppid, pgid int
	start      uint64
}

// readStat reads /proc/<pid>/stat; ok is false when the process is gone or a zombie.
func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	// pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime cutime
	// cstime priority nice num_threads itrealvalue starttime ...; comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return procStat{}, false
	}
	ppid, err0 := strconv.Atoi(f[1])
	pgid, err1 := strconv.Atoi(f[2])
	start, err2 := strconv.ParseUint(f[19], 10, 64)
	if err0 != nil || err1 != nil || err2 != nil {
		return procStat{}, false
	}
	return procStat{ppid: ppid, pgid: pgid, start: start}, true
}

// bootID is the kernel's id of this boot.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// identify fills in what tells process pid apart from a later one with its number.
func identify(rec *appRecord) error {
	st, ok := readStat(rec.Pid)
	if !ok {
		return fmt.Errorf("process %d: gone", rec.Pid)
	}
	rec.Start, rec.Boot = st.start, bootID()
	return nil
}

// hasTag reports whether process pid carries the device tag in its environment.
func hasTag(pid int, tag string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	want := []byte(tag)
	for _, kv := range bytes.Split(b, []byte{0}) {
		if bytes.Equal(kv, want) {
			return true
		}
	}
	return false
}

// taggedProcesses lists the live processes whose environment carries tag, but the caller.
func taggedProcesses(tag string) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	self := os.Getpid()
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if _, ok := readStat(pid); ok && hasTag(pid, tag) {
			out = append(out, pid)
		}
	}
	return out, nil
}

// handle is a process held by a pidfd.
type handle struct {
	pid int
	fd  *os.File
}

// openHandle holds process pid if it is still the one check describes: the pidfd is opened first and the
// check made after, so the handle cannot refer to a process that took the number in between.
func openHandle(pid int, check func(procStat) bool) (*handle, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("pidfd of %d: %w", pid, err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("pidfd of %d: %w", pid, err)
	}
	f := os.NewFile(uintptr(fd), "pidfd:"+strconv.Itoa(pid))
	st, ok := readStat(pid)
	if !ok || !check(st) {
		f.Close()
		return nil, fmt.Errorf("process %d: %w", pid, errNotOurs)
	}
	return &handle{pid: pid, fd: f}, nil
}

var errNotOurs = errors.New("not the recorded process")

// adoptRecorded holds the application rec names, if it still runs: the same boot, the same start time.
func adoptRecorded(rec appRecord) (*handle, error) {
	if rec.Pid <= 0 || rec.Boot == "" || rec.Boot != bootID() {
		return nil, errNotOurs
	}
	return openHandle(rec.Pid, func(st procStat) bool { return st.start == rec.Start && st.pgid == rec.Pid })
}

// signal sends sig to the process, and to its process group while it leads one and lives: a live leader
// keeps the group's number its own.
func (h *handle) signal(sig syscall.Signal) {
	if err := unix.PidfdSendSignal(int(h.fd.Fd()), sig, nil, 0); err != nil {
		return // gone
	}
	if st, ok := readStat(h.pid); ok && st.pgid == h.pid {
		_ = syscall.Kill(-h.pid, sig)
	}
}

// wait returns once the process has exited. Closing the handle ends it early with an error.
func (h *handle) wait() error {
	rc, err := h.fd.SyscallConn()
	if err != nil {
		return err
	}
	var perr error
	err = rc.Read(func(fd uintptr) bool {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		if err != nil && !errors.Is(err, unix.EINTR) {
			perr = err
			return true
		}
		return n > 0
	})
	return errors.Join(err, perr)
}

func (h *handle) close() { h.fd.Close() }

// killTaggedGroup kills what is left of process group pgid among the processes carrying tag: the members
// of an adopted application's group once its leader has exited, when the group's number is no longer held.
func killTaggedGroup(pgid int, tag string) {
	pids, err := taggedProcesses(tag)
	if err != nil {
		return
	}
	for _, pid := range pids {
		h, err := openHandle(pid, func(st procStat) bool { return st.pgid == pgid && hasTag(pid, tag) })
		if err != nil {
			continue
		}
		h.signal(syscall.SIGKILL)
		h.close()
	}
}

// strays holds every live process carrying tag that is not part of the application kept (0: none): neither in
// its process group nor one of its descendants — an application may start process groups or sessions of its own
// (roslaunch puts every node in a session of its own), and those are its, not strays.
func strays(tag string, keep int) ([]*handle, error) {
	pids, err := taggedProcesses(tag)
	if err != nil {
		return nil, err
	}
	var out []*handle
	for _, pid := range pids {
		h, err := openHandle(pid, func(st procStat) bool {
			return (keep == 0 || st.pgid != keep && !descends(st, keep)) && hasTag(pid, tag)
		})
		if err == nil {
			out = append(out, h)
		}
	}
	return out, nil
}

// ownGroups holds the processes carrying tag that descend from pid but left its process group: process groups
// and sessions an application started of its own, which signals to its group do not reach.
func ownGroups(tag string, pid int) []*handle {
	pids, err := taggedProcesses(tag)
	if err != nil {
		return nil
	}
	var out []*handle
	for _, p := range pids {
		h, err := openHandle(p, func(st procStat) bool { return st.pgid != pid && descends(st, pid) && hasTag(p, tag) })
		if err == nil {
			out = append(out, h)
		}
	}
	return out
}

// descends reports whether the process st describes is a descendant of process pid.
func descends(st procStat, pid int) bool {
	for range 64 { // deeper than any process tree on a device
		if st.ppid == pid {
			return true
		}
		if st.ppid <= 1 {
			return false
		}
		var ok bool
		if st, ok = readStat(st.ppid); !ok {
			return false
		}
	}
	return false
}

// waitNoReap waits until the child pid has exited, leaving it a zombie: its number, and so its process
// group's, stays taken until it is reaped, so the group can be killed safely first.
func waitNoReap(pid int) {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return
		}
	}
}
