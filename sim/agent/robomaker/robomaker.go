// Package robomaker is the agent's RoboMaker kind: it carries out RoboMaker deployment jobs on a robot —
// download the bundle for the robot's architecture with its ETag checked, run the download condition and
// the pre-launch file, launch, run the post-launch file — reporting RoboMaker's steps and failure codes.
// The loop that drives these states, decides and persists is package agent's.
//
// # The states
//
//	Validating ─▶ DownloadingExtracting ─▶ ExecutingDownloadCondition ─▶ ExecutingPreLaunch ─▶ Launching
//	    │                   │                           │                        │               │
//	    │                   │                           │                        │               ▼
//	    │                   │                           │                        │      ExecutingPostLaunch ─▶ Finished
//	    │                   │                           │                        │               │          (SUCCEEDED)
//	    │                   │                           │                        │    RollingBack ◀┘ (also from Launching)
//	    ▼                   ▼                           ▼                        ▼               ▼
//	    └──────────────────────────────▶ Failed(code) | Rejected ◀─────────────────────────────┘
//	                                     (FAILED, REJECTED)
//
//	any state ── the service canceled, timed out or removed the execution ──▶ Abandoned (nothing reported)
//
// Every step is entered and reported in order, even with nothing to do (no download condition, no
// pre-launch file), so the service sees the same sequence from every robot. Each step is reported as
// UpdateJobExecution IN_PROGRESS with statusDetails step (and percentDone, estimatedTimeRemainingSeconds
// while downloading); Finished is reported SUCCEEDED; a failure FAILED with step, failureCode and reason.
// RollingBack, Failed, Rejected and Abandoned are the loop's.
//
// Where the checks sit, as a robot agent does them:
//   - Validating: the job document, the launch config's paths, and the robot's architecture
//     (MissingRobotApplicationArchitecture) — before anything is downloaded.
//   - DownloadingExtracting: the bundle's ETag (EtagMismatch), unpacking (ExtractingBundleFailure), then
//     the launch package, launch file and scripts in the bundle (MissingRobotDeploymentResource).
//   - ExecutingDownloadCondition: the condition file is fetched, its ETag checked (EtagMismatch), then run
//     (DownloadConditionFailed).
//   - ExecutingPreLaunch and ExecutingPostLaunch: PreLaunchFileFailure, PostLaunchFileFailure.
//
// Until Launching, nothing the robot runs changes: the old application keeps running while the new version
// is staged. Launching stops the old application, atomically switches the active version and starts the
// new one; a failure from there on (Launching, ExecutingPostLaunch) restores the previous version before
// reporting. Only Finished commits the new version as current, so a half-installed version is never
// reported in sync.
//
// Choices where the service leaves room, as a robot agent makes them: a job document the agent cannot read
// (another dialect's kind, malformed) is REJECTED rather than FAILED; an application that cannot be started,
// and any other device-side error (disk, permissions), fails with EnvironmentSetupError; an artifact the
// store does not have fails with ResourceNotFound; a script killed after its timeout fails with the step's
// code; a job whose very document is already committed goes from Validating straight to Finished.
//
// # Bundles and the application
//
// A bundle is a tar.gz holding the launch package directory (named as the launch config's packageName) with
// the launch file inside it, and the pre- and post-launch files at the paths the launch config gives,
// relative to the bundle's root. The launch file is run as an executable from the version's directory;
// scripts too, with the environment Env describes.
package robomaker

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/fleetlab/fleetlab/sim/agent"
	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
)

// Kind carries out RoboMaker deployment jobs (documents of kind rmwire.Kind).
type Kind struct{}

var _ agent.Kind = Kind{}
var _ agent.ScriptFiler = (*job)(nil)

// Name implements agent.Kind.
func (Kind) Name() string { return rmwire.Kind }

// Parse implements agent.Kind.
func (Kind) Parse(payload json.RawMessage) (agent.Job, error) {
	var doc rmwire.Document
	if err := json.Unmarshal(payload, &doc); err != nil {
		return nil, fmt.Errorf("robomaker job document: %w", err)
	}
	return &job{doc: doc}, nil
}

// Refuse implements agent.Kind: the robot reports Validating, then rejects the execution.
func (Kind) Refuse(err error) agent.State { return validatingState{refuse: err} }

// RollsBack implements agent.Kind: Launching and ExecutingPostLaunch come after the switch.
func (Kind) RollsBack(st agent.State) bool {
	switch st.(type) {
	case launchingState, postLaunchState:
		return true
	}
	return false
}

// DeviceErrorCode implements agent.Kind.
func (Kind) DeviceErrorCode() string { return rmwire.CodeEnvironmentSetupError }

// App implements agent.Kind: the launch file inside the launch package of the version.
func (Kind) App(d agent.Device, inst agent.Installed, v agent.Version) (*agent.App, error) {
	var r record
	if len(inst.Record) > 0 {
		if err := json.Unmarshal(inst.Record, &r); err != nil {
			return nil, fmt.Errorf("version %s: robomaker record: %w", inst.VersionID(), err)
		}
	}
	return &agent.App{Version: v, Package: r.Launch.PackageName, LaunchFile: r.Launch.LaunchFile,
		Env: env(d, inst.JobID, r)}, nil
}

// record is what the device keeps of an installed robot application version. Its members are the ones of
// the state of agents before kinds existed.
type record struct {
	Job         string        `json:"job,omitempty"`
	Application string        `json:"application,omitempty"`
	Name        string        `json:"name,omitempty"`
	Version     string        `json:"version,omitempty"`
	Launch      rmwire.Launch `json:"launch"`
}

