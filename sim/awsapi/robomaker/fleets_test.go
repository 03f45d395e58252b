package robomaker

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/robomaker"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"
)

var (
	fleetARNPattern = regexp.MustCompile(`^arn:aws:robomaker:us-east-1:123456789012:deployment-fleet/[^/]+/\d{13}$`)
	robotARNPattern = regexp.MustCompile(`^arn:aws:robomaker:us-east-1:123456789012:robot/[^/]+/\d{13}$`)
	appARNPattern   = regexp.MustCompile(`^arn:aws:robomaker:us-east-1:123456789012:robot-application/[^/]+/\d{13}$`)
	jobARNPattern   = regexp.MustCompile(`^arn:aws:robomaker:us-east-1:123456789012:deployment-job/deployment-[0-9a-z]{12}$`)
)

func TestCreateFleet(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Quotas.Fleets = 2 })
	out, err := e.c.CreateFleet(e.ctx, &robomaker.CreateFleetInput{Name: aws.String("lab-1"),
		Tags: map[string]string{"team": "hil"}})
	if err != nil {
		t.Fatal(err)
	}
	if !fleetARNPattern.MatchString(aws.ToString(out.Arn)) || aws.ToString(out.Name) != "lab-1" ||
		!out.CreatedAt.Equal(e.clock.Now()) || out.Tags["team"] != "hil" {
		t.Fatalf("CreateFleet = %+v", out)
	}
	// Same name, same instant: a distinct ARN all the same.
	again, err := e.c.CreateFleet(e.ctx, &robomaker.CreateFleetInput{Name: aws.String("lab-1")})
	if err != nil || aws.ToString(again.Arn) == aws.ToString(out.Arn) {
		t.Fatalf("second fleet = %v, %v", again.Arn, err)
	}
	_, err = e.c.CreateFleet(e.ctx, &robomaker.CreateFleetInput{Name: aws.String("lab-3")})
	expectError[*types.LimitExceededException](t, err, 400, "limit of 2 fleets")

	for name, want := range map[string]string{
		"":                       "Value '' at 'name' failed to satisfy constraint: Member must have length greater than or equal to 1",
		"has space":              "Value 'has space' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_\\-]*",
		strings.Repeat("n", 256): "Member must have length less than or equal to 255",
	} {
		_, err := e.c.CreateFleet(e.ctx, &robomaker.CreateFleetInput{Name: aws.String(name)})
		expectError[*types.InvalidParameterException](t, err, 400, want)
	}
	_, err = e.c.CreateFleet(e.ctx, &robomaker.CreateFleetInput{Name: aws.String("f"),
		Tags: map[string]string{"bad\ttag": "v"}})
	expectError[*types.InvalidParameterException](t, err, 400, "Map keys must satisfy constraint")
}

