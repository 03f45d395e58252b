package service_test

import (
	"context"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/robomaker"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/awsapi/sdkhttp"
	"github.com/fleetlab/fleetlab/sim/service"
)

// jobIDs starts a fresh service on dir with the id source random (nil: the default), makes the same jobs any
// fresh service would — the first three on a new fleet, each canceled before the next — and returns their ids
// and the request id of the first answer.
func jobIDs(t *testing.T, dir string, random io.Reader) (jobs []string, requestID string) {
	t.Helper()
	svc, err := service.New(service.Options{Dir: dir, Random: random})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start("127.0.0.1:0", ""); err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	w := &world{t: t, svc: svc, rm: robomaker.New(robomaker.Options{BaseEndpoint: aws.String(svc.Endpoint()), HTTPClient: sdkhttp.Client(nil),
		Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AK", "SK", ""), RetryMaxAttempts: 1})}
	fleet := w.setup(1)
	for range 3 {
		job := w.deploy(fleet, nil)
		out, err := w.rm.CancelDeploymentJob(context.Background(), &robomaker.CancelDeploymentJobInput{Job: aws.String(job)})
		if err != nil {
			t.Fatal(err)
		}
		if requestID == "" {
			requestID, _ = awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
		}
		jobs = append(jobs, job)
	}
	return jobs, requestID
}

// TestJobIDsAreUniqueAcrossServices starts two fresh services on different data directories, doing the same
// thing on each: no job id (and no request id) of one is ever one of the other's, as with AWS. With one seeded
// source the ids repeat run after run, for harness runs that must.
func TestJobIDsAreUniqueAcrossServices(t *testing.T) {
	a, reqA := jobIDs(t, t.TempDir(), nil)
	b, reqB := jobIDs(t, t.TempDir(), nil)
	for _, x := range a {
		for _, y := range b {
			if x == y {
				t.Fatalf("two fresh services both made job %s (first service %v, second %v)", x, a, b)
			}
		}
	}
	if reqA == "" || reqA == reqB {
		t.Fatalf("request ids %q and %q", reqA, reqB)
	}

	s1, _ := jobIDs(t, t.TempDir(), awsapi.NewSeededSource(42))
	s2, _ := jobIDs(t, t.TempDir(), awsapi.NewSeededSource(42))
	s3, _ := jobIDs(t, t.TempDir(), awsapi.NewSeededSource(43))
	if s1[0] != s2[0] || s1[2] != s2[2] {
		t.Fatalf("seed 42 made %v, then %v", s1, s2)
	}
	if s1[0] == s3[0] {
		t.Fatalf("seeds 42 and 43 both made %s", s1[0])
	}
}
