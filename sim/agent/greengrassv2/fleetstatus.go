package greengrassv2

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/clock"
	ggwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/greengrassv2"
)

// StatusCheckInterval is how often, in the agent's time, the kind looks at its components' lifecycle states
// between executions (Kind.Watch).
const StatusCheckInterval = 10 * time.Second

// Lifecycle is a component's lifecycle state as the run-step supervisor records it.
type Lifecycle struct {
	// State is STARTING, RUNNING, ERRORED, BROKEN or FINISHED.
	State string
	// Errors is how many times in a row the run step failed; LastExit the exit status of the last failure.
	Errors, LastExit int
}

// ReadLifecycle reads component name's lifecycle state in the device's StateDir; ok is false when the
// supervisor has recorded none.
func ReadLifecycle(d agent.Device, name string) (l Lifecycle, ok bool, err error) {
	dir := StateDir(d)
	if dir == "" {
		return Lifecycle{}, false, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return Lifecycle{}, false, nil
	}
	if err != nil {
		return Lifecycle{}, false, fmt.Errorf("component %s: lifecycle state: %w", name, err)
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return Lifecycle{}, false, fmt.Errorf("component %s: lifecycle state: empty", name)
	}
	l.State = f[0]
	if len(f) > 1 {
		l.Errors, _ = strconv.Atoi(f[1])
	}
	if len(f) > 2 {
		l.LastExit, _ = strconv.Atoi(f[2])
	}
	return l, true, nil
}

// clearLifecycle forgets the lifecycle states of a set whose run steps were stopped, so the next set's start
// is not read as the old one's states (OS family; nothing in the in-memory family).
func clearLifecycle(d agent.Device) error {
	dir := StateDir(d)
	if dir == "" {
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("clear lifecycle states: %w", err)
	}
	return nil
}

var _ agent.Watcher = Kind{}

// Watch implements agent.Watcher: the kind's fleet status service. While no execution is in flight it looks
// at the running set's lifecycle states every StatusCheckInterval and, when they differ from what the cloud
// last acknowledged (a component ERRORED or BROKEN in its run after its deployment ended, or another set
// runs), publishes the device's FleetStatus (ggwire.FleetStatusPath); the first after the agent starts has
// trigger NUCLEUS_LAUNCH. A component with a run step is in the state its supervisor recorded (STARTING
// before it recorded one); one without is RUNNING, as ListInstalledComponents shows it. The device is
// UNHEALTHY while a component is BROKEN. A publish that fails is reported (agent.EventError) and sent again
// at the next look.
//
// Only the OS family has run steps that live on after their deployment; in the in-memory family, where
// Starting runs each run step to its end, and without a transport that calls the cloud, Watch returns nil.
func (k Kind) Watch(w *agent.Watch) func(ctx context.Context) {
	caller, ok := w.APICaller()
	if w.Device().DataDir == "" || !ok {
		return nil
	}
	fsw := &statusWatch{w: w, caller: caller, trigger: ggwire.TriggerNucleusLaunch, since: map[string]seenState{}}
	return func(ctx context.Context) {
		for {
			fsw.look(ctx)
			if _, err := clock.Wait(ctx, w.Clock(), orDefault(k.StatusInterval, StatusCheckInterval)); err != nil {
				return
			}
		}
	}
}

// seenState is a component's state as the watcher saw it first.
type seenState struct {
	key string
	at  time.Time
}

type statusWatch struct {
	w       *agent.Watch
	caller  agent.APICaller
	trigger string
	seq     int64
	acked   string               // the key of the last status the cloud acknowledged
	since   map[string]seenState // by component
}

// look publishes the device's status when it changed since the last acknowledged one.
func (s *statusWatch) look(ctx context.Context) {
	idle, err := s.w.Idle()
	if err != nil {
		s.w.Error(fmt.Errorf("fleet status: %w", err))
		return
	}
	if !idle {
		return
	}
	st, key, ok, err := s.status()
	if err != nil {
		s.w.Error(fmt.Errorf("fleet status: %w", err))
		return
	}
	if !ok || key == s.acked {
		return
	}
	s.seq++
	st.SequenceNumber, st.Trigger = s.seq, s.trigger
	if err := s.caller.CallAPI(ctx, ggwire.SigningNameFleetStatus, http.MethodPost, ggwire.FleetStatusPath(st.Thing), st,
		nil); err != nil {
		if ctx.Err() == nil {
			s.w.Error(fmt.Errorf("fleet status: publish: %w", err))
		}
		return
	}
	s.acked, s.trigger = key, ggwire.TriggerComponentStatusChange
}

