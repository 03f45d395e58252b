package greengrassv2

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	gg "github.com/aws/aws-sdk-go-v2/service/greengrassv2"
	ggtypes "github.com/aws/aws-sdk-go-v2/service/greengrassv2/types"
	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/fleetlab/fleetlab/harness/dialect"
	"github.com/fleetlab/fleetlab/sim/agent"
	agentgg "github.com/fleetlab/fleetlab/sim/agent/greengrassv2"
	ggwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/greengrassv2"
)

// Set is what a core device runs: the component set of its active version, read from the device's storage.
type Set struct {
	// Job is the IoT job id of the deployment that installed the set; "" when the device runs none.
	Job string
	// Components are the set's components (roots and dependencies) by name, at their versions.
	Components map[string]string
	// Config is each component's effective configuration.
	Config map[string]map[string]any
	// Lifecycle is, in the OS family, the lifecycle state the run-step supervisor recorded of each component
	// with a run step that recorded one (agentgg.ReadLifecycle); empty in the in-memory family.
	Lifecycle map[string]agentgg.Lifecycle
}

// dirDevice is a device with a device directory (the OS family of sim/fleet/inproc).
type dirDevice interface {
	Dir() string
}

// versioned is a device whose on-device versions the harness can read (sim/fleet/inproc).
type versioned interface {
	Versions() (agent.Versions, error)
}

// OnDevice returns the component set the named device runs, from its storage.
func (s *Session) OnDevice(name string) (set Set, err error) {
	s.h.Do(func() { set, err = s.onDevice(name) })
	return set, err
}

func (s *Session) onDevice(name string) (Set, error) {
	d, ok := s.h.Device(name)
	if !ok {
		return Set{}, fmt.Errorf("no device %s", name)
	}
	vd, ok := d.(versioned)
	if !ok {
		return Set{}, fmt.Errorf("device %s (%T) does not show its storage", name, d)
	}
	vs, err := vd.Versions()
	if err != nil {
		return Set{}, fmt.Errorf("device %s: %w", name, err)
	}
	active, err := vs.Active()
	if err != nil || active == "" {
		return Set{}, err
	}
	v, err := vs.Open(active)
	if err != nil {
		return Set{}, fmt.Errorf("device %s: active version %s: %w", name, active, err)
	}
	names, err := agentgg.Components(v)
	if err != nil {
		return Set{}, fmt.Errorf("device %s: %w", name, err)
	}
	set := Set{Job: agent.VersionJob(active), Components: map[string]string{}, Config: map[string]map[string]any{},
		Lifecycle: map[string]agentgg.Lifecycle{}}
	var dev agent.Device
	if dd, ok := d.(dirDevice); ok && dd.Dir() != "" {
		dev.DataDir = filepath.Join(dd.Dir(), "data") // the agent's data directory (agent.Options.Dir)
	}
	for _, c := range names {
		raw, err := v.Files.ReadFile("components/" + c + "/recipe.json")
		if err != nil {
			return Set{}, fmt.Errorf("device %s: component %s: %w", name, c, err)
		}
		var r ggwire.Recipe
		if err := json.Unmarshal(raw, &r); err != nil {
			return Set{}, fmt.Errorf("device %s: component %s: %w", name, c, err)
		}
		set.Components[c] = r.ComponentVersion
		if set.Config[c], err = agentgg.Configuration(v, c); err != nil {
			return Set{}, fmt.Errorf("device %s: %w", name, err)
		}
		l, ok, err := agentgg.ReadLifecycle(dev, c)
		if err != nil {
			return Set{}, fmt.Errorf("device %s: %w", name, err)
		}
		if ok {
			set.Lifecycle[c] = l
		}
	}
	return set, nil
}

