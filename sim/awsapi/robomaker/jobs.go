package robomaker

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/store"
)

// Idempotency token scopes.
const (
	scopeCreate = "CreateDeploymentJob"
	scopeSync   = "SyncDeploymentJob"
)

// newJob is everything a deployment job is made from, checked and resolved.
type newJob struct {
	fleet   *fleetRec
	targets []jobTarget
	apps    []deploymentApplicationConfig
	config  deploymentConfig
	payload rmwire.Document // Job is filled in when the job has its ARN
	tags    map[string]string
	scope   string
	token   string
	hash    string
}

func (s *Service) createDeploymentJob(r *awsapi.Request) (any, error) {
	var in struct {
		DeploymentConfig             *deploymentConfig             `json:"deploymentConfig"`
		ClientRequestToken           string                        `json:"clientRequestToken"`
		Fleet                        string                        `json:"fleet"`
		DeploymentApplicationConfigs []deploymentApplicationConfig `json:"deploymentApplicationConfigs"`
		Tags                         map[string]string             `json:"tags"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	var cfg deploymentConfig
	if in.DeploymentConfig != nil {
		cfg = *in.DeploymentConfig
	}
	if cfg.RobotDeploymentTimeoutInSeconds == nil {
		t := int64(defaultTimeout)
		cfg.RobotDeploymentTimeoutInSeconds = &t
	}
	if t := *cfg.RobotDeploymentTimeoutInSeconds; t < minTimeout || t > maxTimeout {
		return nil, invalidParameter("robotDeploymentTimeoutInSeconds must be between %d (1 minute) and %d "+
			"(7 days), not %d.", minTimeout, maxTimeout, t)
	}
	hash := awsapi.RequestHash(r.Input, "clientRequestToken")

	s.jobs.Lock()
	defer s.jobs.Unlock()
	if out, done, err := s.replay(scopeCreate, in.ClientRequestToken, hash, true); done || err != nil {
		return out, err
	}
	nj := newJob{apps: in.DeploymentApplicationConfigs, config: cfg, tags: in.Tags, scope: scopeCreate,
		token: in.ClientRequestToken, hash: hash}
	err := s.store.View(func(tx store.Tx) error {
		f, err := s.loadFleet(tx, in.Fleet)
		if err != nil {
			return err
		}
		if f == nil {
			return notFound("Fleet %s does not exist.", in.Fleet)
		}
		nj.fleet = f
		robots, err := fleetRobots(tx, f.Key)
		if err != nil {
			return err
		}
		if len(robots) == 0 {
			return invalidParameter("Fleet %s has no robots registered.", f.Name)
		}
		for _, rb := range robots {
			nj.targets = append(nj.targets, jobTarget{Name: rb.Name, ARN: rb.ARN})
		}
		ac := in.DeploymentApplicationConfigs[0]
		app, err := s.loadApp(tx, ac.Application)
		if err != nil {
			return err
		}
		if app == nil {
			return notFound("Robot application %s does not exist.", ac.Application)
		}
		v, err := loadVersion(tx, app, ac.ApplicationVersion)
		if err != nil {
			return err
		}
		if v == nil {
			return notFound("Version %s of robot application %s does not exist.", ac.ApplicationVersion, app.Name)
		}
		nj.payload = rmwire.Document{Fleet: f.ARN, Application: app.ARN, Name: app.Name,
			Version: v.Version, TimeoutSeconds: *cfg.RobotDeploymentTimeoutInSeconds,
			Launch: rmwire.Launch{PackageName: ac.LaunchConfig.PackageName,
				LaunchFile: ac.LaunchConfig.LaunchFile, PreLaunchFile: ac.LaunchConfig.PreLaunchFile,
				PostLaunchFile:       ac.LaunchConfig.PostLaunchFile,
				EnvironmentVariables: ac.LaunchConfig.EnvironmentVariables}}
		for _, src := range v.Sources {
			nj.payload.Sources = append(nj.payload.Sources, rmwire.Source{Architecture: src.Architecture,
				Bucket: src.Bucket, Key: src.Key, ETag: src.ETag})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if dc := cfg.DownloadConditionFile; dc != nil {
		obj := &rmwire.Object{Bucket: dc.Bucket, Key: dc.Key, ETag: dc.ETag}
		if s.objects != nil {
			etag, err := s.objects.ETag(dc.Bucket, dc.Key)
			if err != nil {
				return nil, invalidParameter("The download condition file s3://%s/%s does not exist or cannot "+
					"be read: %v", dc.Bucket, dc.Key, err)
			}
			if obj.ETag == "" {
				// The robot checks the script it downloads against the ETag it had when the job was created.
				obj.ETag = etag
			}
		}
		nj.payload.DownloadCondition = obj
	}
	j, err := s.startJob(nj)
	if err != nil {
		return nil, err
	}
	out := s.jobOutput(j, engine.Deployment{Status: engine.StatusPending}, s.executions(j.ID))
	return struct {
		deploymentJob
		Tags map[string]string `json:"tags,omitempty"`
	}{out, in.Tags}, nil
}

// replay answers a request whose client token was seen before: the job it created (done), or
// IdempotentParameterMismatchException when the token came with another request. withTags adds the job's tags,
// as CreateDeploymentJob's output has them.
func (s *Service) replay(scope, token, hash string, withTags bool) (any, bool, error) {
	var (
		j    *jobRec
		tags map[string]string
	)
	err := s.store.View(func(tx store.Tx) error {
		key, found, err := s.tokens.Lookup(tx, scope, token, hash)
		if errors.Is(err, awsapi.ErrTokenMismatch) {
			return idempotentMismatch()
		}
		if err != nil || !found {
			return err
		}
		if j, err = loadJobKey(tx, key); err != nil || j == nil {
			return err
		}
		tags, err = s.rec.Tags(tx, j.ARN)
		return err
	})
	if err != nil || j == nil || j.expired(s.clock.Now()) {
		return nil, false, err
	}
	out := s.describeJob(j)
	if !withTags {
		return out, true, nil
	}
	return struct {
		deploymentJob
		Tags map[string]string `json:"tags,omitempty"`
	}{out, tags}, true, nil
}

// startJob creates a job's engine deployment and records the job, its fleet's last job and its client token in
// the same store transaction (engine.CreateWith): when the commit fails, neither the job nor the deployment
// exists, in memory or on disk, and the token is unused.
func (s *Service) startJob(nj newJob) (*jobRec, error) {
	if d, active := s.engine.Active(nj.fleet.ARN); active {
		return nil, concurrentDeployment("Fleet %s already has deployment job %s in progress.", nj.fleet.Name,
			s.rec.ARN("deployment-job/"+d.ID))
	}
	live := 0
	for _, d := range s.engine.Deployments(Kind) {
		if !d.Status.Terminal() {
			live++
		}
	}
	if live >= s.quotas.ConcurrentJobs {
		return nil, limitExceeded("The account has reached its limit of %d concurrent deployment jobs.",
			s.quotas.ConcurrentJobs)
	}
	id, err := s.newJobID()
	if err != nil {
		return nil, err
	}
	j := jobRec{ID: id, ARN: s.rec.ARN("deployment-job/" + id), Fleet: nj.fleet.ARN, FleetName: nj.fleet.Name,
		CreatedAt: s.clock.Now(), Config: nj.config, Apps: nj.apps, Targets: nj.targets, Payload: nj.payload}
	j.Payload.Job = j.ARN
	spec, err := s.spec(&j)
	if err != nil {
		return nil, err
	}
	_, err = s.engine.CreateWith(spec, func(tx store.Tx) error {
		key, _, err := s.rec.NextKey(tx)
		if err != nil {
			return err
		}
		j.Key = key
		if err := s.rec.Insert(tx, bucketJobs, kindJob, key, j.ARN, &j, nj.tags, "job/"+id); err != nil {
			return err
		}
		f, err := s.loadFleet(tx, j.Fleet)
		if err != nil {
			return err
		}
		if f == nil {
			return fmt.Errorf("fleet %s is gone", j.Fleet)
		}
		f.LastJob = key
		if err := awsapi.PutJSON(tx, bucketFleets, f.Key, f); err != nil {
			return err
		}
		return s.tokens.Record(tx, nj.scope, nj.token, nj.hash, key)
	})
	if errors.Is(err, engine.ErrConflict) {
		return nil, concurrentDeployment("Fleet %s already has a deployment job in progress.", nj.fleet.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("create deployment %s: %w", j.ID, err)
	}
	return &j, nil
}

// dropJob removes a job record that never became an engine deployment; the fleet's last job becomes the newest
// of its other jobs.
func (s *Service) dropJob(tx store.Tx, j *jobRec) error {
	var f fleetRec
	if ok, err := s.fleetByARN(tx, j.Fleet, &f); err != nil {
		return err
	} else if ok && f.LastJob == j.Key {
		f.LastJob = ""
		if err := awsapi.Each(tx, bucketJobs, func(other *jobRec) error {
			if other.Fleet == f.ARN && other.Key != j.Key {
				f.LastJob = other.Key // keys ascend, so the last one seen is the newest
			}
			return nil
		}); err != nil {
			return err
		}
		if err := awsapi.PutJSON(tx, bucketFleets, f.Key, &f); err != nil {
			return err
		}
	}
	return s.rec.Remove(tx, bucketJobs, j.Key, j.ARN, "job/"+j.ID)
}

// fleetByARN reads a fleet record by ARN into f.
func (s *Service) fleetByARN(tx store.Tx, arn string, f *fleetRec) (bool, error) {
	got, err := s.loadFleet(tx, arn)
	if err != nil || got == nil {
		return false, err
	}
	*f = *got
	return true, nil
}

// spec is the engine deployment of a job.
func (s *Service) spec(j *jobRec) (engine.Spec, error) {
	payload, err := json.Marshal(j.Payload)
	if err != nil {
		return engine.Spec{}, fmt.Errorf("encode job document: %w", err)
	}
	doc, err := json.Marshal(wire.Document{Kind: rmwire.Kind, Payload: payload})
	if err != nil {
		return engine.Spec{}, fmt.Errorf("encode job document: %w", err)
	}
	pct := int32(defaultBatchSize)
	if p := j.Config.ConcurrentDeploymentPercentage; p != nil {
		pct = *p
	}
	targets := make([]string, len(j.Targets))
	for i, t := range j.Targets {
		targets[i] = t.Name
	}
	spec := engine.Spec{
		ID: j.ID, Kind: Kind, Group: j.Fleet, OnActive: engine.Reject, Targets: targets, Document: doc,
		Pacing: engine.Batch(float64(pct)),
		Timeouts: engine.Timeouts{
			Execution: time.Duration(*j.Config.RobotDeploymentTimeoutInSeconds) * time.Second,
		},
	}
	if p := j.Config.FailureThresholdPercentage; p != nil {
		spec.Abort = []engine.AbortCriterion{{
			FailureTypes: []engine.ExecStatus{engine.ExecFailed, engine.ExecTimedOut, engine.ExecRejected},
			Percent:      float64(*p), MinExecuted: 1, OfTotal: true, AtLeast: true,
		}}
	}
	return spec, nil
}

// recover creates the engine deployment of every job recorded without one (a crash between the two writes).
// A job the engine now refuses (its fleet has since got another active job) is removed: its creation was never
// acknowledged.
func (s *Service) recover() error {
	var live, orphans []jobRec
	now := s.clock.Now()
	err := s.store.View(func(tx store.Tx) error {
		return awsapi.Each(tx, bucketJobs, func(j *jobRec) error {
			if !j.expired(now) {
				live = append(live, *j)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, j := range live {
		if _, err := s.engine.Deployment(j.ID); errors.Is(err, engine.ErrNotFound) {
			orphans = append(orphans, j)
		}
	}
	for i := range orphans {
		j := &orphans[i]
		spec, err := s.spec(j)
		if err != nil {
			return err
		}
		if _, err := s.engine.Create(spec); err != nil {
			if !errors.Is(err, engine.ErrConflict) {
				return fmt.Errorf("recover job %s: %w", j.ID, err)
			}
			if err := s.store.Update(func(tx store.Tx) error { return s.dropJob(tx, j) }); err != nil {
				return fmt.Errorf("drop job %s: %w", j.ID, err)
			}
		}
	}
	return nil
}

// describeJob renders a job with its current status.
func (s *Service) describeJob(j *jobRec) deploymentJob {
	d, err := s.engine.Deployment(j.ID)
	if err != nil {
		d = engine.Deployment{Status: engine.StatusPending}
	}
	return s.jobOutput(j, d, s.executions(j.ID))
}

// executions returns a function listing a deployment's executions (none when the engine has no such deployment).
func (s *Service) executions(id string) func() []engine.Execution {
	return func() []engine.Execution {
		execs, _ := s.engine.Executions(id)
		return execs
	}
}

func (s *Service) jobOutput(j *jobRec, d engine.Deployment, execs func() []engine.Execution) deploymentJob {
	status, code, reason := s.jobStatus(d, execs)
	cfg := j.Config
	return deploymentJob{ARN: j.ARN, Fleet: j.Fleet, Status: status, DeploymentApplicationConfigs: j.Apps,
		DeploymentConfig: &cfg, FailureReason: reason, FailureCode: code, CreatedAt: epoch(j.CreatedAt)}
}

// jobByARN loads a job that has not expired, or answers ResourceNotFoundException.
func (s *Service) jobByARN(arn string) (*jobRec, error) {
	var j *jobRec
	err := s.store.View(func(tx store.Tx) error {
		var err error
		j, err = s.loadJob(tx, arn)
		return err
	})
	if err != nil {
		return nil, err
	}
	if j == nil || j.expired(s.clock.Now()) {
		return nil, notFound("Deployment job %s does not exist.", arn)
	}
	return j, nil
}

func (s *Service) describeDeploymentJob(r *awsapi.Request) (any, error) {
	var in struct {
		Job string `json:"job"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	j, err := s.jobByARN(in.Job)
	if err != nil {
		return nil, err
	}
	var tags map[string]string
	if err := s.store.View(func(tx store.Tx) error {
		tags, err = s.rec.Tags(tx, j.ARN)
		return err
	}); err != nil {
		return nil, err
	}
	d, derr := s.engine.Deployment(j.ID)
	execs, _ := s.engine.Executions(j.ID)
	if derr != nil {
		d = engine.Deployment{Status: engine.StatusPending}
	}
	robotARN := make(map[string]string, len(j.Targets))
	for _, t := range j.Targets {
		robotARN[t.Name] = t.ARN
	}
	summary := make([]robotDeployment, 0, len(j.Targets))
	if len(execs) == 0 {
		for _, t := range j.Targets {
			summary = append(summary, robotDeployment{ARN: t.ARN, Status: robotPending})
		}
	}
	for _, x := range execs {
		summary = append(summary, s.robotDeployment(x, robotARN[x.Device], j.ARN))
	}
	return struct {
		deploymentJob
		RobotDeploymentSummary []robotDeployment `json:"robotDeploymentSummary"`
		Tags                   map[string]string `json:"tags,omitempty"`
	}{s.jobOutput(j, d, func() []engine.Execution { return execs }), summary, tags}, nil
}

func (s *Service) listDeploymentJobs(r *awsapi.Request) (any, error) {
	var in listInput
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	q, err := in.query("ListDeploymentJobs", 200, "status", "fleetName")
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	var recs []jobRec
	err = s.store.View(func(tx store.Tx) error {
		return awsapi.Each(tx, bucketJobs, func(j *jobRec) error {
			if !j.expired(now) && q.match("fleetName", j.FleetName) {
				recs = append(recs, *j)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	// The engine is asked once the store transaction is over (see fleetSummaries).
	var all []keyed[deploymentJob]
	for i := range recs {
		if out := s.describeJob(&recs[i]); q.match("status", out.Status) {
			all = append(all, keyed[deploymentJob]{recs[i].Key, out})
		}
	}
	jobs, next, err := pageOf(q, all)
	if err != nil {
		return nil, err
	}
	return struct {
		DeploymentJobs []deploymentJob `json:"deploymentJobs"`
		NextToken      string          `json:"nextToken,omitempty"`
	}{jobs, next}, nil
}

func (s *Service) cancelDeploymentJob(r *awsapi.Request) (any, error) {
	var in struct {
		Job string `json:"job"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	s.jobs.Lock()
	defer s.jobs.Unlock()
	j, err := s.jobByARN(in.Job)
	if err != nil {
		return nil, err
	}
	if _, err := s.engine.Cancel(j.ID, "canceled by CancelDeploymentJob"); err != nil {
		if errors.Is(err, engine.ErrInvalidTransition) || errors.Is(err, engine.ErrNotFound) {
			return nil, invalidParameter("Deployment job %s is %s and cannot be canceled.", j.ARN,
				s.describeJob(j).Status)
		}
		return nil, fmt.Errorf("cancel %s: %w", j.ID, err)
	}
	return struct{}{}, nil
}

func (s *Service) syncDeploymentJob(r *awsapi.Request) (any, error) {
	var in struct {
		ClientRequestToken string `json:"clientRequestToken"`
		Fleet              string `json:"fleet"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	hash := awsapi.RequestHash(r.Input, "clientRequestToken")
	s.jobs.Lock()
	defer s.jobs.Unlock()
	if out, done, err := s.replay(scopeSync, in.ClientRequestToken, hash, false); done || err != nil {
		return out, err
	}
	now := s.clock.Now()
	nj := newJob{scope: scopeSync, token: in.ClientRequestToken, hash: hash}
	var (
		jobs   []jobRec
		robots []robotRec
	)
	err := s.store.View(func(tx store.Tx) error {
		f, err := s.loadFleet(tx, in.Fleet)
		if err != nil {
			return err
		}
		if f == nil {
			return notFound("Fleet %s does not exist.", in.Fleet)
		}
		nj.fleet = f
		if err := awsapi.Each(tx, bucketJobs, func(j *jobRec) error {
			if j.Fleet == f.ARN && !j.expired(now) {
				jobs = append(jobs, *j)
			}
			return nil
		}); err != nil {
			return err
		}
		robots, err = fleetRobots(tx, f.Key)
		return err
	})
	if err != nil {
		return nil, err
	}
	// The engine is asked once the store transaction is over (see fleetSummaries). The reference is the fleet's
	// latest job that succeeded.
	var ref *jobRec
	for i := range jobs {
		if d, err := s.engine.Deployment(jobs[i].ID); err == nil && d.Status == engine.StatusSucceeded {
			ref = &jobs[i]
		}
	}
	if ref == nil {
		return nil, notFound("Fleet %s has no successful deployment job to synchronize with.", nj.fleet.Name)
	}
	for _, rb := range robots {
		x, ok := s.engine.LatestForDevice(rb.Name)
		if ok && x.Deployment == ref.ID && x.Status == engine.ExecSucceeded {
			continue
		}
		nj.targets = append(nj.targets, jobTarget{Name: rb.Name, ARN: rb.ARN})
	}
	if len(nj.targets) == 0 {
		return nil, invalidParameter("Every robot of fleet %s is in sync with deployment job %s.", nj.fleet.Name,
			ref.ARN)
	}
	nj.apps, nj.config, nj.payload = ref.Apps, ref.Config, ref.Payload
	j, err := s.startJob(nj)
	if err != nil {
		return nil, err
	}
	return s.jobOutput(j, engine.Deployment{Status: engine.StatusPending}, s.executions(j.ID)), nil
}
