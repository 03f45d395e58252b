package greengrassv2

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
)

// Kind is the kind of a Greengrass V2 job document (wire.Document's Kind).
const Kind = "greengrassv2"

// Deployment policies, with the API's defaults.
const (
	FailureRollback  = "ROLLBACK" // the default
	FailureDoNothing = "DO_NOTHING"

	UpdateNotifyComponents     = "NOTIFY_COMPONENTS" // the default
	UpdateSkipNotifyComponents = "SKIP_NOTIFY_COMPONENTS"

	DefaultUpdateTimeoutSeconds     = 60
	DefaultValidationTimeoutSeconds = 30
)

// Document is the job document of a Greengrass V2 deployment revision: the whole set of root components the
// target must run (components missing from it are removed from the device) and how to apply it. The members
// follow CreateDeployment's.
type Document struct {
	// DeploymentID and RevisionID identify the revision ("14"); TargetARN is the thing or thing group.
	DeploymentID string `json:"deploymentId"`
	RevisionID   string `json:"revisionId,omitempty"`
	TargetARN    string `json:"targetArn"`
	// CreationTimestamp is the revision's creation time in epoch milliseconds.
	CreationTimestamp int64 `json:"creationTimestamp,omitempty"`
	// Components are the root components by name.
	Components map[string]Component `json:"components"`
	// FailureHandlingPolicy is FailureRollback or FailureDoNothing.
	FailureHandlingPolicy string `json:"failureHandlingPolicy"`
	// ComponentUpdatePolicy and ConfigurationValidationPolicy are the deployment policies.
	ComponentUpdatePolicy         UpdatePolicy     `json:"componentUpdatePolicy"`
	ConfigurationValidationPolicy ValidationPolicy `json:"configurationValidationPolicy"`
}

// Component is one root component of a deployment.
type Component struct {
	// Version is the exact component version to run.
	Version             string               `json:"componentVersion"`
	ConfigurationUpdate *ConfigurationUpdate `json:"configurationUpdate,omitempty"`
	RunWith             *RunWith             `json:"runWith,omitempty"`
}

// RunWith is a component's runWith.
type RunWith struct {
	PosixUser            string          `json:"posixUser,omitempty"`
	WindowsUser          string          `json:"windowsUser,omitempty"`
	SystemResourceLimits *ResourceLimits `json:"systemResourceLimits,omitempty"`
}

// ResourceLimits are systemResourceLimits: memory in KB, CPUs as a fraction of the device's.
type ResourceLimits struct {
	Memory int64   `json:"memory,omitempty"`
	CPUs   float64 `json:"cpus,omitempty"`
}

// UpdatePolicy is componentUpdatePolicy.
type UpdatePolicy struct {
	Action         string `json:"action"`
	TimeoutSeconds int    `json:"timeoutInSeconds"`
}

// ValidationPolicy is configurationValidationPolicy.
type ValidationPolicy struct {
	TimeoutSeconds int `json:"timeoutInSeconds"`
}

// WithDefaults returns d with the API's defaults in the policies it leaves out.
func (d Document) WithDefaults() Document {
	if d.FailureHandlingPolicy == "" {
		d.FailureHandlingPolicy = FailureRollback
	}
	if d.ComponentUpdatePolicy.Action == "" {
		d.ComponentUpdatePolicy.Action = UpdateNotifyComponents
	}
	if d.ComponentUpdatePolicy.TimeoutSeconds == 0 {
		d.ComponentUpdatePolicy.TimeoutSeconds = DefaultUpdateTimeoutSeconds
	}
	if d.ConfigurationValidationPolicy.TimeoutSeconds == 0 {
		d.ConfigurationValidationPolicy.TimeoutSeconds = DefaultValidationTimeoutSeconds
	}
	return d
}

// Validate checks what the agent relies on: an id, a target, component versions that are semantic versions,
// known policies, and merge documents that are JSON objects.
func (d Document) Validate() error {
	if d.DeploymentID == "" {
		return errors.New("greengrassv2 document: deploymentId is missing")
	}
	if d.TargetARN == "" {
		return errors.New("greengrassv2 document: targetArn is missing")
	}
	for _, name := range sortedKeys(d.Components) {
		c := d.Components[name]
		if _, err := ParseVersion(c.Version); err != nil {
			return fmt.Errorf("greengrassv2 document: components.%s.componentVersion: %w", name, err)
		}
		if u := c.ConfigurationUpdate; u != nil {
			if _, _, err := Configure(nil, nil, ConfigurationUpdate{Merge: u.Merge}); err != nil {
				return fmt.Errorf("greengrassv2 document: components.%s: %w", name, err)
			}
		}
	}
	switch d.FailureHandlingPolicy {
	case "", FailureRollback, FailureDoNothing:
	default:
		return fmt.Errorf("greengrassv2 document: failureHandlingPolicy %q is not ROLLBACK or DO_NOTHING",
			d.FailureHandlingPolicy)
	}
	switch d.ComponentUpdatePolicy.Action {
	case "", UpdateNotifyComponents, UpdateSkipNotifyComponents:
	default:
		return fmt.Errorf("greengrassv2 document: componentUpdatePolicy.action %q is not NOTIFY_COMPONENTS or "+
			"SKIP_NOTIFY_COMPONENTS", d.ComponentUpdatePolicy.Action)
	}
	if d.ComponentUpdatePolicy.TimeoutSeconds < 0 || d.ConfigurationValidationPolicy.TimeoutSeconds < 0 {
		return errors.New("greengrassv2 document: a policy timeout is negative")
	}
	return nil
}

// Envelope wraps d in the wire.Document of kind Kind.
func (d Document) Envelope() (wire.Document, error) {
	payload, err := json.Marshal(d)
	if err != nil {
		return wire.Document{}, fmt.Errorf("encode greengrassv2 document: %w", err)
	}
	return wire.Document{Kind: Kind, Payload: payload}, nil
}

// FromEnvelope returns the Greengrass V2 document in env, validated; another kind is an error.
func FromEnvelope(env wire.Document) (Document, error) {
	if env.Kind != Kind {
		return Document{}, fmt.Errorf("job document is of kind %q, not %q", env.Kind, Kind)
	}
	var d Document
	if err := json.Unmarshal(env.Payload, &d); err != nil {
		return Document{}, fmt.Errorf("decode greengrassv2 document: %w", err)
	}
	if err := d.Validate(); err != nil {
		return Document{}, err
	}
	return d, nil
}
