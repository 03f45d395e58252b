package greengrassv2

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	ggwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/greengrassv2"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/store"
)

// Store layout of deployments. A deployment is kept at its creation sequence in bucketDeployments, so the bucket
// lists deployments oldest first; the shared records find it by its ARN and by "deployment/<id>". A target's
// revision counter and latest deployment are kept in bucketTargets under the target ARN.
const (
	bucketDeployments = "greengrass.deployments" // <seq> → deploymentRec
	bucketTargets     = "greengrass.targets"     // <target ARN> → targetRec
	kindDeployment    = "deployment"
	typeDeployment    = "deployment"
	typeCoreDevice    = "coreDevice"
	typeThing         = "thing"
	typeThingGroup    = "thingGroup"
)

// Deployment statuses (DeploymentStatus).
const (
	statusActive    = "ACTIVE"
	statusCompleted = "COMPLETED"
	statusCanceled  = "CANCELED"
	statusFailed    = "FAILED"
	statusInactive  = "INACTIVE"
)

// deploymentRec is one deployment revision as the dialect keeps it; its rollout is the engine deployment JobID,
// which is also the IoT job the IoT dialect shows.
type deploymentRec struct {
	Key             string                      `json:"key"`
	ID              string                      `json:"id"`
	ARN             string                      `json:"arn"`
	JobID           string                      `json:"jobId"`
	TargetARN       string                      `json:"targetArn"`
	ParentTargetARN string                      `json:"parentTargetArn,omitempty"`
	Group           bool                        `json:"group,omitempty"` // the target is a thing group
	Name            string                      `json:"name,omitempty"`
	Revision        string                      `json:"revision"`
	CreatedAt       time.Time                   `json:"createdAt"`
	Components      map[string]ggwire.Component `json:"components"`
	Policies        deploymentPolicies          `json:"policies"`
	JobConfig       *jobConfig                  `json:"jobConfig,omitempty"`
	// Removal, when set, names the thing this record removes the components of TargetARN's revision from, the
	// thing having left the group: it is no deployment of the API (no list, get or effective deployment shows
	// it), only the job that tells the device, and a run of its core device.
	Removal string `json:"removal,omitempty"`
}

// targetRec is what a target has had: its revision count and its latest deployment ("" once deleted).
type targetRec struct {
	Revisions int    `json:"revisions"`
	Latest    string `json:"latest,omitempty"`
}

// deploymentPolicies is DeploymentPolicies.
type deploymentPolicies struct {
	FailureHandlingPolicy         string                   `json:"failureHandlingPolicy,omitempty"`
	ComponentUpdatePolicy         *ggwire.UpdatePolicy     `json:"componentUpdatePolicy,omitempty"`
	ConfigurationValidationPolicy *ggwire.ValidationPolicy `json:"configurationValidationPolicy,omitempty"`
}

// jobConfig is DeploymentIoTJobConfiguration.
type jobConfig struct {
	JobExecutionsRolloutConfig *rolloutConfig `json:"jobExecutionsRolloutConfig,omitempty"`
	AbortConfig                *abortConfig   `json:"abortConfig,omitempty"`
	TimeoutConfig              *timeoutConfig `json:"timeoutConfig,omitempty"`
}

type rolloutConfig struct {
	ExponentialRate  *exponentialRate `json:"exponentialRate,omitempty"`
	MaximumPerMinute *int             `json:"maximumPerMinute,omitempty"`
}

type exponentialRate struct {
	BaseRatePerMinute    int                  `json:"baseRatePerMinute"`
	IncrementFactor      float64              `json:"incrementFactor"`
	RateIncreaseCriteria rateIncreaseCriteria `json:"rateIncreaseCriteria"`
}

type rateIncreaseCriteria struct {
	NumberOfNotifiedThings  *int `json:"numberOfNotifiedThings,omitempty"`
	NumberOfSucceededThings *int `json:"numberOfSucceededThings,omitempty"`
}

type abortConfig struct {
	CriteriaList []abortCriteria `json:"criteriaList"`
}

type abortCriteria struct {
	FailureType               string  `json:"failureType"`
	Action                    string  `json:"action"`
	ThresholdPercentage       float64 `json:"thresholdPercentage"`
	MinNumberOfExecutedThings int     `json:"minNumberOfExecutedThings"`
}

