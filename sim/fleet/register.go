package fleet

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/robomaker"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"

	"github.com/fleetlab/fleetlab/sim/clock"
)

// GreengrassGroupID is the Greengrass group id RegisterRoboMaker gives every robot it creates. RoboMaker requires
// one; the simulated robots belong to no Greengrass group, so every robot carries the same placeholder.
const GreengrassGroupID = "fleetlab"

// registerWorkers is how many RoboMaker calls RegisterRoboMaker keeps in flight: enough to hide the round trip
// of each call, few enough not to queue hundreds of requests behind the service's lock.
const registerWorkers = 8

// RegisterRoboMaker makes devs the robots of the RoboMaker fleet named fleetName, through client, and returns
// the fleet's ARN. It is what every backend's robots register through, and it may be called again for the same
// fleet (after a service restart, or to add devices):
//
//   - the fleet is the oldest one named fleetName (RoboMaker does not make fleet names unique), or a new one;
//   - each device becomes a robot of its name and architecture; an existing robot of that name is reused when
//     its architecture matches, and is an error otherwise;
//   - each robot is registered with the fleet; a robot already in it is left alone, one in another fleet is an
//     error naming that fleet.
//
// Device names must be valid RoboMaker robot names ([a-zA-Z0-9_-]{1,255}); duplicates are an error. A quota the
// service enforces (robots per fleet, fleets per region) comes back as the SDK's LimitExceededException.
//
// The calls are made by a few goroutines at once; OnClock makes them goroutines of a clock (actors of a
// virtual-time world).
func RegisterRoboMaker(ctx context.Context, client *robomaker.Client, fleetName string, devs []Device, opts ...RegisterOption) (string, error) {
	var o registerOptions
	for _, opt := range opts {
		opt(&o)
	}
	seen := make(map[string]bool, len(devs))
	for _, d := range devs {
		if seen[d.Name()] {
			return "", fmt.Errorf("register fleet %s: device %s appears twice", fleetName, d.Name())
		}
		seen[d.Name()] = true
	}
	fleetARN, err := fleetByName(ctx, client, fleetName)
	if err != nil {
		return "", fmt.Errorf("register fleet %s: %w", fleetName, err)
	}
	robots := make([]string, len(devs)) // robot ARNs; "" when the robot already existed
	err = parallel(ctx, o.clock, len(devs), func(ctx context.Context, i int) error {
		d := devs[i]
		out, err := client.CreateRobot(ctx, &robomaker.CreateRobotInput{Name: aws.String(d.Name()),
			Architecture: types.Architecture(d.Architecture()), GreengrassGroupId: aws.String(GreengrassGroupID)})
		var exists *types.ResourceAlreadyExistsException
		if errors.As(err, &exists) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("create robot %s: %w", d.Name(), err)
		}
		robots[i] = aws.ToString(out.Arn)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("register fleet %s: %w", fleetName, err)
	}
	registered := make([]bool, len(devs))
	if err := resolveExisting(ctx, client, fleetARN, devs, robots, registered); err != nil {
		return "", fmt.Errorf("register fleet %s: %w", fleetName, err)
	}
	err = parallel(ctx, o.clock, len(devs), func(ctx context.Context, i int) error {
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
func resolveExisting(ctx context.Context, client *robomaker.Client, fleetARN string, devs []Device, robots []string, registered []bool) error {
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
		if string(r.Architecture) != d.Architecture() {
			return fmt.Errorf("robot %s exists with architecture %s, the device is %s", d.Name(), r.Architecture, d.Architecture())
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

// RegisterOption is an option of RegisterRoboMaker.
type RegisterOption func(*registerOptions)

type registerOptions struct{ clock clock.Clock }

// OnClock makes the calls of RegisterRoboMaker on goroutines of c.
func OnClock(c clock.Clock) RegisterOption { return func(o *registerOptions) { o.clock = c } }

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
