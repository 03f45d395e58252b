package service_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sdk "github.com/aws/aws-sdk-go-v2/service/robomaker"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"

	"github.com/fleetlab/fleetlab/sim/awsapi/robomaker"
	"github.com/fleetlab/fleetlab/sim/awsapi/sdkhttp"
	"github.com/fleetlab/fleetlab/sim/service"
)

// Every dialect of the list is served and found by name; its options reach it, and options naming no dialect,
// or of another type than the dialect's, are refused by name.
func TestDialectOptions(t *testing.T) {
	svc, err := service.New(service.Options{Dir: t.TempDir(), InMemoryStore: true,
		DialectOptions: map[string]any{robomaker.Kind: robomaker.Quotas{Fleets: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	if d, ok := svc.Dialect(robomaker.Kind); !ok || d.Name() != robomaker.Kind || d.Model() == nil {
		t.Fatalf("dialect robomaker: %v %v", d, ok)
	}
	if err := svc.Start("127.0.0.1:0", ""); err != nil {
		t.Fatal(err)
	}
	rm := sdk.New(sdk.Options{BaseEndpoint: aws.String(svc.Endpoint()), HTTPClient: sdkhttp.Client(nil), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AK", "SK", ""), RetryMaxAttempts: 1})
	ctx := context.Background()
	if _, err := rm.CreateFleet(ctx, &sdk.CreateFleetInput{Name: aws.String("one")}); err != nil {
		t.Fatal(err)
	}
	var limit *types.LimitExceededException
	if _, err := rm.CreateFleet(ctx, &sdk.CreateFleetInput{Name: aws.String("two")}); !errors.As(err, &limit) {
		t.Fatalf("a second fleet under a quota of one: %v", err)
	}
	if _, ok := svc.Dialect("nosuchdialect"); ok {
		t.Fatal("a dialect the service does not have is found")
	}
	for _, tc := range []struct {
		options map[string]any
		want    string
	}{
		{map[string]any{"nosuchdialect": 1}, `options for dialect "nosuchdialect": the service has no such dialect (it has `},
		{map[string]any{robomaker.Kind: 20}, "robomaker: options are a int, want a robomaker.Quotas"},
	} {
		svc, err := service.New(service.Options{Dir: t.TempDir(), InMemoryStore: true, DialectOptions: tc.options})
		if err == nil {
			svc.Close()
			t.Fatalf("options %v accepted", tc.options)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("options %v: %v, want %q", tc.options, err, tc.want)
		}
	}
}
