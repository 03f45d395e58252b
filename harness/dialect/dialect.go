// Package dialect is the contract between the harness and one deployment API dialect (RoboMaker, Greengrass V2,
// AppConfig, …): how an environment's devices are registered, how a deployment is made, described and named,
// which steps a device goes through, and which parts of a scenario spec the dialect must check. The harness
// owns everything the dialects share — the service, the fleet, the events, the faults, the clock, the seed —
// and hands a dialect's Session a Host to reach them.
//
// A dialect is its own package (harness/robomaker) implementing Driver, plus one line in the harness's list of
// drivers. This package imports no dialect and no AWS SDK.
package dialect

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// Driver is one dialect. Its methods other than Open describe the dialect and are safe to call without an
// environment (a spec is validated before any environment starts).
type Driver interface {
	// Name names the dialect in specs and messages ("robomaker").
	Name() string
	// Steps are the dialect's step names, as faults take them.
	Steps() faults.Dialect
	// Statuses are the dialect's status names, as a spec expects them.
	Statuses() Statuses
	// CheckJob reports what the dialect refuses in a spec's job, each problem with its path under "job".
	CheckJob(j JobSpec) []Problem
	// Config is the dialect's deployment configuration for a spec's job, as Session.Deploy takes it.
	Config(j JobSpec) any
	// Open starts the dialect's side of an environment: its clients of the service, over the host's transport.
	// It is called once the service runs, within the environment's world on virtual time.
	Open(h Host) (Session, error)
}

// Session is a dialect in one environment. Its methods are called within the environment's world on virtual
// time (Host.Do), and only from the environment's own calls.
type Session interface {
	// Register makes devs targets of the environment's deployments. It may be called again with more devices
	// (late devices) or after a service restart; devices already registered are left alone.
	Register(ctx context.Context, devs []fleet.Device) error
	// Deploy makes an application of the fixture bundle for the architectures archs (the dialect's default
	// when empty) and deploys it to the registered devices with config — the dialect's own configuration type,
	// or nil for its defaults. It returns the job: what Describe and Cancel take.
	Deploy(ctx context.Context, bundle string, archs []string, config any) (job string, err error)
	// Describe returns the job as the dialect's API tells it; the timelines are left to the harness.
	Describe(ctx context.Context, job string) (Job, error)
	// Cancel cancels the job.
	Cancel(ctx context.Context, job string) error
}

// Verifier is an optional ability of a Session: once a scenario's job has settled, Verify checks what the job
// says of each robot against the device itself and the dialect's other views of it, and returns every
// difference (a robot reported good that does not run what it was given is the worst). It is called within the
// world on virtual time.
type Verifier interface {
	Verify(ctx context.Context, j Job) []string
}

// BulkRegisterer is a Session that can also register devices in one update inside the service's process,
// instead of a call or two per device through the SDK: for benchmarks of very large fleets, where the wire's
// registration would dominate the setup. It leaves the service as Register does.
type BulkRegisterer interface {
	RegisterBulk(ctx context.Context, devs []fleet.Device) error
}

// InProcessService is a Host whose service runs in the caller's process: it hands a session the service's own
// value of a dialect (the awsapi.Dialect the service's list of dialects built), for what a dialect offers in
// process beyond its wire API.
type InProcessService interface {
	ServiceDialect(name string) (any, bool)
}

// Host is what an environment gives a dialect's session: the service's address and transports, the run's
// clock and events, and the environment's ways to act and fail.
type Host interface {
	// Endpoint is the URL of the service's APIs; it stays the same across service restarts.
	Endpoint() string
	// Transport carries the session's own calls to the service (from within the world on virtual time);
	// PublicTransport those of the clients a session hands out, callable from anywhere.
	Transport() http.RoundTripper
	PublicTransport() http.RoundTripper
	// Clock is the run's clock.
	Clock() clock.Clock
	// Do runs f as the environment's calls run: within the world on virtual time.
	Do(f func())
	// CallContext is the context of one call to the service, bounded as the environment bounds its calls.
	CallContext() (context.Context, context.CancelFunc)
	// Device returns a device the environment hosts, by name.
	Device(name string) (fleet.Device, bool)
	// PutBundle stores the fixture bundle, PutScript the fixture script, in the artifact store.
	PutBundle(name string) Object
	PutScript(name string) Object
	// Logf records a harness event in the run's stream.
	Logf(format string, args ...any)
	// Fatalf fails the test (a product or usage failure); InfraFatalf fails it as an infrastructure failure.
	Fatalf(format string, args ...any)
	InfraFatalf(format string, args ...any)
}