type timeoutConfig struct {
	InProgressTimeoutInMinutes *int64 `json:"inProgressTimeoutInMinutes,omitempty"`
}

// DefaultRatePerMinute is the rollout rate of a jobExecutionsRolloutConfig without maximumPerMinute, and the cap
// of an exponential rate, as IoT Jobs has it.
const DefaultRatePerMinute = 1000

// pacing is the engine's release policy for c: none releases every execution at once.
func (c *jobConfig) pacing() (engine.PacingSpec, error) {
	if c == nil || c.JobExecutionsRolloutConfig == nil {
		return engine.AllAtOnce(), nil
	}
	rc := c.JobExecutionsRolloutConfig
	limit := DefaultRatePerMinute
	if rc.MaximumPerMinute != nil {
		limit = *rc.MaximumPerMinute
	}
	er := rc.ExponentialRate
	if er == nil {
		return engine.Rate(limit), nil
	}
	crit := er.RateIncreaseCriteria
	const member = "iotJobConfiguration.jobExecutionsRolloutConfig.exponentialRate.rateIncreaseCriteria"
	switch {
	case (crit.NumberOfNotifiedThings == nil) == (crit.NumberOfSucceededThings == nil):
		return engine.PacingSpec{}, fieldInvalid(member,
			"Specify exactly one of numberOfNotifiedThings and numberOfSucceededThings.")
	case crit.NumberOfNotifiedThings != nil:
		return engine.ExponentialRate(er.BaseRatePerMinute, er.IncrementFactor, *crit.NumberOfNotifiedThings,
			false, limit), nil
	default:
		return engine.ExponentialRate(er.BaseRatePerMinute, er.IncrementFactor, *crit.NumberOfSucceededThings,
			true, limit), nil
	}
}

// abort is the engine's abort criteria for c: IoT's, which count the executions released so far and fire when
// the failed percentage exceeds the threshold.
func (c *jobConfig) abort() ([]engine.AbortCriterion, error) {
	if c == nil || c.AbortConfig == nil {
		return nil, nil
	}
	var out []engine.AbortCriterion
	for i, a := range c.AbortConfig.CriteriaList {
		var types []engine.ExecStatus
		switch a.FailureType {
		case "FAILED":
			types = []engine.ExecStatus{engine.ExecFailed}
		case "REJECTED":
			types = []engine.ExecStatus{engine.ExecRejected}
		case "TIMED_OUT":
			types = []engine.ExecStatus{engine.ExecTimedOut}
		case "ALL":
			types = []engine.ExecStatus{engine.ExecFailed, engine.ExecRejected, engine.ExecTimedOut}
		default:
			return nil, fieldInvalid(fmt.Sprintf("iotJobConfiguration.abortConfig.criteriaList.%d.failureType", i),
				"failureType %q is not FAILED, REJECTED, TIMED_OUT or ALL.", a.FailureType)
		}
		out = append(out, engine.AbortCriterion{FailureTypes: types, Percent: a.ThresholdPercentage,
			MinExecuted: a.MinNumberOfExecutedThings})
	}
	return out, nil
}

func (c *jobConfig) inProgressTimeout() time.Duration {
	if c == nil || c.TimeoutConfig == nil || c.TimeoutConfig.InProgressTimeoutInMinutes == nil {
		return 0
	}
	return time.Duration(*c.TimeoutConfig.InProgressTimeoutInMinutes) * time.Minute
}

// target is a parsed targetArn.
type target struct {
	ARN   string
	Name  string
	Group bool
}

// parseTarget reads a thing or thing-group ARN (the model's pattern has already been checked).
func parseTarget(arn string) (target, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) == 6 && parts[2] == "iot" {
		if name, ok := strings.CutPrefix(parts[5], "thinggroup/"); ok && name != "" {
			return target{ARN: arn, Name: name, Group: true}, nil
		}
		if name, ok := strings.CutPrefix(parts[5], "thing/"); ok && name != "" {
			return target{ARN: arn, Name: name}, nil
		}
	}
	return target{}, fieldInvalid("targetArn", "The targetArn %s is not a thing or thing-group ARN.", arn)
}

