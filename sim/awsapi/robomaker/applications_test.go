package robomaker

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/robomaker"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"
)

func TestCreateRobotApplication(t *testing.T) {
	e := newEnv(t)
	suite := &types.RobotSoftwareSuite{Name: types.RobotSoftwareSuiteTypeRos2, Version: types.RobotSoftwareSuiteVersionTypeFoxy}
	src := func(bucket, key string, arch types.Architecture) types.SourceConfig {
		return types.SourceConfig{S3Bucket: aws.String(bucket), S3Key: aws.String(key), Architecture: arch}
	}
	out, err := e.c.CreateRobotApplication(e.ctx, &robomaker.CreateRobotApplicationInput{Name: aws.String("hello"),
		RobotSoftwareSuite: suite, Sources: []types.SourceConfig{src("bundles", "app-arm.tar", types.ArchitectureArm64)},
		Tags: map[string]string{"app": "hello"}})
	if err != nil {
		t.Fatal(err)
	}
	if !appARNPattern.MatchString(aws.ToString(out.Arn)) || aws.ToString(out.Version) != "$LATEST" ||
		aws.ToString(out.RevisionId) == "" || out.RobotSoftwareSuite.Name != types.RobotSoftwareSuiteTypeRos2 ||
		len(out.Sources) != 1 || aws.ToString(out.Sources[0].Etag) != `"22222222222222222222222222222222"` ||
		!out.LastUpdatedAt.Equal(e.clock.Now()) || out.Tags["app"] != "hello" {
		t.Fatalf("CreateRobotApplication = %+v", out)
	}

	for _, tc := range []struct {
		name string
		in   *robomaker.CreateRobotApplicationInput
		want string
	}{
		{"missing object", &robomaker.CreateRobotApplicationInput{Name: aws.String("a2"), RobotSoftwareSuite: suite,
			Sources: []types.SourceConfig{src("bundles", "nope.tar", types.ArchitectureArm64)}}, "s3://bundles/nope.tar"},
		{"bucket pattern", &robomaker.CreateRobotApplicationInput{Name: aws.String("a2"), RobotSoftwareSuite: suite,
			Sources: []types.SourceConfig{src("Bundles", "k", types.ArchitectureArm64)}}, "at 'sources.1.member.s3Bucket'"},
		{"duplicate architecture", &robomaker.CreateRobotApplicationInput{Name: aws.String("a2"), RobotSoftwareSuite: suite,
			Sources: []types.SourceConfig{src("bundles", "app-arm.tar", types.ArchitectureArm64),
				src("bundles", "app-x86.tar", types.ArchitectureArm64)}}, "more than one ARM64"},
		{"incomplete source", &robomaker.CreateRobotApplicationInput{Name: aws.String("a2"), RobotSoftwareSuite: suite,
			Sources: []types.SourceConfig{{S3Bucket: aws.String("bundles")}}}, "needs s3Bucket, s3Key and architecture"},
		{"nothing to run", &robomaker.CreateRobotApplicationInput{Name: aws.String("a2"), RobotSoftwareSuite: suite},
			"sources or an environment"},
		{"suite without name", &robomaker.CreateRobotApplicationInput{Name: aws.String("a2"),
			RobotSoftwareSuite: &types.RobotSoftwareSuite{}, Sources: []types.SourceConfig{src("bundles", "app-arm.tar", types.ArchitectureArm64)}},
			"robotSoftwareSuite.name"},
		{"suite enum", &robomaker.CreateRobotApplicationInput{Name: aws.String("a2"),
			RobotSoftwareSuite: &types.RobotSoftwareSuite{Name: "ROS3"}}, "at 'robotSoftwareSuite.name'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.c.CreateRobotApplication(e.ctx, tc.in)
			expectError[*types.InvalidParameterException](t, err, 400, tc.want)
		})
	}
	_, err = e.c.CreateRobotApplication(e.ctx, &robomaker.CreateRobotApplicationInput{Name: aws.String("hello"),
		RobotSoftwareSuite: suite, Sources: []types.SourceConfig{src("bundles", "app-arm.tar", types.ArchitectureArm64)}})
	expectError[*types.ResourceAlreadyExistsException](t, err, 400, "hello")

	// A container application needs no sources.
	env, err := e.c.CreateRobotApplication(e.ctx, &robomaker.CreateRobotApplicationInput{Name: aws.String("boxed"),
		RobotSoftwareSuite: &types.RobotSoftwareSuite{Name: types.RobotSoftwareSuiteTypeGeneral},
		Environment:        &types.Environment{Uri: aws.String("registry.local/boxed:1")}})
	if err != nil || aws.ToString(env.Environment.Uri) != "registry.local/boxed:1" || len(env.Sources) != 0 {
		t.Fatalf("container application = %+v, %v", env, err)
	}
}

