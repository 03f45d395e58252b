package greengrass

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	gg "github.com/aws/aws-sdk-go-v2/service/greengrass"
	"github.com/aws/aws-sdk-go-v2/service/greengrass/types"
	gg2 "github.com/aws/aws-sdk-go-v2/service/greengrassv2"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/awsapi/greengrassv2"
	"github.com/fleetlab/fleetlab/sim/awsapi/sdkhttp"
)

// TestDefinitions: each kind of definition, its versions, and every refusal of a version's contents.
func TestDefinitions(t *testing.T) {
	e := newEnv(t)
	core := e.coreVersion("core-1")
	if want := "arn:aws:greengrass:us-east-1:123456789012:/greengrass/definition/cores/"; len(core) < len(want) || core[:len(want)] != want {
		t.Fatalf("core version ARN %s", core)
	}
	list, err := e.c.ListCoreDefinitions(e.ctx, &gg.ListCoreDefinitionsInput{})
	if err != nil || len(list.Definitions) != 1 || aws.ToString(list.Definitions[0].LatestVersionArn) != core {
		t.Fatalf("ListCoreDefinitions %+v %v", list, err)
	}
	id := aws.ToString(list.Definitions[0].Id)
	v2, err := e.c.CreateCoreDefinitionVersion(e.ctx, &gg.CreateCoreDefinitionVersionInput{CoreDefinitionId: aws.String(id),
		Cores: []types.Core{{Id: aws.String("c"), ThingArn: aws.String(thingARN("core-2")), CertificateArn: aws.String(certARN)}}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.c.GetCoreDefinitionVersion(e.ctx, &gg.GetCoreDefinitionVersionInput{CoreDefinitionId: aws.String(id),
		CoreDefinitionVersionId: v2.Version})
	if err != nil || len(got.Definition.Cores) != 1 || aws.ToString(got.Definition.Cores[0].ThingArn) != thingARN("core-2") {
		t.Fatalf("GetCoreDefinitionVersion %+v %v", got, err)
	}
	def, err := e.c.GetCoreDefinition(e.ctx, &gg.GetCoreDefinitionInput{CoreDefinitionId: aws.String(id)})
	if err != nil || aws.ToString(def.LatestVersion) != aws.ToString(v2.Version) {
		t.Fatalf("GetCoreDefinition %+v %v", def, err)
	}
	vs, err := e.c.ListCoreDefinitionVersions(e.ctx, &gg.ListCoreDefinitionVersionsInput{CoreDefinitionId: aws.String(id)})
	if err != nil || len(vs.Versions) != 2 {
		t.Fatalf("ListCoreDefinitionVersions %+v %v", vs, err)
	}

	for _, tt := range []struct {
		name string
		call func() error
		code string
		st   int
	}{
		{"two cores", func() error {
			c := types.Core{Id: aws.String("c"), ThingArn: aws.String(thingARN("a")), CertificateArn: aws.String(certARN)}
			_, err := e.c.CreateCoreDefinitionVersion(e.ctx, &gg.CreateCoreDefinitionVersionInput{
				CoreDefinitionId: aws.String(id), Cores: []types.Core{c, c}})
			return err
		}, "InvalidInputException", 400},
		{"core not a thing", func() error {
			_, err := e.c.CreateCoreDefinitionVersion(e.ctx, &gg.CreateCoreDefinitionVersionInput{
				CoreDefinitionId: aws.String(id), Cores: []types.Core{{Id: aws.String("c"), ThingArn: aws.String("arn:aws:iot:us-east-1:1:cert/x"),
					CertificateArn: aws.String(certARN)}}})
			return err
		}, "InvalidInputException", 400},
		{"unknown definition", func() error {
			_, err := e.c.GetCoreDefinition(e.ctx, &gg.GetCoreDefinitionInput{CoreDefinitionId: aws.String("nope")})
			return err
		}, "IdNotFoundException", 404},
		{"unknown version", func() error {
			_, err := e.c.GetCoreDefinitionVersion(e.ctx, &gg.GetCoreDefinitionVersionInput{CoreDefinitionId: aws.String(id),
				CoreDefinitionVersionId: aws.String("nope")})
			return err
		}, "VersionNotFoundException", 404},
		{"function without executable", func() error {
			_, err := e.c.CreateFunctionDefinition(e.ctx, &gg.CreateFunctionDefinitionInput{InitialVersion: &types.FunctionDefinitionVersion{
				Functions: []types.Function{{Id: aws.String("f"), FunctionArn: aws.String("arn:aws:lambda:us-east-1:1:function:f:1")}}}})
			return err
		}, "InvalidInputException", 400},
		{"function not a lambda", func() error {
			_, err := e.c.CreateFunctionDefinition(e.ctx, &gg.CreateFunctionDefinitionInput{InitialVersion: &types.FunctionDefinitionVersion{
				Functions: []types.Function{{Id: aws.String("f"), FunctionArn: aws.String("f"),
					FunctionConfiguration: &types.FunctionConfiguration{Executable: aws.String("true")}}}}})
			return err
		}, "InvalidInputException", 400},
		{"resource not s3", func() error {
			_, err := e.c.CreateResourceDefinition(e.ctx, &gg.CreateResourceDefinitionInput{InitialVersion: &types.ResourceDefinitionVersion{
				Resources: []types.Resource{{Id: aws.String("r"), Name: aws.String("m"), ResourceDataContainer: &types.ResourceDataContainer{
					S3MachineLearningModelResourceData: &types.S3MachineLearningModelResourceData{S3Uri: aws.String("http://x/y"),
						DestinationPath: aws.String("/model")}}}}}})
			return err
		}, "InvalidInputException", 400},
		{"resource escapes", func() error {
			_, err := e.c.CreateResourceDefinition(e.ctx, &gg.CreateResourceDefinitionInput{InitialVersion: &types.ResourceDefinitionVersion{
				Resources: []types.Resource{{Id: aws.String("r"), Name: aws.String("m"), ResourceDataContainer: &types.ResourceDataContainer{
					S3MachineLearningModelResourceData: &types.S3MachineLearningModelResourceData{S3Uri: aws.String("s3://models/model.tar.gz"),
						DestinationPath: aws.String("/../..")}}}}}})
			return err
		}, "InvalidInputException", 400},
		{"secret resource", func() error {
			_, err := e.c.CreateResourceDefinition(e.ctx, &gg.CreateResourceDefinitionInput{InitialVersion: &types.ResourceDefinitionVersion{
				Resources: []types.Resource{{Id: aws.String("r"), Name: aws.String("m"), ResourceDataContainer: &types.ResourceDataContainer{
					SecretsManagerSecretResourceData: &types.SecretsManagerSecretResourceData{ARN: aws.String("arn:x")}}}}}})
			return err
		}, "BadRequestException", 400},
		{"subscription id twice", func() error {
			s := types.Subscription{Id: aws.String("s"), Source: aws.String("cloud"), Subject: aws.String("t"), Target: aws.String("cloud")}
			_, err := e.c.CreateSubscriptionDefinition(e.ctx, &gg.CreateSubscriptionDefinitionInput{
				InitialVersion: &types.SubscriptionDefinitionVersion{Subscriptions: []types.Subscription{s, s}}})
			return err
		}, "InvalidInputException", 400},
		{"subscription missing member", func() error {
			_, err := e.c.CreateSubscriptionDefinition(e.ctx, &gg.CreateSubscriptionDefinitionInput{
				InitialVersion: &types.SubscriptionDefinitionVersion{Subscriptions: []types.Subscription{{Id: aws.String("s")}}}})
			return err
		}, "", 0},
		{"delete unknown", func() error {
			_, err := e.c.DeleteFunctionDefinition(e.ctx, &gg.DeleteFunctionDefinitionInput{FunctionDefinitionId: aws.String("nope")})
			return err
		}, "IdNotFoundException", 404},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if tt.code == "" {
				if err == nil {
					t.Fatal("accepted")
				}
				return
			}
			wantError(t, err, tt.code, tt.st)
		})
	}

	sub, err := e.c.CreateSubscriptionDefinition(e.ctx, &gg.CreateSubscriptionDefinitionInput{
		InitialVersion: &types.SubscriptionDefinitionVersion{Subscriptions: []types.Subscription{{Id: aws.String("s"),
			Source: aws.String("cloud"), Subject: aws.String("hello/#"), Target: aws.String("arn:aws:lambda:us-east-1:1:function:f:1")}}}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.c.CreateResourceDefinition(e.ctx, &gg.CreateResourceDefinitionInput{InitialVersion: &types.ResourceDefinitionVersion{
		Resources: []types.Resource{{Id: aws.String("r"), Name: aws.String("model"), ResourceDataContainer: &types.ResourceDataContainer{
			S3MachineLearningModelResourceData: &types.S3MachineLearningModelResourceData{S3Uri: aws.String("s3://models/model.tar.gz"),
				DestinationPath: aws.String("/model")}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	grp, err := e.c.CreateGroup(e.ctx, &gg.CreateGroupInput{Name: aws.String("g")})
	if err != nil {
		t.Fatal(err)
	}
	gv, err := e.c.CreateGroupVersion(e.ctx, &gg.CreateGroupVersionInput{GroupId: grp.Id, CoreDefinitionVersionArn: aws.String(core),
		SubscriptionDefinitionVersionArn: sub.LatestVersionArn, ResourceDefinitionVersionArn: res.LatestVersionArn})
	if err != nil {
		t.Fatal(err)
	}
	gvOut, err := e.c.GetGroupVersion(e.ctx, &gg.GetGroupVersionInput{GroupId: grp.Id, GroupVersionId: gv.Version})
	if err != nil || aws.ToString(gvOut.Definition.ResourceDefinitionVersionArn) != aws.ToString(res.LatestVersionArn) {
		t.Fatalf("GetGroupVersion %+v %v", gvOut, err)
	}
	did := e.deploy(aws.ToString(grp.Id), aws.ToString(gv.Version))
	dep, _ := e.engine.Deployment(did)
	if len(dep.Document) == 0 {
		t.Fatal("no document")
	}
	for _, tt := range []struct {
		in   gg.CreateGroupVersionInput
		code string
		st   int
	}{
		{gg.CreateGroupVersionInput{GroupId: grp.Id, CoreDefinitionVersionArn: aws.String(core + "x")}, "VersionNotFoundException", 404},
		{gg.CreateGroupVersionInput{GroupId: grp.Id, CoreDefinitionVersionArn: sub.LatestVersionArn}, "InvalidInputException", 400},
		{gg.CreateGroupVersionInput{GroupId: grp.Id, LoggerDefinitionVersionArn: aws.String("arn:x")}, "BadRequestException", 400},
		{gg.CreateGroupVersionInput{GroupId: aws.String("nope")}, "IdNotFoundException", 404},
	} {
		_, err := e.c.CreateGroupVersion(e.ctx, &tt.in)
		wantError(t, err, tt.code, tt.st)
	}
	groups, err := e.c.ListGroups(e.ctx, &gg.ListGroupsInput{})
	if err != nil || len(groups.Groups) != 1 || aws.ToString(groups.Groups[0].LatestVersion) != aws.ToString(gv.Version) {
		t.Fatalf("ListGroups %+v %v", groups, err)
	}
	gvs, err := e.c.ListGroupVersions(e.ctx, &gg.ListGroupVersionsInput{GroupId: grp.Id})
	if err != nil || len(gvs.Versions) != 1 {
		t.Fatalf("ListGroupVersions %+v %v", gvs, err)
	}
	if _, err := e.c.GetGroup(e.ctx, &gg.GetGroupInput{GroupId: aws.String("nope")}); err == nil {
		t.Fatal("GetGroup of an unknown group")
	} else {
		wantError(t, err, "IdNotFoundException", 404)
	}
}

// TestGroupToken: CreateGroup with one client token and one request makes one group.
func TestGroupToken(t *testing.T) {
	e := newEnv(t)
	in := &gg.CreateGroupInput{Name: aws.String("g"), AmznClientToken: aws.String("t")}
	a, err := e.c.CreateGroup(e.ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.c.CreateGroup(e.ctx, in)
	if err != nil || aws.ToString(a.Id) != aws.ToString(b.Id) {
		t.Fatalf("second CreateGroup %v %v", b, err)
	}
	_, err = e.c.CreateGroup(e.ctx, &gg.CreateGroupInput{Name: aws.String("other"), AmznClientToken: aws.String("t")})
	wantError(t, err, "InvalidInputException", 400)
}

// TestCoexistsWithV2: Greengrass V1 and V2 sign alike and share /greengrass/; on one handler each serves its
// own routes, and an error is spelled by the API that answers it.
func TestCoexistsWithV2(t *testing.T) {
	e := newEnv(t)
	v2, err := greengrassv2.New(greengrassv2.Options{Store: e.store, Clock: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	h := awsapi.NewHandler(awsapi.Options{})
	if err := v2.Register(h); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Register(h); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	creds := credentials.NewStaticCredentialsProvider("AK", "SK", "")
	c1 := gg.New(gg.Options{BaseEndpoint: aws.String(srv.URL), HTTPClient: sdkhttp.Client(nil), Region: "us-east-1", Credentials: creds, RetryMaxAttempts: 1})
	c2 := gg2.New(gg2.Options{BaseEndpoint: aws.String(srv.URL), HTTPClient: sdkhttp.Client(nil), Region: "us-east-1", Credentials: creds, RetryMaxAttempts: 1})
	ctx := context.Background()
	if _, err := c1.CreateGroup(ctx, &gg.CreateGroupInput{Name: aws.String("v1")}); err != nil {
		t.Fatal(err)
	}
	groups, err := c1.ListGroups(ctx, &gg.ListGroupsInput{})
	if err != nil || len(groups.Groups) != 1 {
		t.Fatalf("V1 ListGroups %+v %v", groups, err)
	}
	comps, err := c2.ListComponents(ctx, &gg2.ListComponentsInput{})
	if err != nil || len(comps.Components) != 0 {
		t.Fatalf("V2 ListComponents %+v %v", comps, err)
	}
	_, err = c1.GetGroup(ctx, &gg.GetGroupInput{GroupId: aws.String("nope")})
	wantError(t, err, "IdNotFoundException", 404)
	_, err = c2.GetDeployment(ctx, &gg2.GetDeploymentInput{DeploymentId: aws.String("nope")})
	if err == nil {
		t.Fatal("V2 GetDeployment of nothing answered")
	}
}
