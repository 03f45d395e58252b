package iot

import (
	"errors"
	"fmt"
	"time"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/store"
)

// The IoT jobs views: every engine deployment, of any dialect, is an IoT job of its id, and each of its released
// executions a job execution. The dialect that created a deployment owns it; IoT only shows it, and cancels it
// as the engine cancels (queued executions are canceled, those in progress run on).
//
// Job statuses: a deployment that has not started yet is SCHEDULED, one deploying or baking IN_PROGRESS, one that
// succeeded or failed COMPLETED, and one canceled, aborted, rolled back or superseded CANCELED. An execution the
// pacing has not released yet does not exist yet, as in IoT Jobs with a rollout configuration.

func jobNotFound(id string) error {
	return notFound("Job %s cannot be found.", id)
}

// job returns the deployment that is the job of that id.
func (s *Service) job(id string) (engine.Deployment, error) {
	d, err := s.engine.Deployment(id)
	if errors.Is(err, engine.ErrNotFound) {
		return d, jobNotFound(id)
	}
	return d, err
}

// jobStatus is the IoT job status of a deployment at now.
func jobStatus(d engine.Deployment, now time.Time) string {
	switch d.Status {
	case engine.StatusPending:
		if d.StartAt.After(now) {
			return "SCHEDULED"
		}
		return "IN_PROGRESS"
	case engine.StatusInProgress, engine.StatusBaking:
		return "IN_PROGRESS"
	case engine.StatusSucceeded, engine.StatusFailed:
		return "COMPLETED"
	default:
		return "CANCELED"
	}
}

func targetSelection(d engine.Deployment) string {
	if d.Continuous {
		return "CONTINUOUS"
	}
	return "SNAPSHOT"
}

// released returns the deployment's executions that exist as IoT job executions.
func released(xs []engine.Execution) []engine.Execution {
	out := make([]engine.Execution, 0, len(xs))
	for _, x := range xs {
		if x.Released {
			out = append(out, x)
		}
	}
	return out
}

func (s *Service) jobARN(id string) string { return s.rec.ARN("job/" + id) }

func (s *Service) thingARN(name string) string { return s.rec.ARN("thing/" + name) }

// jobTargets are what a job targets: its deployment's group when that is an IoT thing or thing group ARN (a
// Greengrass V2 target), else the things of all its executions, released or not.
func (s *Service) jobTargets(d engine.Deployment, xs []engine.Execution) []string {
	if a, err := awsapi.ParseARN(d.Group); err == nil && a.Service == Name {
		return []string{d.Group}
	}
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		out = append(out, s.thingARN(x.Device))
	}
	return out
}

type jobProcessDetails struct {
	NumberOfCanceledThings   int `json:"numberOfCanceledThings"`
	NumberOfSucceededThings  int `json:"numberOfSucceededThings"`
	NumberOfFailedThings     int `json:"numberOfFailedThings"`
	NumberOfRejectedThings   int `json:"numberOfRejectedThings"`
	NumberOfQueuedThings     int `json:"numberOfQueuedThings"`
	NumberOfInProgressThings int `json:"numberOfInProgressThings"`
	NumberOfRemovedThings    int `json:"numberOfRemovedThings"`
	NumberOfTimedOutThings   int `json:"numberOfTimedOutThings"`
}

func processDetails(xs []engine.Execution) jobProcessDetails {
	var p jobProcessDetails
	for _, x := range xs {
		switch x.Status {
		case engine.ExecCanceled:
			p.NumberOfCanceledThings++
		case engine.ExecSucceeded:
			p.NumberOfSucceededThings++
		case engine.ExecFailed:
			p.NumberOfFailedThings++
		case engine.ExecRejected:
			p.NumberOfRejectedThings++
		case engine.ExecQueued:
			p.NumberOfQueuedThings++
		case engine.ExecInProgress:
			p.NumberOfInProgressThings++
		case engine.ExecRemoved:
			p.NumberOfRemovedThings++
		case engine.ExecTimedOut:
			p.NumberOfTimedOutThings++
		}
	}
	return p
}

