// Package greengrassv2 is the agent's Greengrass V2 kind: it carries out Greengrass V2 deployments on a core
// device as the nucleus does — resolve the deployment's components and their dependencies to versions with
// recipes, download and verify their artifacts, stop the previous component set, apply each component's
// configuration and run its lifecycle (install, then startup) in start order — reporting the nucleus's
// deployment status and error codes. The loop that drives these states, decides and persists is package
// agent's.
//
// # The states
//
//	Resolving ─▶ Downloading ─▶ Installing ─▶ Starting ─▶ Finished (SUCCEEDED, SUCCESSFUL)
//	    │             │              │            │
//	    │             │              └────┬───────┘
//	    │             │   ROLLBACK: RollingBack ─▶ Failed (FAILED_ROLLBACK_COMPLETE)
//	    │             │   DO_NOTHING:              Failed (FAILED_ROLLBACK_NOT_REQUESTED)
//	    ▼             ▼
//	 Failed (FAILED_NO_STATE_CHANGE) | Rejected (REJECTED)
//
// Resolving and Downloading change nothing the device runs: the component set is staged as a version of the
// device (package agent's Versions), holding every component's recipe, artifacts, lifecycle scripts and
// effective configuration. Installing runs the shutdown steps of the running set, stops its run steps,
// switches the active version to the new set (the switch) and runs the install steps; Starting runs the
// startup steps, then starts the run steps (Kind.App). A failure from the switch on restores the previous
// set — its components, their configuration, which live in its version, and its run steps — when the
// deployment's failureHandlingPolicy is ROLLBACK, and keeps the new set applied with DO_NOTHING. A rollback
// that cannot restore the previous set reports FAILED_UNABLE_TO_ROLLBACK.
//
// Every state is saved before it changes the device, so a power cut resumes at the state it cut: each redoes
// its work (lifecycle steps run again, as the nucleus runs them again after a restart; a set staged before the
// cut is not downloaded again), or, cut while rolling back, restores the previous set. A set is committed
// (reported in sync) only by Finished.
//
// # What is reported
//
// Every state reports its step (statusDetails step); the end reports, beside the loop's step, failureCode and
// reason, the nucleus's detailed-deployment-status, deployment-failure-cause, and the errorStack and
// errorTypes of its failure (comma-separated, from generic to specific).
//
// # On the device
//
// A component set's version holds, per component, components/<name>/recipe.json, config.json (the
// effective configuration: Configure over the running set's, the recipe's defaults and the deployment's
// configurationUpdate), artifacts/<file> and one executable <step>.sh per lifecycle step. Scripts run from
// the version's directory with the recipe's Setenv, AWS_IOT_THING_NAME and GG_COMPONENT_CONFIG (the
// config.json path, OS family); in their text {artifacts:path}, {iot:thingName} and {configuration:/pointer}
// are replaced as the nucleus replaces them.
//
// Run steps are the set's application (Kind.App): a supervisor script the agent's launcher runs, which runs
// each component's run step in start order, runs one that fails again, and marks it BROKEN after
// MaxStepErrors errors in a row (StateDir).
//
// In the in-memory family, whose launcher runs nothing, Starting runs each component's run step once through
// the script runner before the launch (simulateRuns): a run that fails MaxStepErrors times is BROKEN and fails
// the deployment, as the nucleus fails a deployment whose component breaks before it is RUNNING.
//
// Between executions the kind is the nucleus's fleet status service (Watch): in the OS family it looks at
// the running set's lifecycle states every StatusInterval and publishes them to the cloud when they change, so
// a component that breaks in its run after its deployment ended shows BROKEN, its core device UNHEALTHY.
//
// Deviations from the nucleus: in the OS family a deployment does not wait for its components' run steps, so
// a component that goes BROKEN in its run does not fail the deployment that started it (it shows in
// StateDir and reaches the cloud through the fleet status); in the in-memory family every run step runs to
// its end within its deployment, so nothing breaks after it; the fleet status is looked at on a period rather
// than on every change, and is not sent on a period of its own when nothing changed; a run step's Timeout,
// the bootstrap and recover steps, Skipif, RequiresPrivilege, an artifact's Unarchive and Permission are not
// used (artifacts are kept executable); GG_COMPONENT_CONFIG is the agent's own, for scripts to read
// their whole configuration. Resolution is the nucleus's (ResolveComponentCandidates, round after round, until
// the set settles: resolveSet), but sends every candidate of a round in one call where the nucleus sends one
// call per component.
package greengrassv2

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	ggwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/greengrassv2"
)

// Steps an execution reports (statusDetails step).
const (
	StepResolving   = "Resolving"
	StepDownloading = "Downloading"
	StepInstalling  = "Installing"
	StepStarting    = "Starting"
	StepFinished    = "Finished"
)

