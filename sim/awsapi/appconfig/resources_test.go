package appconfig

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ac "github.com/aws/aws-sdk-go-v2/service/appconfig"
	act "github.com/aws/aws-sdk-go-v2/service/appconfig/types"
)

// TestOperationErrors is a table of the modeled errors each operation can reach, through the SDK.
func TestOperationErrors(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Quotas = Quotas{Applications: 2, EnvironmentsPerApp: 1, ProfilesPerApp: 1,
			DeploymentStrategies: 1, MaxHostedSize: 64}
	})
	w := e.world(nil)
	e.version(w, `{}`)
	e.strategy(act.GrowthTypeLinear, 50, 1, 0)
	ctx := context.Background()
	missing := aws.String("zzzzzzz")
	notFound := func(t *testing.T, err error) { wantError[*act.ResourceNotFoundException](t, err, http.StatusNotFound) }
	badRequest := func(t *testing.T, err error) { wantError[*act.BadRequestException](t, err, http.StatusBadRequest) }
	quota := func(t *testing.T, err error) {
		wantError[*act.ServiceQuotaExceededException](t, err, http.StatusPaymentRequired)
	}
	conflict := func(t *testing.T, err error) { wantError[*act.ConflictException](t, err, http.StatusConflict) }
	tooLarge := func(t *testing.T, err error) {
		pe := wantError[*act.PayloadTooLargeException](t, err, http.StatusRequestEntityTooLarge)
		if pe.Measure != act.BytesMeasureKilobytes || pe.Limit == 0 || pe.Size <= pe.Limit {
			t.Errorf("payload too large: %s %v %v", pe.Measure, pe.Limit, pe.Size)
		}
	}
	hosted := func(content string, latest *int32) error {
		_, err := e.c.CreateHostedConfigurationVersion(ctx, &ac.CreateHostedConfigurationVersionInput{
			ApplicationId: &w.app, ConfigurationProfileId: &w.prof, Content: []byte(content),
			ContentType: aws.String("application/json"), LatestVersionNumber: latest})
		return err
	}
	for _, tc := range []struct {
		name  string
		call  func() error
		check func(*testing.T, error)
	}{
		{"CreateApplication without a name", func() error {
			_, err := e.c.CreateApplication(ctx, &ac.CreateApplicationInput{Name: aws.String("")})
			return err
		}, badRequest},
		{"CreateApplication over the quota", func() error {
			if _, err := e.c.CreateApplication(ctx, &ac.CreateApplicationInput{Name: aws.String("two")}); err != nil {
				return err
			}
			_, err := e.c.CreateApplication(ctx, &ac.CreateApplicationInput{Name: aws.String("three")})
			return err
		}, quota},
		{"GetApplication unknown", func() error {
			_, err := e.c.GetApplication(ctx, &ac.GetApplicationInput{ApplicationId: missing})
			return err
		}, notFound},
		{"UpdateApplication unknown", func() error {
			_, err := e.c.UpdateApplication(ctx, &ac.UpdateApplicationInput{ApplicationId: missing, Name: aws.String("x")})
			return err
		}, notFound},
		{"DeleteApplication unknown", func() error {
			_, err := e.c.DeleteApplication(ctx, &ac.DeleteApplicationInput{ApplicationId: missing})
			return err
		}, notFound},
		{"CreateEnvironment in an unknown application", func() error {
			_, err := e.c.CreateEnvironment(ctx, &ac.CreateEnvironmentInput{ApplicationId: missing, Name: aws.String("e")})
			return err
		}, notFound},
		{"CreateEnvironment over the quota", func() error {
			_, err := e.c.CreateEnvironment(ctx, &ac.CreateEnvironmentInput{ApplicationId: &w.app, Name: aws.String("e2")})
			return err
		}, quota},
		{"CreateEnvironment with six monitors", func() error {
			m := act.Monitor{AlarmArn: aws.String("arn:aws:cloudwatch:us-east-1:123456789012:alarm:a")}
			_, err := e.c.CreateEnvironment(ctx, &ac.CreateEnvironmentInput{ApplicationId: &w.app, Name: aws.String("e3"),
				Monitors: []act.Monitor{m, m, m, m, m, m}})
			return err
		}, badRequest},
		{"GetEnvironment unknown", func() error {
			_, err := e.c.GetEnvironment(ctx, &ac.GetEnvironmentInput{ApplicationId: &w.app, EnvironmentId: missing})
			return err
		}, notFound},
		{"UpdateEnvironment unknown", func() error {
			_, err := e.c.UpdateEnvironment(ctx, &ac.UpdateEnvironmentInput{ApplicationId: &w.app, EnvironmentId: missing})
			return err
		}, notFound},
		{"ListEnvironments of an unknown application", func() error {
			_, err := e.c.ListEnvironments(ctx, &ac.ListEnvironmentsInput{ApplicationId: missing})
			return err
		}, notFound},
		{"CreateConfigurationProfile over the quota", func() error {
			_, err := e.c.CreateConfigurationProfile(ctx, &ac.CreateConfigurationProfileInput{ApplicationId: &w.app,
				Name: aws.String("p2"), LocationUri: aws.String("hosted")})
			return err
		}, quota},
		{"CreateConfigurationProfile of an unknown type", func() error {
			_, err := e.c.CreateConfigurationProfile(ctx, &ac.CreateConfigurationProfileInput{ApplicationId: &w.app,
				Name: aws.String("p3"), LocationUri: aws.String("hosted"), Type: aws.String("AWS.Nonsense")})
			return err
		}, badRequest},
		{"GetConfigurationProfile unknown", func() error {
			_, err := e.c.GetConfigurationProfile(ctx, &ac.GetConfigurationProfileInput{ApplicationId: &w.app,
				ConfigurationProfileId: missing})
			return err
		}, notFound},
		{"CreateHostedConfigurationVersion with a stale Latest-Version-Number", func() error {
			return hosted(`{}`, aws.Int32(0))
		}, conflict},
		{"CreateHostedConfigurationVersion too large", func() error {
			return hosted(`{"pad":"`+strings.Repeat("x", 100)+`"}`, nil)
		}, tooLarge},
		{"GetHostedConfigurationVersion unknown", func() error {
			_, err := e.c.GetHostedConfigurationVersion(ctx, &ac.GetHostedConfigurationVersionInput{
				ApplicationId: &w.app, ConfigurationProfileId: &w.prof, VersionNumber: aws.Int32(99)})
			return err
		}, notFound},
		{"DeleteHostedConfigurationVersion unknown", func() error {
			_, err := e.c.DeleteHostedConfigurationVersion(ctx, &ac.DeleteHostedConfigurationVersionInput{
				ApplicationId: &w.app, ConfigurationProfileId: &w.prof, VersionNumber: aws.Int32(99)})
			return err
		}, notFound},
		{"CreateDeploymentStrategy over the quota", func() error {
			_, err := e.c.CreateDeploymentStrategy(ctx, &ac.CreateDeploymentStrategyInput{Name: aws.String("s2"),
				DeploymentDurationInMinutes: aws.Int32(1), GrowthFactor: aws.Float32(10)})
			return err
		}, quota},
		{"CreateDeploymentStrategy with a growth factor outside 1–100", func() error {
			_, err := e.c.CreateDeploymentStrategy(ctx, &ac.CreateDeploymentStrategyInput{Name: aws.String("s3"),
				DeploymentDurationInMinutes: aws.Int32(1), GrowthFactor: aws.Float32(150)})
			return err
		}, badRequest},
		{"CreateDeploymentStrategy longer than 24 h", func() error {
			_, err := e.c.CreateDeploymentStrategy(ctx, &ac.CreateDeploymentStrategyInput{Name: aws.String("s4"),
				DeploymentDurationInMinutes: aws.Int32(1441), GrowthFactor: aws.Float32(10)})
			return err
		}, badRequest},
		{"GetDeploymentStrategy unknown", func() error {
			_, err := e.c.GetDeploymentStrategy(ctx, &ac.GetDeploymentStrategyInput{DeploymentStrategyId: missing})
			return err
		}, notFound},
		{"UpdateDeploymentStrategy predefined", func() error {
			_, err := e.c.UpdateDeploymentStrategy(ctx, &ac.UpdateDeploymentStrategyInput{
				DeploymentStrategyId: aws.String("AppConfig.AllAtOnce"), GrowthFactor: aws.Float32(10)})
			return err
		}, badRequest},
		{"DeleteDeploymentStrategy unknown", func() error {
			_, err := e.c.DeleteDeploymentStrategy(ctx, &ac.DeleteDeploymentStrategyInput{DeploymentStrategyId: missing})
			return err
		}, notFound},
		{"StartDeployment with an unknown strategy", func() error {
			_, err := e.c.StartDeployment(ctx, &ac.StartDeploymentInput{ApplicationId: &w.app, EnvironmentId: &w.env,
				ConfigurationProfileId: &w.prof, DeploymentStrategyId: missing, ConfigurationVersion: aws.String("1")})
			return err
		}, notFound},
		{"StartDeployment of an unknown version", func() error {
			_, err := e.c.StartDeployment(ctx, &ac.StartDeploymentInput{ApplicationId: &w.app, EnvironmentId: &w.env,
				ConfigurationProfileId: &w.prof, DeploymentStrategyId: aws.String("AppConfig.AllAtOnce"),
				ConfigurationVersion: aws.String("7")})
			return err
		}, notFound},
		{"StartDeployment of a version that is not a number", func() error {
			_, err := e.c.StartDeployment(ctx, &ac.StartDeploymentInput{ApplicationId: &w.app, EnvironmentId: &w.env,
				ConfigurationProfileId: &w.prof, DeploymentStrategyId: aws.String("AppConfig.AllAtOnce"),
				ConfigurationVersion: aws.String("latest")})
			return err
		}, badRequest},
		{"GetDeployment unknown", func() error {
			_, err := e.c.GetDeployment(ctx, &ac.GetDeploymentInput{ApplicationId: &w.app, EnvironmentId: &w.env,
				DeploymentNumber: aws.Int32(5)})
			return err
		}, notFound},
		{"ListDeployments with a bad token", func() error {
			_, err := e.c.ListDeployments(ctx, &ac.ListDeploymentsInput{ApplicationId: &w.app, EnvironmentId: &w.env,
				NextToken: aws.String("bogus")})
			return err
		}, badRequest},
		{"ListApplications with MaxResults 51", func() error {
			_, err := e.c.ListApplications(ctx, &ac.ListApplicationsInput{MaxResults: aws.Int32(51)})
			return err
		}, badRequest},
		{"TagResource of an unknown ARN", func() error {
			_, err := e.c.TagResource(ctx, &ac.TagResourceInput{
				ResourceArn: aws.String("arn:aws:appconfig:us-east-1:123456789012:application/zzzzzzz"),
				Tags:        map[string]string{"a": "b"}})
			return err
		}, notFound},
		{"ListTagsForResource of an unknown ARN", func() error {
			_, err := e.c.ListTagsForResource(ctx, &ac.ListTagsForResourceInput{
				ResourceArn: aws.String("arn:aws:appconfig:us-east-1:123456789012:application/zzzzzzz")})
			return err
		}, notFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil {
				t.Fatal("no error")
			}
			tc.check(t, err)
		})
	}
}

