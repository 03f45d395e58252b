package robomaker

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/robomaker"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"

	"github.com/fleetlab/fleetlab/harness/dialect"
	agentrm "github.com/fleetlab/fleetlab/sim/agent/robomaker"
	awsrm "github.com/fleetlab/fleetlab/sim/awsapi/robomaker"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// GreengrassGroupID is the Greengrass group id register gives every robot it creates. RoboMaker requires
// one; the simulated robots belong to no Greengrass group, so every robot carries the same placeholder.
const GreengrassGroupID = "fleetlab"

// registerWorkers is how many RegisterRobot calls register keeps in flight: enough to hide the round trip
// of each call, few enough not to queue hundreds of requests behind the service's lock.
const registerWorkers = 8

// Register makes devs the robots of the RoboMaker fleet named fleetName, through client, and returns the fleet's
// ARN. It may be called again for the same fleet (after a service restart, or to add devices):
//
//   - each device becomes a robot of its name and architecture (RoboMaker's name of the device's GOARCH:
//     amd64 is X86_64, arm64 ARM64, arm ARMHF; see agentrm.Architecture), created once, one after another in the order
//     of devs: RoboMaker releases a job's robots in the order they were created, so a fixed order makes the
//     release order — who deploys first, who is still queued when a threshold trips — the same in every run;
//     an existing robot of that name is reused when its architecture matches, and is an error otherwise;
//   - the fleet is the oldest one named fleetName (RoboMaker does not make fleet names unique), or a new one;
//   - each robot is registered with the fleet, by a few goroutines of c at once (actors of a virtual-time
//     world); a robot already in it is left alone, one in another fleet is an error naming that fleet.
//
// Device names must be valid RoboMaker robot names ([a-zA-Z0-9_-]{1,255}); duplicates are an error. A quota the
// service enforces (robots per fleet, fleets per region) comes back as the SDK's LimitExceededException.
func Register(ctx context.Context, client *robomaker.Client, fleetName string, devs []fleet.Device, c clock.Clock) (string, error) {
	seen := make(map[string]bool, len(devs))
	archs := make([]types.Architecture, len(devs))
	for i, d := range devs {
		if seen[d.Name()] {
			return "", fmt.Errorf("register fleet %s: device %s appears twice", fleetName, d.Name())
		}
		seen[d.Name()] = true
		a, err := agentrm.Architecture(d.Architecture())
		if err != nil {
			return "", fmt.Errorf("register fleet %s: device %s: %w", fleetName, d.Name(), err)
		}
		archs[i] = types.Architecture(a)
	}
	robots := make([]string, len(devs)) // robot ARNs; "" when the robot already existed
	for i, d := range devs {
		out, err := client.CreateRobot(ctx, &robomaker.CreateRobotInput{Name: aws.String(d.Name()),
			Architecture: archs[i], GreengrassGroupId: aws.String(GreengrassGroupID)})
		switch {
		case errAlreadyExists(err):
		case err != nil:
			return "", fmt.Errorf("register fleet %s: create robot %s: %w", fleetName, d.Name(), err)
		default:
			robots[i] = aws.ToString(out.Arn)
		}
	}
	fleetARN, err := fleetByName(ctx, client, fleetName)
	if err != nil {
		return "", fmt.Errorf("register fleet %s: %w", fleetName, err)
	}
	registered := make([]bool, len(devs))
	if err := resolveExisting(ctx, client, fleetARN, devs, archs, robots, registered); err != nil {
		return "", fmt.Errorf("register fleet %s: %w", fleetName, err)
	}
	err = parallel(ctx, c, len(devs), func(ctx context.Context, i int) error {
		if registered[i] {
			return nil
		}
		_, err := client.RegisterRobot(ctx, &robomaker.RegisterRobotInput{Fleet: aws.String(fleetARN),
			Robot: aws.String(robots[i])})
		if err != nil {
			return fmt.Errorf("register robot %s: %w", devs[i].Name(), err)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("register fleet %s: %w", fleetName, err)
	}
	return fleetARN, nil
}

// fleetByName returns the ARN of the oldest fleet named name, creating the fleet when there is none.
func fleetByName(ctx context.Context, client *robomaker.Client, name string) (string, error) {
	pages := robomaker.NewListFleetsPaginator(client, &robomaker.ListFleetsInput{
		Filters: []types.Filter{{Name: aws.String("name"), Values: []string{name}}}})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("list fleets: %w", err)
		}
		for _, f := range page.FleetDetails {
			if aws.ToString(f.Name) == name {
				return aws.ToString(f.Arn), nil // fleets are listed in creation order
			}
		}
	}
	out, err := client.CreateFleet(ctx, &robomaker.CreateFleetInput{Name: aws.String(name)})
	if err != nil {
		return "", fmt.Errorf("create fleet: %w", err)
	}
	return aws.ToString(out.Arn), nil
}