// The nucleus's detailed-deployment-status values (DeploymentResult.DeploymentStatus).
const (
	StatusSuccessful                 = "SUCCESSFUL"
	StatusFailedNoStateChange        = "FAILED_NO_STATE_CHANGE"
	StatusFailedRollbackNotRequested = "FAILED_ROLLBACK_NOT_REQUESTED"
	StatusFailedRollbackComplete     = "FAILED_ROLLBACK_COMPLETE"
	StatusFailedUnableToRollback     = "FAILED_UNABLE_TO_ROLLBACK"
	StatusRejected                   = "REJECTED"
)

// statusDetails keys the nucleus reports (DeploymentService).
const (
	DetailDeploymentStatus = "detailed-deployment-status"
	DetailFailureCause     = "deployment-failure-cause"
	DetailErrorStack       = "deployment-error-stack"
	DetailErrorTypes       = "deployment-error-types"
	// DetailPlatformOS and DetailPlatformArchitecture are the device's platform (Platform), which the nucleus
	// tells the cloud in its status updates and GetCoreDevice shows; the kind reports them with every outcome.
	DetailPlatformOS           = "platform-os"
	DetailPlatformArchitecture = "platform-architecture"
)

// Failure codes (the nucleus's DeploymentErrorCode names), reported as failureCode and as the last element of
// the error stack.
const (
	// CodeNoAvailableComponentVersion: a component of the deployment has no version at all.
	CodeNoAvailableComponentVersion = "NO_AVAILABLE_COMPONENT_VERSION"
	// CodeVersionRequirementsNotMet: no version of a component satisfies what its dependents require.
	CodeVersionRequirementsNotMet = "COMPONENT_VERSION_REQUIREMENTS_NOT_MET"
	// CodeRecipeError: a recipe that has no manifest for the device or a dependency cycle.
	CodeRecipeError = "COMPONENT_RECIPE_PARSE_ERROR"
	// CodeArtifactChecksumMismatch: an artifact's SHA-256 is not the recipe's Digest.
	CodeArtifactChecksumMismatch = "ARTIFACT_CHECKSUM_MISMATCH"
	// CodeArtifactNotFound: the artifact store does not serve an artifact.
	CodeArtifactNotFound = "S3_RESOURCE_NOT_FOUND"
	// CodeComponentBroken: a lifecycle step of a component failed; the component is BROKEN.
	CodeComponentBroken = "COMPONENT_BROKEN"
	// CodeDiskSpaceCritical: the device's storage is full (ENOSPC) while it downloads an artifact.
	CodeDiskSpaceCritical = "DISK_SPACE_CRITICAL"
	// CodeDeviceError: any other device-side error (disk, permissions, a script the family cannot run).
	CodeDeviceError = "DEPLOYMENT_FAILURE"
	// CodeResolverMissing: the agent was given no Resolver, so it cannot resolve components.
	CodeResolverMissing = "NUCLEUS_MISSING_REQUIRED_CAPABILITIES"
)

// failureInfo is, per failure code, the error stack under DEPLOYMENT_FAILURE and the error types.
var failureInfo = map[string]struct{ stack, types []string }{
	CodeNoAvailableComponentVersion: {[]string{"NO_AVAILABLE_COMPONENT_VERSION"}, []string{"DEPENDENCY_ERROR"}},
	CodeVersionRequirementsNotMet:   {[]string{"COMPONENT_VERSION_REQUIREMENTS_NOT_MET"}, []string{"DEPENDENCY_ERROR"}},
	CodeRecipeError:                 {[]string{"COMPONENT_RECIPE_PARSE_ERROR"}, []string{"COMPONENT_RECIPE_ERROR"}},
	CodeArtifactChecksumMismatch: {[]string{"ARTIFACT_DOWNLOAD_ERROR", "ARTIFACT_CHECKSUM_MISMATCH"},
		[]string{"COMPONENT_RECIPE_ERROR"}},
	CodeArtifactNotFound: {[]string{"ARTIFACT_DOWNLOAD_ERROR", "S3_RESOURCE_NOT_FOUND"}, []string{"REQUEST_ERROR"}},
	CodeComponentBroken:  {[]string{"COMPONENT_UPDATE_ERROR", "COMPONENT_BROKEN"}, []string{"USER_COMPONENT_ERROR"}},
	CodeDiskSpaceCritical: {[]string{"ARTIFACT_DOWNLOAD_ERROR", "IO_ERROR", "DISK_SPACE_CRITICAL"},
		[]string{"DEVICE_ERROR"}},
	CodeDeviceError:     {nil, []string{"DEVICE_ERROR"}},
	CodeResolverMissing: {[]string{"NUCLEUS_MISSING_REQUIRED_CAPABILITIES"}, []string{"NUCLEUS_ERROR"}},
}

