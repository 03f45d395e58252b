// Package opsworks holds the job document of an OpsWorks Stacks deployment, as the service hands it to each
// target instance and the agent's OpsWorks kind carries it out, and the statusDetails keys the instance reports
// a command's exit code and log under.
package opsworks

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
)

// Kind is the kind of an OpsWorks job document (wire.Document's Kind).
const Kind = "opsworks"

// The commands (DeploymentCommand.Name).
const (
	InstallDependencies   = "install_dependencies"
	UpdateDependencies    = "update_dependencies"
	UpdateCustomCookbooks = "update_custom_cookbooks"
	ExecuteRecipes        = "execute_recipes"
	Configure             = "configure"
	Setup                 = "setup"
	Deploy                = "deploy"
	Rollback              = "rollback"
	Start                 = "start"
	Stop                  = "stop"
	Restart               = "restart"
	Undeploy              = "undeploy"
)

// Commands are every command, stack commands first.
var Commands = []string{InstallDependencies, UpdateDependencies, UpdateCustomCookbooks, ExecuteRecipes, Configure,
	Setup, Deploy, Rollback, Start, Stop, Restart, Undeploy}

// AppCommands are the commands that need an app.
var AppCommands = []string{Deploy, Rollback, Start, Stop, Restart, Undeploy}

// MaxReleases is how many releases of an app an instance keeps: a rollback goes back at most MaxReleases-1.
const MaxReleases = 5

// statusDetails keys an instance reports at the end of a command.
const (
	DetailExitCode = "exitCode" // the exit status of the script that decided the command ("0" on success)
	DetailLog      = "log"      // the command's log, base64 (standard encoding) of its text
)

// Failure codes (statusDetails failureCode).
const (
	CodeScriptFailed   = "COMMAND_FAILED"     // a script of the command exited non-zero
	CodeSourceFailed   = "SOURCE_UNAVAILABLE" // an app source or the cookbooks could not be downloaded or unpacked
	CodeNoRelease      = "NO_RELEASE"         // rollback with no earlier release, start or restart with none
	CodeRecipeNotFound = "RECIPE_NOT_FOUND"   // a recipe names no script of the cookbooks
	CodeDeviceError    = "INSTANCE_ERROR"     // anything else on the instance
)

// Object is an archive (tar.gz) in the artifact store, with its ETag when the deployment was made.
type Object struct {
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	ETag   string `json:"etag,omitempty"`
}

// Release is one deployed version of an app: the deployment that deployed it and its source.
type Release struct {
	DeploymentID string `json:"deploymentId"`
	Source       Object `json:"source"`
}

// App is the app of an app command.
type App struct {
	ID          string            `json:"id"`
	Shortname   string            `json:"shortname"`
	Type        string            `json:"type"`
	Environment map[string]string `json:"environment,omitempty"`
	// DocumentRoot is the directory of the app's source that holds its launch.sh (the app's Attributes'
	// DocumentRoot; "" is the source's root).
	DocumentRoot string `json:"documentRoot,omitempty"`
	// Releases are the app's last releases on the stack, newest first, at most MaxReleases: a deploy's first is
	// the release it deploys; a rollback goes from the instance's release to the one after it.
	Releases []Release `json:"releases,omitempty"`
}

// Recipes are a layer's custom recipes per lifecycle event.
type Recipes struct {
	Setup     []string `json:"setup,omitempty"`
	Configure []string `json:"configure,omitempty"`
	Deploy    []string `json:"deploy,omitempty"`
	Undeploy  []string `json:"undeploy,omitempty"`
	Shutdown  []string `json:"shutdown,omitempty"`
}

// Document is a deployment as an instance receives it.
type Document struct {
	DeploymentID string              `json:"deploymentId"`
	StackID      string              `json:"stackId"`
	Command      string              `json:"command"`
	Args         map[string][]string `json:"args,omitempty"`
	CustomJSON   string              `json:"customJson,omitempty"`
	App          *App                `json:"app,omitempty"`
	// Cookbooks is the stack's custom cookbooks archive: <cookbook>/recipes/<recipe>.sh at its root.
	Cookbooks *Object `json:"cookbooks,omitempty"`
	// Layers are the custom recipes of each layer, and Instances each target's layers by its hostname.
	Layers    map[string]Recipes  `json:"layers,omitempty"`
	Instances map[string][]string `json:"instances,omitempty"`
}

// Validate checks what the instance relies on.
func (d Document) Validate() error {
	if d.DeploymentID == "" {
		return errors.New("opsworks document: deploymentId is missing")
	}
	if !slices.Contains(Commands, d.Command) {
		return fmt.Errorf("opsworks document: command %q is not an OpsWorks command", d.Command)
	}
	if slices.Contains(AppCommands, d.Command) && d.App == nil {
		return fmt.Errorf("opsworks document: command %s has no app", d.Command)
	}
	if d.Command == Deploy && (d.App == nil || len(d.App.Releases) == 0) {
		return errors.New("opsworks document: deploy has no release")
	}
	if len(d.CustomJSON) > 0 && !json.Valid([]byte(d.CustomJSON)) {
		return errors.New("opsworks document: customJson is not JSON")
	}
	return nil
}

// RecipesFor returns the custom recipes of an instance's layers for a lifecycle event (setup, configure,
// deploy, undeploy, shutdown), in layer order.
func (d Document) RecipesFor(hostname, event string) []string {
	var out []string
	for _, l := range d.Instances[hostname] {
		r := d.Layers[l]
		switch event {
		case Setup:
			out = append(out, r.Setup...)
		case Configure:
			out = append(out, r.Configure...)
		case Deploy:
			out = append(out, r.Deploy...)
		case Undeploy:
			out = append(out, r.Undeploy...)
		case "shutdown":
			out = append(out, r.Shutdown...)
		}
	}
	return out
}

// Envelope wraps d in the wire.Document of kind Kind.
func (d Document) Envelope() (wire.Document, error) {
	payload, err := json.Marshal(d)
	if err != nil {
		return wire.Document{}, fmt.Errorf("encode opsworks document: %w", err)
	}
	return wire.Document{Kind: Kind, Payload: payload}, nil
}