// status returns the device's fleet status now and a key that changes with what it says; ok is false when
// the device runs no component set.
func (s *statusWatch) status() (ggwire.FleetStatus, string, bool, error) {
	d := s.w.Device()
	vs := s.w.Executors().Versions
	active, err := vs.Active()
	if err != nil || active == "" {
		return ggwire.FleetStatus{}, "", false, err
	}
	v, err := vs.Open(active)
	if err != nil {
		return ggwire.FleetStatus{}, "", false, nil // the device runs no version it still has
	}
	raw, err := v.Files.ReadFile(setFile)
	if err != nil {
		return ggwire.FleetStatus{}, "", false, nil // another kind's version
	}
	var set componentSet
	if err := json.Unmarshal(raw, &set); err != nil {
		return ggwire.FleetStatus{}, "", false, fmt.Errorf("version %s: %s: %w", v.ID, setFile, err)
	}
	now := s.w.Clock().Now()
	p := Platform(d)
	st := ggwire.FleetStatus{Thing: d.Thing, Platform: p["os"], Architecture: p["architecture"],
		OverallDeviceStatus: ggwire.DeviceHealthy, Timestamp: now.UnixMilli(), JobID: agent.VersionJob(active),
		Components: []ggwire.ComponentStatus{}}
	var rec record
	if inst, err := s.installed(st.JobID); err == nil && inst != nil {
		if json.Unmarshal(inst.Record, &rec) == nil {
			st.DeploymentID = rec.Deployment
		}
	}
	keys := []string{active}
	for _, name := range set.Order {
		c := ggwire.ComponentStatus{ComponentName: name, Status: ggwire.LifecycleRunning,
			IsRoot: set.Roots == nil || slices.Contains(set.Roots, name)}
		if r, err := v.Files.ReadFile("components/" + name + "/recipe.json"); err == nil {
			var recipe struct {
				ComponentVersion string `json:"ComponentVersion"`
			}
			if json.Unmarshal(r, &recipe) == nil {
				c.Version = recipe.ComponentVersion
			}
		}
		if _, err := v.Files.Stat("components/" + name + "/run.sh"); err == nil {
			l, ok, err := ReadLifecycle(d, name)
			if err != nil {
				return ggwire.FleetStatus{}, "", false, err
			}
			c.Status = ggwire.LifecycleStarting
			if ok {
				c.Status, c.Errors = l.State, l.Errors
			}
			switch c.Status {
			case ggwire.LifecycleBroken:
				c.StatusDetails = fmt.Sprintf("run step exited %d; BROKEN after %d errors in a row", l.LastExit, l.Errors)
				c.StatusCodes = []string{CodeComponentBroken}
				st.OverallDeviceStatus = ggwire.DeviceUnhealthy
			case ggwire.LifecycleErrored:
				c.StatusDetails = fmt.Sprintf("run step exited %d (error %d of %d)", l.LastExit, l.Errors, MaxStepErrors)
			}
		}
		k := fmt.Sprintf("%s=%s/%d", name, c.Status, c.Errors)
		if seen, ok := s.since[name]; !ok || seen.key != active+" "+k {
			s.since[name] = seenState{key: active + " " + k, at: now}
		}
		c.LastStatusChangeTime = s.since[name].at.UnixMilli()
		keys = append(keys, k)
		st.Components = append(st.Components, c)
	}
	for name := range s.since {
		if !slices.Contains(set.Order, name) {
			delete(s.since, name)
		}
	}
	return st, strings.Join(keys, ";"), true, nil
}

// installed returns the device state's record of the committed version when it is the one of job, nil
// otherwise.
func (s *statusWatch) installed(job string) (*agent.Installed, error) {
	st, err := s.w.Executors().State.Load()
	if err != nil || st.Current == nil || st.Current.JobID != job {
		return nil, err
	}
	return st.Current, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