// Resolver is the cloud's ResolveComponentCandidates as the nucleus calls it: for each candidate, the recipe of
// the version a device of platform should run — the candidate's Version while it exists, runs on the platform
// and satisfies every requirement, else the highest that does — one recipe per candidate. A candidate with no
// such version fails the whole call with a *ggwire.ConflictError naming it (Known false: the component has no
// version on the platform at all); any other error is the cloud's (a transient one is retried by the loop).
type Resolver interface {
	Resolve(ctx context.Context, platform map[string]string, candidates []Candidate) ([]*ggwire.Recipe, error)
}

// Kind carries out Greengrass V2 deployments (documents of kind ggwire.Kind).
type Kind struct {
	// Resolver resolves the deployments' components. Nil: the cloud's, through the agent's transport
	// (CloudResolver over Execution.APICaller); a transport without that ability (the in-memory one) fails every
	// deployment with CodeResolverMissing.
	Resolver Resolver
	// StatusInterval is how often the kind looks at its components' lifecycle states between executions
	// (Watch). Default StatusCheckInterval.
	StatusInterval time.Duration
}

var _ agent.Kind = Kind{}
var _ agent.OutcomeDetailer = (*job)(nil)
var _ agent.OutcomeDetailer = Kind{}

// OutcomeDetails implements agent.OutcomeDetailer for a document the kind refused: REJECTED, as the nucleus
// reports it.
func (k Kind) OutcomeDetails(o agent.Outcome) map[string]string {
	return (&job{doc: ggwire.Document{}.WithDefaults()}).OutcomeDetails(o)
}

// Name implements agent.Kind.
func (Kind) Name() string { return ggwire.Kind }

// Parse implements agent.Kind: the document must validate (ggwire.Document.Validate).
func (k Kind) Parse(payload json.RawMessage) (agent.Job, error) {
	var doc ggwire.Document
	if err := json.Unmarshal(payload, &doc); err != nil {
		return nil, fmt.Errorf("greengrassv2 job document: %w", err)
	}
	if err := doc.Validate(); err != nil {
		return nil, err
	}
	return &job{doc: doc.WithDefaults(), resolver: k.Resolver}, nil
}

// Refuse implements agent.Kind: the device reports Resolving, then rejects the execution.
func (Kind) Refuse(err error) agent.State { return resolvingState{refuse: err} }

// RollsBack implements agent.Kind: Installing and Starting come after the switch; they roll back unless the
// deployment's failureHandlingPolicy is DO_NOTHING.
func (Kind) RollsBack(st agent.State) bool {
	switch s := st.(type) {
	case installingState:
		return s.j.rollsBack()
	case startingState:
		return s.j.rollsBack()
	}
	return false
}

// DeviceErrorCode implements agent.Kind.
func (Kind) DeviceErrorCode() string { return CodeDeviceError }

// App implements agent.Kind: a component set whose components have run steps runs their supervisor
// (nucleus/supervise.sh), with GG_STATE_DIR the directory of its components' lifecycle states
// (LifecycleState); a set without runs runs nothing.
func (Kind) App(d agent.Device, inst agent.Installed, v agent.Version) (*agent.App, error) {
	if _, err := v.Files.Stat(superviseFile); err != nil {
		return nil, nil
	}
	own := map[string]string{"AWS_IOT_THING_NAME": d.Thing}
	if d.DataDir != "" {
		own["GG_STATE_DIR"] = StateDir(d)
	}
	return &agent.App{Version: v, Package: path.Dir(superviseFile), LaunchFile: path.Base(superviseFile),
		Env: agent.Environ(nil, own)}, nil
}

// StateDir is the directory of the lifecycle states of a device's running components: a file per component
// holding RUNNING, ERRORED, BROKEN or FINISHED (OS family; "" in the in-memory family).
func StateDir(d agent.Device) string {
	if d.DataDir == "" {
		return ""
	}
	return filepath.Join(d.DataDir, "greengrass", "components")
}

// job is a parsed Greengrass V2 deployment.
type job struct {
	doc      ggwire.Document
	resolver Resolver
}

func (j *job) rollsBack() bool { return j.doc.FailureHandlingPolicy != ggwire.FailureDoNothing }

// First implements agent.Job.
func (j *job) First() agent.State { return resolvingState{j: j} }

// Resume implements agent.Job.
func (j *job) Resume(step string) agent.State {
	switch step {
	case StepResolving:
		return resolvingState{j: j}
	case StepDownloading:
		return downloadingState{j}
	case StepInstalling:
		return installingState{j}
	case StepStarting:
		return startingState{j}
	case StepFinished:
		return agent.Finished(StepFinished)
	}
	return nil
}

