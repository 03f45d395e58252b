package appconfig

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ac "github.com/aws/aws-sdk-go-v2/service/appconfig"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwt "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/encoding/cbor"

	agentcore "github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/awsapi"
	service "github.com/fleetlab/fleetlab/sim/awsapi/appconfig"
	"github.com/fleetlab/fleetlab/sim/awsapi/sdkhttp"
	"github.com/fleetlab/fleetlab/sim/clock/clocktest"
	wire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/appconfig"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/store"
)

func apiCode(err error) (string, int) {
	var api smithy.APIError
	var re *awshttp.ResponseError
	if errors.As(err, &api) && errors.As(err, &re) {
		return api.ErrorCode(), re.HTTPStatusCode()
	}
	return "", 0
}

// TestSignedDevice: under SigV4 (`fleetlab serve --auth sigv4`) a device signing with the devices' key takes its
// configuration from AppConfigData and puts its health in CloudWatch — the health reaches an alarm — while its key
// opens nothing of the control plane nor of CloudWatch but PutMetricData; the operators' key drives AppConfig
// and CloudWatch alike; an unsigned device, or one signing under another scope, is refused.
func TestSignedDevice(t *testing.T) {
	ctx := context.Background()
	c := clocktest.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	st := store.NewMemory()
	t.Cleanup(func() { st.Close() })
	eng, err := engine.New(engine.Options{Clock: c, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(service.Options{Engine: eng, Store: st, Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	h := awsapi.NewHandler(awsapi.Options{Auth: &awsapi.SigV4{Keys: map[string]string{"AK": "SK"},
		DeviceKeys: map[string]string{"DK": "DS"}}})
	if err := svc.Register(h); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	clients := func(ak, sk string) (*ac.Client, *cloudwatch.Client) {
		creds := credentials.NewStaticCredentialsProvider(ak, sk, "")
		return ac.New(ac.Options{BaseEndpoint: aws.String(srv.URL), HTTPClient: sdkhttp.Client(nil), Region: "us-east-1", Credentials: creds,
				RetryMaxAttempts: 1}),
			cloudwatch.New(cloudwatch.Options{BaseEndpoint: aws.String(srv.URL), HTTPClient: sdkhttp.Client(nil), Region: "us-east-1",
				Credentials: creds, RetryMaxAttempts: 1})
	}
	acc, cw := clients("AK", "SK")
	app, err := acc.CreateApplication(ctx, &ac.CreateApplicationInput{Name: aws.String("a")})
	if err != nil {
		t.Fatalf("an operator's CreateApplication: %v", err)
	}
	env, _ := acc.CreateEnvironment(ctx, &ac.CreateEnvironmentInput{ApplicationId: app.Id, Name: aws.String("e")})
	prof, err := acc.CreateConfigurationProfile(ctx, &ac.CreateConfigurationProfileInput{ApplicationId: app.Id,
		Name: aws.String("p"), LocationUri: aws.String("hosted")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String("h"),
		Namespace: aws.String(wire.HealthNamespace), MetricName: aws.String(wire.HealthMetric),
		Dimensions: []cwt.Dimension{{Name: aws.String(wire.HealthDimension), Value: app.Id}},
		Statistic:  cwt.StatisticMaximum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(2),
		DatapointsToAlarm: aws.Int32(1), Threshold: aws.Float64(1),
		ComparisonOperator: cwt.ComparisonOperatorGreaterThanOrEqualToThreshold}); err != nil {
		t.Fatalf("an operator's PutMetricAlarm: %v", err)
	}
	v, err := acc.CreateHostedConfigurationVersion(ctx, &ac.CreateHostedConfigurationVersionInput{
		ApplicationId: app.Id, ConfigurationProfileId: prof.Id, Content: []byte("one"),
		ContentType: aws.String("text/plain"), VersionLabel: aws.String("v1")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acc.StartDeployment(ctx, &ac.StartDeploymentInput{ApplicationId: app.Id, EnvironmentId: env.Id,
		ConfigurationProfileId: prof.Id, DeploymentStrategyId: aws.String("AppConfig.AllAtOnce"),
		ConfigurationVersion: aws.String(itoa(v.VersionNumber))}); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.sh")
	os.WriteFile(bad, []byte("exit 4\n"), 0o755)
	var states []string
	device := func(name string, creds *agentcore.Credentials) *Device {
		d, err := New(Options{Thing: name, Endpoint: srv.URL, Clock: c, Application: aws.ToString(app.Id),
			Environment: "e", Profile: "p", Dir: filepath.Join(dir, name), Hook: bad, Credentials: creds,
			OnEvent: func(e Event) {
				s := e.State + " " + e.Version
				if e.Err != nil {
					s += " " + e.Err.Error()
				}
				states = append(states, strings.TrimSpace(s))
			}})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	d := device("robot-1", &agentcore.Credentials{AccessKey: "DK", SecretKey: "DS"})
	c.Advance(15 * time.Second)
	if _, err := d.poll(ctx); err != nil {
		t.Fatalf("a signed device's poll: %v", err)
	}
	// The hook refuses v1: the device is unhealthy, and says so in CloudWatch, signed with its own key.
	if want := []string{"Session", "Polling", "Applying v1", "ApplyFailed v1 apply hook bad.sh: exit status 4:"}; !slices.Equal(states, want) {
		t.Errorf("states %q, want %q", states, want)
	}
	c.Advance(time.Minute)
	al, err := cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{"h"}})
	if err != nil || len(al.MetricAlarms) != 1 || al.MetricAlarms[0].StateValue != cwt.StateValueAlarm {
		t.Fatalf("the alarm on the signed device's health: %+v %v", al, err)
	}

	states = nil
	if _, err := device("robot-2", nil).poll(ctx); err == nil || !strings.Contains(err.Error(), "403") ||
		!strings.Contains(err.Error(), "MissingAuthenticationTokenException") {
		t.Errorf("an unsigned device's poll: %v, want 403 MissingAuthenticationTokenException", err)
	}

	// The devices' key opens no control-plane operation, and of CloudWatch only PutMetricData.
	dac, dcw := clients("DK", "DS")
	if _, err := dac.ListApplications(ctx, &ac.ListApplicationsInput{}); !hasCode(err, "UnrecognizedClientException", 403) {
		t.Errorf("ListApplications with the devices' key: %v", err)
	}
	if _, err := dcw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{}); !hasCode(err, "UnrecognizedClientException", 403) {
		t.Errorf("DescribeAlarms with the devices' key: %v", err)
	}
	if _, err := dcw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String("h"),
		StateValue: cwt.StateValueOk, StateReason: aws.String("x")}); !hasCode(err, "UnrecognizedClientException", 403) {
		t.Errorf("SetAlarmState with the devices' key: %v", err)
	}
	if _, err := dcw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("n"),
		MetricData: []cwt.MetricDatum{{MetricName: aws.String("m"), Value: aws.Float64(1)}}}); err != nil {
		t.Errorf("PutMetricData with the devices' key through the SDK: %v", err)
	}
	if _, err := cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("n"),
		MetricData: []cwt.MetricDatum{{MetricName: aws.String("m"), Value: aws.Float64(1)}}}); err != nil {
		t.Errorf("PutMetricData with the operators' key: %v", err)
	}
	if _, err := acc.ListApplications(ctx, &ac.ListApplicationsInput{}); err != nil {
		t.Errorf("ListApplications with the operators' key: %v", err)
	}

	// PutMetricData signed with the devices' key under the IoT Jobs data plane's scope, or with a wrong secret.
	for _, tc := range []struct {
		name, scope string
		creds       agentcore.Credentials
		code        string
	}{
		{"another scope", "iot-jobs-data", agentcore.Credentials{AccessKey: "DK", SecretKey: "DS"}, "InvalidSignatureException"},
		{"a wrong secret", MetricsSigningName, agentcore.Credentials{AccessKey: "DK", SecretKey: "no"}, "InvalidSignatureException"},
		{"an unknown key", MetricsSigningName, agentcore.Credentials{AccessKey: "XX", SecretKey: "DS"}, "UnrecognizedClientException"},
	} {
		body, headers := wire.PutMetricData("n", "m", nil, 1, c.Now())
		req, _ := http.NewRequest(http.MethodPost, srv.URL+wire.PutMetricDataPath, bytes.NewReader(body))
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		if err := tc.creds.Sign(req, body, tc.scope); err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		v, _ := cbor.Decode(data)
		m, _ := v.(cbor.Map)
		typ, _ := m["__type"].(cbor.String)
		if resp.StatusCode != http.StatusForbidden || !strings.HasSuffix(string(typ), "#"+tc.code) {
			t.Errorf("%s: %s %q, want 403 %s in CBOR", tc.name, resp.Status, typ, tc.code)
		}
	}
	http.DefaultClient.CloseIdleConnections()
}

func hasCode(err error, code string, status int) bool {
	c, s := apiCode(err)
	return c == code && s == status
}
