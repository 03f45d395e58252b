package robomaker

import (
	"fmt"
	"strconv"

	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"

	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
	"github.com/fleetlab/fleetlab/sim/engine"
)

// How engine states read in RoboMaker's names — the one place they are translated.
//
// Job status (DeploymentStatus):
//
//	engine Pending, or nothing released yet                 → Pending
//	engine InProgress/Baking, released, no robot began yet   → Preparing   (robots are being notified)
//	engine InProgress/Baking, a robot began or finished      → InProgress
//	engine Succeeded                                         → Succeeded
//	engine Failed                                            → Failed, failureCode of the first robot (in
//	                                                           release order) that did not succeed
//	engine Aborted (failure threshold met)                   → Failed, FailureThresholdBreached
//	engine Canceled, Superseded                              → Canceled
//	engine RolledBack (an alarm raised by the harness)       → Failed, RobotDeploymentAborted
//
// Robot status in a job (RobotDeployment.status; RobotStatus):
//
//	QUEUED (released or not)           → PendingNewDeployment
//	IN_PROGRESS                        → Deploying, progressDetail from the device's step, percent, ETA
//	SUCCEEDED                          → InSync, currentProgress Finished
//	FAILED, REJECTED                   → Failed, the device's failureCode and reason (InternalServerError when
//	                                     the device sent none the model knows)
//	TIMED_OUT                          → NoResponse, RobotDeploymentNoResponse, currentProgress the last
//	                                     step the robot reported
//	CANCELED, REMOVED                  → Failed, RobotDeploymentAborted (the job was stopped: abort, cancel)
//
// A robot's own status (DescribeRobot, ListRobots) is Available outside a fleet, Registered in a fleet whose jobs
// never included it, and otherwise the status of its latest execution as above.

// Job statuses (DeploymentStatus).
const (
	jobPending    = "Pending"
	jobPreparing  = "Preparing"
	jobInProgress = "InProgress"
	jobFailed     = "Failed"
	jobSucceeded  = "Succeeded"
	jobCanceled   = "Canceled"
)

// Robot statuses (RobotStatus).
const (
	robotAvailable   = "Available"
	robotRegistered  = "Registered"
	robotPending     = "PendingNewDeployment"
	robotDeploying   = "Deploying"
	robotFailed      = "Failed"
	robotInSync      = "InSync"
	robotNoResponse  = "NoResponse"
	codeThreshold    = "FailureThresholdBreached"
	codeAborted      = "RobotDeploymentAborted"
	codeNoResponse   = "RobotDeploymentNoResponse"
	codeInternal     = "InternalServerError"
	defaultTimeout   = 18000 // seconds: robotDeploymentTimeoutInSeconds when not given (5 hours)
	minTimeout       = 60    // 1 minute
	maxTimeout       = 7 * 24 * 3600
	defaultBatchSize = 100 // concurrentDeploymentPercentage when not given
)

// jobStatus maps a deployment to the job's status, failure code and failure reason. execs returns the
// deployment's executions in release order; it is called only for a failed job, whose code is its first failed
// robot's.
func (s *Service) jobStatus(d engine.Deployment, execs func() []engine.Execution) (status, code, reason string) {
	switch d.Status {
	case engine.StatusPending:
		return jobPending, "", ""
	case engine.StatusInProgress, engine.StatusBaking:
		c := d.Counters
		switch {
		case c.Released == 0:
			return jobPending, "", ""
		case c.InProgress == 0 && c.Ended() == 0:
			return jobPreparing, "", ""
		}
		return jobInProgress, "", ""
	case engine.StatusSucceeded:
		return jobSucceeded, "", ""
	case engine.StatusFailed:
		code = codeInternal
		for _, x := range execs() {
			if x.Status != engine.ExecSucceeded {
				if rd := s.robotDeployment(x, "", ""); rd.FailureCode != "" {
					code = rd.FailureCode
				}
				break
			}
		}
		return jobFailed, code, d.Reason
	case engine.StatusAborted:
		return jobFailed, codeThreshold, d.Reason
	case engine.StatusRolledBack:
		return jobFailed, codeAborted, d.Reason
	default: // Canceled, Superseded
		return jobCanceled, "", d.Reason
	}
}

// robotDeployment maps one execution to a RobotDeployment.
func (s *Service) robotDeployment(x engine.Execution, robotARN, jobARN string) robotDeployment {
	rd := robotDeployment{ARN: robotARN}
	if x.Released {
		rd.DeploymentStartTime = epoch(x.ReleasedAt)
	}
	if x.Status.Terminal() {
		rd.DeploymentFinishTime = epoch(x.UpdatedAt)
	}
	step := x.Details[wire.DetailStep]
	if !validStep(step) {
		step = ""
	}
	switch x.Status {
	case engine.ExecQueued:
		rd.Status = robotPending
	case engine.ExecInProgress:
		rd.Status = robotDeploying
		pd := &progressDetail{CurrentProgress: step, TargetResource: jobARN}
		if f, err := strconv.ParseFloat(x.Details[wire.DetailPercentDone], 64); err == nil && f >= 0 && f <= 100 {
			pd.PercentDone = &f
		}
		if n, err := strconv.ParseInt(x.Details[wire.DetailETA], 10, 32); err == nil && n >= 0 {
			eta := int32(n)
			pd.EstimatedTimeRemainingSeconds = &eta
		}
		rd.ProgressDetail = pd
	case engine.ExecSucceeded:
		rd.Status = robotInSync
		rd.ProgressDetail = &progressDetail{CurrentProgress: rmwire.StepFinished, TargetResource: jobARN}
	case engine.ExecFailed, engine.ExecRejected:
		rd.Status = robotFailed
		rd.FailureCode = x.Details[wire.DetailFailureCode]
		rd.FailureReason = x.Details[wire.DetailReason]
		if !s.codes[rd.FailureCode] {
			if rd.FailureCode != "" && rd.FailureReason == "" {
				rd.FailureReason = "robot reported " + rd.FailureCode
			}
			rd.FailureCode = codeInternal
		}
		if step != "" {
			rd.ProgressDetail = &progressDetail{CurrentProgress: step, TargetResource: jobARN}
		}
	case engine.ExecTimedOut:
		rd.Status = robotNoResponse
		rd.FailureCode = codeNoResponse
		rd.FailureReason = "the robot did not finish the deployment in time"
		if step != "" { // where it went silent: what a team reads first in the record
			rd.ProgressDetail = &progressDetail{CurrentProgress: step, TargetResource: jobARN}
		}
	default: // CANCELED, REMOVED
		rd.Status = robotFailed
		rd.FailureCode = codeAborted
		switch x.Reason {
		case engine.ReasonAborted:
			rd.FailureReason = "the deployment job was stopped: failure threshold breached"
		case engine.ReasonCanceled:
			rd.FailureReason = "the deployment job was canceled"
		default:
			rd.FailureReason = fmt.Sprintf("the robot deployment was stopped (%s)", x.Reason)
		}
	}
	return rd
}

func validStep(step string) bool {
	switch step {
	case rmwire.StepValidating, rmwire.StepDownloadingExtracting, rmwire.StepExecutingDownloadCondition,
		rmwire.StepExecutingPreLaunch, rmwire.StepLaunching, rmwire.StepExecutingPostLaunch, rmwire.StepFinished:
		return true
	}
	return false
}