// ReadFile reads a file of the version the named device runs, by its slash-separated path in the version (what
// a component's lifecycle script wrote where it runs, in the OS family).
func (s *Session) ReadFile(name, file string) (b []byte, err error) {
	s.h.Do(func() {
		d, ok := s.h.Device(name)
		if !ok {
			err = fmt.Errorf("no device %s", name)
			return
		}
		vd, ok := d.(versioned)
		if !ok {
			err = fmt.Errorf("device %s (%T) does not show its storage", name, d)
			return
		}
		var vs agent.Versions
		if vs, err = vd.Versions(); err != nil {
			return
		}
		var active string
		if active, err = vs.Active(); err != nil || active == "" {
			err = errors.Join(err, fmt.Errorf("device %s runs no version", name))
			return
		}
		var v agent.Version
		if v, err = vs.Open(active); err == nil {
			b, err = v.Files.ReadFile(file)
		}
	})
	return b, err
}

// Effective returns the thing's effective deployments (ListEffectiveDeployments), oldest first.
func (s *Session) Effective(thing string) (out []ggtypes.EffectiveDeployment, err error) {
	s.h.Do(func() {
		ctx, cancel := s.h.CallContext()
		defer cancel()
		pages := gg.NewListEffectiveDeploymentsPaginator(s.gg, &gg.ListEffectiveDeploymentsInput{
			CoreDeviceThingName: aws.String(thing)})
		for pages.HasMorePages() {
			var page *gg.ListEffectiveDeploymentsOutput
			if page, err = pages.NextPage(ctx); err != nil {
				return
			}
			out = append(out, page.EffectiveDeployments...)
		}
	})
	return out, err
}

// CoreDevice returns GetCoreDevice of the thing.
func (s *Session) CoreDevice(thing string) (out *gg.GetCoreDeviceOutput, err error) {
	s.h.Do(func() {
		ctx, cancel := s.h.CallContext()
		defer cancel()
		out, err = s.gg.GetCoreDevice(ctx, &gg.GetCoreDeviceInput{CoreDeviceThingName: aws.String(thing)})
	})
	return out, err
}

// Installed returns the thing's installed components (ListInstalledComponents) by name.
func (s *Session) Installed(thing string) (out map[string]ggtypes.InstalledComponent, err error) {
	s.h.Do(func() {
		ctx, cancel := s.h.CallContext()
		defer cancel()
		out = map[string]ggtypes.InstalledComponent{}
		pages := gg.NewListInstalledComponentsPaginator(s.gg, &gg.ListInstalledComponentsInput{
			CoreDeviceThingName: aws.String(thing)})
		for pages.HasMorePages() {
			var page *gg.ListInstalledComponentsOutput
			if page, err = pages.NextPage(ctx); err != nil {
				return
			}
			for _, c := range page.InstalledComponents {
				out[aws.ToString(c.ComponentName)] = c
			}
		}
	})
	return out, err
}

// Details returns the statusDetails the thing's device reported on the job's execution.
func (s *Session) Details(job, thing string) (det map[string]string, err error) {
	s.h.Do(func() {
		ctx, cancel := s.h.CallContext()
		defer cancel()
		var x *iot.DescribeJobExecutionOutput
		x, err = s.iot.DescribeJobExecution(ctx, &iot.DescribeJobExecutionInput{JobId: aws.String(jobID(job)),
			ThingName: aws.String(thing)})
		if err == nil && x.Execution != nil && x.Execution.StatusDetails != nil {
			det = x.Execution.StatusDetails.DetailsMap
		}
	})
	return det, err
}

func jobID(arn string) string { return arn[strings.LastIndexByte(arn, '/')+1:] }

