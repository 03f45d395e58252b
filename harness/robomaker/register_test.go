package robomaker_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/robomaker"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"

	"github.com/fleetlab/fleetlab/harness/robomaker/robomakertest"
	rmdialect "github.com/fleetlab/fleetlab/sim/awsapi/robomaker"
	"github.com/fleetlab/fleetlab/sim/fleet"
	"github.com/fleetlab/fleetlab/sim/service"
)

type device struct{ name, arch string }

func (d device) Name() string         { return d.name }
func (d device) Architecture() string { return d.arch }

// fleetRobots returns the robots of the fleet as name → architecture, through DescribeFleet.
func fleetRobots(t *testing.T, w *robomakertest.World, arn string) map[string]string {
	t.Helper()
	out, err := w.RM.DescribeFleet(context.Background(), &robomaker.DescribeFleetInput{Fleet: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, r := range out.Robots {
		m[aws.ToString(r.Name)] = string(r.Architecture)
	}
	return m
}

func TestRegister(t *testing.T) {
	w := robomakertest.Start(t, service.Options{InMemoryStore: true})
	ctx := context.Background()
	devs := []fleet.Device{device{"r1", "amd64"}, device{"r2", "arm64"}, device{"r3", "arm"}}
	arn, err := w.Register(ctx, "lab", devs)
	if err != nil {
		t.Fatal(err)
	}
	if got := fleetRobots(t, w, arn); len(got) != 3 || got["r1"] != "X86_64" || got["r2"] != "ARM64" || got["r3"] != "ARMHF" {
		t.Fatalf("fleet robots %v", got)
	}

	// Again, with one more device: the fleet and the robots are reused, the new one added.
	again, err := w.Register(ctx, "lab", append(devs, device{"r4", "amd64"}))
	if err != nil {
		t.Fatal(err)
	}
	if again != arn {
		t.Fatalf("second registration made fleet %s, want %s reused", again, arn)
	}
	if got := fleetRobots(t, w, arn); len(got) != 4 {
		t.Fatalf("fleet robots %v", got)
	}
	fleets, err := w.RM.ListFleets(ctx, &robomaker.ListFleetsInput{})
	if err != nil || len(fleets.FleetDetails) != 1 {
		t.Fatalf("%d fleets (%v), want 1", len(fleets.FleetDetails), err)
	}

	for _, tc := range []struct {
		fleet string
		devs  []fleet.Device
		want  string
	}{
		{"lab", []fleet.Device{device{"r1", "arm64"}}, "exists with architecture X86_64, the device is ARM64 (arm64)"},
		{"other", []fleet.Device{device{"r1", "amd64"}}, "is registered with fleet " + arn},
		{"lab", []fleet.Device{device{"r5", "amd64"}, device{"r5", "amd64"}}, "appears twice"},
		// A device names its architecture by GOARCH; RoboMaker's names are the driver's to give, not the device's.
		{"lab", []fleet.Device{device{"r6", "X86_64"}}, `device r6: architecture "X86_64"`},
	} {
		if _, err := w.Register(ctx, tc.fleet, tc.devs); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("register %v in %s: %v, want %q", tc.devs, tc.fleet, err, tc.want)
		}
	}
}

func TestRegisterQuota(t *testing.T) {
	w := robomakertest.Start(t, service.Options{InMemoryStore: true, DialectOptions: map[string]any{rmdialect.Kind: rmdialect.Quotas{RobotsPerFleet: 2}}})
	_, err := w.Register(context.Background(), "lab",
		[]fleet.Device{device{"a", "amd64"}, device{"b", "amd64"}, device{"c", "amd64"}})
	var limit *types.LimitExceededException
	if !errors.As(err, &limit) {
		t.Fatalf("a fleet over the quota: %v, want LimitExceededException", err)
	}
}
