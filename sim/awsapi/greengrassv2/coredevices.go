package greengrassv2

import (
	"errors"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/store"
)

// A core device is not a record of its own: it is a thing that a deployment targets by its thing ARN, or that has
// reported on an execution of a deployment's job, and its state is read from those executions. DeleteCoreDevice
// records when the device was deleted, in bucketDeletedDevices; the device is back once it is targeted or
// reports again after that.
const bucketDeletedDevices = "greengrass.deleted-core-devices" // <thing> → deletedDevice

type deletedDevice struct {
	At time.Time `json:"at"`
}

// Core device statuses (CoreDeviceStatus).
const (
	coreHealthy   = "HEALTHY"
	coreUnhealthy = "UNHEALTHY"
)

// codeComponentBroken is the failure code of a device whose component went BROKEN.
const codeComponentBroken = "COMPONENT_BROKEN"

// deviceRun is one deployment's execution on a core device.
type deviceRun struct {
	d *deploymentRec
	x engine.Execution
}

// coreDevice is what the dialect knows of a core device.
type coreDevice struct {
	Name string
	// Runs are the device's executions of deployments, oldest deployment first.
	Runs []deviceRun
	// Seen is the last time the device reported or was targeted.
	Seen time.Time
	// Fleet is the device's last fleet status message, nil when it sent none.
	Fleet *fleetStatusRec
}

// reported reports whether the device has spoken about x: it started it, or ended it itself (a rejection).
func reported(x engine.Execution) bool {
	return !x.StartedAt.IsZero() || (x.Status.Terminal() && x.Reason == "")
}

// coreDevices returns every core device, by name.
func (s *Service) coreDevices() (map[string]*coreDevice, error) {
	devices := map[string]*coreDevice{}
	device := func(name string) *coreDevice {
		c := devices[name]
		if c == nil {
			c = &coreDevice{Name: name}
			devices[name] = c
		}
		return c
	}
	ds, err := s.allDeployments()
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		xs, err := s.engine.Executions(d.JobID)
		if errors.Is(err, engine.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, x := range xs {
			var seen time.Time
			switch {
			case reported(x):
				seen = x.UpdatedAt
			case !d.Group:
				seen = d.CreatedAt
			default:
				continue
			}
			c := device(x.Device)
			c.Runs = append(c.Runs, deviceRun{d: d, x: x})
			if seen.After(c.Seen) {
				c.Seen = seen
			}
		}
	}
	err = s.store.View(func(tx store.Tx) error {
		for name, c := range devices {
			var del deletedDevice
			found, err := awsapi.GetJSON(tx, bucketDeletedDevices, name, &del)
			if err != nil {
				return err
			}
			if found && !c.Seen.After(del.At) {
				delete(devices, name)
				continue
			}
			var fs fleetStatusRec
			if found, err = awsapi.GetJSON(tx, bucketFleetStatus, name, &fs); err != nil {
				return err
			}
			if found {
				c.Fleet = &fs
				if fs.At.After(c.Seen) {
					c.Seen = fs.At
				}
			}
		}
		return nil
	})
	return devices, err
}

// loadCoreDevice returns the named core device, or ResourceNotFoundException.
func (s *Service) loadCoreDevice(name string) (*coreDevice, error) {
	devices, err := s.coreDevices()
	if err != nil {
		return nil, err
	}
	if c := devices[name]; c != nil {
		return c, nil
	}
	return nil, notFound(name, typeCoreDevice, "The core device %s does not exist.", name)
}

// lastEnded is the device's execution that ended last, if any. Of executions that ended at one instant (a
// clock that stands still) the one of the newer deployment is the last: Runs are oldest deployment first.
func (c *coreDevice) lastEnded() (deviceRun, bool) {
	var last deviceRun
	ok := false
	for _, r := range c.Runs {
		if r.x.Status.Terminal() && r.x.Status != engine.ExecCanceled && r.x.Status != engine.ExecRemoved &&
			(!ok || !r.x.UpdatedAt.Before(last.x.UpdatedAt)) {
			last, ok = r, true
		}
	}
	return last, ok
}

