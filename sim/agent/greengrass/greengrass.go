// Package greengrass is the agent's Greengrass V1 kind: the device is the core of a Greengrass V1 group, and it
// carries out the group's deployments as the core does — download the group's resources, lay out the group
// version (its functions, its subscriptions as configuration, its resources), start the functions, and report
// the deployment's end, which the service answers as GetDeploymentStatus. The loop that drives these states,
// decides and persists is package agent's.
//
// # The states
//
//	Downloading ─▶ Starting ─▶ Finished (SUCCEEDED)
//	     │             │
//	     ▼             ▼
//	  Failed        Failed (after RollingBack, when the switch had happened)   | Rejected
//
// Downloading changes nothing the core runs: it stages the group version as a version of the device holding
// group.json (the deployment: core, functions, subscriptions, resources), subscriptions.json, one script per
// function (functions/<id>.sh: the function's Executable and ExecArgs), the S3 resources unpacked under
// resources/<DestinationPath>, and, when the group has pinned functions, core/supervise.sh. An Executable that
// is one path under resources/ names a file of the group version the core runs itself; any other Executable is
// a shell command line.
//
// Starting first checks that every function's file is there (GG-FUNCTION-FAILED when not). It then invokes each
// on-demand (not pinned) function once from the staged version — the simulator has no message broker to invoke
// it with, so the deployment's own invocation stands for the first message — and a non-zero exit fails the
// deployment (GG-FUNCTION-FAILED) before the switch, the old group still running. Then it stops the running
// group's functions, switches to the new group version and starts its pinned functions as the application
// (Kind.App): a supervisor that runs each one and starts it again when it exits, as the core keeps a pinned
// function alive. Finished commits it. A bulk deployment's document holds a group deployment per core: each
// core carries out its own.
//
// A ResetDeployment document stages and starts an empty group: the core stops the group's functions and
// keeps none of its versions.
//
// Functions run from the version's directory with the function's environment variables, AWS_IOT_THING_NAME,
// AWS_GREENGRASS_GROUP_ID, GG_FUNCTION_ID and, in the OS family, GG_SUBSCRIPTIONS (the path of
// subscriptions.json). In the in-memory family only trivial scripts run (package agent's SimRunner): an
// Executable such as `exit 3`.
package greengrass

import (
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"time"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	ggwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/greengrass"
)

// Steps an execution reports (statusDetails step).
const (
	StepDownloading = "Downloading"
	StepStarting    = "Starting"
	StepFinished    = "Finished"
)

// Files of a group version on the core.
const (
	groupFile         = "group.json"
	subscriptionsFile = "subscriptions.json"
	superviseFile     = "core/supervise.sh"
)

// DetailStatus is the statusDetails key the core reports its deployment status under at the end (Success,
// Failure), as the service's GetDeploymentStatus tells it.
const DetailStatus = "greengrass-deployment-status"

// Kind carries out Greengrass V1 deployments (documents of kind ggwire.Kind).
type Kind struct{}

var _ agent.Kind = Kind{}
var _ agent.OutcomeDetailer = Kind{}
var _ agent.OutcomeDetailer = (*job)(nil)

// Name implements agent.Kind.
func (Kind) Name() string { return ggwire.Kind }

// Parse implements agent.Kind: the document must validate.
func (Kind) Parse(payload json.RawMessage) (agent.Job, error) {
	var doc ggwire.Document
	if err := json.Unmarshal(payload, &doc); err != nil {
		return nil, fmt.Errorf("greengrass job document: %w", err)
	}
	if err := doc.Validate(); err != nil {
		return nil, err
	}
	return &job{doc: doc}, nil
}

// Refuse implements agent.Kind: the core reports Downloading, then rejects the execution.
func (Kind) Refuse(err error) agent.State { return downloadingState{refuse: err} }

// RollsBack implements agent.Kind: Starting switches to the new group version.
func (Kind) RollsBack(st agent.State) bool {
	_, ok := st.(startingState)
	return ok
}

// DeviceErrorCode implements agent.Kind.
func (Kind) DeviceErrorCode() string { return ggwire.CodeDeviceError }

// OutcomeDetails implements agent.OutcomeDetailer: the deployment status the service will tell.
func (Kind) OutcomeDetails(o agent.Outcome) map[string]string {
	if o.Status == wire.StatusSucceeded {
		return map[string]string{DetailStatus: "Success"}
	}
	return map[string]string{DetailStatus: "Failure"}
}