func TestDescribeFleet(t *testing.T) {
	e := newEnv(t)
	f, robots := e.fleetWith("lab", 2)
	e.clock.Advance(time.Second)
	out, err := e.c.DescribeFleet(e.ctx, &robomaker.DescribeFleetInput{Fleet: aws.String(f)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.Arn) != f || aws.ToString(out.Name) != "lab" || len(out.Robots) != 2 ||
		out.LastDeploymentJob != nil || out.LastDeploymentStatus != "" {
		t.Fatalf("DescribeFleet = %+v", out)
	}
	for i, r := range out.Robots {
		// The Robot shape spells the member greenGrassGroupId; the SDK reads that spelling.
		if aws.ToString(r.Arn) != robots[i] || aws.ToString(r.GreenGrassGroupId) != "gg-lab-r"+string(rune('1'+i)) ||
			r.Status != types.RobotStatusRegistered || aws.ToString(r.FleetArn) != f || r.Architecture != types.ArchitectureArm64 {
			t.Errorf("robot %d = %+v", i, r)
		}
	}
	_, raw, body := e.raw("POST", "/describeFleet", `{"fleet":"`+f+`"}`)
	if raw != "" || !strings.Contains(body, `"greenGrassGroupId":"gg-lab-r1"`) || strings.Contains(body, "greengrassGroupId") {
		t.Errorf("DescribeFleet body = %s", body)
	}

	_, err = e.c.DescribeFleet(e.ctx, &robomaker.DescribeFleetInput{Fleet: aws.String(f + "0")})
	expectError[*types.ResourceNotFoundException](t, err, 400, "does not exist")
	_, err = e.c.DescribeFleet(e.ctx, &robomaker.DescribeFleetInput{Fleet: aws.String("lab")})
	expectError[*types.InvalidParameterException](t, err, 400, "at 'fleet' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:.*")
	// A robot's ARN is not a fleet's.
	_, err = e.c.DescribeFleet(e.ctx, &robomaker.DescribeFleetInput{Fleet: aws.String(robots[0])})
	expectError[*types.ResourceNotFoundException](t, err, 400, "")
}

func TestListFleets(t *testing.T) {
	e := newEnv(t)
	var arns []string
	for _, n := range []string{"a", "b", "c"} {
		arns = append(arns, e.fleet(n))
	}
	var got []string
	var token *string
	for {
		out, err := e.c.ListFleets(e.ctx, &robomaker.ListFleetsInput{MaxResults: aws.Int32(2), NextToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range out.FleetDetails {
			got = append(got, aws.ToString(f.Arn))
		}
		if out.NextToken == nil {
			break
		}
		token = out.NextToken
	}
	if strings.Join(got, ",") != strings.Join(arns, ",") {
		t.Fatalf("paged fleets = %v, want %v", got, arns)
	}
	out, err := e.c.ListFleets(e.ctx, &robomaker.ListFleetsInput{Filters: []types.Filter{{Name: aws.String("name"),
		Values: []string{"a", "c", "zz"}}}})
	if err != nil || len(out.FleetDetails) != 2 || aws.ToString(out.FleetDetails[1].Name) != "c" {
		t.Fatalf("filtered = %+v, %v", out, err)
	}

	for _, tc := range []struct {
		in   *robomaker.ListFleetsInput
		want string
	}{
		{&robomaker.ListFleetsInput{MaxResults: aws.Int32(0)}, "maxResults"},
		{&robomaker.ListFleetsInput{MaxResults: aws.Int32(201)}, "between 1 and 200"},
		{&robomaker.ListFleetsInput{NextToken: aws.String("garbage")}, "nextToken"},
		{&robomaker.ListFleetsInput{Filters: []types.Filter{{Name: aws.String("status"), Values: []string{"x"}}}}, "not supported"},
		{&robomaker.ListFleetsInput{Filters: []types.Filter{{Name: aws.String("name"), Values: []string{"a", "b", "c", "d"}}}},
			"at 'filters.1.member.values' failed to satisfy constraint: Member must have length less than or equal to 3"},
		{&robomaker.ListFleetsInput{Filters: []types.Filter{{Name: aws.String("name"), Values: []string{"a"}},
			{Name: aws.String("name"), Values: []string{"b"}}}}, "at 'filters' failed to satisfy constraint: Member must have length less than or equal to 1"},
	} {
		_, err := e.c.ListFleets(e.ctx, tc.in)
		expectError[*types.InvalidParameterException](t, err, 400, tc.want)
	}
	// A token of another listing is refused.
	first, _ := e.c.ListFleets(e.ctx, &robomaker.ListFleetsInput{MaxResults: aws.Int32(1)})
	_, err = e.c.ListRobots(e.ctx, &robomaker.ListRobotsInput{NextToken: first.NextToken})
	expectError[*types.InvalidParameterException](t, err, 400, "nextToken")
}

func TestDeleteFleet(t *testing.T) {
	e := newEnv(t)
	f, robots := e.fleetWith("lab", 1)
	app := e.app("hello")
	v := e.version(app)
	job := e.job(f, app, v, nil)
	_, err := e.c.DeleteFleet(e.ctx, &robomaker.DeleteFleetInput{Fleet: aws.String(f)})
	expectError[*types.InvalidParameterException](t, err, 400, "deployment job in progress")

	e.succeed(robots[0], aws.ToString(job.Arn))
	if _, err := e.c.DeleteFleet(e.ctx, &robomaker.DeleteFleetInput{Fleet: aws.String(f)}); err != nil {
		t.Fatal(err)
	}
	_, err = e.c.DescribeFleet(e.ctx, &robomaker.DescribeFleetInput{Fleet: aws.String(f)})
	expectError[*types.ResourceNotFoundException](t, err, 400, "")
	// Its robots are free again.
	if got := e.robotStatus(robots[0]); got != types.RobotStatusAvailable {
		t.Errorf("robot after its fleet was deleted: %s", got)
	}
	_, err = e.c.DeleteFleet(e.ctx, &robomaker.DeleteFleetInput{Fleet: aws.String(f)})
	expectError[*types.InvalidParameterException](t, err, 400, "does not exist")
}

func TestRobots(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Quotas.RobotsPerFleet = 2 })
	out, err := e.c.CreateRobot(e.ctx, &robomaker.CreateRobotInput{Name: aws.String("r1"),
		Architecture: types.ArchitectureArmhf, GreengrassGroupId: aws.String("g-1"), Tags: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	r1 := aws.ToString(out.Arn)
	if !robotARNPattern.MatchString(r1) || aws.ToString(out.GreengrassGroupId) != "g-1" ||
		out.Architecture != types.ArchitectureArmhf || !out.CreatedAt.Equal(e.clock.Now()) || out.Tags["k"] != "v" {
		t.Fatalf("CreateRobot = %+v", out)
	}
	_, err = e.c.CreateRobot(e.ctx, &robomaker.CreateRobotInput{Name: aws.String("r1"),
		Architecture: types.ArchitectureX8664, GreengrassGroupId: aws.String("g")})
	expectError[*types.ResourceAlreadyExistsException](t, err, 400, "r1")
	_, err = e.c.CreateRobot(e.ctx, &robomaker.CreateRobotInput{Name: aws.String("r9"),
		Architecture: "SPARC", GreengrassGroupId: aws.String("g")})
	expectError[*types.InvalidParameterException](t, err, 400, "Member must satisfy enum value set: [X86_64, ARM64, ARMHF]")
	status, code, body := e.raw("POST", "/createRobot", `{"name":"r9","architecture":"ARM64"}`)
	if status != 400 || code != "InvalidParameterException" || !strings.Contains(body, "Value null at 'greengrassGroupId'") {
		t.Errorf("missing greengrassGroupId = %d %s %s", status, code, body)
	}

	d, err := e.c.DescribeRobot(e.ctx, &robomaker.DescribeRobotInput{Robot: aws.String(r1)})
	if err != nil || d.Status != types.RobotStatusAvailable || d.FleetArn != nil || aws.ToString(d.GreengrassGroupId) != "g-1" ||
		d.Tags["k"] != "v" {
		t.Fatalf("DescribeRobot = %+v, %v", d, err)
	}
	_, err = e.c.DescribeRobot(e.ctx, &robomaker.DescribeRobotInput{Robot: aws.String(r1 + "1")})
	expectError[*types.ResourceNotFoundException](t, err, 400, "")
	_, err = e.c.DescribeRobot(e.ctx, &robomaker.DescribeRobotInput{Robot: aws.String("r1")})
	expectError[*types.InvalidParameterException](t, err, 400, "at 'robot'")

	f1, f2 := e.fleet("f1"), e.fleet("f2")
	reg, err := e.c.RegisterRobot(e.ctx, &robomaker.RegisterRobotInput{Fleet: aws.String(f1), Robot: aws.String(r1)})
	if err != nil || aws.ToString(reg.Fleet) != f1 || aws.ToString(reg.Robot) != r1 {
		t.Fatalf("RegisterRobot = %+v, %v", reg, err)
	}
	if _, err := e.c.RegisterRobot(e.ctx, &robomaker.RegisterRobotInput{Fleet: aws.String(f1), Robot: aws.String(r1)}); err != nil {
		t.Errorf("registering again with the same fleet: %v", err)
	}
	_, err = e.c.RegisterRobot(e.ctx, &robomaker.RegisterRobotInput{Fleet: aws.String(f2), Robot: aws.String(r1)})
	expectError[*types.InvalidParameterException](t, err, 400, "already registered")
	_, err = e.c.RegisterRobot(e.ctx, &robomaker.RegisterRobotInput{Fleet: aws.String(f1 + "9"), Robot: aws.String(r1)})
	expectError[*types.ResourceNotFoundException](t, err, 400, "Fleet")
	_, err = e.c.RegisterRobot(e.ctx, &robomaker.RegisterRobotInput{Fleet: aws.String(f1), Robot: aws.String(r1 + "9")})
	expectError[*types.ResourceNotFoundException](t, err, 400, "Robot")
	e.register(f1, e.robot("r2"))
	_, err = e.c.RegisterRobot(e.ctx, &robomaker.RegisterRobotInput{Fleet: aws.String(f1), Robot: aws.String(e.robot("r3"))})
	expectError[*types.LimitExceededException](t, err, 400, "maximum of 2 robots")

	if got := e.robotStatus(r1); got != types.RobotStatusRegistered {
		t.Errorf("registered robot: %s", got)
	}
	list, err := e.c.ListRobots(e.ctx, &robomaker.ListRobotsInput{Filters: []types.Filter{{Name: aws.String("fleetName"),
		Values: []string{"f1"}}}})
	if err != nil || len(list.Robots) != 2 || aws.ToString(list.Robots[0].Name) != "r1" || aws.ToString(list.Robots[0].GreenGrassGroupId) != "g-1" {
		t.Fatalf("ListRobots by fleet = %+v, %v", list, err)
	}
	list, err = e.c.ListRobots(e.ctx, &robomaker.ListRobotsInput{Filters: []types.Filter{{Name: aws.String("status"),
		Values: []string{"Available"}}}})
	if err != nil || len(list.Robots) != 1 || aws.ToString(list.Robots[0].Name) != "r3" {
		t.Fatalf("ListRobots by status = %+v, %v", list, err)
	}
	list, err = e.c.ListRobots(e.ctx, &robomaker.ListRobotsInput{MaxResults: aws.Int32(2)})
	if err != nil || len(list.Robots) != 2 || list.NextToken == nil {
		t.Fatalf("ListRobots page = %+v, %v", list, err)
	}
	rest, err := e.c.ListRobots(e.ctx, &robomaker.ListRobotsInput{MaxResults: aws.Int32(2), NextToken: list.NextToken})
	if err != nil || len(rest.Robots) != 1 || rest.NextToken != nil {
		t.Fatalf("ListRobots second page = %+v, %v", rest, err)
	}

	_, err = e.c.DeregisterRobot(e.ctx, &robomaker.DeregisterRobotInput{Fleet: aws.String(f2), Robot: aws.String(r1)})
	expectError[*types.InvalidParameterException](t, err, 400, "not registered")
	dereg, err := e.c.DeregisterRobot(e.ctx, &robomaker.DeregisterRobotInput{Fleet: aws.String(f1), Robot: aws.String(r1)})
	if err != nil || aws.ToString(dereg.Robot) != r1 {
		t.Fatalf("DeregisterRobot = %+v, %v", dereg, err)
	}
	if got := e.robotStatus(r1); got != types.RobotStatusAvailable {
		t.Errorf("deregistered robot: %s", got)
	}
	_, err = e.c.DeregisterRobot(e.ctx, &robomaker.DeregisterRobotInput{Fleet: aws.String(f1), Robot: aws.String(r1 + "0")})
	expectError[*types.ResourceNotFoundException](t, err, 400, "")

	if _, err := e.c.DeleteRobot(e.ctx, &robomaker.DeleteRobotInput{Robot: aws.String(r1)}); err != nil {
		t.Fatal(err)
	}
	_, err = e.c.DeleteRobot(e.ctx, &robomaker.DeleteRobotInput{Robot: aws.String(r1)})
	expectError[*types.InvalidParameterException](t, err, 400, "does not exist")
	// The name is free again.
	e.robot("r1")
}

// The quota of robots per fleet holds across every way a robot leaves a fleet: deregistered, deleted, or its
// fleet deleted; the count RegisterRobot checks is kept with the fleet, not recounted.
func TestRobotsPerFleetCount(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Quotas.RobotsPerFleet = 2 })
	robot := func(name string) string {
		out, err := e.c.CreateRobot(e.ctx, &robomaker.CreateRobotInput{Name: aws.String(name),
			Architecture: types.ArchitectureX8664, GreengrassGroupId: aws.String("g")})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.Arn)
	}
	register := func(f, r string) error {
		_, err := e.c.RegisterRobot(e.ctx, &robomaker.RegisterRobotInput{Fleet: aws.String(f), Robot: aws.String(r)})
		return err
	}
	f := e.fleet("f")
	r1, r2, r3 := robot("r1"), robot("r2"), robot("r3")
	for _, r := range []string{r1, r2, r2} { // the same robot again does not count twice
		if err := register(f, r); err != nil {
			t.Fatal(err)
		}
	}
	expectError[*types.LimitExceededException](t, register(f, r3), 400, "maximum of 2")
	if _, err := e.c.DeregisterRobot(e.ctx, &robomaker.DeregisterRobotInput{Fleet: aws.String(f), Robot: aws.String(r1)}); err != nil {
		t.Fatal(err)
	}
	if err := register(f, r3); err != nil {
		t.Fatalf("after a deregistration: %v", err)
	}
	expectError[*types.LimitExceededException](t, register(f, r1), 400, "maximum of 2")
	if _, err := e.c.DeleteRobot(e.ctx, &robomaker.DeleteRobotInput{Robot: aws.String(r2)}); err != nil {
		t.Fatal(err)
	}
	if err := register(f, r1); err != nil {
		t.Fatalf("after a robot was deleted: %v", err)
	}
	r4 := robot("r4")
	expectError[*types.LimitExceededException](t, register(f, r4), 400, "maximum of 2")
	d, err := e.c.DescribeFleet(e.ctx, &robomaker.DescribeFleetInput{Fleet: aws.String(f)})
	if err != nil || len(d.Robots) != 2 {
		t.Fatalf("DescribeFleet = %d robots, %v", len(d.Robots), err)
	}
}

