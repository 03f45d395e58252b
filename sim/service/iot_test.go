package service_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/awsapi/sdkhttp"
	"github.com/fleetlab/fleetlab/sim/service"
)

// IoT's control plane shares /things/{thingName} with the device API on the one endpoint: a request signed for
// iot goes to IoT, a device's (signed for iot-jobs-data, or unsigned) to the device API, and a thing IoT
// registers is one the device API serves.
func TestIoTBesideTheDeviceAPI(t *testing.T) {
	svc := signed(t)
	ctx := context.Background()
	client := func(key, secret string) *iot.Client {
		return iot.New(iot.Options{BaseEndpoint: aws.String(svc.Endpoint()), HTTPClient: sdkhttp.Client(nil), Region: "us-east-1",
			Credentials: credentials.NewStaticCredentialsProvider(key, secret, ""), RetryMaxAttempts: 1})
	}
	c := client("AK", "SK")
	tr, err := agent.NewHTTPTransport(svc.Endpoint(), "core-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	tr.SignWith(agent.Credentials{AccessKey: "DK", SecretKey: "DS"})
	if _, err := tr.Pending(ctx); err == nil {
		t.Fatal("the device API serves a thing nobody registered")
	} else if code, status := apiError(err); code != "ResourceNotFoundException" || status != http.StatusNotFound {
		t.Fatalf("Pending for an unknown thing: %v", err)
	}

	if _, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("core-1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateThingGroup(ctx, &iot.CreateThingGroupInput{ThingGroupName: aws.String("site")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddThingToThingGroup(ctx, &iot.AddThingToThingGroupInput{ThingGroupName: aws.String("site"),
		ThingName: aws.String("core-1")}); err != nil {
		t.Fatal(err)
	}
	d, err := c.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String("core-1")})
	if err != nil || aws.ToString(d.ThingArn) != "arn:aws:iot:us-east-1:123456789012:thing/core-1" {
		t.Fatalf("DescribeThing: %+v %v", d, err)
	}
	groups, err := c.ListThingGroupsForThing(ctx, &iot.ListThingGroupsForThingInput{ThingName: aws.String("core-1")})
	if err != nil || len(groups.ThingGroups) != 1 || aws.ToString(groups.ThingGroups[0].GroupName) != "site" {
		t.Fatalf("ListThingGroupsForThing: %+v %v", groups, err)
	}
	if _, err := tr.Pending(ctx); err != nil {
		t.Fatalf("the device API does not serve a thing IoT registered: %v", err)
	}
	// IoT's DescribeJobExecution shares /things/{thingName}/jobs/{jobId} with the device API's: signed for iot,
	// it is IoT's, and answers in IoT's words.
	_, err = c.DescribeJobExecution(ctx, &iot.DescribeJobExecutionInput{ThingName: aws.String("core-1"),
		JobId: aws.String("job-9")})
	if code, status := apiError(err); code != "ResourceNotFoundException" || status != http.StatusNotFound ||
		!strings.Contains(err.Error(), "Job job-9 cannot be found") {
		t.Fatalf("DescribeJobExecution of a job that does not exist: %v", err)
	}

	// A device's key does not open IoT's control plane; an operator's does not open the device API.
	_, err = client("DK", "DS").DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String("core-1")})
	if code, status := apiError(err); code != "UnrecognizedClientException" || status != http.StatusForbidden {
		t.Errorf("DescribeThing with a device's key: %v", err)
	}
	op, err := agent.NewHTTPTransport(svc.Endpoint(), "core-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(op.CloseIdleConnections)
	op.SignWith(agent.Credentials{AccessKey: "AK", SecretKey: "SK"})
	if _, err := op.Pending(ctx); err == nil {
		t.Error("the device API took an operator's key")
	}
}

// Without signature checks, an unsigned request on /things/ is the device API's, whatever IoT serves there.
func TestUnsignedThingsPathsAreTheDeviceAPIs(t *testing.T) {
	svc, err := service.New(service.Options{Dir: t.TempDir(), InMemoryStore: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start("127.0.0.1:0", ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	c := iot.New(iot.Options{BaseEndpoint: aws.String(svc.Endpoint()), HTTPClient: sdkhttp.Client(nil), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AK", "SK", ""), RetryMaxAttempts: 1})
	if _, err := c.CreateThing(context.Background(), &iot.CreateThingInput{ThingName: aws.String("core-1")}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path       string
		status     int
		bodyPrefix string
	}{
		{"/things/core-1/jobs", http.StatusOK, `{"inProgressJobs":`},
		{"/things/core-1", http.StatusNotFound, ""}, // DescribeThing unsigned: no device API route
	} {
		resp, err := http.Get(svc.Endpoint() + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.HasPrefix(string(body), tc.bodyPrefix) ||
			strings.Contains(string(body), "core-1\",\"thingArn") {
			t.Errorf("GET %s unsigned: %d %s", tc.path, resp.StatusCode, body)
		}
	}
}