func (s *Service) describeJob(r *awsapi.Request) (any, error) {
	var in struct {
		JobID string `json:"jobId"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	d, err := s.job(in.JobID)
	if err != nil {
		return nil, err
	}
	all, err := s.engine.Executions(d.ID)
	if err != nil {
		return nil, err
	}
	xs := released(all)
	type job struct {
		JobARN            string              `json:"jobArn"`
		JobID             string              `json:"jobId"`
		TargetSelection   string              `json:"targetSelection"`
		Status            string              `json:"status"`
		Comment           string              `json:"comment,omitempty"`
		Targets           []string            `json:"targets"`
		CreatedAt         awsapi.EpochSeconds `json:"createdAt"`
		LastUpdatedAt     awsapi.EpochSeconds `json:"lastUpdatedAt"`
		CompletedAt       awsapi.EpochSeconds `json:"completedAt,omitzero"`
		JobProcessDetails jobProcessDetails   `json:"jobProcessDetails"`
	}
	return struct {
		Job job `json:"job"`
	}{job{JobARN: s.jobARN(d.ID), JobID: d.ID, TargetSelection: targetSelection(d),
		Status: jobStatus(d, s.clock.Now()), Comment: d.Reason, Targets: s.jobTargets(d, all),
		CreatedAt: awsapi.EpochSeconds(d.CreatedAt), LastUpdatedAt: awsapi.EpochSeconds(d.UpdatedAt),
		CompletedAt: awsapi.EpochSeconds(d.EndedAt), JobProcessDetails: processDetails(xs)}}, nil
}

type jobSummary struct {
	JobARN          string              `json:"jobArn"`
	JobID           string              `json:"jobId"`
	ThingGroupID    string              `json:"thingGroupId,omitempty"`
	TargetSelection string              `json:"targetSelection"`
	Status          string              `json:"status"`
	CreatedAt       awsapi.EpochSeconds `json:"createdAt"`
	LastUpdatedAt   awsapi.EpochSeconds `json:"lastUpdatedAt"`
	CompletedAt     awsapi.EpochSeconds `json:"completedAt,omitzero"`
	key             string              // creation order
}

func (s *Service) listJobs(r *awsapi.Request) (any, error) {
	var in struct {
		Status          string `json:"status"`
		TargetSelection string `json:"targetSelection"`
		MaxResults      int    `json:"maxResults"`
		NextToken       string `json:"nextToken"`
		ThingGroupName  string `json:"thingGroupName"`
		ThingGroupID    string `json:"thingGroupId"`
		NamespaceID     string `json:"namespaceId"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	// The thing groups by ARN, for the summaries' thingGroupId and the group filters.
	groupIDs := map[string]string{}
	var groupARN string
	if err := s.store.View(func(tx store.Tx) error {
		if err := awsapi.Each(tx, bucketGroups, func(g *groupRec) error {
			groupIDs[g.ARN] = g.ID
			if (in.ThingGroupName != "" && g.Name == in.ThingGroupName) || (in.ThingGroupID != "" && g.ID == in.ThingGroupID) {
				groupARN = g.ARN
			}
			return nil
		}); err != nil {
			return err
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if (in.ThingGroupName != "" || in.ThingGroupID != "") && groupARN == "" {
		return nil, groupNotFound(firstOf(in.ThingGroupName, in.ThingGroupID))
	}
	now := s.clock.Now()
	var jobs []jobSummary
	for i, d := range s.engine.Deployments("") {
		sum := jobSummary{JobARN: s.jobARN(d.ID), JobID: d.ID, ThingGroupID: groupIDs[d.Group],
			TargetSelection: targetSelection(d), Status: jobStatus(d, now), CreatedAt: awsapi.EpochSeconds(d.CreatedAt),
			LastUpdatedAt: awsapi.EpochSeconds(d.UpdatedAt), CompletedAt: awsapi.EpochSeconds(d.EndedAt),
			key: fmt.Sprintf("%010d", i)}
		if (in.Status != "" && sum.Status != in.Status) || (in.TargetSelection != "" && sum.TargetSelection != in.TargetSelection) ||
			(groupARN != "" && d.Group != groupARN) || in.NamespaceID != "" {
			continue
		}
		jobs = append(jobs, sum)
	}
	scope := fmt.Sprintf("ListJobs\x00%s\x00%s\x00%s\x00%s", in.Status, in.TargetSelection, groupARN, in.NamespaceID)
	out, next, err := page(jobs, func(j jobSummary) string { return j.key }, scope, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	return struct {
		Jobs      []jobSummary `json:"jobs"`
		NextToken string       `json:"nextToken,omitempty"`
	}{orNone(out), next}, nil
}

type jobExecutionSummary struct {
	Status          engine.ExecStatus   `json:"status"`
	QueuedAt        awsapi.EpochSeconds `json:"queuedAt"`
	StartedAt       awsapi.EpochSeconds `json:"startedAt,omitzero"`
	LastUpdatedAt   awsapi.EpochSeconds `json:"lastUpdatedAt"`
	ExecutionNumber int64               `json:"executionNumber"`
}

func summary(x engine.Execution) jobExecutionSummary {
	return jobExecutionSummary{Status: x.Status, QueuedAt: awsapi.EpochSeconds(x.QueuedAt),
		StartedAt: awsapi.EpochSeconds(x.StartedAt), LastUpdatedAt: awsapi.EpochSeconds(x.UpdatedAt),
		ExecutionNumber: x.Number}
}

func (s *Service) listJobExecutionsForJob(r *awsapi.Request) (any, error) {
	var in struct {
		JobID      string `json:"jobId"`
		Status     string `json:"status"`
		MaxResults int    `json:"maxResults"`
		NextToken  string `json:"nextToken"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	xs, err := s.engine.Executions(in.JobID)
	if errors.Is(err, engine.ErrNotFound) {
		return nil, jobNotFound(in.JobID)
	}
	if err != nil {
		return nil, err
	}
	type forJob struct {
		ThingARN            string              `json:"thingArn"`
		JobExecutionSummary jobExecutionSummary `json:"jobExecutionSummary"`
		key                 string              // release order
	}
	var list []forJob
	for _, x := range released(xs) {
		if in.Status == "" || string(x.Status) == in.Status {
			list = append(list, forJob{ThingARN: s.thingARN(x.Device), JobExecutionSummary: summary(x),
				key: fmt.Sprintf("%010d", x.Order)})
		}
	}
	out, next, err := page(list, func(f forJob) string { return f.key },
		"ListJobExecutionsForJob\x00"+in.JobID+"\x00"+in.Status, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	return struct {
		ExecutionSummaries []forJob `json:"executionSummaries"`
		NextToken          string   `json:"nextToken,omitempty"`
	}{orNone(out), next}, nil
}

func (s *Service) describeJobExecution(r *awsapi.Request) (any, error) {
	var in struct {
		JobID           string `json:"jobId"`
		ThingName       string `json:"thingName"`
		ExecutionNumber *int64 `json:"executionNumber"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	d, err := s.job(in.JobID)
	if err != nil {
		return nil, err
	}
	x, err := s.engine.Execution(in.JobID, in.ThingName)
	if errors.Is(err, engine.ErrNotFound) || (err == nil && (!x.Released ||
		(in.ExecutionNumber != nil && *in.ExecutionNumber != x.Number))) {
		return nil, notFound("Job execution of job %s on thing %s cannot be found.", in.JobID, in.ThingName)
	}
	if err != nil {
		return nil, err
	}
	type statusDetails struct {
		DetailsMap map[string]string `json:"detailsMap,omitempty"`
	}
	type execution struct {
		JobID                            string              `json:"jobId"`
		Status                           engine.ExecStatus   `json:"status"`
		StatusDetails                    statusDetails       `json:"statusDetails"`
		ThingARN                         string              `json:"thingArn"`
		QueuedAt                         awsapi.EpochSeconds `json:"queuedAt"`
		StartedAt                        awsapi.EpochSeconds `json:"startedAt,omitzero"`
		LastUpdatedAt                    awsapi.EpochSeconds `json:"lastUpdatedAt"`
		ExecutionNumber                  int64               `json:"executionNumber"`
		VersionNumber                    int64               `json:"versionNumber"`
		ApproximateSecondsBeforeTimedOut *int64              `json:"approximateSecondsBeforeTimedOut,omitempty"`
	}
	out := execution{JobID: d.ID, Status: x.Status, StatusDetails: statusDetails{DetailsMap: x.Details},
		ThingARN: s.thingARN(x.Device), QueuedAt: awsapi.EpochSeconds(x.QueuedAt),
		StartedAt: awsapi.EpochSeconds(x.StartedAt), LastUpdatedAt: awsapi.EpochSeconds(x.UpdatedAt),
		ExecutionNumber: x.Number, VersionNumber: x.Version}
	if deadline := x.Deadline(d.Timeouts); !deadline.IsZero() && x.Status == engine.ExecInProgress {
		left := int64(max(deadline.Sub(s.clock.Now()), 0) / time.Second)
		out.ApproximateSecondsBeforeTimedOut = &left
	}
	return struct {
		Execution execution `json:"execution"`
	}{out}, nil
}

// cancelJob cancels a deployment as the engine does: its queued executions are canceled, those in progress run
// on, so force (which would cancel them too) is refused. A job canceled already is canceled again without
// error; one that has completed cannot be.
func (s *Service) cancelJob(r *awsapi.Request) (any, error) {
	var in struct {
		JobID      string `json:"jobId"`
		ReasonCode string `json:"reasonCode"`
		Comment    string `json:"comment"`
		Force      bool   `json:"force"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	if in.Force {
		return nil, invalidRequest("force is not supported: executions in progress run on when a job is canceled")
	}
	reason := firstOf(in.Comment, in.ReasonCode)
	if reason == "" {
		reason = "canceled through the IoT API"
	}
	d, err := s.engine.Cancel(in.JobID, reason)
	switch {
	case errors.Is(err, engine.ErrNotFound):
		return nil, jobNotFound(in.JobID)
	case errors.Is(err, engine.ErrInvalidTransition) && jobStatus(d, s.clock.Now()) == "CANCELED":
	case errors.Is(err, engine.ErrInvalidTransition):
		return nil, invalidRequest("Job %s is %s and cannot be canceled.", in.JobID, jobStatus(d, s.clock.Now()))
	case err != nil:
		return nil, err
	}
	return struct {
		JobARN string `json:"jobArn"`
		JobID  string `json:"jobId"`
	}{s.jobARN(in.JobID), in.JobID}, nil
}
