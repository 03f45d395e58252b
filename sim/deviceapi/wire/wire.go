// Package wire holds the types that cross between the device agent and the device API: the IoT Jobs data plane
// bodies (the AWS service model iot-jobs-data, API version 2017-09-29), the notify channel's messages, the
// envelope of the job documents each dialect puts in an execution (the payloads are in packages under wire)
// and the statusDetails keys. The agent imports this package and nothing else of
// sim/.
//
// Timestamps on the IoT Jobs data plane are epoch seconds as JSON numbers.
package wire

import "encoding/json"

// Execution statuses of the IoT Jobs data plane (JobExecutionStatus).
const (
	StatusQueued     = "QUEUED"
	StatusInProgress = "IN_PROGRESS"
	StatusSucceeded  = "SUCCEEDED"
	StatusFailed     = "FAILED"
	StatusTimedOut   = "TIMED_OUT"
	StatusRejected   = "REJECTED"
	StatusRemoved    = "REMOVED"
	StatusCanceled   = "CANCELED"
)

// Paths of the data plane, relative to the service endpoint.
const (
	// PathPending is GET /things/{thingName}/jobs (GetPendingJobExecutions).
	PathPending = "/things/%s/jobs"
	// PathNext is PUT /things/{thingName}/jobs/$next (StartNextPendingJobExecution); GET describes it.
	PathNext = "/things/%s/jobs/$next"
	// PathExecution is GET (DescribeJobExecution) or POST (UpdateJobExecution) /things/{thingName}/jobs/{jobId}.
	PathExecution = "/things/%s/jobs/%s"
	// PathNotify is the websocket notify channel: GET /things/{thingName}/notify upgrades to a websocket.
	PathNotify = "/things/%s/notify"
)

// JobExecution is the data plane's JobExecution.
type JobExecution struct {
	JobID                            string            `json:"jobId,omitempty"`
	ThingName                        string            `json:"thingName,omitempty"`
	Status                           string            `json:"status,omitempty"`
	StatusDetails                    map[string]string `json:"statusDetails,omitempty"`
	QueuedAt                         int64             `json:"queuedAt,omitempty"`
	StartedAt                        int64             `json:"startedAt,omitempty"`
	LastUpdatedAt                    int64             `json:"lastUpdatedAt,omitempty"`
	ApproximateSecondsBeforeTimedOut int64             `json:"approximateSecondsBeforeTimedOut,omitempty"`
	VersionNumber                    int64             `json:"versionNumber,omitempty"`
	ExecutionNumber                  int64             `json:"executionNumber,omitempty"`
	JobDocument                      string            `json:"jobDocument,omitempty"`
}

// JobExecutionSummary is the data plane's JobExecutionSummary.
type JobExecutionSummary struct {
	JobID           string `json:"jobId"`
	QueuedAt        int64  `json:"queuedAt,omitempty"`
	StartedAt       int64  `json:"startedAt,omitempty"`
	LastUpdatedAt   int64  `json:"lastUpdatedAt,omitempty"`
	VersionNumber   int64  `json:"versionNumber,omitempty"`
	ExecutionNumber int64  `json:"executionNumber,omitempty"`
}

// JobExecutionState is the data plane's JobExecutionState.
type JobExecutionState struct {
	Status        string            `json:"status,omitempty"`
	StatusDetails map[string]string `json:"statusDetails,omitempty"`
	VersionNumber int64             `json:"versionNumber,omitempty"`
}

// GetPendingJobExecutionsResponse is the body of GET /things/{thingName}/jobs.
type GetPendingJobExecutionsResponse struct {
	InProgressJobs []JobExecutionSummary `json:"inProgressJobs"`
	QueuedJobs     []JobExecutionSummary `json:"queuedJobs"`
}

// StartNextPendingJobExecutionRequest is the body of PUT /things/{thingName}/jobs/$next.
type StartNextPendingJobExecutionRequest struct {
	StatusDetails        map[string]string `json:"statusDetails,omitempty"`
	StepTimeoutInMinutes *int64            `json:"stepTimeoutInMinutes,omitempty"`
}

// StartNextPendingJobExecutionResponse is its answer; Execution is nil when nothing is pending.
type StartNextPendingJobExecutionResponse struct {
	Execution *JobExecution `json:"execution,omitempty"`
}

// DescribeJobExecutionResponse is the body of GET /things/{thingName}/jobs/{jobId}.
type DescribeJobExecutionResponse struct {
	Execution *JobExecution `json:"execution,omitempty"`
}

// UpdateJobExecutionRequest is the body of POST /things/{thingName}/jobs/{jobId}.
type UpdateJobExecutionRequest struct {
	Status                   string            `json:"status"`
	StatusDetails            map[string]string `json:"statusDetails,omitempty"`
	StepTimeoutInMinutes     *int64            `json:"stepTimeoutInMinutes,omitempty"`
	ExpectedVersion          *int64            `json:"expectedVersion,omitempty"`
	IncludeJobExecutionState bool              `json:"includeJobExecutionState,omitempty"`
	IncludeJobDocument       bool              `json:"includeJobDocument,omitempty"`
	ExecutionNumber          *int64            `json:"executionNumber,omitempty"`
}

// UpdateJobExecutionResponse is its answer.
type UpdateJobExecutionResponse struct {
	ExecutionState *JobExecutionState `json:"executionState,omitempty"`
	JobDocument    string             `json:"jobDocument,omitempty"`
}

// Error is the data plane's error body; the code is also in the X-Amzn-ErrorType header.
type Error struct {
	Type    string `json:"__type,omitempty"`
	Message string `json:"message,omitempty"`
}

// Error codes of the data plane and their HTTP statuses.
const (
	ErrInvalidRequest         = "InvalidRequestException"         // 400
	ErrResourceNotFound       = "ResourceNotFoundException"       // 404
	ErrInvalidStateTransition = "InvalidStateTransitionException" // 409, also a version mismatch
	ErrTerminalState          = "TerminalStateException"          // 410
	ErrThrottling             = "ThrottlingException"             // 429
	ErrServiceUnavailable     = "ServiceUnavailableException"     // 503
)

// Notify is a message on the websocket notify channel. The service sends one when an execution for the thing
// is released (Kind "pending") or canceled (Kind "canceled"), and a "hello" on connect so the agent polls once.
type Notify struct {
	Kind  string `json:"kind"`
	JobID string `json:"jobId,omitempty"`
}

// Notify kinds.
const (
	NotifyHello    = "hello"
	NotifyPending  = "pending"
	NotifyCanceled = "canceled"
)

// Document is the envelope of every job document: Kind names the dialect's payload that follows in Payload.
// Each dialect's payload, and its kind, are in a package of their own under wire (wire/robomaker).
type Document struct {
	Kind    string          `json:"kind"`
	Payload json.RawMessage `json:"payload"`
}

// Status details keys the agent reports in statusDetails.
const (
	DetailStep        = "step"        // the step reached, e.g. "DownloadingExtracting"
	DetailPercentDone = "percentDone" // "0.0".."100.0" while downloading
	DetailETA         = "estimatedTimeRemainingSeconds"
	DetailFailureCode = "failureCode" // the dialect's failure code when status is FAILED
	DetailReason      = "reason"      // human-readable failure reason
)