// status is UNHEALTHY when the device's last deployment outcome is a failure, or when the fleet status it sent
// since says so (a component of that deployment BROKEN); else HEALTHY.
func (c *coreDevice) status() string {
	last, ok := c.lastEnded()
	if ok && last.x.Status != engine.ExecSucceeded {
		return coreUnhealthy
	}
	if f, applies := c.fleetFor(last); applies && f.Status.OverallDeviceStatus == coreUnhealthy {
		return coreUnhealthy
	}
	return coreHealthy
}

type coreDeviceItem struct {
	CoreDeviceThingName       string              `json:"coreDeviceThingName"`
	Status                    string              `json:"status"`
	LastStatusUpdateTimestamp awsapi.EpochSeconds `json:"lastStatusUpdateTimestamp"`
	Platform                  string              `json:"platform,omitempty"`
	Architecture              string              `json:"architecture,omitempty"`
}

// statusDetails keys of the device's platform, as the agent reports them with each outcome.
const (
	detailPlatformOS           = "platform-os"
	detailPlatformArchitecture = "platform-architecture"
)

func (c *coreDevice) item() coreDeviceItem {
	it := coreDeviceItem{CoreDeviceThingName: c.Name, Status: c.status(),
		LastStatusUpdateTimestamp: awsapi.EpochSeconds(c.Seen)}
	// The platform is the one the device reported last.
	var at time.Time
	for _, r := range c.Runs {
		if os := r.x.Details[detailPlatformOS]; os != "" && !r.x.UpdatedAt.Before(at) {
			it.Platform, it.Architecture, at = os, r.x.Details[detailPlatformArchitecture], r.x.UpdatedAt
		}
	}
	return it
}