func TestResources(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	app, err := e.c.CreateApplication(ctx, &ac.CreateApplicationInput{Name: aws.String("shop"),
		Description: aws.String("the shop"), Tags: map[string]string{"team": "web"}})
	if err != nil || len(aws.ToString(app.Id)) != 7 {
		t.Fatalf("create application: %v %v", app, err)
	}
	got, err := e.c.GetApplication(ctx, &ac.GetApplicationInput{ApplicationId: app.Id})
	if err != nil || aws.ToString(got.Name) != "shop" || aws.ToString(got.Description) != "the shop" {
		t.Fatalf("get application: %v %v", got, err)
	}
	arn := "arn:aws:appconfig:us-east-1:123456789012:application/" + aws.ToString(app.Id)
	tags, err := e.c.ListTagsForResource(ctx, &ac.ListTagsForResourceInput{ResourceArn: &arn})
	if err != nil || tags.Tags["team"] != "web" {
		t.Fatalf("tags: %v %v", tags, err)
	}
	if _, err := e.c.TagResource(ctx, &ac.TagResourceInput{ResourceArn: &arn, Tags: map[string]string{"env": "p"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.UntagResource(ctx, &ac.UntagResourceInput{ResourceArn: &arn, TagKeys: []string{"team"}}); err != nil {
		t.Fatal(err)
	}
	tags, _ = e.c.ListTagsForResource(ctx, &ac.ListTagsForResourceInput{ResourceArn: &arn})
	if len(tags.Tags) != 1 || tags.Tags["env"] != "p" {
		t.Errorf("tags after tag and untag: %v", tags.Tags)
	}
	up, err := e.c.UpdateApplication(ctx, &ac.UpdateApplicationInput{ApplicationId: app.Id, Name: aws.String("store")})
	if err != nil || aws.ToString(up.Name) != "store" || aws.ToString(up.Description) != "the shop" {
		t.Fatalf("update application: %v %v", up, err)
	}
	for i := range 3 {
		if _, err := e.c.CreateApplication(ctx, &ac.CreateApplicationInput{Name: aws.String("a" + itoa(int32(i)))}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	p := ac.NewListApplicationsPaginator(e.c, &ac.ListApplicationsInput{MaxResults: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range page.Items {
			names = append(names, aws.ToString(a.Name))
		}
	}
	slices.Sort(names)
	if strings.Join(names, ",") != "a0,a1,a2,store" {
		t.Errorf("applications by page: %v", names)
	}

	env, err := e.c.CreateEnvironment(ctx, &ac.CreateEnvironmentInput{ApplicationId: app.Id, Name: aws.String("prod"),
		Monitors: []act.Monitor{{AlarmArn: aws.String("arn:aws:cloudwatch:us-east-1:123456789012:alarm:a")}}})
	if err != nil || env.State != act.EnvironmentStateReadyForDeployment || len(env.Monitors) != 1 {
		t.Fatalf("create environment: %v %v", env, err)
	}
	envs, err := e.c.ListEnvironments(ctx, &ac.ListEnvironmentsInput{ApplicationId: app.Id})
	if err != nil || len(envs.Items) != 1 || envs.Items[0].State != act.EnvironmentStateReadyForDeployment {
		t.Fatalf("list environments: %v %v", envs, err)
	}
	ue, err := e.c.UpdateEnvironment(ctx, &ac.UpdateEnvironmentInput{ApplicationId: app.Id, EnvironmentId: env.Id,
		Monitors: []act.Monitor{}})
	if err != nil || len(ue.Monitors) != 0 {
		t.Fatalf("update environment: %v %v", ue, err)
	}

	prof, err := e.c.CreateConfigurationProfile(ctx, &ac.CreateConfigurationProfileInput{ApplicationId: app.Id,
		Name: aws.String("flags"), LocationUri: aws.String("hosted"), Type: aws.String(TypeFeatureFlags)})
	if err != nil || aws.ToString(prof.Type) != TypeFeatureFlags {
		t.Fatalf("create profile: %v %v", prof, err)
	}
	profs, err := e.c.ListConfigurationProfiles(ctx, &ac.ListConfigurationProfilesInput{ApplicationId: app.Id})
	if err != nil || len(profs.Items) != 1 || aws.ToString(profs.Items[0].Type) != TypeFeatureFlags {
		t.Fatalf("list profiles: %v %v", profs, err)
	}
	// A feature-flags profile refuses a document that is not one.
	_, err = e.c.CreateHostedConfigurationVersion(ctx, &ac.CreateHostedConfigurationVersionInput{ApplicationId: app.Id,
		ConfigurationProfileId: prof.Id, Content: []byte(`{"flags":{}}`), ContentType: aws.String("application/json")})
	wantError[*act.BadRequestException](t, err, http.StatusBadRequest)
	doc := `{"version":"1","flags":{"dark":{"name":"dark"}},"values":{"dark":{"enabled":true}}}`
	v, err := e.c.CreateHostedConfigurationVersion(ctx, &ac.CreateHostedConfigurationVersionInput{ApplicationId: app.Id,
		ConfigurationProfileId: prof.Id, Content: []byte(doc), ContentType: aws.String("application/json"),
		Description: aws.String("first"), VersionLabel: aws.String("v1"), LatestVersionNumber: aws.Int32(0)})
	if err != nil || v.VersionNumber != 1 || aws.ToString(v.VersionLabel) != "v1" || string(v.Content) != doc ||
		aws.ToString(v.ApplicationId) != aws.ToString(app.Id) || aws.ToString(v.Description) != "first" {
		t.Fatalf("create hosted version: %+v %v", v, err)
	}
	v2, err := e.c.CreateHostedConfigurationVersion(ctx, &ac.CreateHostedConfigurationVersionInput{ApplicationId: app.Id,
		ConfigurationProfileId: prof.Id, Content: []byte(doc), ContentType: aws.String("application/json"),
		VersionLabel: aws.String("v2"), LatestVersionNumber: aws.Int32(1)})
	if err != nil || v2.VersionNumber != 2 {
		t.Fatalf("second hosted version: %v", err)
	}
	hv, err := e.c.GetHostedConfigurationVersion(ctx, &ac.GetHostedConfigurationVersionInput{ApplicationId: app.Id,
		ConfigurationProfileId: prof.Id, VersionNumber: aws.Int32(1)})
	if err != nil || string(hv.Content) != doc || aws.ToString(hv.ContentType) != "application/json" ||
		aws.ToString(hv.ConfigurationProfileId) != aws.ToString(prof.Id) {
		t.Fatalf("get hosted version: %+v %v", hv, err)
	}
	hvs, err := e.c.ListHostedConfigurationVersions(ctx, &ac.ListHostedConfigurationVersionsInput{
		ApplicationId: app.Id, ConfigurationProfileId: prof.Id})
	if err != nil || len(hvs.Items) != 2 || hvs.Items[0].VersionNumber != 2 {
		t.Fatalf("list hosted versions (newest first): %+v %v", hvs, err)
	}
	hvs, _ = e.c.ListHostedConfigurationVersions(ctx, &ac.ListHostedConfigurationVersionsInput{
		ApplicationId: app.Id, ConfigurationProfileId: prof.Id, VersionLabel: aws.String("v1")})
	if len(hvs.Items) != 1 || hvs.Items[0].VersionNumber != 1 {
		t.Errorf("by label: %+v", hvs.Items)
	}
	if _, err := e.c.DeleteHostedConfigurationVersion(ctx, &ac.DeleteHostedConfigurationVersionInput{
		ApplicationId: app.Id, ConfigurationProfileId: prof.Id, VersionNumber: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	// Numbers are not reused.
	v3, err := e.c.CreateHostedConfigurationVersion(ctx, &ac.CreateHostedConfigurationVersionInput{ApplicationId: app.Id,
		ConfigurationProfileId: prof.Id, Content: []byte(doc), ContentType: aws.String("application/json")})
	if err != nil || v3.VersionNumber != 3 {
		t.Fatalf("after a delete: %v %v", v3, err)
	}

	st, err := e.c.CreateDeploymentStrategy(ctx, &ac.CreateDeploymentStrategyInput{Name: aws.String("slow"),
		DeploymentDurationInMinutes: aws.Int32(60), GrowthFactor: aws.Float32(10)})
	if err != nil || st.GrowthType != act.GrowthTypeLinear || st.ReplicateTo != act.ReplicateToNone {
		t.Fatalf("create strategy (LINEAR by default): %+v %v", st, err)
	}
	sts, err := e.c.ListDeploymentStrategies(ctx, &ac.ListDeploymentStrategiesInput{})
	if err != nil || len(sts.Items) != len(Predefined)+1 || aws.ToString(sts.Items[0].Id) != "AppConfig.AllAtOnce" {
		t.Fatalf("list strategies: %v", err)
	}
	pre, err := e.c.GetDeploymentStrategy(ctx, &ac.GetDeploymentStrategyInput{
		DeploymentStrategyId: aws.String("AppConfig.Canary10Percent20Minutes")})
	if err != nil || pre.GrowthType != act.GrowthTypeExponential || aws.ToFloat32(pre.GrowthFactor) != 10 ||
		pre.DeploymentDurationInMinutes != 20 || pre.FinalBakeTimeInMinutes != 10 {
		t.Fatalf("predefined strategy: %+v %v", pre, err)
	}
	us, err := e.c.UpdateDeploymentStrategy(ctx, &ac.UpdateDeploymentStrategyInput{DeploymentStrategyId: st.Id,
		GrowthType: act.GrowthTypeExponential, FinalBakeTimeInMinutes: aws.Int32(5)})
	if err != nil || us.GrowthType != act.GrowthTypeExponential || us.FinalBakeTimeInMinutes != 5 ||
		us.DeploymentDurationInMinutes != 60 {
		t.Fatalf("update strategy: %+v %v", us, err)
	}
	if _, err := e.c.DeleteDeploymentStrategy(ctx, &ac.DeleteDeploymentStrategyInput{DeploymentStrategyId: st.Id}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.DeleteConfigurationProfile(ctx, &ac.DeleteConfigurationProfileInput{ApplicationId: app.Id,
		ConfigurationProfileId: prof.Id}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.DeleteEnvironment(ctx, &ac.DeleteEnvironmentInput{ApplicationId: app.Id, EnvironmentId: env.Id}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.DeleteApplication(ctx, &ac.DeleteApplicationInput{ApplicationId: app.Id}); err != nil {
		t.Fatal(err)
	}
	_, err = e.c.GetApplication(ctx, &ac.GetApplicationInput{ApplicationId: app.Id})
	wantError[*act.ResourceNotFoundException](t, err, http.StatusNotFound)
}

func TestDeleteEnvironmentWithADeploymentInProgress(t *testing.T) {
	e := newEnv(t)
	w := e.world(nil)
	e.start(w, "AppConfig.Linear20PercentEvery6Minutes", e.version(w, `{}`))
	_, err := e.c.DeleteEnvironment(e.ctx, &ac.DeleteEnvironmentInput{ApplicationId: &w.app, EnvironmentId: &w.env})
	wantError[*act.ConflictException](t, err, http.StatusConflict)
}

// TestEnvironmentReadyWaiterMismatch reproduces the SDK's EnvironmentReadyForDeployment waiter, which compares
// State with "ReadyForDeployment", "RolledBack" and "Reverted", values the service never returns: on the modeled
// READY_FOR_DEPLOYMENT it keeps waiting instead of succeeding, and on ROLLED_BACK instead of failing. The waiter's
// own acceptor is asked directly, so the test waits for nothing.
func TestEnvironmentReadyWaiterMismatch(t *testing.T) {
	e := newEnv(t)
	w := e.world(nil)
	var retryable func(context.Context, *ac.GetEnvironmentInput, *ac.GetEnvironmentOutput, error) (bool, error)
	ac.NewEnvironmentReadyForDeploymentWaiter(e.c, func(o *ac.EnvironmentReadyForDeploymentWaiterOptions) {
		retryable = o.Retryable
	})
	in := &ac.GetEnvironmentInput{ApplicationId: &w.app, EnvironmentId: &w.env}
	check := func(want act.EnvironmentState) {
		t.Helper()
		env, err := e.c.GetEnvironment(e.ctx, in)
		if err != nil || env.State != want {
			t.Fatalf("state %s %v, want %s", env.State, err, want)
		}
		again, werr := retryable(e.ctx, in, env, nil)
		if !again || werr != nil {
			t.Errorf("waiter on %s: retry %v, %v; want it to keep waiting (the SDK's mismatch)", want, again, werr)
		}
	}
	check(act.EnvironmentStateReadyForDeployment)
	e.start(w, "AppConfig.Linear20PercentEvery6Minutes", e.version(w, `{}`))
	if _, err := e.c.StopDeployment(e.ctx, &ac.StopDeploymentInput{ApplicationId: &w.app, EnvironmentId: &w.env,
		DeploymentNumber: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	check(act.EnvironmentStateRolledBack)
}
