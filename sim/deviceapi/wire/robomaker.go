package wire

// RoboMakerDocument is the job document of a RoboMaker deployment job: what one robot must install and launch.
type RoboMakerDocument struct {
	// Job is the deployment job ARN.
	Job string `json:"job"`
	// Fleet is the fleet ARN.
	Fleet string `json:"fleet"`
	// Application is the robot application ARN; Name its name; Version the deployed version ("1", "$LATEST").
	Application string `json:"application"`
	Name        string `json:"name"`
	Version     string `json:"version"`
	// Sources are the bundles, one per architecture (X86_64, ARM64, ARMHF).
	Sources []RoboMakerSource `json:"sources"`
	// Launch says what to run once the bundle is in place.
	Launch RoboMakerLaunch `json:"launch"`
	// DownloadCondition is the optional script run before downloading; the robot fails with
	// DownloadConditionFailed when it exits non-zero, or EtagMismatch when its ETag differs.
	DownloadCondition *RoboMakerObject `json:"downloadCondition,omitempty"`
	// TimeoutSeconds is robotDeploymentTimeoutInSeconds.
	TimeoutSeconds int64 `json:"timeoutSeconds"`
}

// RoboMakerSource is one bundle of a robot application version.
type RoboMakerSource struct {
	Architecture string `json:"architecture"`
	Bucket       string `json:"bucket"`
	Key          string `json:"key"`
	// ETag is the object's ETag when the version was created, in quotes as S3 sends it.
	ETag string `json:"etag"`
}

// RoboMakerObject is an object in the artifact store with the ETag it must have.
type RoboMakerObject struct {
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	ETag   string `json:"etag,omitempty"`
}

// RoboMakerLaunch is launchConfig of a deployment application config.
type RoboMakerLaunch struct {
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
