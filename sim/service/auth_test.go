package service_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/robomaker"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/awsapi/sdkhttp"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	"github.com/fleetlab/fleetlab/sim/service"
)

// signed starts a service that checks signatures: operators sign with AK/SK, robots with DK/DS.
func signed(t *testing.T) *service.Service {
	t.Helper()
	svc, err := service.New(service.Options{Dir: t.TempDir(), InMemoryStore: true, Auth: &awsapi.SigV4{
		Keys: map[string]string{"AK": "SK"}, DeviceKeys: map[string]string{"DK": "DS"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start("127.0.0.1:0", ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	knowRobot(t, svc, "robot-1")
	return svc
}

// knowRobot creates the robot name through the RoboMaker API (signed with the operators' key, AK/SK, which a
// service without auth takes as any), so that the device API knows the thing.
func knowRobot(t *testing.T, svc *service.Service, name string) {
	t.Helper()
	tr := &http.Transport{}
	rm := robomaker.New(robomaker.Options{BaseEndpoint: aws.String(svc.Endpoint()), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AK", "SK", ""), RetryMaxAttempts: 1,
		HTTPClient: sdkhttp.Client(tr)})
	_, err := rm.CreateRobot(context.Background(), &robomaker.CreateRobotInput{Name: aws.String(name),
		Architecture: "X86_64", GreengrassGroupId: aws.String("g")})
	tr.CloseIdleConnections()
	if err != nil {
		t.Fatal(err)
	}
	// Tests count the service's connections: this one must be gone before they start.
	waitFor(t, "the connection that created the robot is closed", func() bool {
		for _, n := range svc.Conns() {
			if n != 0 {
				return false
			}
		}
		return true
	})
}

func apiError(err error) (code string, status int) {
	var api smithy.APIError
	var re *awshttp.ResponseError
	if errors.As(err, &api) && errors.As(err, &re) {
		return api.ErrorCode(), re.HTTPStatusCode()
	}
	var ae *agent.APIError
	if errors.As(err, &ae) {
		return ae.Code, ae.Status
	}
	return "", 0
}

// TestDevicesSignWithTheirOwnKeys: with --auth sigv4 the device API takes only requests the agent's transport
// signed with a robot's key — the data plane and the notify channel alike — and a robot's key opens nothing else.
func TestDevicesSignWithTheirOwnKeys(t *testing.T) {
	svc := signed(t)
	ctx := context.Background()
	transport := func(creds *agent.Credentials) *agent.HTTPTransport {
		tr, err := agent.NewHTTPTransport(svc.Endpoint(), "robot-1", nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(tr.CloseIdleConnections)
		if creds != nil {
			tr.SignWith(*creds)
		}
		return tr
	}

	robot := transport(&agent.Credentials{AccessKey: "DK", SecretKey: "DS"})
	if _, err := robot.Pending(ctx); err != nil {
		t.Fatalf("a robot signing with its key: %v", err)
	}
	if _, err := robot.StartNext(ctx, wire.StartNextPendingJobExecutionRequest{
		StatusDetails: map[string]string{"step": "Validating"}}); err != nil {
		t.Fatalf("a robot's signed request with a body: %v", err)
	}
	sub, cancel := context.WithCancel(ctx)
	notes, err := robot.Subscribe(sub)
	if err != nil {
		t.Fatalf("a robot's signed notify channel: %v", err)
	}
	if n, err := notes.Next(sub); err != nil || n.Kind != wire.NotifyHello {
		t.Fatalf("first notification %+v %v, want hello", n, err)
	}
	cancel()
	notes.Close()

	for _, tc := range []struct {
		name  string
		creds *agent.Credentials
		code  string
	}{
		{"unsigned", nil, "MissingAuthenticationTokenException"},
		{"an operator's key", &agent.Credentials{AccessKey: "AK", SecretKey: "SK"}, "UnrecognizedClientException"},
		{"a wrong secret", &agent.Credentials{AccessKey: "DK", SecretKey: "nope"}, "InvalidSignatureException"},
	} {
		tr := transport(tc.creds)
		_, err := tr.Pending(ctx)
		if code, status := apiError(err); code != tc.code || status != http.StatusForbidden {
			t.Errorf("%s: Pending answered %v, want 403 %s", tc.name, err, tc.code)
		}
		if _, err := tr.Subscribe(ctx); err == nil {
			t.Errorf("%s: the notify channel opened", tc.name)
		}
	}

	// A robot's key does not open the control plane.
	rm := robomaker.New(robomaker.Options{BaseEndpoint: aws.String(svc.Endpoint()), HTTPClient: sdkhttp.Client(nil), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("DK", "DS", ""), RetryMaxAttempts: 1})
	_, err = rm.CreateFleet(ctx, &robomaker.CreateFleetInput{Name: aws.String("lab")})
	if code, status := apiError(err); code != "UnrecognizedClientException" || status != http.StatusForbidden {
		t.Errorf("CreateFleet with a robot's key: %v", err)
	}
}

// TestS3OnTheOneEndpointWithAuth drives S3 on the one endpoint with the AWS SDK's S3 client, signed with the
// operators' key: it works; a wrong secret and an unsigned request are refused in S3's words.
func TestS3OnTheOneEndpointWithAuth(t *testing.T) {
	svc := signed(t)
	ctx := context.Background()
	client := func(secret string) *s3.Client {
		return s3.New(s3.Options{BaseEndpoint: aws.String(svc.Endpoint()), HTTPClient: sdkhttp.Client(nil), UsePathStyle: true, Region: "us-east-1",
			Credentials: credentials.NewStaticCredentialsProvider("AK", secret, ""), Retryer: aws.NopRetryer{}})
	}
	c := client("SK")
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bundles")}); err != nil {
		t.Fatal(err)
	}
	body := []byte("a robot's bundle")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bundles"), Key: aws.String("things/hello.tar.gz"),
		Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bundles"), Key: aws.String("things/hello.tar.gz")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(got, body) {
		t.Fatalf("read back %q", got)
	}
	_, err = client("wrong").PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bundles"), Key: aws.String("evil"),
		Body: bytes.NewReader([]byte("replaced"))})
	if code, status := apiError(err); code != "SignatureDoesNotMatch" || status != http.StatusForbidden {
		t.Errorf("PutObject with a wrong secret: %v", err)
	}
	resp, err := http.Get(svc.Endpoint() + "/bundles/things/hello.tar.gz")
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(answer), "<Code>AccessDenied</Code>") {
		t.Errorf("unsigned GET: %d %s", resp.StatusCode, answer)
	}
	if _, err := svc.Artifacts.Head("bundles", "evil"); err == nil {
		t.Error("the badly signed upload was stored")
	}
}
