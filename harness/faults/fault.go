package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/artifacts"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// Layer is where a fault acts.
type Layer string

// The layers of DESIGN §4.6.
const (
	LayerDevice Layer = "device"
	LayerLink   Layer = "link"
	LayerCloud  Layer = "cloud"
)

// Fault is one kind of failure. The implementing type's exported, JSON-tagged fields are its parameters; the
// registry decodes a Spec's params into a fresh value, then calls Check.
type Fault interface {
	// Check validates the parameters together with the target selector and the dialect in play (whose step
	// names a fault that strikes at a step takes), before anything is touched.
	Check(sel Selector, d Dialect) error
	// Arm prepares the fault in the world for the selected targets: it verifies the abilities it needs and
	// installs its hooks, but changes no behaviour until Inject.
	Arm(a Arming) (Armed, error)
}

// Armed is a fault prepared in a world. Handle calls its methods in lifecycle order only, one at a time.
type Armed interface {
	// Inject makes the fault take effect (or, with a step, start waiting for its targets to reach it).
	Inject(ctx context.Context) error
	// Recover undoes the effect.
	Recover(ctx context.Context) error
	// Disarm removes every hook Arm installed. It is called once, after Recover when the fault was injected.
	Disarm()
}

// Arming is what a fault is armed with.
type Arming struct {
	// Name is the fault's name, for events and errors.
	Name string
	// World is the environment the fault acts on.
	World World
	// Targets are the selected devices, sorted; empty for cloud faults that act on an API or an object.
	Targets []string
	// Step is the selector's step, when it has one.
	Step string
	// Dialect is the dialect in play, whose step names the fault takes.
	Dialect Dialect
}

// emit records a fault event stamped with the fault's name and the world's time.
func (a Arming) emit(kind event.Kind, device, step, reason string) {
	a.World.Emit(event.Event{Kind: kind, Fault: a.Name, Device: device, Step: step, Reason: reason,
		Time: a.World.Clock().Now()})
}

// World is the environment as faults see it: the fleet's devices and the abilities they have, the service's
// hooks, the run's clock and seed, and the event stream. The harness implements it.
type World interface {
	// Backend names the fleet backend ("inproc", "process", …), for error messages.
	Backend() string
	// Robots returns every robot's name, sorted.
	Robots() []string
	// Device returns a hosted robot.
	Device(name string) (fleet.Device, bool)
	// Clock is the run's clock: fault durations are measured in its time.
	Clock() clock.Clock
	// Seed is the run's seed.
	Seed() uint64
	// Emit records an event in the run's stream.
	Emit(e event.Event)
	// WrapExecutors adds a layer around the device's agent executors until remove is called. Layers compose:
	// each fault's wrap sees the executors as the layers added before it left them. It fails with an
	// *UnsupportedError when the device is not a fleet.ExecutorHook.
	WrapExecutors(device string, wrap func(agent.Executors) agent.Executors) (remove func(), err error)
	// ShapeLink adds l to the device's link to the service until remove is called. The shapes of several
	// faults combine: the link is partitioned if any partitions it, latencies add, drop rates compound and the
	// lowest bandwidth holds. It fails with an *UnsupportedError when the device is not a fleet.Linker.
	ShapeLink(device string, l fleet.Link) (remove func(), err error)
	// WatchAgents calls fn with every agent event of every device until stop is called. Calls are serialized
	// per device; fn must return quickly.
	WatchAgents(fn func(device string, e agent.Event)) (stop func())
	// InterceptHTTP consults h about every request to the service's API listener (the RoboMaker API and the
	// device API), until remove is called.
	InterceptHTTP(h HTTPHook) (remove func())
	// InterceptArtifacts consults h about every request to the artifact store, from the S3 API and from device
	// downloads alike, until remove is called.
	InterceptArtifacts(h ArtifactHook) (remove func())
	// DevicesOverHTTP reports why the devices' requests do not reach the service over HTTP — an in-memory
	// transport calls it in process — or nil. Faults that act on device requests at the service (the device
	// API's HTTP middleware, the artifact store's intercept) need them to.
	DevicesOverHTTP() error
	// StopService drops the running service's state (it stops listening, its in-memory state is gone); its
	// data stays on disk. It fails when the service cannot be restarted on its data (an in-memory store) or
	// the fleet cannot follow it (an in-memory transport).
	StopService(ctx context.Context) error
	// StartService starts the service again on its data, on the same ports. It is a no-op when running.
	StartService(ctx context.Context) error
	// CanRestartService reports why the service could not be restarted, or nil.
	CanRestartService() error
}

// API names one of the service's APIs as the cloud faults address them.
type API string

// The APIs.
const (
	// APIRoboMaker is the RoboMaker control plane (POST /<operation>).
	APIRoboMaker API = "robomaker"
	// APIDevice is the IoT Jobs data plane devices use (/things/{thing}/…).
	APIDevice API = "device"
	// APIArtifacts is the artifact store: the S3 API and device downloads.
	APIArtifacts API = "artifacts"
	// APIGreengrassV2 is the Greengrass V2 API, ResolveComponentCandidates (what core devices call) included.
	APIGreengrassV2 API = "greengrassv2"
)

