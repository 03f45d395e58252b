// Package fleet hosts device agents for the harness: in-process (package inproc: goroutines, thousands per
// process), as OS processes (package process: one fleetlab-agent per device), in containers (package container:
// one fleetlab-agent container per device, on one or several Docker engines), and on the boards of a lab rig
// (package rigs/righost: one fleetlab-agent per board, speaking over its serial console). Every backend gives
// the same Fleet and Device interfaces; what a backend can do to its devices beyond that — crash one, freeze
// one, shape its link — are optional abilities, interfaces found by type assertion, so a fault that needs an
// ability the backend lacks is refused when it is armed instead of silently doing nothing.
//
//	ability        inproc                             process                    container                  rig board
//	Crasher        executors fail, app killed         SIGKILL to the session     docker kill, docker start  GPIO power line (boards with one)
//	Freezer        every executor call waits          SIGSTOP/SIGCONT            docker pause/unpause       —
//	ExecutorHook   a swappable layer under agent Wrap —  (another process)       —                          —
//	StepHooker     —  (ExecutorHook does it)          —                          its link proxy             its bridge's link proxy
//	ScriptFailer   —  (ExecutorHook does it)          —                          the script file replaced   —
//	Linker         link proxy (HTTP) or the adapter   link proxy                 network disconnect + proxy its bridge's link proxy
//	Limiter        —                                  —                          docker update              —
//	ClockSkewer    the agent's clock reads ahead      —                          —                          —
//	Resetter       —                                  —                          —                          GPIO reset line or DTR/RTS
//	SerialLine     —                                  —                          —                          its console port
//
// A backend hosts agents only: it starts them against an endpoint (and, in the test's process, an in-process
// way in), stops them, and offers its abilities. Registering its devices with the service — as RoboMaker robots,
// Greengrass core devices, … — is the business of the harness's dialect driver, not of the host.
package fleet

import (
	"context"
	"errors"
	"time"

	"github.com/fleetlab/fleetlab/sim/agent"
)

// Device is one hosted robot.
type Device interface {
	// Name is the robot's name, which is also its thing name on the device API.
	Name() string
	// Architecture is the device's GOARCH: amd64, arm64 or arm.
	Architecture() string
}

// Fleet is the devices one backend hosts.
type Fleet interface {
	// Devices returns the devices in a stable order (by name).
	Devices() []Device
	// Device returns the named device.
	Device(name string) (Device, bool)
	// Close stops every agent and releases everything the backend started: goroutines, processes, listeners,
	// directories it created. It is safe to call more than once.
	Close() error
}

// Crasher is a device that can be killed abruptly — no cleanup, as a power cut or SIGKILL — and started again
// on the same on-device storage.
type Crasher interface {
	Device
	// Crash cuts the device's power: the agent and everything it started stop at once; storage is kept. Crashing
	// a device that is not running is an error.
	Crash() error
	// Restart boots a crashed device on its storage: the agent relaunches the committed application and
	// resumes the execution it was in. Restarting a running device is an error.
	Restart(ctx context.Context) error
	// Running reports whether the agent is running (false between Crash and Restart).
	Running() bool
}

// Freezer is a device that can stop answering anything at all (a hung board, a paused process or container)
// and later carry on exactly where it was.
type Freezer interface {
	Device
	// Freeze stops the device where it is; freezing a frozen or crashed device is an error.
	Freeze() error
	// Thaw lets a frozen device carry on; thawing a device that is not frozen is an error. A crash also ends
	// a freeze.
	Thaw() error
}

// ExecutorHook is a device whose agent executors a fault can wrap while it runs. The wrap applies to every call
// made after SetExecutorWrap returns; nil removes it.
type ExecutorHook interface {
	Device
	SetExecutorWrap(wrap func(agent.Executors) agent.Executors)
}

// Linker is a device whose link to the service can be shaped: cut, slowed, made lossy, throttled.
type Linker interface {
	Device
	SetLink(l Link)
}

// CanShapeLink reports why d's link cannot be shaped, or nil. A Linker may have no link to shape (the in-process
// host's direct path speaks straight to the service) and say so with a CanShapeLink() error method; a fault
// world asks before it shapes, so that such a link fault is refused, never silently not done.
func CanShapeLink(d Device) error {
	if r, ok := d.(interface{ CanShapeLink() error }); ok {
		return r.CanShapeLink()
	}
	return nil
}

