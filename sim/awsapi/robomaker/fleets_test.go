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