// Call is one HTTP request to the service's API listener, as an HTTPHook sees it.
type Call struct {
	// API is APIRoboMaker or APIDevice.
	API API
	// Operation is the operation's name: "CreateDeploymentJob", or for the device API
	// "GetPendingJobExecutions", "DescribeJobExecution", "StartNextPendingJobExecution",
	// "UpdateJobExecution" and "Notify".
	Operation string
	// Thing is the device named in a device API path.
	Thing string
}

// Reply is an error answer an HTTPHook puts in place of the service's.
type Reply struct {
	// Status and Code are the HTTP status and the error code (X-Amzn-ErrorType and the body's __type).
	Status int
	Code   string
	// Message is the error message.
	Message string
	// After lets the request reach the service and replaces only its answer: the work is done and the
	// caller never learns it, as when a response is lost.
	After bool
}

// HTTPHook decides about one request: nil lets it through unchanged.
type HTTPHook func(c Call) *Reply

// ArtifactHook decides about one artifact store request, as artifacts.Options.Intercept does: nil lets it
// through unchanged.
type ArtifactHook func(op artifacts.Op, bucket, key string) *artifacts.Fault

// Spec is a fault as data: the entry of a fault plan.
type Spec struct {
	// Fault is the registered name, e.g. "no-response".
	Fault string `json:"fault"`
	// Params are the fault's parameters, decoded strictly (an unknown member is an error).
	Params json.RawMessage `json:"params,omitempty"`
	// Target selects the devices and the step.
	Target Selector `json:"target,omitzero"`
}

// Duration is a time.Duration that reads and writes JSON as Go's duration text ("90s", "1m30s"); a JSON number
// is read as seconds.
type Duration time.Duration

// MarshalJSON writes the duration as text.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "90s" or 90.
func (d *Duration) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: want Go duration text such as \"90s\" or \"2m\"", s)
		}
		*d = Duration(v)
		return nil
	}
	secs, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("duration %s: want text such as \"90s\" or a number of seconds", b)
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Errors callers decide on.
var (
	// ErrLifecycle is a lifecycle call out of order (see the package documentation's diagram).
	ErrLifecycle = errors.New("fault lifecycle")
	// ErrUnsupported is a fault the backend cannot do; the error is an *UnsupportedError.
	ErrUnsupported = errors.New("not supported by the fleet backend")
	// ErrUnknown is a fault name the registry does not have.
	ErrUnknown = errors.New("unknown fault")
	// ErrParams is a fault's params the registry refuses: a member the fault does not have, a value it
	// cannot take.
	ErrParams = errors.New("fault params")
	// ErrTarget is a target selector the registry refuses for the fault.
	ErrTarget = errors.New("fault target")
)

// UnsupportedError is a fault refused at arm time because the backend lacks an ability.
type UnsupportedError struct {
	// Fault is the fault's name; Backend the fleet backend's; Device the device that lacks Ability.
	Fault, Backend, Device string
	// Ability is what is missing, e.g. "fleet.Freezer".
	Ability string
}

func (e *UnsupportedError) Error() string {
	who := "backend " + e.Backend
	if e.Device != "" {
		who += " device " + e.Device
	}
	return fmt.Sprintf("fault %s: %s cannot do it: it lacks %s", e.Fault, who, e.Ability)
}

// Is makes errors.Is(err, ErrUnsupported) true.
func (e *UnsupportedError) Is(target error) bool { return target == ErrUnsupported }

// CombineLinks is the link of several shapes in force at once: partitioned if any partitions it, latencies
// added, drop rates compounded (a request survives each in turn), the lowest bandwidth, the first seed.
func CombineLinks(ls ...fleet.Link) fleet.Link {
	var out fleet.Link
	survive := 1.0
	for i, l := range ls {
		out.Partition = out.Partition || l.Partition
		out.Latency += l.Latency
		survive *= 1 - l.DropRate
		if l.BytesPerSecond > 0 && (out.BytesPerSecond == 0 || l.BytesPerSecond < out.BytesPerSecond) {
			out.BytesPerSecond = l.BytesPerSecond
		}
		if i == 0 {
			out.Seed = l.Seed
		}
	}
	out.DropRate = 1 - survive
	return out
}

// device returns the named target as T, or an *UnsupportedError naming the ability.
func device[T any](a Arming, name, ability string) (T, error) {
	var zero T
	d, ok := a.World.Device(name)
	if !ok {
		return zero, fmt.Errorf("fault %s: no device %s in the fleet", a.Name, name)
	}
	t, ok := d.(T)
	if !ok {
		return zero, &UnsupportedError{Fault: a.Name, Backend: a.World.Backend(), Device: name, Ability: ability}
	}
	return t, nil
}
