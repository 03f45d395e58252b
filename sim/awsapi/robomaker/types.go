package robomaker

import "github.com/fleetlab/fleetlab/sim/awsapi"

// Wire shapes of the model, with its member names. Optional output members are omitted when empty, as the
// service omits them.

type epoch = awsapi.EpochSeconds

type softwareSuite struct {
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
}

type environment struct {
	URI string `json:"uri,omitempty"`
}

type sourceConfig struct {
	S3Bucket     string `json:"s3Bucket,omitempty"`
	S3Key        string `json:"s3Key,omitempty"`
	Architecture string `json:"architecture,omitempty"`
}

type source struct {
	S3Bucket     string `json:"s3Bucket,omitempty"`
	S3Key        string `json:"s3Key,omitempty"`
	ETag         string `json:"etag,omitempty"`
	Architecture string `json:"architecture,omitempty"`
}

type s3Object struct {
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	ETag   string `json:"etag,omitempty"`
}

type deploymentConfig struct {
	ConcurrentDeploymentPercentage  *int32    `json:"concurrentDeploymentPercentage,omitempty"`
	FailureThresholdPercentage      *int32    `json:"failureThresholdPercentage,omitempty"`
	RobotDeploymentTimeoutInSeconds *int64    `json:"robotDeploymentTimeoutInSeconds,omitempty"`
	DownloadConditionFile           *s3Object `json:"downloadConditionFile,omitempty"`
}

type launchConfig struct {
	PackageName          string            `json:"packageName"`
	PreLaunchFile        string            `json:"preLaunchFile,omitempty"`
	LaunchFile           string            `json:"launchFile"`
	PostLaunchFile       string            `json:"postLaunchFile,omitempty"`
	EnvironmentVariables map[string]string `json:"environmentVariables,omitempty"`
}

type deploymentApplicationConfig struct {
	Application        string       `json:"application"`
	ApplicationVersion string       `json:"applicationVersion"`
	LaunchConfig       launchConfig `json:"launchConfig"`
}

type filter struct {
	Name   string   `json:"name"`
	Values []string `json:"values"`
}

type listInput struct {
	NextToken  string   `json:"nextToken"`
	MaxResults *int32   `json:"maxResults"`
	Filters    []filter `json:"filters"`
}

// robot is the model's Robot (DescribeFleet's robots and ListRobots' robots), whose Greengrass member is spelled
// greenGrassGroupId, unlike DescribeRobot's greengrassGroupId.
type robot struct {
	ARN                string `json:"arn"`
	Name               string `json:"name"`
	FleetARN           string `json:"fleetArn,omitempty"`
	Status             string `json:"status"`
	GreenGrassGroupID  string `json:"greenGrassGroupId,omitempty"`
	CreatedAt          epoch  `json:"createdAt,omitzero"`
	Architecture       string `json:"architecture,omitempty"`
	LastDeploymentJob  string `json:"lastDeploymentJob,omitempty"`
	LastDeploymentTime epoch  `json:"lastDeploymentTime,omitzero"`
}

type fleet struct {
	Name                 string `json:"name"`
	ARN                  string `json:"arn"`
	CreatedAt            epoch  `json:"createdAt,omitzero"`
	LastDeploymentStatus string `json:"lastDeploymentStatus,omitempty"`
	LastDeploymentJob    string `json:"lastDeploymentJob,omitempty"`
	LastDeploymentTime   epoch  `json:"lastDeploymentTime,omitzero"`
}

type progressDetail struct {
	CurrentProgress               string   `json:"currentProgress,omitempty"`
	PercentDone                   *float64 `json:"percentDone,omitempty"`
	EstimatedTimeRemainingSeconds *int32   `json:"estimatedTimeRemainingSeconds,omitempty"`
	TargetResource                string   `json:"targetResource,omitempty"`
}

type robotDeployment struct {
	ARN                  string          `json:"arn"`
	DeploymentStartTime  epoch           `json:"deploymentStartTime,omitzero"`
	DeploymentFinishTime epoch           `json:"deploymentFinishTime,omitzero"`
	Status               string          `json:"status"`
	ProgressDetail       *progressDetail `json:"progressDetail,omitempty"`
	FailureReason        string          `json:"failureReason,omitempty"`
	FailureCode          string          `json:"failureCode,omitempty"`
}

// deploymentJob is the model's DeploymentJob and the common part of the job outputs.
type deploymentJob struct {
	ARN                          string                        `json:"arn"`
	Fleet                        string                        `json:"fleet"`
	Status                       string                        `json:"status"`
	DeploymentApplicationConfigs []deploymentApplicationConfig `json:"deploymentApplicationConfigs"`
	DeploymentConfig             *deploymentConfig             `json:"deploymentConfig,omitempty"`
	FailureReason                string                        `json:"failureReason,omitempty"`
	FailureCode                  string                        `json:"failureCode,omitempty"`
	CreatedAt                    epoch                         `json:"createdAt,omitzero"`
}

type appSummary struct {
	Name               string         `json:"name"`
	ARN                string         `json:"arn"`
	Version            string         `json:"version"`
	LastUpdatedAt      epoch          `json:"lastUpdatedAt,omitzero"`
	RobotSoftwareSuite *softwareSuite `json:"robotSoftwareSuite,omitempty"`
}

// application is the output of CreateRobotApplication, CreateRobotApplicationVersion and
// DescribeRobotApplication.
type application struct {
	ARN                string            `json:"arn"`
	Name               string            `json:"name"`
	Version            string            `json:"version"`
	Sources            []source          `json:"sources"`
	RobotSoftwareSuite *softwareSuite    `json:"robotSoftwareSuite,omitempty"`
	LastUpdatedAt      epoch             `json:"lastUpdatedAt,omitzero"`
	RevisionID         string            `json:"revisionId"`
	Tags               map[string]string `json:"tags,omitempty"`
	Environment        *environment      `json:"environment,omitempty"`
	ImageDigest        string            `json:"imageDigest,omitempty"`
}