func TestRobotApplicationVersions(t *testing.T) {
	e := newEnv(t)
	app := e.app("hello")
	d, err := e.c.DescribeRobotApplication(e.ctx, &robomaker.DescribeRobotApplicationInput{Application: aws.String(app)})
	if err != nil {
		t.Fatal(err)
	}
	rev := aws.ToString(d.RevisionId)

	_, err = e.c.CreateRobotApplicationVersion(e.ctx, &robomaker.CreateRobotApplicationVersionInput{
		Application: aws.String(app), CurrentRevisionId: aws.String("stale-revision")})
	expectError[*types.InvalidParameterException](t, err, 400, "not the latest revision")
	_, err = e.c.CreateRobotApplicationVersion(e.ctx, &robomaker.CreateRobotApplicationVersionInput{
		Application: aws.String(app), S3Etags: []string{"x", "y"}})
	expectError[*types.InvalidParameterException](t, err, 400, "The ETag of s3://bundles/app-x86.tar")

	e.clock.Advance(time.Minute)
	v1, err := e.c.CreateRobotApplicationVersion(e.ctx, &robomaker.CreateRobotApplicationVersionInput{
		Application: aws.String(app), CurrentRevisionId: aws.String(rev),
		S3Etags: []string{"11111111111111111111111111111111", `"22222222222222222222222222222222"`}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(v1.Version) != "1" || aws.ToString(v1.Arn) != app || len(v1.Sources) != 2 ||
		aws.ToString(v1.Sources[1].Etag) != `"22222222222222222222222222222222"` || !v1.LastUpdatedAt.Equal(e.clock.Now()) ||
		aws.ToString(v1.RevisionId) == rev {
		t.Fatalf("version 1 = %+v", v1)
	}

	// The bundle changes: version 2 records the new ETag, version 1 keeps the old one.
	e.objects.put("bundles", "app-arm.tar", `"44444444444444444444444444444444"`)
	if v := e.version(app); v != "2" {
		t.Fatalf("second version = %s", v)
	}
	for version, want := range map[string]string{"1": `"22222222222222222222222222222222"`, "2": `"44444444444444444444444444444444"`} {
		d, err := e.c.DescribeRobotApplication(e.ctx, &robomaker.DescribeRobotApplicationInput{Application: aws.String(app),
			ApplicationVersion: aws.String(version)})
		if err != nil || aws.ToString(d.Version) != version || aws.ToString(d.Sources[1].Etag) != want {
			t.Errorf("version %s = %+v, %v", version, d, err)
		}
	}

	e.objects.remove("bundles", "app-x86.tar")
	_, err = e.c.CreateRobotApplicationVersion(e.ctx, &robomaker.CreateRobotApplicationVersionInput{Application: aws.String(app)})
	expectError[*types.InvalidParameterException](t, err, 400, "s3://bundles/app-x86.tar does not exist")
	_, err = e.c.CreateRobotApplicationVersion(e.ctx, &robomaker.CreateRobotApplicationVersionInput{Application: aws.String(app + "0")})
	expectError[*types.InvalidParameterException](t, err, 400, "does not exist")

	_, err = e.c.DescribeRobotApplication(e.ctx, &robomaker.DescribeRobotApplicationInput{Application: aws.String(app),
		ApplicationVersion: aws.String("3")})
	expectError[*types.ResourceNotFoundException](t, err, 400, "Version 3")
	_, err = e.c.DescribeRobotApplication(e.ctx, &robomaker.DescribeRobotApplicationInput{Application: aws.String(app),
		ApplicationVersion: aws.String("v1")})
	expectError[*types.InvalidParameterException](t, err, 400, `at 'applicationVersion' failed to satisfy constraint: Member must satisfy regular expression pattern: (\$LATEST)|[0-9]*`)
	_, err = e.c.DescribeRobotApplication(e.ctx, &robomaker.DescribeRobotApplicationInput{Application: aws.String(app + "0")})
	expectError[*types.ResourceNotFoundException](t, err, 400, "")
}

func TestListAndDeleteRobotApplications(t *testing.T) {
	e := newEnv(t)
	a, b := e.app("alpha"), e.app("beta")
	e.version(a)
	e.version(a)
	summaries := func(in *robomaker.ListRobotApplicationsInput) string {
		t.Helper()
		var got []string
		for {
			out, err := e.c.ListRobotApplications(e.ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range out.RobotApplicationSummaries {
				got = append(got, aws.ToString(s.Name)+"@"+aws.ToString(s.Version))
			}
			if out.NextToken == nil {
				return strings.Join(got, ",")
			}
			in.NextToken = out.NextToken
		}
	}
	if got := summaries(&robomaker.ListRobotApplicationsInput{}); got != "alpha@$LATEST,beta@$LATEST" {
		t.Errorf("list = %s", got)
	}
	if got := summaries(&robomaker.ListRobotApplicationsInput{VersionQualifier: aws.String("ALL"), MaxResults: aws.Int32(2)}); got != "alpha@$LATEST,alpha@1,alpha@2,beta@$LATEST" {
		t.Errorf("list ALL = %s", got)
	}
	if got := summaries(&robomaker.ListRobotApplicationsInput{Filters: []types.Filter{{Name: aws.String("name"), Values: []string{"beta"}}}}); got != "beta@$LATEST" {
		t.Errorf("list by name = %s", got)
	}
	_, err := e.c.ListRobotApplications(e.ctx, &robomaker.ListRobotApplicationsInput{MaxResults: aws.Int32(101)})
	expectError[*types.InvalidParameterException](t, err, 400, "between 1 and 100")
	_, err = e.c.ListRobotApplications(e.ctx, &robomaker.ListRobotApplicationsInput{VersionQualifier: aws.String("SOME")})
	expectError[*types.InvalidParameterException](t, err, 400, "at 'versionQualifier'")

	if _, err := e.c.DeleteRobotApplication(e.ctx, &robomaker.DeleteRobotApplicationInput{Application: aws.String(a),
		ApplicationVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	if got := summaries(&robomaker.ListRobotApplicationsInput{VersionQualifier: aws.String("ALL")}); got != "alpha@$LATEST,alpha@2,beta@$LATEST" {
		t.Errorf("after deleting a version = %s", got)
	}
	_, err = e.c.DeleteRobotApplication(e.ctx, &robomaker.DeleteRobotApplicationInput{Application: aws.String(a),
		ApplicationVersion: aws.String("1")})
	expectError[*types.InvalidParameterException](t, err, 400, "Version 1")
	// Versions are never renumbered.
	if v := e.version(a); v != "3" {
		t.Errorf("version after a deletion = %s", v)
	}
	if _, err := e.c.DeleteRobotApplication(e.ctx, &robomaker.DeleteRobotApplicationInput{Application: aws.String(a)}); err != nil {
		t.Fatal(err)
	}
	if got := summaries(&robomaker.ListRobotApplicationsInput{VersionQualifier: aws.String("ALL")}); got != "beta@$LATEST" {
		t.Errorf("after deleting alpha = %s", got)
	}
	_, err = e.c.DeleteRobotApplication(e.ctx, &robomaker.DeleteRobotApplicationInput{Application: aws.String(a)})
	expectError[*types.InvalidParameterException](t, err, 400, "does not exist")
	// Its name is free again, and its tags are gone with it.
	e.app("alpha")
	_, err = e.c.ListTagsForResource(e.ctx, &robomaker.ListTagsForResourceInput{ResourceArn: aws.String(a)})
	expectError[*types.ResourceNotFoundException](t, err, 400, "")
	if _, err := e.c.DescribeRobotApplication(e.ctx, &robomaker.DescribeRobotApplicationInput{Application: aws.String(b)}); err != nil {
		t.Errorf("beta after deleting alpha: %v", err)
	}
}
