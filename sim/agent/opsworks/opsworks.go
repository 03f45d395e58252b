// Package opsworks is the agent's OpsWorks Stacks kind: the device is an instance of an OpsWorks stack, and it
// carries out each command of a deployment as the OpsWorks agent does, as real processes (scripts of the app's
// release and of the stack's custom cookbooks), reporting the command's exit code and log. The loop that drives
// the states, decides and persists is package agent's.
//
// # The states
//
//	Preparing ─▶ Running ─▶ Finished (SUCCEEDED, exit code 0)
//	    │           │
//	    ▼           ▼
//	  Failed     Failed (after RollingBack when the switch had happened)   | Rejected
//
// Every command builds the instance's next state as a version of the device (Preparing): opsworks.json (the
// command, its args and the custom JSON), the stack's custom cookbooks unpacked under cookbooks/, and the app's
// release unpacked under app/ — the release the command deploys (deploy: the newest of the document's releases;
// rollback: the one after the instance's own, of at most five), else the release the instance runs, downloaded
// again from its source. Running then runs the command's scripts from the new version, each a real process
// whose non-zero exit fails the command with that exit code:
//
//   - deploy and rollback: app/deploy/before_migrate.sh; for deploy with migrate ["true"] app/deploy/migrate.sh;
//     app/deploy/before_symlink.sh; the layers' Deploy recipes; then the switch, which restarts the app
//     (app/<DocumentRoot>/launch.sh, the application the agent's launcher keeps running); then
//     app/deploy/after_restart.sh. Each hook runs when the release has it.
//   - start and restart: the switch with the app running (a restart runs it anew); stop: the switch with the app
//     stopped; undeploy: the layers' Undeploy recipes, then the switch to a state without the app.
//   - execute_recipes: Args recipes; setup and configure: the layers' Setup or Configure recipes;
//     update_custom_cookbooks: nothing but the fresh cookbooks; install_dependencies and update_dependencies:
//     the recipe dependencies::install or dependencies::update when the cookbooks have it. Each then switches to
//     the new state, the app as it was (running again from the new version when it ran).
//
// A recipe cookbook::name is the script cookbooks/<cookbook>/recipes/<name>.sh (a bare cookbook is its
// default.sh); one the cookbooks do not have fails the command (RECIPE_NOT_FOUND). Scripts run from the
// version's directory with the app's environment, OPSWORKS_COMMAND, OPSWORKS_DEPLOYMENT_ID and, for a recipe,
// OPSWORKS_RECIPE. The log names every script run and its exit status; the scripts' own output goes to the
// device log.
package opsworks

import (
	"encoding/json"
	"fmt"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	owwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/opsworks"
)

// Steps an execution reports (statusDetails step).
const (
	StepPreparing = "Preparing"
	StepRunning   = "Running"
	StepFinished  = "Finished"
)

// Kind carries out OpsWorks commands (documents of kind owwire.Kind).
type Kind struct{}

var _ agent.Kind = Kind{}
var _ agent.OutcomeDetailer = (*job)(nil)

// Name implements agent.Kind.
func (Kind) Name() string { return owwire.Kind }

// Parse implements agent.Kind.
func (Kind) Parse(payload json.RawMessage) (agent.Job, error) {
	var doc owwire.Document
	if err := json.Unmarshal(payload, &doc); err != nil {
		return nil, fmt.Errorf("opsworks job document: %w", err)
	}
	if err := doc.Validate(); err != nil {
		return nil, err
	}
	return &job{doc: doc}, nil
}

// Refuse implements agent.Kind.
func (Kind) Refuse(err error) agent.State { return preparingState{refuse: err} }

// RollsBack implements agent.Kind: Running switches to the new state.
func (Kind) RollsBack(st agent.State) bool {
	_, ok := st.(runningState)
	return ok
}

// DeviceErrorCode implements agent.Kind.
func (Kind) DeviceErrorCode() string { return owwire.CodeDeviceError }

// App implements agent.Kind: the app's launch.sh when the state has the app running.
func (Kind) App(d agent.Device, inst agent.Installed, v agent.Version) (*agent.App, error) {
	var rec record
	if err := json.Unmarshal(inst.Record, &rec); err != nil || !rec.Running || rec.App == nil {
		return nil, nil
	}
	file := launchFile(rec.App)
	if _, err := v.Files.Stat(file); err != nil {
		return nil, nil
	}
	env := map[string]string{"OPSWORKS_HOSTNAME": d.Thing, "OPSWORKS_APP": rec.App.Shortname}
	dir, base := splitFile(file)
	return &agent.App{Version: v, Package: dir, LaunchFile: base, Env: agent.Environ(rec.App.Environment, env)}, nil
}

func launchFile(a *owwire.App) string {
	if a.DocumentRoot == "" {
		return "app/launch.sh"
	}
	return "app/" + a.DocumentRoot + "/launch.sh"
}

func splitFile(p string) (dir, base string) {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[:i], p[i+1:]
		}
	}
	return ".", p
}

// record is what the instance keeps of a state: its app and release, and whether the app runs.
type record struct {
	Deployment string          `json:"deployment"`
	Command    string          `json:"command"`
	App        *owwire.App     `json:"app,omitempty"`
	Release    *owwire.Release `json:"release,omitempty"`
	Running    bool            `json:"running,omitempty"`
}

// job is a parsed command, with what its states decided and ran.
type job struct {
	doc   owwire.Document
	plan  *record // the state the command makes, once Preparing decided it
	log   []string
	exit  int
	exits bool // exit is a script's status
}

// First implements agent.Job.
func (j *job) First() agent.State { return preparingState{j: j} }

// Resume implements agent.Job.
func (j *job) Resume(step string) agent.State {
	switch step {
	case StepPreparing:
		return preparingState{j: j}
	case StepRunning:
		return runningState{j}
	case StepFinished:
		return agent.Finished(StepFinished)
	}
	return nil
}

// Record implements agent.Job.
func (j *job) Record() (json.RawMessage, error) {
	rec := j.plan
	if rec == nil {
		rec = &record{Deployment: j.doc.DeploymentID, Command: j.doc.Command}
	}
	return json.Marshal(rec)
}

// Staging implements agent.Job.
func (j *job) Staging() []string { return []string{"cookbooks", "release"} }

// OutcomeDetails implements agent.OutcomeDetailer: the exit code and the log.
func (j *job) OutcomeDetails(o agent.Outcome) map[string]string {
	code := j.exit
	if o.Status == wire.StatusSucceeded {
		code = 0
	} else if !j.exits {
		code = 1
	}
	lines := append([]string(nil), j.log...)
	lines = append(lines, fmt.Sprintf("command %s %s, exit status %d", j.doc.Command, outcomeWord(o), code))
	return map[string]string{owwire.DetailExitCode: fmt.Sprint(code), owwire.DetailLog: encodeLog(lines)}
}

func outcomeWord(o agent.Outcome) string {
	switch o.Status {
	case wire.StatusSucceeded:
		return "successful"
	case wire.StatusRejected:
		return "rejected"
	}
	return "failed"
}