// InstalledVersion returns the robot application version (the document's version: "1", "$LATEST") of an
// installed version of the kind.
func InstalledVersion(inst agent.Installed) (string, error) {
	var r record
	if err := json.Unmarshal(inst.Record, &r); err != nil {
		return "", fmt.Errorf("version %s: robomaker record: %w", inst.VersionID(), err)
	}
	return r.Version, nil
}

// env is the environment of scripts and the application: the launch config's variables, then the agent's
// own, which win (a deployment cannot change the robot's name), and PATH (agent.Environ).
//
//	ROBOT_NAME, ROBOT_ARCHITECTURE       the thing name and architecture (RoboMaker's name of it)
//	APPLICATION_NAME, APPLICATION_VERSION the robot application and version deployed
//	DEPLOYMENT_JOB, DEPLOYMENT_JOB_ID    the deployment job ARN and the execution's job id
//	ROBOT_DATA_DIR                       a directory kept across versions (OS family only)
func env(d agent.Device, jobID string, r record) []string {
	own := map[string]string{
		"ROBOT_NAME":          d.Thing,
		"ROBOT_ARCHITECTURE":  architectureName(d.Architecture),
		"APPLICATION_NAME":    r.Name,
		"APPLICATION_VERSION": r.Version,
		"DEPLOYMENT_JOB":      r.Job,
		"DEPLOYMENT_JOB_ID":   jobID,
	}
	if d.DataDir != "" {
		own["ROBOT_DATA_DIR"] = d.DataDir
	}
	return agent.Environ(r.Launch.EnvironmentVariables, own)
}

// job is a parsed RoboMaker job document.
type job struct{ doc rmwire.Document }

// First implements agent.Job.
func (j *job) First() agent.State { return validatingState{j: j} }

// Resume implements agent.Job.
func (j *job) Resume(step string) agent.State {
	switch step {
	case rmwire.StepValidating:
		return validatingState{j: j}
	case rmwire.StepDownloadingExtracting:
		return downloadingState{j}
	case rmwire.StepExecutingDownloadCondition:
		return conditionState{j}
	case rmwire.StepExecutingPreLaunch:
		return preLaunchState{j}
	case rmwire.StepLaunching:
		return launchingState{j}
	case rmwire.StepExecutingPostLaunch:
		return postLaunchState{j}
	case rmwire.StepFinished:
		return agent.Finished(rmwire.StepFinished)
	}
	return nil
}

// Record implements agent.Job.
func (j *job) Record() (json.RawMessage, error) {
	return json.Marshal(j.record())
}

func (j *job) record() record {
	return record{Job: j.doc.Job, Application: j.doc.Application, Name: j.doc.Name, Version: j.doc.Version, Launch: j.doc.Launch}
}

// The downloads a job stages: the bundle and the download condition file.
const (
	stagedBundle    = "bundle"
	stagedCondition = "condition"
)

// ScriptFile implements agent.ScriptFiler: the pre- and post-launch files of the launch config.
func (j *job) ScriptFile(step string) (string, bool) {
	switch step {
	case rmwire.StepExecutingPreLaunch:
		return j.doc.Launch.PreLaunchFile, true
	case rmwire.StepExecutingPostLaunch:
		return j.doc.Launch.PostLaunchFile, true
	}
	return "", false
}

// Staging implements agent.Job.
func (j *job) Staging() []string { return []string{stagedBundle, stagedCondition} }

// source returns the bundle for the device's architecture.
func (j *job) source(d agent.Device) (rmwire.Source, bool) {
	arch, _ := Architecture(d.Architecture)
	for _, s := range j.doc.Sources {
		if strings.EqualFold(s.Architecture, arch) {
			return s, true
		}
	}
	return rmwire.Source{}, false
}

// checkLaunchPath checks a launch config path is a clean relative path.
func checkLaunchPath(what, p string) error {
	if p == "" || !fs.ValidPath(p) || p == "." {
		return agent.Failf(rmwire.CodeMissingRobotDeploymentResource, "launch config %s %q: want a relative path inside the bundle", what, p)
	}
	return nil
}

// checkResources checks that the bundle holds what the launch config names: the launch package directory,
// the launch file inside it, and the pre- and post-launch files.
func checkResources(v agent.Version, l rmwire.Launch) error {
	if fi, err := v.Files.Stat(l.PackageName); err != nil || !fi.IsDir() {
		return agent.Failf(rmwire.CodeMissingRobotDeploymentResource, "launch package %s is not in the bundle", l.PackageName)
	}
	if fi, err := v.Files.Stat(path.Join(l.PackageName, l.LaunchFile)); err != nil || !fi.Mode().IsRegular() {
		return agent.Failf(rmwire.CodeMissingRobotDeploymentResource, "launch file %s is not in package %s", l.LaunchFile, l.PackageName)
	}
	for _, f := range []struct{ what, name string }{{"pre-launch file", l.PreLaunchFile}, {"post-launch file", l.PostLaunchFile}} {
		if f.name == "" {
			continue
		}
		if fi, err := v.Files.Stat(f.name); err != nil || !fi.Mode().IsRegular() {
			return agent.Failf(rmwire.CodeMissingRobotDeploymentResource, "%s %s is not in the bundle", f.what, f.name)
		}
	}
	return nil
}
