package greengrassv2

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// The fleet status service: the nucleus tells the cloud its components' lifecycle states outside deployments —
// when a component's state changes, when the nucleus starts — by publishing a FleetStatus message to the
// thing's topic $aws/things/{thing}/greengrassv2/health/json. Over HTTP the device publishes it as the IoT
// data plane's Publish does (POST /topics/{topic}, signed for iotdata); the Greengrass V2 dialect applies it to
// the core device's status and installed components.

// FleetStatusTopic returns the topic of thing's fleet status messages.
func FleetStatusTopic(thing string) string {
	return "$aws/things/" + thing + "/greengrassv2/health/json"
}

// FleetStatusPath returns the path a device publishes its fleet status to (POST), the topic escaped as one
// path segment.
func FleetStatusPath(thing string) string {
	return "/topics/" + url.PathEscape(FleetStatusTopic(thing))
}

// FleetStatusThing returns the thing of a fleet status topic; ok is false for any other topic.
func FleetStatusThing(topic string) (thing string, ok bool) {
	rest, found := strings.CutPrefix(topic, "$aws/things/")
	if !found {
		return "", false
	}
	thing, found = strings.CutSuffix(rest, "/greengrassv2/health/json")
	if !found || thing == "" || strings.Contains(thing, "/") {
		return "", false
	}
	return thing, true
}

// SigningNameFleetStatus is the signing name of a fleet status publish: the IoT data plane's.
const SigningNameFleetStatus = "iotdata"

// Overall device statuses (FleetStatus.OverallDeviceStatus).
const (
	DeviceHealthy   = "HEALTHY"
	DeviceUnhealthy = "UNHEALTHY"
)

// Lifecycle states of a component, as the nucleus names them.
const (
	LifecycleNew       = "NEW"
	LifecycleInstalled = "INSTALLED"
	LifecycleStarting  = "STARTING"
	LifecycleRunning   = "RUNNING"
	LifecycleStopping  = "STOPPING"
	LifecycleErrored   = "ERRORED"
	LifecycleBroken    = "BROKEN"
	LifecycleFinished  = "FINISHED"
)

var lifecycleStates = map[string]bool{LifecycleNew: true, LifecycleInstalled: true, LifecycleStarting: true,
	LifecycleRunning: true, LifecycleStopping: true, LifecycleErrored: true, LifecycleBroken: true,
	LifecycleFinished: true}

// Triggers of a fleet status message.
const (
	TriggerNucleusLaunch         = "NUCLEUS_LAUNCH"
	TriggerComponentStatusChange = "COMPONENT_STATUS_CHANGE"
)

// FleetStatus is the nucleus's fleet status message (FleetStatusDetails): the device, its overall status and
// its components' lifecycle states. DeploymentID and JobID, fleetlab's, name the deployment whose component
// set the device runs, so the cloud applies the states to that deployment's components only.
type FleetStatus struct {
	GGCVersion          string `json:"ggcVersion,omitempty"`
	Platform            string `json:"platform,omitempty"`
	Architecture        string `json:"architecture,omitempty"`
	Thing               string `json:"thing"`
	OverallDeviceStatus string `json:"overallDeviceStatus"`
	// SequenceNumber increases with every message of one agent run; Timestamp is the device's time in epoch
	// milliseconds.
	SequenceNumber int64  `json:"sequenceNumber"`
	Timestamp      int64  `json:"timestamp"`
	Trigger        string `json:"trigger,omitempty"`
	DeploymentID   string `json:"deploymentId,omitempty"`
	JobID          string `json:"jobId,omitempty"`
	// Components are the components of the running set, in start order.
	Components []ComponentStatus `json:"components"`
}

// ComponentStatus is one component's state in a FleetStatus (ComponentStatusDetails).
type ComponentStatus struct {
	ComponentName string `json:"componentName"`
	Version       string `json:"version"`
	IsRoot        bool   `json:"isRoot"`
	Status        string `json:"status"`
	// StatusDetails says why the component is in its state (for ERRORED and BROKEN, the error and how many
	// times the step failed); StatusCodes are the nucleus's codes (COMPONENT_BROKEN).
	StatusDetails string   `json:"statusDetails,omitempty"`
	StatusCodes   []string `json:"statusCodes,omitempty"`
	// Errors is how many times in a row the component's run step failed.
	Errors int `json:"errors,omitempty"`
	// LastStatusChangeTime is when the device saw the state change, epoch milliseconds.
	LastStatusChangeTime int64 `json:"lastStatusChangeTime"`
}

// MaxFleetStatusComponents bounds the components of one message.
const MaxFleetStatusComponents = 1000

// ParseFleetStatus reads and validates a fleet status message published for thing.
func ParseFleetStatus(thing string, body []byte) (FleetStatus, error) {
	var fs FleetStatus
	dec := json.NewDecoder(strings.NewReader(string(body)))
	if err := dec.Decode(&fs); err != nil {
		return FleetStatus{}, fmt.Errorf("fleet status: %w", err)
	}
	if dec.More() {
		return FleetStatus{}, errors.New("fleet status: data after the message")
	}
	switch {
	case fs.Thing != thing:
		return FleetStatus{}, fmt.Errorf("fleet status: thing %q published on the topic of %q", fs.Thing, thing)
	case fs.OverallDeviceStatus != DeviceHealthy && fs.OverallDeviceStatus != DeviceUnhealthy:
		return FleetStatus{}, fmt.Errorf("fleet status: overallDeviceStatus %q: want HEALTHY or UNHEALTHY", fs.OverallDeviceStatus)
	case fs.SequenceNumber < 0:
		return FleetStatus{}, fmt.Errorf("fleet status: sequenceNumber %d is negative", fs.SequenceNumber)
	case len(fs.Components) > MaxFleetStatusComponents:
		return FleetStatus{}, fmt.Errorf("fleet status: %d components, at most %d", len(fs.Components), MaxFleetStatusComponents)
	}
	seen := map[string]bool{}
	for i, c := range fs.Components {
		switch {
		case c.ComponentName == "":
			return FleetStatus{}, fmt.Errorf("fleet status: components[%d]: componentName is empty", i)
		case seen[c.ComponentName]:
			return FleetStatus{}, fmt.Errorf("fleet status: component %s twice", c.ComponentName)
		case !lifecycleStates[c.Status]:
			return FleetStatus{}, fmt.Errorf("fleet status: component %s: status %q is no lifecycle state", c.ComponentName, c.Status)
		case c.Errors < 0:
			return FleetStatus{}, fmt.Errorf("fleet status: component %s: errors %d is negative", c.ComponentName, c.Errors)
		}
		seen[c.ComponentName] = true
	}
	return fs, nil
}
