package appconfig

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/store"
)

// Deployment states (DeploymentState) and environment states (EnvironmentState).
const (
	StateDeploying   = "DEPLOYING"
	StateBaking      = "BAKING"
	StateComplete    = "COMPLETE"
	StateRollingBack = "ROLLING_BACK"
	StateRolledBack  = "ROLLED_BACK"
	StateReverted    = "REVERTED"
	EnvReady         = "READY_FOR_DEPLOYMENT"
)

// What started a rollback (TriggeredBy).
const (
	TriggerUser      = "USER"
	TriggerAppConfig = "APPCONFIG"
	TriggerAlarm     = "CLOUDWATCH_ALARM"
)

// deploymentRec is the dialect's record of a deployment: what was deployed, with the strategy and the content as
// they were at StartDeployment, so a strategy changed or a version deleted later changes nothing of it. Its
// progress is the engine deployment EngineID.
type deploymentRec struct {
	ApplicationId          string   `json:"ApplicationId"`
	EnvironmentId          string   `json:"EnvironmentId"`
	DeploymentNumber       int      `json:"DeploymentNumber"`
	EngineID               string   `json:"EngineID"`
	Strategy               Strategy `json:"Strategy"`
	HoldLastStep           bool     `json:"HoldLastStep,omitempty"`
	ConfigurationProfileId string   `json:"ConfigurationProfileId"`
	ConfigurationName      string   `json:"ConfigurationName"`
	LocationUri            string   `json:"LocationUri"`
	ConfigurationVersion   string   `json:"ConfigurationVersion"`
	Description            string   `json:"Description,omitempty"`
	VersionLabel           string   `json:"VersionLabel,omitempty"`
	ProfileType            string   `json:"ProfileType"`
	ContentType            string   `json:"ContentType"`
	Content                []byte   `json:"Content"`
	// Trigger and AlarmArn say what ended the deployment early: the user's stop or an alarm.
	Trigger  string `json:"Trigger,omitempty"`
	AlarmArn string `json:"AlarmArn,omitempty"`
	// RevertedAt is when a COMPLETE deployment was reverted (zero: never).
	RevertedAt time.Time `json:"RevertedAt,omitzero"`
}

func (d *deploymentRec) key() string {
	return deploymentKey(d.ApplicationId, d.EnvironmentId, d.DeploymentNumber)
}

// pacing is the engine's growth policy of the deployment's strategy.
func (d *deploymentRec) pacing() engine.PacingSpec {
	p := engine.Growth(d.Strategy.GrowthType == "EXPONENTIAL", d.Strategy.GrowthFactor,
		time.Duration(d.Strategy.DeploymentDurationInMinutes)*time.Minute)
	p.HoldLastStep = d.HoldLastStep
	return p
}

// Schedule is a strategy's step schedule: the percentage each step reaches and when, counted from the start of
// the deployment. Steps are spaced D/N apart (N steps over the duration D), or D/(N+1) with holdLastStep.
func Schedule(st Strategy, holdLastStep bool) (at []time.Duration, percent []float64) {
	d := deploymentRec{Strategy: st, HoldLastStep: holdLastStep}
	p := d.pacing()
	steps := p.GrowthSteps()
	iv := p.StepInterval()
	for k, pct := range steps {
		at = append(at, iv*time.Duration(k+1))
		percent = append(percent, pct)
	}
	return at, percent
}

// progress is a deployment as AppConfig shows it, read off its engine deployment at now.
type progress struct {
	State      string
	Percentage float64
	Events     []event // oldest first
	Completed  time.Time
	Started    time.Time
}

type event struct {
	EventType   string         `json:"EventType"`
	TriggeredBy string         `json:"TriggeredBy"`
	Description string         `json:"Description"`
	OccurredAt  awsapi.ISO8601 `json:"OccurredAt"`
	// ActionInvocations are the extensions' actions; none run here.
	ActionInvocations []struct{} `json:"ActionInvocations"`
}