// members returns the things t deploys to: the thing, or the thing group's members down its hierarchy.
func (s *Service) members(t target) ([]string, error) {
	if s.registry == nil {
		return nil, notFound(t.ARN, typeThing, "The target %s does not exist: the service has no thing registry.",
			t.ARN)
	}
	if !t.Group {
		_, found, err := s.registry.Thing(t.Name)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, notFound(t.ARN, typeThing, "The thing %s does not exist.", t.Name)
		}
		return []string{t.Name}, nil
	}
	things, found, err := s.registry.GroupMembers(t.ARN, true)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, notFound(t.ARN, typeThingGroup, "The thing group %s does not exist.", t.Name)
	}
	return things, nil
}

func (s *Service) deploymentARN(id string) string { return s.rec.ARN("deployments:" + id) }

func (s *Service) jobARN(id string) string {
	return "arn:aws:iot:" + s.region + ":" + s.account + ":job/" + id
}

type createDeploymentInput struct {
	TargetARN           string                      `json:"targetArn"`
	DeploymentName      string                      `json:"deploymentName"`
	Components          map[string]ggwire.Component `json:"components"`
	IoTJobConfiguration *jobConfig                  `json:"iotJobConfiguration"`
	DeploymentPolicies  *deploymentPolicies         `json:"deploymentPolicies"`
	ParentTargetARN     string                      `json:"parentTargetArn"`
	Tags                map[string]string           `json:"tags"`
	ClientToken         string                      `json:"clientToken"`
}

type createDeploymentOutput struct {
	DeploymentID string `json:"deploymentId"`
	IoTJobID     string `json:"iotJobId"`
	IoTJobARN    string `json:"iotJobArn"`
}

const scopeCreateDeployment = "CreateDeployment"

