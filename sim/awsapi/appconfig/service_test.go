package appconfig_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ac "github.com/aws/aws-sdk-go-v2/service/appconfig"
	acd "github.com/aws/aws-sdk-go-v2/service/appconfigdata"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwt "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/fleetlab/fleetlab/sim/awsapi/sdkhttp"
	"github.com/fleetlab/fleetlab/sim/service"
)

// TestOnTheServiceEndpoint: the assembled service serves AppConfig, AppConfigData and CloudWatch on its one
// endpoint, beside the other dialects (the shared /tags/{arn} path goes to AppConfig for its ARNs).
func TestOnTheServiceEndpoint(t *testing.T) {
	svc, err := service.New(service.Options{Dir: t.TempDir(), InMemoryStore: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start("127.0.0.1:0", ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	ctx := context.Background()
	creds := credentials.NewStaticCredentialsProvider("test", "test", "")
	c := ac.New(ac.Options{BaseEndpoint: aws.String(svc.Endpoint()), HTTPClient: sdkhttp.Client(nil), Region: "us-east-1", Credentials: creds,
		RetryMaxAttempts: 1})
	app, err := c.CreateApplication(ctx, &ac.CreateApplicationInput{Name: aws.String("a"),
		Tags: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	arn := "arn:aws:appconfig:us-east-1:123456789012:application/" + aws.ToString(app.Id)
	tags, err := c.ListTagsForResource(ctx, &ac.ListTagsForResourceInput{ResourceArn: &arn})
	if err != nil || tags.Tags["k"] != "v" {
		t.Fatalf("tags on the shared path: %v %v", tags, err)
	}
	env, _ := c.CreateEnvironment(ctx, &ac.CreateEnvironmentInput{ApplicationId: app.Id, Name: aws.String("e")})
	prof, _ := c.CreateConfigurationProfile(ctx, &ac.CreateConfigurationProfileInput{ApplicationId: app.Id,
		Name: aws.String("p"), LocationUri: aws.String("hosted")})
	data := acd.New(acd.Options{BaseEndpoint: aws.String(svc.Endpoint()), HTTPClient: sdkhttp.Client(nil), Region: "us-east-1", Credentials: creds,
		RetryMaxAttempts: 1})
	if _, err := data.StartConfigurationSession(ctx, &acd.StartConfigurationSessionInput{
		ApplicationIdentifier: app.Id, EnvironmentIdentifier: env.Id, ConfigurationProfileIdentifier: prof.Id}); err != nil {
		t.Fatalf("AppConfigData: %v", err)
	}
	cw := cloudwatch.New(cloudwatch.Options{BaseEndpoint: aws.String(svc.Endpoint()), HTTPClient: sdkhttp.Client(nil), Region: "us-east-1",
		Credentials: creds, RetryMaxAttempts: 1})
	if _, err := cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String("x"),
		Namespace: aws.String("n"), MetricName: aws.String("m"), Statistic: cwt.StatisticSum, Period: aws.Int32(60),
		EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(1),
		ComparisonOperator: cwt.ComparisonOperatorGreaterThanThreshold}); err != nil {
		t.Fatalf("CloudWatch: %v", err)
	}
}