// OutcomeDetails implements agent.OutcomeDetailer.
func (j *job) OutcomeDetails(o agent.Outcome) map[string]string { return Kind{}.OutcomeDetails(o) }

// App implements agent.Kind: a group version with pinned functions runs their supervisor; one without runs
// nothing.
func (Kind) App(d agent.Device, inst agent.Installed, v agent.Version) (*agent.App, error) {
	if _, err := v.Files.Stat(superviseFile); err != nil {
		return nil, nil
	}
	g, err := Group(v)
	if err != nil {
		return nil, err
	}
	own := map[string]string{"AWS_IOT_THING_NAME": d.Thing, "AWS_GREENGRASS_GROUP_ID": g.GroupID}
	return &agent.App{Version: v, Package: path.Dir(superviseFile), LaunchFile: path.Base(superviseFile),
		Env: agent.Environ(nil, own)}, nil
}

// job is a parsed Greengrass V1 deployment: doc is the core's own, picked (pick) from a bulk deployment's
// document on the device that carries it out.
type job struct {
	doc    ggwire.Document
	picked bool
}

// pick makes the job the group deployment of the device: the document, or its entry in a bulk document. A bulk
// document without one for the device is rejected.
func (j *job) pick(x *agent.Execution) error {
	if j.picked {
		return nil
	}
	d, ok := j.doc.ForThing(x.Device().Thing)
	if !ok {
		return agent.Reject(fmt.Errorf("bulk deployment %s has no group deployment for core %s", j.doc.DeploymentID,
			x.Device().Thing))
	}
	j.doc, j.picked = d, true
	return nil
}

// First implements agent.Job.
func (j *job) First() agent.State { return downloadingState{j: j} }

// Resume implements agent.Job.
func (j *job) Resume(step string) agent.State {
	switch step {
	case StepDownloading:
		return downloadingState{j: j}
	case StepStarting:
		return startingState{j}
	case StepFinished:
		return agent.Finished(StepFinished)
	}
	return nil
}

// record is what the core keeps of an installed group version.
type record struct {
	Deployment   string   `json:"deployment"`
	Type         string   `json:"type"`
	Group        string   `json:"group"`
	GroupVersion string   `json:"groupVersion,omitempty"`
	Functions    []string `json:"functions,omitempty"`
}

// Record implements agent.Job: the group deployment, or, for a bulk deployment the states have not picked from
// in this process (a restart at its end), the bulk deployment.
func (j *job) Record() (json.RawMessage, error) {
	rec := record{Deployment: j.doc.DeploymentID, Type: j.doc.DeploymentType, Group: j.doc.GroupID,
		GroupVersion: j.doc.GroupVersionID}
	if j.doc.DeploymentType != ggwire.TypeReset {
		for _, f := range j.doc.Functions {
			rec.Functions = append(rec.Functions, f.ID)
		}
	}
	return json.Marshal(rec)
}

// Staging implements agent.Job: every S3 resource.
func (j *job) Staging() []string {
	seen := map[string]bool{}
	var out []string
	add := func(rs []ggwire.Resource) {
		for _, r := range rs {
			if r.S3 != nil && !seen[r.ID] {
				seen[r.ID] = true
				out = append(out, "resource."+r.ID)
			}
		}
	}
	add(j.resources())
	for _, thing := range sortedKeys(j.doc.Bulk) {
		add(j.doc.Bulk[thing].Resources)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// resources are the S3 resources the deployment downloads (none for a reset).
func (j *job) resources() []ggwire.Resource {
	if j.doc.DeploymentType == ggwire.TypeReset {
		return nil
	}
	var out []ggwire.Resource
	for _, r := range j.doc.Resources {
		if r.S3 != nil {
			out = append(out, r)
		}
	}
	return out
}

// functions are the functions the deployment runs (none for a reset).
func (j *job) functions() []ggwire.Function {
	if j.doc.DeploymentType == ggwire.TypeReset {
		return nil
	}
	return j.doc.Functions
}

// Group returns what a group version's files on the core say: the deployment it came from.
func Group(v agent.Version) (ggwire.Document, error) {
	raw, err := v.Files.ReadFile(groupFile)
	if err != nil {
		return ggwire.Document{}, fmt.Errorf("version %s is no Greengrass group: %w", v.ID, err)
	}
	var d ggwire.Document
	if err := json.Unmarshal(raw, &d); err != nil {
		return ggwire.Document{}, fmt.Errorf("version %s: %s: %w", v.ID, groupFile, err)
	}
	return d, nil
}

func secs(n int) time.Duration { return time.Duration(n) * time.Second }