// createDeployment starts a new revision for the target: its job replaces the target's previous one (engine
// Supersede), and a thing-group target's job is continuous.
func (s *Service) createDeployment(r *awsapi.Request) (any, error) {
	var in createDeploymentInput
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	t, err := parseTarget(in.TargetARN)
	if err != nil {
		return nil, err
	}
	if in.ParentTargetARN != "" && !t.Group {
		return nil, fieldInvalid("parentTargetArn", "A subdeployment's target must be a thing group.")
	}
	pacing, err := in.IoTJobConfiguration.pacing()
	if err != nil {
		return nil, err
	}
	abort, err := in.IoTJobConfiguration.abort()
	if err != nil {
		return nil, err
	}
	var policies deploymentPolicies
	if in.DeploymentPolicies != nil {
		policies = *in.DeploymentPolicies
	}

	s.deploying.Lock()
	defer s.deploying.Unlock()
	if in.ClientToken != "" {
		var cached string
		var found bool
		err := s.store.View(func(tx store.Tx) error {
			var err error
			cached, found, err = s.tokens.Lookup(tx, scopeCreateDeployment, in.ClientToken, "")
			return err
		})
		if err != nil {
			return nil, err
		}
		if found {
			return json.RawMessage(cached), nil
		}
	}
	err = s.store.View(func(tx store.Tx) error {
		for _, name := range slices.Sorted(maps.Keys(in.Components)) {
			v := in.Components[name].Version
			if _, _, found, err := s.rec.Lookup(tx, "version/"+name+"/"+v); err != nil {
				return err
			} else if !found {
				return notFound(s.versionARN(name, v), typeComponentVersion,
					"The component %s version %s does not exist.", name, v)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	things, err := s.members(t)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().UTC()
	rec := deploymentRec{ID: s.ids.UUID(), JobID: s.ids.UUID(), TargetARN: t.ARN, ParentTargetARN: in.ParentTargetARN,
		Group: t.Group, Name: in.DeploymentName, CreatedAt: now, Components: in.Components, Policies: policies,
		JobConfig: in.IoTJobConfiguration}
	if rec.Components == nil {
		rec.Components = map[string]ggwire.Component{}
	}
	rec.ARN = s.deploymentARN(rec.ID)
	var tr targetRec
	if err := s.store.View(func(tx store.Tx) error {
		_, err := awsapi.GetJSON(tx, bucketTargets, t.ARN, &tr)
		return err
	}); err != nil {
		return nil, err
	}
	rec.Revision = strconv.Itoa(tr.Revisions + 1)
	doc := rec.document()
	if err := doc.Validate(); err != nil {
		return nil, fieldInvalid("components", "%s", err)
	}
	env, err := doc.Envelope()
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("encode job document: %w", err)
	}
	out := createDeploymentOutput{DeploymentID: rec.ID, IoTJobID: rec.JobID, IoTJobARN: s.jobARN(rec.JobID)}
	spec := engine.Spec{ID: rec.JobID, Kind: Kind, Group: t.ARN, OnActive: engine.Supersede, Targets: things,
		Continuous: t.Group, Document: data, Pacing: pacing, Abort: abort,
		Timeouts: engine.Timeouts{InProgress: in.IoTJobConfiguration.inProgressTimeout()}}
	_, err = s.engine.CreateWith(spec, func(tx store.Tx) error {
		seq, _, err := s.rec.NextKey(tx)
		if err != nil {
			return err
		}
		rec.Key = seq
		if err := s.rec.Insert(tx, bucketDeployments, kindDeployment, seq, rec.ARN, &rec, in.Tags,
			"deployment/"+rec.ID); err != nil {
			return err
		}
		tr.Revisions++
		tr.Latest = rec.ID
		if err := awsapi.PutJSON(tx, bucketTargets, t.ARN, &tr); err != nil {
			return err
		}
		if in.ClientToken == "" {
			return nil
		}
		cached, err := json.Marshal(out)
		if err != nil {
			return err
		}
		return s.tokens.Record(tx, scopeCreateDeployment, in.ClientToken, "", string(cached))
	})
	if errors.Is(err, engine.ErrInvalid) {
		return nil, validation(reasonOther, err.Error())
	}
	if err != nil {
		return nil, fmt.Errorf("create deployment %s: %w", rec.ID, err)
	}
	if t.Group {
		// A thing that joined or left the group after its members were read, and before the revision was the
		// target's latest, was told to the previous revision: read the members again.
		if err := s.follow(&rec); err != nil {
			return nil, fmt.Errorf("follow the members of %s: %w", t.ARN, err)
		}
	}
	return out, nil
}

// document is the job document of the revision.
func (d *deploymentRec) document() ggwire.Document {
	doc := ggwire.Document{DeploymentID: d.ID, RevisionID: d.Revision, TargetARN: d.TargetARN,
		CreationTimestamp: d.CreatedAt.UnixMilli(), Components: d.Components,
		FailureHandlingPolicy: d.Policies.FailureHandlingPolicy}
	if p := d.Policies.ComponentUpdatePolicy; p != nil {
		doc.ComponentUpdatePolicy = *p
	}
	if p := d.Policies.ConfigurationValidationPolicy; p != nil {
		doc.ConfigurationValidationPolicy = *p
	}
	return doc.WithDefaults()
}

// deploymentStatus maps the revision's job to DeploymentStatus: ACTIVE while the job runs (a thing group's
// always, being continuous), INACTIVE once a newer revision superseded it, CANCELED when canceled or aborted,
// COMPLETED or FAILED when a thing's one execution ended.
func deploymentStatus(d engine.Deployment) string {
	switch d.Status {
	case engine.StatusSucceeded:
		return statusCompleted
	case engine.StatusFailed:
		return statusFailed
	case engine.StatusCanceled, engine.StatusAborted, engine.StatusRolledBack:
		return statusCanceled
	case engine.StatusSuperseded:
		return statusInactive
	}
	return statusActive
}

// loadDeployment reads a deployment by id, or ResourceNotFoundException.
func (s *Service) loadDeployment(tx store.Tx, id string) (*deploymentRec, error) {
	_, key, found, err := s.rec.Lookup(tx, "deployment/"+id)
	if err != nil {
		return nil, err
	}
	if found {
		d, err := awsapi.LoadKey[deploymentRec](tx, bucketDeployments, key)
		if err != nil || (d != nil && d.Removal == "") {
			return d, err
		}
	}
	return nil, notFound(id, typeDeployment, "The deployment %s does not exist.", id)
}

// latestFor reports whether d is its target's latest revision.
func latestFor(tx store.Tx, d *deploymentRec) (bool, error) {
	var tr targetRec
	_, err := awsapi.GetJSON(tx, bucketTargets, d.TargetARN, &tr)
	return tr.Latest == d.ID, err
}

// status is the deployment's DeploymentStatus from its job.
func (s *Service) status(d *deploymentRec) (string, error) {
	job, err := s.engine.Deployment(d.JobID)
	if err != nil {
		return "", fmt.Errorf("job of deployment %s: %w", d.ID, err)
	}
	return deploymentStatus(job), nil
}

type getDeploymentOutput struct {
	TargetARN           string                      `json:"targetArn"`
	RevisionID          string                      `json:"revisionId"`
	DeploymentID        string                      `json:"deploymentId"`
	DeploymentName      string                      `json:"deploymentName,omitempty"`
	DeploymentStatus    string                      `json:"deploymentStatus"`
	IoTJobID            string                      `json:"iotJobId"`
	IoTJobARN           string                      `json:"iotJobArn"`
	Components          map[string]ggwire.Component `json:"components"`
	DeploymentPolicies  deploymentPolicies          `json:"deploymentPolicies"`
	IoTJobConfiguration *jobConfig                  `json:"iotJobConfiguration,omitempty"`
	CreationTimestamp   awsapi.EpochSeconds         `json:"creationTimestamp"`
	IsLatestForTarget   bool                        `json:"isLatestForTarget"`
	ParentTargetARN     string                      `json:"parentTargetArn,omitempty"`
	Tags                map[string]string           `json:"tags,omitempty"`
}

func (s *Service) getDeployment(r *awsapi.Request) (any, error) {
	id, _ := r.Input["deploymentId"].(string)
	var out getDeploymentOutput
	err := s.store.View(func(tx store.Tx) error {
		d, err := s.loadDeployment(tx, id)
		if err != nil {
			return err
		}
		latest, err := latestFor(tx, d)
		if err != nil {
			return err
		}
		tags, err := s.rec.Tags(tx, d.ARN)
		if err != nil {
			return err
		}
		doc := d.document()
		out = getDeploymentOutput{TargetARN: d.TargetARN, RevisionID: d.Revision, DeploymentID: d.ID,
			DeploymentName: d.Name, IoTJobID: d.JobID, IoTJobARN: s.jobARN(d.JobID), Components: d.Components,
			DeploymentPolicies: deploymentPolicies{FailureHandlingPolicy: doc.FailureHandlingPolicy,
				ComponentUpdatePolicy:         &doc.ComponentUpdatePolicy,
				ConfigurationValidationPolicy: &doc.ConfigurationValidationPolicy},
			IoTJobConfiguration: d.JobConfig, CreationTimestamp: awsapi.EpochSeconds(d.CreatedAt),
			IsLatestForTarget: latest, ParentTargetARN: d.ParentTargetARN, Tags: tags}
		return nil
	})
	if err != nil {
		return nil, err
	}
	d := deploymentRec{ID: out.DeploymentID, JobID: out.IoTJobID}
	if out.DeploymentStatus, err = s.status(&d); err != nil {
		return nil, err
	}
	return out, nil
}

type deploymentItem struct {
	TargetARN         string              `json:"targetArn"`
	RevisionID        string              `json:"revisionId"`
	DeploymentID      string              `json:"deploymentId"`
	DeploymentName    string              `json:"deploymentName,omitempty"`
	CreationTimestamp awsapi.EpochSeconds `json:"creationTimestamp"`
	DeploymentStatus  string              `json:"deploymentStatus"`
	IsLatestForTarget bool                `json:"isLatestForTarget"`
	ParentTargetARN   string              `json:"parentTargetArn,omitempty"`
	key               string
}

// listDeployments lists deployments oldest first: with historyFilter LATEST_ONLY (the default) only each
// target's latest revision, filtered by targetArn and parentTargetArn.
func (s *Service) listDeployments(r *awsapi.Request) (any, error) {
	var in struct {
		TargetARN       string `json:"targetArn"`
		HistoryFilter   string `json:"historyFilter"`
		ParentTargetARN string `json:"parentTargetArn"`
		listInput
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	var items []deploymentItem
	var jobs []string
	err := s.store.View(func(tx store.Tx) error {
		return awsapi.Each(tx, bucketDeployments, func(d *deploymentRec) error {
			if d.Removal != "" || (in.TargetARN != "" && d.TargetARN != in.TargetARN) ||
				(in.ParentTargetARN != "" && d.ParentTargetARN != in.ParentTargetARN) {
				return nil
			}
			latest, err := latestFor(tx, d)
			if err != nil || (!latest && in.HistoryFilter != "ALL") {
				return err
			}
			items = append(items, deploymentItem{TargetARN: d.TargetARN, RevisionID: d.Revision,
				DeploymentID: d.ID, DeploymentName: d.Name, CreationTimestamp: awsapi.EpochSeconds(d.CreatedAt),
				IsLatestForTarget: latest, ParentTargetARN: d.ParentTargetARN, key: d.Key})
			jobs = append(jobs, d.JobID)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	for i := range items {
		d := deploymentRec{ID: items[i].DeploymentID, JobID: jobs[i]}
		if items[i].DeploymentStatus, err = s.status(&d); err != nil {
			return nil, err
		}
	}
	scope := "ListDeployments/" + in.TargetARN + "/" + in.ParentTargetARN + "/" + in.HistoryFilter
	page, next, err := listPage(items, func(d deploymentItem) string { return d.key },
		scope, in.listInput)
	if err != nil {
		return nil, err
	}
	return struct {
		Deployments []deploymentItem `json:"deployments"`
		NextToken   string           `json:"nextToken,omitempty"`
	}{page, next}, nil
}

// cancelDeployment cancels the revision's job: devices that have not received it never will; devices that have
// keep it.
func (s *Service) cancelDeployment(r *awsapi.Request) (any, error) {
	id, _ := r.Input["deploymentId"].(string)
	var d *deploymentRec
	if err := s.store.View(func(tx store.Tx) (err error) {
		d, err = s.loadDeployment(tx, id)
		return err
	}); err != nil {
		return nil, err
	}
	_, err := s.engine.Cancel(d.JobID, "canceled by CancelDeployment")
	if errors.Is(err, engine.ErrInvalidTransition) {
		return nil, conflict(id, typeDeployment, "The deployment %s is not active.", id)
	}
	if err != nil {
		return nil, err
	}
	return struct {
		Message string `json:"message"`
	}{"SUCCESS"}, nil
}

// deleteDeployment deletes a revision that is not ACTIVE; the devices keep what they run. A target whose latest
// revision is deleted has no latest one.
func (s *Service) deleteDeployment(r *awsapi.Request) (any, error) {
	id, _ := r.Input["deploymentId"].(string)
	s.deploying.Lock()
	defer s.deploying.Unlock()
	var d *deploymentRec
	if err := s.store.View(func(tx store.Tx) (err error) {
		d, err = s.loadDeployment(tx, id)
		return err
	}); err != nil {
		return nil, err
	}
	// A revision that is not ACTIVE never is again, so the check holds for the write that follows.
	st, err := s.status(d)
	if err != nil {
		return nil, err
	}
	if st == statusActive {
		return nil, conflict(id, typeDeployment, "The deployment %s is active: cancel it before deleting it.", id)
	}
	err = s.store.Batch(func(tx store.Tx) error {
		var tr targetRec
		if _, err := awsapi.GetJSON(tx, bucketTargets, d.TargetARN, &tr); err != nil {
			return err
		}
		if tr.Latest == d.ID {
			tr.Latest = ""
			if err := awsapi.PutJSON(tx, bucketTargets, d.TargetARN, &tr); err != nil {
				return err
			}
		}
		return s.rec.Remove(tx, bucketDeployments, d.Key, d.ARN, "deployment/"+d.ID)
	})
	return nil, err
}

type effectiveDeployment struct {
	DeploymentID              string              `json:"deploymentId"`
	DeploymentName            string              `json:"deploymentName"`
	IoTJobID                  string              `json:"iotJobId"`
	IoTJobARN                 string              `json:"iotJobArn"`
	TargetARN                 string              `json:"targetArn"`
	CoreDeviceExecutionStatus string              `json:"coreDeviceExecutionStatus"`
	Reason                    string              `json:"reason,omitempty"`
	CreationTimestamp         awsapi.EpochSeconds `json:"creationTimestamp"`
	ModifiedTimestamp         awsapi.EpochSeconds `json:"modifiedTimestamp"`
	StatusDetails             *effectiveDetails   `json:"statusDetails,omitempty"`
	key                       string
}

type effectiveDetails struct {
	ErrorStack []string `json:"errorStack,omitempty"`
	ErrorTypes []string `json:"errorTypes,omitempty"`
}

// statusDetails keys the device's agent reports (the nucleus's DeploymentService).
const (
	detailDeploymentStatus = "detailed-deployment-status"
	detailFailureCause     = "deployment-failure-cause"
	detailErrorStack       = "deployment-error-stack"
	detailErrorTypes       = "deployment-error-types"
)

// executionStatus is coreDeviceExecutionStatus: the execution's status, except that a thing target's success is
// COMPLETED and a thing group's SUCCEEDED, and a thing that left the group shows CANCELED.
func executionStatus(x engine.Execution, group bool) string {
	switch x.Status {
	case engine.ExecSucceeded:
		if !group {
			return "COMPLETED"
		}
	case engine.ExecRemoved:
		return "CANCELED"
	}
	return string(x.Status)
}

// effective is a device's view of one deployment it has an execution of.
func (s *Service) effective(d *deploymentRec, x engine.Execution) effectiveDeployment {
	e := effectiveDeployment{DeploymentID: d.ID, DeploymentName: d.Name, IoTJobID: d.JobID,
		IoTJobARN: s.jobARN(d.JobID), TargetARN: d.TargetARN, CoreDeviceExecutionStatus: executionStatus(x, d.Group),
		CreationTimestamp: awsapi.EpochSeconds(d.CreatedAt), ModifiedTimestamp: awsapi.EpochSeconds(x.UpdatedAt),
		key: d.Key}
	e.Reason = x.Details[detailDeploymentStatus]
	if e.Reason == "" {
		e.Reason = x.Details[detailFailureCause]
	}
	if e.Reason == "" {
		e.Reason = x.Reason
	}
	split := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, ",")
	}
	if stack, types := split(x.Details[detailErrorStack]), split(x.Details[detailErrorTypes]); stack != nil ||
		types != nil {
		e.StatusDetails = &effectiveDetails{ErrorStack: stack, ErrorTypes: types}
	}
	return e
}

// allDeployments returns every deployment, oldest first. The engine is asked about them only after the store
// transaction ends: the engine holds its lock while it writes to the store.
func (s *Service) allDeployments() ([]*deploymentRec, error) {
	var ds []*deploymentRec
	err := s.store.View(func(tx store.Tx) error {
		return awsapi.Each(tx, bucketDeployments, func(d *deploymentRec) error {
			ds = append(ds, d)
			return nil
		})
	})
	return ds, err
}

// deviceDeployments returns the deployments that have released an execution to the thing, oldest first, with
// those executions.
func (s *Service) deviceDeployments(thing string) ([]*deploymentRec, []engine.Execution, error) {
	all, err := s.allDeployments()
	if err != nil {
		return nil, nil, err
	}
	var ds []*deploymentRec
	var xs []engine.Execution
	for _, d := range all {
		if d.Removal != "" {
			continue
		}
		x, err := s.engine.Execution(d.JobID, thing)
		if errors.Is(err, engine.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		if x.Released {
			ds = append(ds, d)
			xs = append(xs, x)
		}
	}
	return ds, xs, nil
}

func (s *Service) listEffectiveDeployments(r *awsapi.Request) (any, error) {
	var in struct {
		Thing string `json:"coreDeviceThingName"`
		listInput
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	ds, xs, err := s.deviceDeployments(in.Thing)
	if err != nil {
		return nil, err
	}
	var items []effectiveDeployment
	for i, d := range ds {
		items = append(items, s.effective(d, xs[i]))
	}
	if len(items) == 0 && !s.knowsDevice(in.Thing) {
		return nil, notFound(in.Thing, typeCoreDevice, "The core device %s does not exist.", in.Thing)
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].key < items[j].key })
	page, next, err := listPage(items, func(e effectiveDeployment) string { return e.key },
		"ListEffectiveDeployments/"+in.Thing, in.listInput)
	if err != nil {
		return nil, err
	}
	return struct {
		EffectiveDeployments []effectiveDeployment `json:"effectiveDeployments"`
		NextToken            string                `json:"nextToken,omitempty"`
	}{page, next}, nil
}

// knowsDevice reports whether thing is a device of a Greengrass deployment: it has an execution of one.
func (s *Service) knowsDevice(thing string) bool {
	if s.engine == nil {
		return false
	}
	ds, err := s.allDeployments()
	if err != nil {
		return false
	}
	for _, d := range ds {
		if _, err := s.engine.Execution(d.JobID, thing); err == nil {
			return true
		}
	}
	return false
}

// membershipChanged follows a thing joining or leaving a group into the latest revision of every thing-group
// target the group is, or is under: a thing that joins gets the revision, one that leaves loses it (its
// unfinished execution is REMOVED).
func (s *Service) membershipChanged(c awsapi.MembershipChange) {
	groups := append([]string{c.GroupARN}, c.Ancestors...)
	var jobs []string
	var revs []*deploymentRec
	_ = s.store.View(func(tx store.Tx) error {
		for _, g := range groups {
			var tr targetRec
			if found, err := awsapi.GetJSON(tx, bucketTargets, g, &tr); err != nil || !found || tr.Latest == "" {
				continue
			}
			if d, err := s.loadDeployment(tx, tr.Latest); err == nil {
				jobs = append(jobs, d.JobID)
				revs = append(revs, d)
			}
		}
		return nil
	})
	for i, job := range jobs {
		if c.Joined {
			// ErrExists: the thing already has it; ErrInvalidTransition: the revision has ended.
			_ = s.engine.AddTarget(job, c.Thing)
			continue
		}
		x, err := s.engine.Execution(job, c.Thing)
		_ = s.engine.RemoveTarget(job, c.Thing)
		if err == nil && x.Status.Terminal() && (x.Status == engine.ExecSucceeded ||
			x.Details[detailDeploymentStatus] == "FAILED_ROLLBACK_NOT_REQUESTED") {
			// The device runs the revision's components: they are removed from it.
			_ = s.removeComponents(revs[i], c.Thing)
		}
	}
}

// removeComponents tells thing, which left the group d targets after running d's components, to run none of
// them: a job of the thing alone whose document is d's revision with no components (the document is the whole
// set the device must run). Its record is a Removal, which the API does not show.
func (s *Service) removeComponents(d *deploymentRec, thing string) error {
	s.deploying.Lock()
	defer s.deploying.Unlock()
	rec := deploymentRec{ID: s.ids.UUID(), JobID: s.ids.UUID(), TargetARN: d.TargetARN, Group: true,
		Revision: d.Revision, CreatedAt: s.clock.Now().UTC(), Components: map[string]ggwire.Component{},
		Policies: d.Policies, Removal: thing}
	rec.ARN = s.deploymentARN(rec.ID)
	env, err := rec.document().Envelope()
	if err != nil {
		return err
	}
	data, err := json.Marshal(env)
	if err != nil {
		return fmt.Errorf("encode job document: %w", err)
	}
	spec := engine.Spec{ID: rec.JobID, Kind: Kind, Group: "removal/" + thing + "/" + d.TargetARN,
		OnActive: engine.Supersede, Targets: []string{thing}, Document: data, Pacing: engine.AllAtOnce()}
	_, err = s.engine.CreateWith(spec, func(tx store.Tx) error {
		seq, _, err := s.rec.NextKey(tx)
		if err != nil {
			return err
		}
		rec.Key = seq
		return s.rec.Insert(tx, bucketDeployments, kindDeployment, seq, rec.ARN, &rec, nil, "deployment/"+rec.ID)
	})
	return err
}

// reconcile brings the running revision of every thing-group target up to the group's members, as a watcher
// that was not watching (before a restart) must.
func (s *Service) reconcile() error {
	var ds []deploymentRec
	err := s.store.View(func(tx store.Tx) error {
		return awsapi.Each(tx, bucketDeployments, func(d *deploymentRec) error {
			if latest, err := latestFor(tx, d); err != nil || !latest || !d.Group {
				return err
			}
			ds = append(ds, *d)
			return nil
		})
	})
	if err != nil {
		return err
	}
	for i := range ds {
		if err := s.follow(&ds[i]); err != nil {
			return err
		}
	}
	return nil
}

// follow brings the job of a thing-group revision that is still running up to the group's members.
func (s *Service) follow(d *deploymentRec) error {
	job, err := s.engine.Deployment(d.JobID)
	if err != nil {
		return fmt.Errorf("job of deployment %s: %w", d.ID, err)
	}
	if job.Status.Terminal() {
		return nil
	}
	things, found, err := s.registry.GroupMembers(d.TargetARN, true)
	if err != nil {
		return err
	}
	xs, err := s.engine.Executions(d.JobID)
	if err != nil {
		return err
	}
	has := map[string]bool{}
	for _, x := range xs {
		has[x.Device] = true
		if !found || !slices.Contains(things, x.Device) {
			if err := s.engine.RemoveTarget(d.JobID, x.Device); err != nil {
				return err
			}
		}
	}
	for _, th := range things {
		if !has[th] {
			if err := s.engine.AddTarget(d.JobID, th); err != nil && !errors.Is(err, engine.ErrExists) {
				return err
			}
		}
	}
	return nil
}
