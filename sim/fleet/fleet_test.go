package fleet_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/robomaker"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"

	rmdialect "github.com/fleetlab/fleetlab/sim/awsapi/robomaker"
	"github.com/fleetlab/fleetlab/sim/fleet"
	"github.com/fleetlab/fleetlab/sim/fleet/fleettest"
	"github.com/fleetlab/fleetlab/sim/service"
)

type device struct{ name, arch string }

func (d device) Name() string         { return d.name }
func (d device) Architecture() string { return d.arch }

// fleetRobots returns the robots of the fleet as name → architecture, through DescribeFleet.
func fleetRobots(t *testing.T, w *fleettest.World, arn string) map[string]string {
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

func TestRegisterRoboMaker(t *testing.T) {
	w := fleettest.Start(t, service.Options{Memory: true})
	ctx := context.Background()
	devs := []fleet.Device{device{"r1", "X86_64"}, device{"r2", "ARM64"}, device{"r3", "ARMHF"}}
	arn, err := fleet.RegisterRoboMaker(ctx, w.RM, "lab", devs)
	if err != nil {
		t.Fatal(err)
	}
	if got := fleetRobots(t, w, arn); len(got) != 3 || got["r1"] != "X86_64" || got["r2"] != "ARM64" || got["r3"] != "ARMHF" {
		t.Fatalf("fleet robots %v", got)
	}

	// Again, with one more device: the fleet and the robots are reused, the new one added.
	again, err := fleet.RegisterRoboMaker(ctx, w.RM, "lab", append(devs, device{"r4", "X86_64"}))
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
		{"lab", []fleet.Device{device{"r1", "ARM64"}}, "exists with architecture X86_64"},
		{"other", []fleet.Device{device{"r1", "X86_64"}}, "is registered with fleet " + arn},
		{"lab", []fleet.Device{device{"r5", "X86_64"}, device{"r5", "X86_64"}}, "appears twice"},
	} {
		if _, err := fleet.RegisterRoboMaker(ctx, w.RM, tc.fleet, tc.devs); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("register %v in %s: %v, want %q", tc.devs, tc.fleet, err, tc.want)
		}
	}
}

func TestRegisterRoboMakerQuota(t *testing.T) {
	w := fleettest.Start(t, service.Options{Memory: true, RoboMakerQuotas: rmdialect.Quotas{RobotsPerFleet: 2}})
	_, err := fleet.RegisterRoboMaker(context.Background(), w.RM, "lab",
		[]fleet.Device{device{"a", "X86_64"}, device{"b", "X86_64"}, device{"c", "X86_64"}})
	var limit *types.LimitExceededException
	if !errors.As(err, &limit) {
		t.Fatalf("a fleet over the quota: %v, want LimitExceededException", err)
	}
}

func TestNames(t *testing.T) {
	got, err := fleet.Names(nil, 3, "")
	if err != nil || strings.Join(got, " ") != "robot-0001 robot-0002 robot-0003" {
		t.Fatalf("Names(3) = %v, %v", got, err)
	}
	got, err = fleet.Names(nil, 12000, "arm")
	if err != nil || got[0] != "arm-00001" || got[11999] != "arm-12000" {
		t.Fatalf("Names(12000) = %v…, %v", got[:2], err)
	}
	got, err = fleet.Names([]string{"b", "a"}, 0, "")
	if err != nil || strings.Join(got, " ") != "a b" {
		t.Fatalf("Names(b, a) = %v, %v", got, err)
	}
	for _, bad := range [][]string{{"a", "a"}, {"has space"}, {"colon:name"}, {""}} {
		if _, err := fleet.Names(bad, 0, ""); err == nil {
			t.Errorf("Names(%q) accepted", bad)
		}
	}
	if _, err := fleet.Names(nil, 0, ""); err == nil {
		t.Error("no names and no count accepted")
	}
}
