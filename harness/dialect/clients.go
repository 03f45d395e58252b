package dialect

import (
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/fleetlab/fleetlab/sim/awsapi/sdkhttp"
)

// S3 is an SDK client of the service's artifact store at endpoint over rt: path-style, fleetlab's keys, one
// attempt a call.
func S3(endpoint string, rt http.RoundTripper) *s3.Client {
	return s3.New(s3.Options{BaseEndpoint: aws.String(endpoint), UsePathStyle: true, Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("fleetlab", "fleetlab", ""), RetryMaxAttempts: 1,
		HTTPClient: sdkhttp.Client(rt)})
}

// NoRolloutPolicy is CheckJob's answer for a dialect whose deployments have no rollout policy, timeout,
// download condition or architectures (Greengrass V1, OpsWorks): a problem for each of them j sets, naming the
// dialect.
func NoRolloutPolicy(dialect string, j JobSpec) []Problem {
	var ps []Problem
	bad := func(path, what string) {
		ps = append(ps, Problem{Path: path, Err: fmt.Errorf("job: %s deployments have no %s", dialect, what)})
	}
	if len(j.Architectures) > 0 {
		bad("job.architectures", "architectures")
	}
	if j.Concurrency != 0 {
		bad("job.concurrency", "concurrency")
	}
	if j.FailureThreshold != 0 {
		bad("job.failureThreshold", "failure threshold")
	}
	if j.Timeout.D() != 0 {
		bad("job.timeout", "timeout")
	}
	if j.DownloadCondition != "" {
		bad("job.downloadCondition", "download condition")
	}
	return ps
}