// Verify implements dialect.Verifier: what each robot of the settled job says of it must hold on the device
// and in the service's views of the core device.
//
//   - A robot that succeeded runs the job's component set: the device's active set is the job's, with every
//     root component of the deployment at its version; its installed components (ListInstalledComponents)
//     list the roots at those versions. A device reported good that does not run what it was given is the
//     worst thing a harness can miss.
//   - A robot that failed after the switch with ROLLBACK (FAILED_ROLLBACK_COMPLETE), or before it
//     (FAILED_NO_STATE_CHANGE), does not run the job's set; with DO_NOTHING (FAILED_ROLLBACK_NOT_REQUESTED)
//     it does.
//   - A robot that left the target group no longer runs the job's set.
//   - A robot that succeeded has no component BROKEN: neither on the device (the lifecycle states its run-step
//     supervisor recorded, OS family) nor in ListInstalledComponents. (ERRORED passes: the step is running
//     again, and whether a look falls between its tries is the machine's timing, not the product's.) A component whose run step
//     breaks after its deployment ended leaves the deployment SUCCEEDED; the device is not good all the same.
//   - A robot whose last ended execution is the job's is HEALTHY (GetCoreDevice) when it succeeded and
//     UNHEALTHY when it failed.
func (s *Session) Verify(ctx context.Context, j dialect.Job) []string {
	var fails []string
	fail := func(format string, args ...any) { fails = append(fails, fmt.Sprintf(format, args...)) }
	id, ok := s.Deployment(j.ARN)
	if !ok {
		return []string{fmt.Sprintf("job %s is no deployment of this environment", j.ID)}
	}
	dep, err := s.gg.GetDeployment(ctx, &gg.GetDeploymentInput{DeploymentId: aws.String(id)})
	if err != nil {
		return []string{fmt.Sprintf("get deployment %s: %v", id, err)}
	}
	roots := map[string]string{}
	for name, c := range dep.Components {
		roots[name] = aws.ToString(c.ComponentVersion)
	}
	var members map[string]bool // of the target group; nil for a thing target
	if aws.ToString(dep.TargetArn) == s.groupARN {
		members = map[string]bool{}
		pages := iot.NewListThingsInThingGroupPaginator(s.iot, &iot.ListThingsInThingGroupInput{
			ThingGroupName: aws.String(GroupName), Recursive: true})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				return []string{fmt.Sprintf("list the things of %s: %v", GroupName, err)}
			}
			for _, th := range page.Things {
				members[th] = true
			}
		}
	}
	for _, r := range j.Robots {
		set, err := s.onDevice(r.Name)
		if err != nil {
			fail("robot %s: read the device: %v", r.Name, err)
			continue
		}
		det := map[string]string{}
		if x, err := s.iot.DescribeJobExecution(ctx, &iot.DescribeJobExecutionInput{JobId: aws.String(j.ID),
			ThingName: aws.String(r.Name)}); err == nil && x.Execution != nil && x.Execution.StatusDetails != nil {
			det = x.Execution.StatusDetails.DetailsMap
		}
		if members != nil && !members[r.Name] {
			// The thing left the group: the group's components were removed from it.
			for _, name := range slices.Sorted(maps.Keys(roots)) {
				if _, runs := set.Components[name]; runs && set.Job == j.ID {
					fail("robot %s left the group but still runs its component %s", r.Name, name)
				}
			}
			continue
		}
		switch r.Status {
		case RobotSucceeded, RobotCompleted:
			if set.Job != j.ID {
				fail("robot %s is %s but runs the set of job %q, not the job's", r.Name, r.Status, set.Job)
				continue
			}
			for _, name := range slices.Sorted(maps.Keys(roots)) {
				if got := set.Components[name]; got != roots[name] {
					fail("robot %s is %s but runs %s %q, the deployment says %s", r.Name, r.Status, name, got, roots[name])
				}
			}
			inst, err := s.installed(ctx, r.Name)
			if err != nil {
				fail("robot %s: list installed components: %v", r.Name, err)
				continue
			}
			for _, name := range slices.Sorted(maps.Keys(roots)) {
				if c, ok := inst[name]; !ok || aws.ToString(c.ComponentVersion) != roots[name] {
					fail("robot %s: ListInstalledComponents has %s %v, want version %s", r.Name, name,
						aws.ToString(c.ComponentVersion), roots[name])
				}
			}
			for _, name := range slices.Sorted(maps.Keys(set.Lifecycle)) {
				if l := set.Lifecycle[name]; l.State == ggwire.LifecycleBroken {
					fail("robot %s is %s but its component %s is %s on the device (its run step failed %d times, last exit %d)",
						r.Name, r.Status, name, l.State, l.Errors, l.LastExit)
				}
			}
			for _, name := range slices.Sorted(maps.Keys(inst)) {
				if c := inst[name]; c.LifecycleState == ggtypes.InstalledComponentLifecycleStateBroken {
					fail("robot %s is %s but ListInstalledComponents has %s %s (%s)", r.Name, r.Status, name,
						c.LifecycleState, aws.ToString(c.LifecycleStateDetails))
				}
			}
		case RobotFailed:
			switch det[agentgg.DetailDeploymentStatus] {
			case agentgg.StatusFailedRollbackComplete, agentgg.StatusFailedNoStateChange:
				if set.Job == j.ID {
					fail("robot %s failed (%s) but still runs the job's set", r.Name, det[agentgg.DetailDeploymentStatus])
				}
			case agentgg.StatusFailedRollbackNotRequested:
				if set.Job != j.ID {
					fail("robot %s failed with DO_NOTHING but does not run the job's set (runs %q)", r.Name, set.Job)
				}
			}
		}
		if want := health(r.Status); want != "" && s.lastEnded(ctx, r.Name, id) {
			core, err := s.gg.GetCoreDevice(ctx, &gg.GetCoreDeviceInput{CoreDeviceThingName: aws.String(r.Name)})
			switch {
			case err != nil:
				fail("robot %s: get core device: %v", r.Name, err)
			case string(core.Status) != want:
				fail("robot %s is %s, its core device %s, want %s", r.Name, r.Status, core.Status, want)
			}
		}
	}
	return fails
}