// resolveExisting fills in the ARNs of the robots that already existed (robots[i] == "") from ListRobots, checks
// their architecture and fleet, and marks those already in fleetARN as registered.
func resolveExisting(ctx context.Context, client *robomaker.Client, fleetARN string, devs []fleet.Device, archs []types.Architecture, robots []string, registered []bool) error {
	missing := 0
	for _, arn := range robots {
		if arn == "" {
			missing++
		}
	}
	if missing == 0 {
		return nil
	}
	byName := map[string]types.Robot{}
	pages := robomaker.NewListRobotsPaginator(client, &robomaker.ListRobotsInput{})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list robots: %w", err)
		}
		for _, r := range page.Robots {
			byName[aws.ToString(r.Name)] = r
		}
	}
	for i, d := range devs {
		if robots[i] != "" {
			continue
		}
		r, ok := byName[d.Name()]
		if !ok {
			return fmt.Errorf("robot %s: CreateRobot says it exists, ListRobots does not list it", d.Name())
		}
		if r.Architecture != archs[i] {
			return fmt.Errorf("robot %s exists with architecture %s, the device is %s (%s)", d.Name(), r.Architecture,
				archs[i], d.Architecture())
		}
		switch f := aws.ToString(r.FleetArn); f {
		case "":
		case fleetARN:
			registered[i] = true
		default:
			return fmt.Errorf("robot %s is registered with fleet %s", d.Name(), f)
		}
		robots[i] = aws.ToString(r.Arn)
	}
	return nil
}

// parallel runs fn for 0..n-1 on registerWorkers goroutines of c, worker k taking the indexes k, k+W, k+2W, …,
// and returns the first error; after an error the remaining indexes are skipped and ctx given to running calls
// is canceled.
func parallel(ctx context.Context, c clock.Clock, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	workers := min(registerWorkers, n)
	g := clock.NewGroup(c)
	for k := range workers {
		g.Go(fmt.Sprint("register worker ", k), func() {
			for i := k; i < n && ctx.Err() == nil; i += workers {
				if err := fn(ctx, i); err != nil {
					cancel(err)
				}
			}
		})
	}
	g.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

// RegisterBulk implements dialect.BulkRegisterer: devs become robots of the fleet FleetName, as Register makes
// them, through the service's RegisterFleet in one store update. It needs a Host whose service runs in this
// process (dialect.InProcessService).
func (s *Session) RegisterBulk(_ context.Context, devs []fleet.Device) error {
	h, ok := s.h.(dialect.InProcessService)
	if !ok {
		return fmt.Errorf("register fleet %s in bulk: the service does not run in this process", FleetName)
	}
	d, ok := h.ServiceDialect(awsrm.Kind)
	svc, isRM := d.(*awsrm.Service)
	if !ok || !isRM {
		return fmt.Errorf("register fleet %s in bulk: the service has no RoboMaker dialect", FleetName)
	}
	robots := make([]awsrm.BulkRobot, len(devs))
	for i, dev := range devs {
		a, err := agentrm.Architecture(dev.Architecture())
		if err != nil {
			return fmt.Errorf("register fleet %s: device %s: %w", FleetName, dev.Name(), err)
		}
		robots[i] = awsrm.BulkRobot{Name: dev.Name(), Architecture: a}
	}
	arn, err := svc.RegisterFleet(FleetName, GreengrassGroupID, robots)
	if err != nil {
		return err
	}
	s.fleetARN = arn
	return nil
}