// read translates an engine deployment into AppConfig's state, percentage and event log: the one place where
// engine states become AppConfig's.
func (d *deploymentRec) read(ed engine.Deployment, now time.Time) progress {
	var p progress
	start := ed.StartedAt
	if start.IsZero() {
		start = ed.CreatedAt
	}
	p.Started = start
	end := now
	if ed.Status.Terminal() {
		end = ed.EndedAt
	}
	switch ed.Status {
	case engine.StatusPending, engine.StatusInProgress:
		p.State = StateDeploying
	case engine.StatusBaking:
		p.State = StateBaking
	case engine.StatusSucceeded:
		p.State = StateComplete
		if !d.RevertedAt.IsZero() {
			p.State = StateReverted
		}
	default: // rolled back by an alarm, canceled by a stop
		p.State = StateRolledBack
	}
	add := func(typ, by, desc string, at time.Time) {
		p.Events = append(p.Events, event{EventType: typ, TriggeredBy: by, Description: desc,
			OccurredAt: awsapi.ISO8601(at), ActionInvocations: []struct{}{}})
	}
	add("DEPLOYMENT_STARTED", TriggerUser, "Deployment started", start)
	pacing := d.pacing()
	steps := pacing.GrowthSteps()
	iv := pacing.StepInterval()
	for k, pct := range steps {
		at := start.Add(iv * time.Duration(k+1))
		if iv == 0 {
			at = start
		}
		if at.After(end) {
			break
		}
		p.Percentage = pct
		add("PERCENTAGE_UPDATED", TriggerAppConfig, fmt.Sprintf("Configuration available to %.2f%% of clients", pct),
			at)
	}
	growthDone := pacing.GrowthDone(start)
	baked := ed.Status == engine.StatusBaking || ed.Status == engine.StatusSucceeded || !ed.BakeUntil.IsZero()
	if baked && !growthDone.After(end) {
		add("BAKE_TIME_STARTED", TriggerAppConfig, "Deployment bake time started", growthDone)
	}
	switch p.State {
	case StateComplete, StateReverted:
		p.Percentage = 100
		p.Completed = ed.EndedAt
		add("DEPLOYMENT_COMPLETED", TriggerAppConfig, "Deployment completed", ed.EndedAt)
		if p.State == StateReverted {
			add("REVERT_COMPLETED", TriggerUser, "Revert completed", d.RevertedAt)
		}
	case StateBaking:
		p.Percentage = 100
	case StateRolledBack:
		p.Completed = ed.EndedAt
		by, desc := TriggerUser, "Rollback initiated by user"
		if d.Trigger == TriggerAlarm {
			by, desc = TriggerAlarm, "Rollback initiated by CloudWatch Alarm: "+d.AlarmArn
		}
		add("ROLLBACK_STARTED", by, desc, ed.EndedAt)
		add("ROLLBACK_COMPLETED", TriggerAppConfig, "Rollback completed", ed.EndedAt)
	}
	return p
}

// deploymentOut is the Deployment shape.
type deploymentOut struct {
	ApplicationId               string          `json:"ApplicationId"`
	EnvironmentId               string          `json:"EnvironmentId"`
	DeploymentStrategyId        string          `json:"DeploymentStrategyId"`
	ConfigurationProfileId      string          `json:"ConfigurationProfileId"`
	DeploymentNumber            int             `json:"DeploymentNumber"`
	ConfigurationName           string          `json:"ConfigurationName"`
	ConfigurationLocationUri    string          `json:"ConfigurationLocationUri"`
	ConfigurationVersion        string          `json:"ConfigurationVersion"`
	Description                 string          `json:"Description,omitempty"`
	DeploymentDurationInMinutes int             `json:"DeploymentDurationInMinutes"`
	GrowthType                  string          `json:"GrowthType"`
	GrowthFactor                float64         `json:"GrowthFactor"`
	FinalBakeTimeInMinutes      int             `json:"FinalBakeTimeInMinutes"`
	State                       string          `json:"State"`
	EventLog                    []event         `json:"EventLog"`
	PercentageComplete          float64         `json:"PercentageComplete"`
	StartedAt                   awsapi.ISO8601  `json:"StartedAt"`
	CompletedAt                 *awsapi.ISO8601 `json:"CompletedAt,omitempty"`
	AppliedExtensions           []struct{}      `json:"AppliedExtensions"`
	VersionLabel                string          `json:"VersionLabel,omitempty"`
}

