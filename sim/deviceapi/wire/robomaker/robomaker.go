// Package robomaker is the RoboMaker dialect's payload on the device API: the job document of a RoboMaker
// deployment job (in a wire.Document of kind Kind), the steps a robot reports in statusDetails step, and
// the failure codes it reports in statusDetails failureCode.
package robomaker

// Kind is the kind of a RoboMaker job document (wire.Document's Kind).
const Kind = "robomaker"

// Document is the job document of a RoboMaker deployment job: what one robot must install and launch.
type Document struct {
	// Job is the deployment job ARN.
	Job string `json:"job"`
	// Fleet is the fleet ARN.
	Fleet string `json:"fleet"`
	// Application is the robot application ARN; Name its name; Version the deployed version ("1", "$LATEST").
	Application string `json:"application"`
	Name        string `json:"name"`
	Version     string `json:"version"`
	// Sources are the bundles, one per architecture (X86_64, ARM64, ARMHF).
	Sources []Source `json:"sources"`
	// Launch says what to run once the bundle is in place.
	Launch Launch `json:"launch"`
	// DownloadCondition is the optional script run before downloading; the robot fails with
	// DownloadConditionFailed when it exits non-zero, or EtagMismatch when its ETag differs.
	DownloadCondition *Object `json:"downloadCondition,omitempty"`
	// TimeoutSeconds is robotDeploymentTimeoutInSeconds.
	TimeoutSeconds int64 `json:"timeoutSeconds"`
}

// Source is one bundle of a robot application version.
type Source struct {
	Architecture string `json:"architecture"`
	Bucket       string `json:"bucket"`
	Key          string `json:"key"`
	// ETag is the object's ETag when the version was created, in quotes as S3 sends it.
	ETag string `json:"etag"`
}

// Object is an object in the artifact store with the ETag it must have.
type Object struct {
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	ETag   string `json:"etag,omitempty"`
}

// Launch is launchConfig of a deployment application config.
type Launch struct {
	PackageName          string            `json:"packageName"`
	LaunchFile           string            `json:"launchFile"`
	PreLaunchFile        string            `json:"preLaunchFile,omitempty"`
	PostLaunchFile       string            `json:"postLaunchFile,omitempty"`
	EnvironmentVariables map[string]string `json:"environmentVariables,omitempty"`
}

// RoboMaker steps (progressDetail.currentProgress), in order.
const (
	StepValidating                 = "Validating"
	StepDownloadingExtracting      = "DownloadingExtracting"
	StepExecutingDownloadCondition = "ExecutingDownloadCondition"
	StepExecutingPreLaunch         = "ExecutingPreLaunch"
	StepLaunching                  = "Launching"
	StepExecutingPostLaunch        = "ExecutingPostLaunch"
	StepFinished                   = "Finished"
)

// RoboMaker failure codes the agent reports (RoboMaker's DeploymentJobErrorCode).
const (
	CodeEtagMismatch                        = "EtagMismatch"
	CodeDownloadConditionFailed             = "DownloadConditionFailed"
	CodeExtractingBundleFailure             = "ExtractingBundleFailure"
	CodeMissingRobotApplicationArchitecture = "MissingRobotApplicationArchitecture"
	CodeMissingRobotDeploymentResource      = "MissingRobotDeploymentResource"
	CodePreLaunchFileFailure                = "PreLaunchFileFailure"
	CodePostLaunchFileFailure               = "PostLaunchFileFailure"
	CodeEnvironmentSetupError               = "EnvironmentSetupError"
	CodeResourceNotFound                    = "ResourceNotFound"
	CodeInternalServerError                 = "InternalServerError"
)