// Link is the state of a device's link to the service. The zero value is a healthy link. Durations and rates are
// measured on the device's clock. Package link implements it, for every backend alike.
type Link struct {
	// Partition: no request reaches the service and no answer comes back (connections fail at once, and open
	// ones — the notify channel, a download — are cut when the partition starts).
	Partition bool
	// Latency is added to every request, before it is sent.
	Latency time.Duration
	// DropRate is the fraction of requests lost (0..1): the request fails as a reset connection would.
	DropRate float64
	// BytesPerSecond throttles response bodies (downloads); zero is unthrottled.
	BytesPerSecond int64
	// Seed decides which requests are dropped, so runs repeat: every SetLink starts the drop decisions afresh
	// from it.
	Seed uint64
}

// StepHooker is a device whose step reports can be held on their way back from the service: the way to act on a
// device exactly at a step when its agent's executors cannot be wrapped (the agent runs in a container).
type StepHooker interface {
	Device
	// HookSteps calls fn with every step the device reports in progress, once the service has acknowledged the
	// report and before the answer reaches the device, so the device goes no further until fn returns. ctx
	// ends when the device gives up on the report. An error from fn loses the answer (the device reports the
	// step again). The returned function removes fn.
	HookSteps(fn func(ctx context.Context, job, step string) error) (remove func())
}

// ScriptFailer is a device on which a script of the deployment in progress can be made to fail for real: its
// file on the device is replaced by a script that exits with a code, before the agent runs it.
type ScriptFailer interface {
	Device
	// FailScript replaces the file the job runs in step (ExecutingPreLaunch: the pre-launch file;
	// ExecutingPostLaunch: the post-launch file) by a script that exits code. It must be called after the
	// bundle is unpacked and before the step runs the file (in a StepHooker's hook of that step). A job whose
	// launch config names no file for the step has nothing to fail: the error wraps ErrNoScript.
	FailScript(ctx context.Context, job, step string, code int) error
}

// ErrNoScript is FailScript's error for a job that runs no file in the step.
var ErrNoScript = errors.New("the job runs no such script")

// Limiter is a device whose compute can be cut down, as a slower board or a starved host would have it.
type Limiter interface {
	Device
	// Limit caps the device's CPU and memory from now on; the zero Limits gives the device back what it had.
	Limit(l Limits) error
}

// Limits are a device's CPU and memory.
type Limits struct {
	// CPUs is the CPU time the device gets, in CPUs (0.5 is half of one); zero leaves it as it is.
	CPUs float64
	// MemoryBytes caps the device's memory; zero leaves it as it is. Below what the device uses, its processes
	// are reclaimed from or killed by the kernel, as on a board that runs out of memory.
	MemoryBytes int64
}

// ClockSkewer is a device whose clock can be set off the service's.
type ClockSkewer interface {
	Device
	SetClockSkew(d time.Duration)
}

// EventFunc receives every agent event of every device of a fleet, tagged with the device's name. Calls for one
// device are serialized; it must return quickly.
type EventFunc func(device string, e agent.Event)

// Resetter is a device with a reset line: pulsing it reboots the device at once, on its storage, as a power cut
// does, but the power stays on.
type Resetter interface {
	Device
	// Reset pulses the reset line; the device boots again by itself.
	Reset(ctx context.Context) error
}

// SerialLine is a device whose agent speaks to the service over a serial line that can be made noisy or cut.
type SerialLine interface {
	Device
	// SetSerialNoise makes each byte on the line change, both ways, with probability rate, the bytes chosen by
	// seed; 0 ends it.
	SetSerialNoise(rate float64, seed uint64)
	// SetSerialUnplugged cuts the line (nothing passes either way) or plugs it back.
	SetSerialUnplugged(unplugged bool)
	// SerialStats returns the line's counts so far.
	SerialStats() SerialStats
}

// SerialStats are the counts of a device's serial line, on the lab's side.
type SerialStats struct {
	// BytesChanged counts the bytes noise changed. FramesSent, FramesResent and FramesCorrupt count the frames
	// the lab side wrote, wrote again, and received damaged.
	BytesChanged, FramesSent, FramesResent, FramesCorrupt uint64
}