type deploymentSummary struct {
	DeploymentNumber            int             `json:"DeploymentNumber"`
	ConfigurationProfileId      string          `json:"ConfigurationProfileId"`
	ConfigurationName           string          `json:"ConfigurationName"`
	ConfigurationVersion        string          `json:"ConfigurationVersion"`
	DeploymentDurationInMinutes int             `json:"DeploymentDurationInMinutes"`
	GrowthType                  string          `json:"GrowthType"`
	GrowthFactor                float64         `json:"GrowthFactor"`
	FinalBakeTimeInMinutes      int             `json:"FinalBakeTimeInMinutes"`
	State                       string          `json:"State"`
	PercentageComplete          float64         `json:"PercentageComplete"`
	StartedAt                   awsapi.ISO8601  `json:"StartedAt"`
	CompletedAt                 *awsapi.ISO8601 `json:"CompletedAt,omitempty"`
	VersionLabel                string          `json:"VersionLabel,omitempty"`
}

// progressOf reads a deployment's progress from the engine (outside any store transaction).
func (s *Service) progressOf(d *deploymentRec) (progress, error) {
	ed, err := s.engine.Deployment(d.EngineID)
	if err != nil {
		return progress{}, fmt.Errorf("deployment %s: %w", d.EngineID, err)
	}
	return d.read(ed, s.clock.Now()), nil
}

func (s *Service) deploymentOut(d *deploymentRec) (deploymentOut, error) {
	p, err := s.progressOf(d)
	if err != nil {
		return deploymentOut{}, err
	}
	log := slices.Clone(p.Events)
	slices.Reverse(log) // newest first
	out := deploymentOut{ApplicationId: d.ApplicationId, EnvironmentId: d.EnvironmentId,
		DeploymentStrategyId: d.Strategy.Id, ConfigurationProfileId: d.ConfigurationProfileId,
		DeploymentNumber: d.DeploymentNumber, ConfigurationName: d.ConfigurationName,
		ConfigurationLocationUri: d.LocationUri, ConfigurationVersion: d.ConfigurationVersion,
		Description: d.Description, DeploymentDurationInMinutes: d.Strategy.DeploymentDurationInMinutes,
		GrowthType: d.Strategy.GrowthType, GrowthFactor: d.Strategy.GrowthFactor,
		FinalBakeTimeInMinutes: d.Strategy.FinalBakeTimeInMinutes, State: p.State, EventLog: log,
		PercentageComplete: p.Percentage, StartedAt: awsapi.ISO8601(p.Started),
		AppliedExtensions: []struct{}{}, VersionLabel: d.VersionLabel}
	if !p.Completed.IsZero() {
		c := awsapi.ISO8601(p.Completed)
		out.CompletedAt = &c
	}
	return out, nil
}

// deploymentsOf returns the deployments of an environment, oldest first.
func deploymentsOf(tx store.Tx, app, env string) ([]*deploymentRec, error) {
	var out []*deploymentRec
	err := tx.ForEach(bucketDeployments, app+"/"+env+"/", func(k string, _ []byte) error {
		d, err := awsapi.LoadKey[deploymentRec](tx, bucketDeployments, k)
		if d != nil {
			out = append(out, d)
		}
		return err
	})
	return out, err
}

func (s *Service) latestDeployment(tx store.Tx, app, env string) (*deploymentRec, error) {
	ds, err := deploymentsOf(tx, app, env)
	if err != nil || len(ds) == 0 {
		return nil, err
	}
	return ds[len(ds)-1], nil
}