// Object is an object in the artifact store.
type Object struct {
	Bucket, Key string
	// ETag is the object's ETag, quoted as S3 sends it.
	ETag string
}

// Statuses are a dialect's status names, as specs expect them and the harness checks them.
type Statuses struct {
	// Final are the statuses a job ends in; Failed is the one that carries a failure code.
	Final  []string
	Failed string
	// Device are the statuses a device's deployment can be in; DeviceFailed those that carry a failure code.
	Device       []string
	DeviceFailed []string
}

// IsDeviceFailed reports whether status is one that carries a failure code.
func (s Statuses) IsDeviceFailed(status string) bool {
	for _, f := range s.DeviceFailed {
		if f == status {
			return true
		}
	}
	return false
}

// JobSpec is a scenario's deployment job, as data. The dialect decides what each member means and which values
// it takes (Driver.CheckJob).
type JobSpec struct {
	// Bundle is the fixtures/bundles bundle deployed (default "hello").
	Bundle string `json:"bundle,omitempty"`
	// Architectures are the GOARCH names (amd64, arm64, arm) the application has a bundle for (default the
	// dialect's).
	Architectures []string `json:"architectures,omitempty"`
	// Concurrency is the percentage of devices deploying at once; FailureThreshold the percentage of failed
	// devices that fails the job.
	Concurrency      int32 `json:"concurrency,omitempty"`
	FailureThreshold int32 `json:"failureThreshold,omitempty"`
	// Timeout is each device's deployment timeout (policy time).
	Timeout faults.Duration `json:"timeout,omitempty"`
	// DownloadCondition names a fixtures/bundles script.
	DownloadCondition string `json:"downloadCondition,omitempty"`
	// Options are the dialect's own deployment options, as JSON its driver decodes (strictly) and checks
	// (Driver.CheckJob): what one dialect has and the others have not (Greengrass V2's components and
	// rollout rates).
	Options json.RawMessage `json:"options,omitempty"`
}

// Problem is one thing a dialect refuses in a spec: Path is where it is ("job.timeout"), Err what is wrong.
type Problem struct {
	Path string
	Err  error
}

// Job is a deployment job as its dialect's API describes it, with the run's events about it.
type Job struct {
	ARN, ID       string
	Status        string
	FailureCode   string
	FailureReason string
	// Robots are the job's devices, by name.
	Robots []Robot
	// Timeline is every event of the job: its deployment's and executions', its devices' agent events, and
	// every fault event.
	Timeline []event.Event
}

// Robot is one device's deployment in a job.
type Robot struct {
	Name          string
	Status        string
	FailureCode   string
	FailureReason string
	// Step is the last step the device reached: the job's progress detail, or, when the job gives none (a
	// device that timed out), the last step its events report.
	Step string
	// Timeline is the job's timeline restricted to this device (and the faults).
	Timeline []event.Event
}

// Robot returns the named device of the job.
func (j Job) Robot(name string) (Robot, bool) {
	for _, r := range j.Robots {
		if r.Name == name {
			return r, true
		}
	}
	return Robot{}, false
}

// RobotNames returns the names of the job's devices, sorted.
func (j Job) RobotNames() []string {
	names := make([]string, len(j.Robots))
	for i, r := range j.Robots {
		names[i] = r.Name
	}
	return names
}

// Counts returns how many of the job's devices are in each status.
func (j Job) Counts() map[string]int {
	m := map[string]int{}
	for _, r := range j.Robots {
		m[r.Status]++
	}
	return m
}

// String is a one-line summary: the job's status and each device's.
func (j Job) String() string {
	var b strings.Builder
	b.WriteString("job " + j.ID + " " + j.Status)
	if j.FailureCode != "" {
		b.WriteString("/" + j.FailureCode)
	}
	for _, r := range j.Robots {
		b.WriteString("; " + r.String())
	}
	return b.String()
}

// String is "name status/code@step".
func (r Robot) String() string {
	s := r.Name + " " + r.Status
	if r.FailureCode != "" {
		s += "/" + r.FailureCode
	}
	if r.Step != "" {
		s += "@" + r.Step
	}
	return s
}