// Check runs Verify on a job (as Describe gives it) from outside the world: what a test of the harness's own
// verdicts calls.
func (s *Session) Check(j dialect.Job) (fails []string) {
	s.h.Do(func() {
		ctx, cancel := s.h.CallContext()
		defer cancel()
		fails = s.Verify(ctx, j)
	})
	return fails
}

// health is the core device status a robot's outcome makes, "" for none.
func health(status string) string {
	switch status {
	case RobotSucceeded, RobotCompleted:
		return string(ggtypes.CoreDeviceStatusHealthy)
	case RobotFailed, RobotTimedOut, RobotRejected:
		return string(ggtypes.CoreDeviceStatusUnhealthy)
	}
	return ""
}

// lastEnded reports whether deployment id is the one whose execution on thing ended last (among those that
// did not end canceled).
func (s *Session) lastEnded(ctx context.Context, thing, id string) bool {
	var effs []ggtypes.EffectiveDeployment
	pages := gg.NewListEffectiveDeploymentsPaginator(s.gg, &gg.ListEffectiveDeploymentsInput{
		CoreDeviceThingName: aws.String(thing)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return false
		}
		effs = append(effs, page.EffectiveDeployments...)
	}
	var last *ggtypes.EffectiveDeployment
	for i := range effs {
		e := &effs[i]
		switch e.CoreDeviceExecutionStatus {
		case ggtypes.EffectiveDeploymentExecutionStatusCanceled, ggtypes.EffectiveDeploymentExecutionStatusQueued,
			ggtypes.EffectiveDeploymentExecutionStatusInProgress:
			continue
		}
		if last == nil || !aws.ToTime(e.ModifiedTimestamp).Before(aws.ToTime(last.ModifiedTimestamp)) {
			last = e
		}
	}
	return last != nil && aws.ToString(last.DeploymentId) == id
}

func (s *Session) installed(ctx context.Context, thing string) (map[string]ggtypes.InstalledComponent, error) {
	out := map[string]ggtypes.InstalledComponent{}
	pages := gg.NewListInstalledComponentsPaginator(s.gg, &gg.ListInstalledComponentsInput{
		CoreDeviceThingName: aws.String(thing)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if errors.As(err, new(*ggtypes.ResourceNotFoundException)) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		for _, c := range page.InstalledComponents {
			out[aws.ToString(c.ComponentName)] = c
		}
	}
	return out, nil
}

var _ dialect.Verifier = (*Session)(nil)