// record is what the device keeps of an installed component set: the deployment and its root components.
type record struct {
	Deployment string            `json:"deployment"`
	Revision   string            `json:"revision,omitempty"`
	Roots      map[string]string `json:"roots"`
}

// Record implements agent.Job.
func (j *job) Record() (json.RawMessage, error) {
	roots := map[string]string{}
	for name, c := range j.doc.Components {
		roots[name] = c.Version
	}
	return json.Marshal(record{Deployment: j.doc.DeploymentID, Revision: j.doc.RevisionID, Roots: roots})
}

// Staging implements agent.Job. The artifacts a job stages depend on the resolution, not on the document
// alone: Downloading discards each once it is in the version, and a checksum it refuses at once.
func (j *job) Staging() []string { return nil }

// OutcomeDetails implements agent.OutcomeDetailer: the nucleus's deployment status, failure cause, error stack
// and error types.
func (j *job) OutcomeDetails(o agent.Outcome) map[string]string {
	d := map[string]string{}
	if o.Device.Architecture != "" {
		p := Platform(o.Device)
		d[DetailPlatformOS], d[DetailPlatformArchitecture] = p["os"], p["architecture"]
	}
	switch {
	case o.Status == wire.StatusSucceeded:
		d[DetailDeploymentStatus] = StatusSuccessful
		return d
	case o.Status == wire.StatusRejected:
		d[DetailDeploymentStatus] = StatusRejected
	case o.Unrestored:
		d[DetailDeploymentStatus] = StatusFailedUnableToRollback
	case o.Step == StepInstalling || o.Step == StepStarting:
		if j.rollsBack() {
			d[DetailDeploymentStatus] = StatusFailedRollbackComplete
		} else {
			d[DetailDeploymentStatus] = StatusFailedRollbackNotRequested
		}
	default:
		d[DetailDeploymentStatus] = StatusFailedNoStateChange
	}
	info := failureInfo[o.Code]
	stack := append([]string{"DEPLOYMENT_FAILURE"}, info.stack...)
	types := info.types
	if len(types) == 0 {
		types = []string{"UNKNOWN_ERROR"}
	}
	d[DetailErrorStack] = strings.Join(stack, ",")
	d[DetailErrorTypes] = strings.Join(types, ",")
	d[DetailFailureCause] = o.Code
	return d
}

// resolve resolves the deployment's root components and their dependencies on the device's platform, with the
// job's resolver, else the cloud's through caller (nil: the transport has none).
func (j *job) resolve(ctx context.Context, platform map[string]string, caller agent.APICaller) (
	map[string]*ggwire.Recipe, []string, error) {
	roots := map[string]string{}
	for name, c := range j.doc.Components {
		roots[name] = c.Version
	}
	if len(roots) == 0 {
		return map[string]*ggwire.Recipe{}, nil, nil // the device is to run no component (it left its group)
	}
	r := j.resolver
	if r == nil && caller != nil {
		r = CloudResolver{Caller: caller}
	}
	if r == nil {
		return nil, nil, agent.Failf(CodeResolverMissing, "the agent has no component resolver: its transport "+
			"does not call the cloud's ResolveComponentCandidates")
	}
	recipes, err := resolveSet(ctx, r, platform, roots)
	var ce *ggwire.ConflictError
	var failure *agent.StepError
	switch {
	case errors.As(err, &ce) && !ce.Known:
		return nil, nil, agent.Fail(CodeNoAvailableComponentVersion, err)
	case errors.As(err, &ce):
		return nil, nil, agent.Fail(CodeVersionRequirementsNotMet, err)
	case errors.As(err, &failure):
		return nil, nil, err
	case err != nil:
		return nil, nil, fmt.Errorf("resolve components: %w", err)
	}
	order, err := ggwire.StartOrder(recipes)
	if err != nil {
		return nil, nil, agent.Fail(CodeRecipeError, err)
	}
	for _, name := range order {
		if _, ok := recipes[name].Manifest(platform); !ok {
			return nil, nil, agent.Failf(CodeRecipeError, "component %s %s has no manifest for platform %s", name,
				recipes[name].ComponentVersion, platformString(platform))
		}
	}
	return recipes, order, nil
}

// Platform returns the nucleus's platform attributes of a device: os and architecture, named as recipes name
// them (linux; amd64, aarch64, arm).
func Platform(d agent.Device) map[string]string {
	arch := d.Architecture
	if arch == "arm64" {
		arch = "aarch64"
	}
	return map[string]string{"os": "linux", "architecture": arch}
}

func platformString(p map[string]string) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + p[k]
	}
	return strings.Join(parts, ",")
}