// environmentState follows the environment's latest deployment (called outside store transactions).
func (s *Service) environmentState(latest *deploymentRec) string {
	if latest == nil {
		return EnvReady
	}
	p, err := s.progressOf(latest)
	if err != nil {
		return EnvReady
	}
	switch p.State {
	case StateDeploying, StateBaking:
		return StateDeploying
	case StateRolledBack, StateReverted, StateRollingBack:
		return p.State
	}
	return EnvReady
}

func (s *Service) loadDeployment(tx store.Tx, app, env string, n int) (*deploymentRec, error) {
	if _, err := s.loadEnv(tx, app, env); err != nil {
		return nil, err
	}
	d, err := awsapi.LoadKey[deploymentRec](tx, bucketDeployments, deploymentKey(app, env, n))
	if err == nil && d == nil {
		err = notFound(strconv.Itoa(n), "Deployment %d not found in environment %s", n, env)
	}
	return d, err
}

func (s *Service) startDeployment(r *awsapi.Request) (any, error) {
	var in struct {
		ApplicationId          string            `json:"ApplicationId"`
		EnvironmentId          string            `json:"EnvironmentId"`
		DeploymentStrategyId   string            `json:"DeploymentStrategyId"`
		ConfigurationProfileId string            `json:"ConfigurationProfileId"`
		ConfigurationVersion   string            `json:"ConfigurationVersion"`
		Description            string            `json:"Description"`
		Tags                   map[string]string `json:"Tags"`
		LatestDeploymentNumber *int              `json:"LatestDeploymentNumber"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	s.deploys.Lock()
	defer s.deploys.Unlock()
	s.watchLocked()
	var d deploymentRec
	var latest *deploymentRec
	err := s.store.View(func(tx store.Tx) error {
		if _, err := s.loadEnv(tx, in.ApplicationId, in.EnvironmentId); err != nil {
			return err
		}
		p, err := s.loadProfile(tx, in.ApplicationId, in.ConfigurationProfileId)
		if err != nil {
			return err
		}
		st, err := s.loadStrategy(tx, in.DeploymentStrategyId)
		if err != nil {
			return err
		}
		if p.LocationUri != "hosted" {
			return badRequestf("Configuration profile %s is at %s; only hosted configurations are deployed here",
				p.Id, p.LocationUri)
		}
		n, err := strconv.Atoi(in.ConfigurationVersion)
		if err != nil {
			return badRequestf("Configuration version %s is not a hosted configuration version number",
				in.ConfigurationVersion)
		}
		v, err := s.loadVersion(tx, p.ApplicationId, p.Id, n)
		if err != nil {
			return err
		}
		if e := validate(p.Validators, v.Content); e != nil {
			return e
		}
		if latest, err = s.latestDeployment(tx, in.ApplicationId, in.EnvironmentId); err != nil {
			return err
		}
		num := 1
		if latest != nil {
			num = latest.DeploymentNumber + 1
		}
		if in.LatestDeploymentNumber != nil && *in.LatestDeploymentNumber != num-1 {
			return conflict("Deployment number %d already exists", num-1)
		}
		d = deploymentRec{ApplicationId: in.ApplicationId, EnvironmentId: in.EnvironmentId, DeploymentNumber: num,
			EngineID: fmt.Sprintf("appconfig-%s-%s-%d", in.ApplicationId, in.EnvironmentId, num), Strategy: st,
			HoldLastStep: s.hold, ConfigurationProfileId: p.Id, ConfigurationName: p.Name, LocationUri: p.LocationUri,
			ConfigurationVersion: in.ConfigurationVersion, Description: in.Description,
			VersionLabel: v.VersionLabel, ProfileType: p.Type, ContentType: v.ContentType, Content: v.Content}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, ok := s.engine.Active(in.ApplicationId + "/" + in.EnvironmentId); ok {
		return nil, conflict("Deployment number %d already exists in environment %s and is in progress",
			latest.DeploymentNumber, in.EnvironmentId)
	}
	spec := engine.Spec{ID: d.EngineID, Kind: Kind, Group: in.ApplicationId + "/" + in.EnvironmentId,
		OnActive: engine.Reject, Pacing: d.pacing(),
		Bake: time.Duration(d.Strategy.FinalBakeTimeInMinutes) * time.Minute}
	_, err = s.engine.CreateWith(spec, func(tx store.Tx) error {
		return s.rec.Insert(tx, bucketDeployments, kindDeploy, d.key(),
			s.deploymentARN(d.ApplicationId, d.EnvironmentId, d.DeploymentNumber), &d, in.Tags)
	})
	if errors.Is(err, engine.ErrConflict) {
		return nil, conflict("Environment %s has a deployment in progress", in.EnvironmentId)
	}
	if err != nil {
		return nil, err
	}
	return s.deploymentOut(&d)
}

func (s *Service) getDeployment(r *awsapi.Request) (any, error) {
	app, _ := r.Input["ApplicationId"].(string)
	env, _ := r.Input["EnvironmentId"].(string)
	s.watch()
	var d *deploymentRec
	err := s.store.View(func(tx store.Tx) (err error) {
		d, err = s.loadDeployment(tx, app, env, intInput(r, "DeploymentNumber"))
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.deploymentOut(d)
}

func (s *Service) listDeployments(r *awsapi.Request) (any, error) {
	var in struct {
		ApplicationId string `json:"ApplicationId"`
		EnvironmentId string `json:"EnvironmentId"`
		MaxResults    int    `json:"MaxResults"`
		NextToken     string `json:"NextToken"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	s.watch()
	var ds []*deploymentRec
	err := s.store.View(func(tx store.Tx) (err error) {
		if _, err := s.loadEnv(tx, in.ApplicationId, in.EnvironmentId); err != nil {
			return err
		}
		ds, err = deploymentsOf(tx, in.ApplicationId, in.EnvironmentId)
		return err
	})
	if err != nil {
		return nil, err
	}
	slices.Reverse(ds) // descending deployment number
	page, next, err := awsapi.Page(ds, func(d *deploymentRec) string {
		return fmt.Sprintf("%010d", 1<<31-d.DeploymentNumber)
	}, r.Operation+"/"+in.ApplicationId+"/"+in.EnvironmentId, in.NextToken, cmpOr(in.MaxResults, 50))
	if err != nil {
		return nil, badRequest("The next token is not valid")
	}
	out := listOut[deploymentSummary]{Items: []deploymentSummary{}, NextToken: next}
	for _, d := range page {
		o, err := s.deploymentOut(d)
		if err != nil {
			return nil, err
		}
		out.Items = append(out.Items, deploymentSummary{DeploymentNumber: o.DeploymentNumber,
			ConfigurationProfileId: o.ConfigurationProfileId, ConfigurationName: o.ConfigurationName,
			ConfigurationVersion: o.ConfigurationVersion, DeploymentDurationInMinutes: o.DeploymentDurationInMinutes,
			GrowthType: o.GrowthType, GrowthFactor: o.GrowthFactor, FinalBakeTimeInMinutes: o.FinalBakeTimeInMinutes,
			State: o.State, PercentageComplete: o.PercentageComplete, StartedAt: o.StartedAt,
			CompletedAt: o.CompletedAt, VersionLabel: o.VersionLabel})
	}
	return out, nil
}

func (s *Service) stopDeployment(r *awsapi.Request) (any, error) {
	app, _ := r.Input["ApplicationId"].(string)
	env, _ := r.Input["EnvironmentId"].(string)
	allowRevert, _ := r.Input["AllowRevert"].(bool)
	n := intInput(r, "DeploymentNumber")
	s.deploys.Lock()
	defer s.deploys.Unlock()
	s.watchLocked()
	var d *deploymentRec
	var latest *deploymentRec
	err := s.store.View(func(tx store.Tx) (err error) {
		if d, err = s.loadDeployment(tx, app, env, n); err != nil {
			return err
		}
		latest, err = s.latestDeployment(tx, app, env)
		return err
	})
	if err != nil {
		return nil, err
	}
	p, err := s.progressOf(d)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	switch p.State {
	case StateDeploying, StateBaking:
		if err := s.saveDeployment(d, func(d *deploymentRec) { d.Trigger = TriggerUser }); err != nil {
			return nil, err
		}
		if _, err := s.engine.Cancel(d.EngineID, "stopped by the user"); err != nil &&
			!errors.Is(err, engine.ErrInvalidTransition) {
			return nil, err
		}
	case StateComplete:
		if !allowRevert {
			return nil, badRequestf("Deployment %d is COMPLETE: only a deployment in progress can be stopped, "+
				"or a completed one reverted with Allow-Revert", n)
		}
		if latest.DeploymentNumber != d.DeploymentNumber {
			return nil, badRequestf("Deployment %d is not the latest deployment of environment %s and cannot be "+
				"reverted", n, env)
		}
		if now.Sub(p.Completed) > RevertWindow {
			return nil, badRequestf("Deployment %d completed more than 72 hours ago and can no longer be reverted", n)
		}
		if err := s.saveDeployment(d, func(d *deploymentRec) { d.RevertedAt = now }); err != nil {
			return nil, err
		}
	default:
		return nil, badRequestf("Deployment %d is %s and cannot be stopped", n, p.State)
	}
	return s.deploymentOut(d)
}

// saveDeployment changes a deployment's record (and d) with fn.
func (s *Service) saveDeployment(d *deploymentRec, fn func(*deploymentRec)) error {
	return s.store.Batch(func(tx store.Tx) error {
		cur, err := awsapi.LoadKey[deploymentRec](tx, bucketDeployments, d.key())
		if err != nil {
			return err
		}
		if cur == nil {
			return notFound(strconv.Itoa(d.DeploymentNumber), "Deployment %d not found", d.DeploymentNumber)
		}
		fn(cur)
		fn(d)
		return awsapi.PutJSON(tx, bucketDeployments, d.key(), cur)
	})
}

// watch evaluates the alarms and rolls back every deployment in progress whose environment has a monitor in
// ALARM.
func (s *Service) watch() {
	s.deploys.Lock()
	defer s.deploys.Unlock()
	s.watchLocked()
}

func (s *Service) watchLocked() {
	now := s.clock.Now()
	s.alarms.evaluate(now)
	for _, ed := range s.engine.Deployments(Kind) {
		if ed.Status.Terminal() {
			continue
		}
		var d *deploymentRec
		var env *envRec
		_ = s.store.View(func(tx store.Tx) (err error) {
			d, err = findByEngineID(tx, ed.ID)
			if err != nil || d == nil {
				return err
			}
			env, err = awsapi.LoadKey[envRec](tx, bucketEnvs, d.ApplicationId+"/"+d.EnvironmentId)
			return err
		})
		if d == nil || env == nil {
			continue
		}
		for _, m := range env.Monitors {
			if s.alarms.state(m.AlarmArn) != AlarmStateAlarm {
				continue
			}
			if err := s.saveDeployment(d, func(d *deploymentRec) {
				d.Trigger, d.AlarmArn = TriggerAlarm, m.AlarmArn
			}); err != nil {
				break
			}
			_, _ = s.engine.Alarm(ed.ID, "CloudWatch alarm "+m.AlarmArn+" is in ALARM")
			break
		}
	}
}

// findByEngineID finds the record of an engine deployment from its id (appconfig-<app>-<env>-<n>).
func findByEngineID(tx store.Tx, id string) (*deploymentRec, error) {
	rest, ok := strings.CutPrefix(id, "appconfig-")
	if !ok {
		return nil, nil
	}
	// Ids are [a-z0-9]{4,7}, without dashes: split on them.
	parts := splitDash(rest)
	if len(parts) != 3 {
		return nil, nil
	}
	app, env := parts[0], parts[1]
	n, err := strconv.Atoi(parts[2])
	if err != nil {
		return nil, nil
	}
	return awsapi.LoadKey[deploymentRec](tx, bucketDeployments, deploymentKey(app, env, n))
}

func splitDash(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '-' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