// RegisterFleet leaves what CreateRobot, CreateFleet and RegisterRobot would: robots the SDK describes in the
// fleet, the oldest fleet of the name reused, existing robots reused or refused, quotas kept, nothing written
// on an error.
func TestRegisterFleet(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Quotas.RobotsPerFleet = 3 })
	r1 := e.robot("r1") // exists already, in no fleet
	arn, err := e.svc.RegisterFleet("bulk", "g", []BulkRobot{{"r1", "ARM64"}, {"r2", "ARM64"}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.c.DescribeFleet(e.ctx, &robomaker.DescribeFleetInput{Fleet: aws.String(arn)})
	if err != nil || aws.ToString(d.Name) != "bulk" || len(d.Robots) != 2 {
		t.Fatalf("DescribeFleet = %+v, %v", d, err)
	}
	r2, err := e.c.DescribeRobot(e.ctx, &robomaker.DescribeRobotInput{Robot: d.Robots[1].Arn})
	if err != nil || aws.ToString(r2.Name) != "r2" || r2.Architecture != types.ArchitectureArm64 ||
		aws.ToString(r2.FleetArn) != arn || aws.ToString(r2.GreengrassGroupId) != "g" {
		t.Fatalf("DescribeRobot r2 = %+v, %v", r2, err)
	}
	if aws.ToString(d.Robots[0].Arn) != r1 {
		t.Errorf("r1 was made again: %s, want %s", aws.ToString(d.Robots[0].Arn), r1)
	}
	// Again, with one more: the same fleet, the members kept.
	again, err := e.svc.RegisterFleet("bulk", "g", []BulkRobot{{"r1", "ARM64"}, {"r2", "ARM64"}, {"r3", "ARMHF"}})
	if err != nil || again != arn {
		t.Fatalf("again = %s, %v; want %s", again, err, arn)
	}
	for _, tc := range []struct {
		robots []BulkRobot
		want   string
	}{
		{[]BulkRobot{{"r4", "X86_64"}}, "maximum of 3"},
		{[]BulkRobot{{"r1", "X86_64"}}, "architecture ARM64"},
		{[]BulkRobot{{"bad name", "X86_64"}}, "must satisfy"},
		{[]BulkRobot{{"r5", "SPARC"}}, "must be one of"},
		{[]BulkRobot{{"r6", "X86_64"}, {"r6", "X86_64"}}, "twice"},
	} {
		if _, err := e.svc.RegisterFleet("bulk", "g", tc.robots); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("RegisterFleet(%v) = %v; want %q", tc.robots, err, tc.want)
		}
	}
	if _, err := e.svc.RegisterFleet("other", "g", []BulkRobot{{"r7", "X86_64"}, {"r2", "ARM64"}}); err == nil ||
		!strings.Contains(err.Error(), "already registered") {
		t.Errorf("a robot of another fleet: %v", err)
	}
	// Nothing of the refused calls was written: no fleet "other", no robot r4, r5, r6 or r7.
	out, err := e.c.ListRobots(e.ctx, &robomaker.ListRobotsInput{})
	if err != nil || len(out.Robots) != 3 {
		t.Fatalf("ListRobots = %d robots, %v; want r1-r3", len(out.Robots), err)
	}
	fl, err := e.c.ListFleets(e.ctx, &robomaker.ListFleetsInput{})
	if err != nil || len(fl.FleetDetails) != 1 {
		t.Fatalf("ListFleets = %d, %v", len(fl.FleetDetails), err)
	}
	// The kept count holds for the wire's RegisterRobot too.
	r8 := e.robot("r8")
	_, err = e.c.RegisterRobot(e.ctx, &robomaker.RegisterRobotInput{Fleet: aws.String(arn), Robot: aws.String(r8)})
	expectError[*types.LimitExceededException](t, err, 400, "maximum of 3")
}