func (s *Service) getCoreDevice(r *awsapi.Request) (any, error) {
	name, _ := r.Input["coreDeviceThingName"].(string)
	var out struct {
		coreDeviceItem
		Tags map[string]string `json:"tags,omitempty"`
	}
	c, err := s.loadCoreDevice(name)
	if err != nil {
		return nil, err
	}
	out.coreDeviceItem = c.item()
	err = s.store.View(func(tx store.Tx) (err error) {
		out.Tags, err = s.rec.Tags(tx, s.rec.ARN("coreDevices:"+name))
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// listCoreDevices lists core devices by name, filtered by status and by membership (recursive) of a thing group.
func (s *Service) listCoreDevices(r *awsapi.Request) (any, error) {
	var in struct {
		ThingGroupARN string `json:"thingGroupArn"`
		Status        string `json:"status"`
		listInput
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	var members []string
	if in.ThingGroupARN != "" && s.registry != nil {
		things, _, err := s.registry.GroupMembers(in.ThingGroupARN, true)
		if err != nil {
			return nil, err
		}
		members = things
	}
	devices, err := s.coreDevices()
	if err != nil {
		return nil, err
	}
	var items []coreDeviceItem
	for _, c := range devices {
		if in.ThingGroupARN != "" && !slices.Contains(members, c.Name) {
			continue
		}
		if it := c.item(); in.Status == "" || it.Status == in.Status {
			items = append(items, it)
		}
	}
	sort.Slice(items, func(i, j int) bool { return items[i].CoreDeviceThingName < items[j].CoreDeviceThingName })
	page, next, err := listPage(items, func(c coreDeviceItem) string { return c.CoreDeviceThingName },
		"ListCoreDevices/"+in.ThingGroupARN+"/"+in.Status, in.listInput)
	if err != nil {
		return nil, err
	}
	return struct {
		CoreDevices []coreDeviceItem `json:"coreDevices"`
		NextToken   string           `json:"nextToken,omitempty"`
	}{page, next}, nil
}

// deleteCoreDevice forgets a core device until it is targeted or reports again; its thing stays in the registry.
func (s *Service) deleteCoreDevice(r *awsapi.Request) (any, error) {
	name, _ := r.Input["coreDeviceThingName"].(string)
	c, err := s.loadCoreDevice(name)
	if err != nil {
		return nil, err
	}
	return nil, s.store.Batch(func(tx store.Tx) error {
		return awsapi.PutJSON(tx, bucketDeletedDevices, name, deletedDevice{At: c.Seen})
	})
}

type installedComponent struct {
	ComponentName             string              `json:"componentName"`
	ComponentVersion          string              `json:"componentVersion"`
	LifecycleState            string              `json:"lifecycleState"`
	LifecycleStateDetails     string              `json:"lifecycleStateDetails,omitempty"`
	IsRoot                    bool                `json:"isRoot"`
	LastStatusChangeTimestamp awsapi.EpochSeconds `json:"lastStatusChangeTimestamp"`
	LastReportedTimestamp     awsapi.EpochSeconds `json:"lastReportedTimestamp"`
	LastInstallationSource    string              `json:"lastInstallationSource"`
	LifecycleStatusCodes      []string            `json:"lifecycleStatusCodes,omitempty"`
}

// applied reports whether the device runs the components of run r once it ended: it succeeded, or failed with
// DO_NOTHING, which keeps what it applied (FAILED_ROLLBACK_NOT_REQUESTED).
func applied(r deviceRun) bool {
	return r.x.Status == engine.ExecSucceeded ||
		(r.x.Status == engine.ExecFailed && r.x.Details[detailDeploymentStatus] == "FAILED_ROLLBACK_NOT_REQUESTED")
}

// installed returns the root components of the device's last applied deployment (see applied), RUNNING, or
// BROKEN when that deployment or a later one failed because the component broke (the agent names it in its
// reason). Of runs that ended at one instant the newer deployment's is the later: Runs are oldest first.
func (c *coreDevice) installed() []installedComponent {
	var ok deviceRun
	at := -1
	for i, r := range c.Runs {
		if applied(r) && (at < 0 || !r.x.UpdatedAt.Before(ok.x.UpdatedAt)) {
			ok, at = r, i
		}
	}
	if at < 0 {
		return nil
	}
	var broken []engine.Execution
	for i, r := range c.Runs {
		later := r.x.UpdatedAt.After(ok.x.UpdatedAt) || (r.x.UpdatedAt.Equal(ok.x.UpdatedAt) && i >= at)
		if r.x.Status == engine.ExecFailed && later &&
			(r.x.Details[detailFailureCause] == codeComponentBroken || r.x.Reported.Code == codeComponentBroken) {
			broken = append(broken, r.x)
		}
	}
	out := make([]installedComponent, 0, len(ok.d.Components))
	for _, name := range slices.Sorted(maps.Keys(ok.d.Components)) {
		ic := installedComponent{ComponentName: name, ComponentVersion: ok.d.Components[name].Version,
			LifecycleState: "RUNNING", IsRoot: true, LastStatusChangeTimestamp: awsapi.EpochSeconds(ok.x.UpdatedAt),
			LastReportedTimestamp: awsapi.EpochSeconds(c.Seen), LastInstallationSource: ok.d.TargetARN}
		if f, applies := c.fleetFor(ok); applies {
			for _, fc := range f.Status.Components {
				if fc.ComponentName != name {
					continue
				}
				ic.LifecycleState, ic.LifecycleStateDetails = fc.Status, fc.StatusDetails
				ic.LifecycleStatusCodes = fc.StatusCodes
				if fc.LastStatusChangeTime > 0 {
					ic.LastStatusChangeTimestamp = awsapi.EpochSeconds(time.UnixMilli(fc.LastStatusChangeTime).UTC())
				}
			}
		}
		for _, x := range broken {
			if strings.Contains(x.Reported.Reason, "component "+name+" ") {
				ic.LifecycleState, ic.LifecycleStateDetails = "BROKEN", x.Reported.Reason
				ic.LifecycleStatusCodes = []string{codeComponentBroken}
				ic.LastStatusChangeTimestamp = awsapi.EpochSeconds(x.UpdatedAt)
			}
		}
		out = append(out, ic)
	}
	return out
}

func (s *Service) listInstalledComponents(r *awsapi.Request) (any, error) {
	var in struct {
		Thing string `json:"coreDeviceThingName"`
		listInput
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	c, err := s.loadCoreDevice(in.Thing)
	if err != nil {
		return nil, err
	}
	items := c.installed()
	page, next, err := listPage(items, func(c installedComponent) string { return c.ComponentName },
		"ListInstalledComponents/"+in.Thing, in.listInput)
	if err != nil {
		return nil, err
	}
	return struct {
		InstalledComponents []installedComponent `json:"installedComponents"`
		NextToken           string               `json:"nextToken,omitempty"`
	}{page, next}, nil
}
