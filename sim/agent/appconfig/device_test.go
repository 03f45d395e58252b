package appconfig

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ac "github.com/aws/aws-sdk-go-v2/service/appconfig"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwt "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	service "github.com/fleetlab/fleetlab/sim/awsapi/appconfig"
	"github.com/fleetlab/fleetlab/sim/awsapi/sdkhttp"
	"github.com/fleetlab/fleetlab/sim/clock/clocktest"
	wire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/appconfig"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/store"
)

// TestStateChains drives one device poll by poll against the AppConfig dialect and checks the chain of states,
// what is on its disk, and its health, for a good configuration, one its hook refuses, and a restart.
func TestStateChains(t *testing.T) {
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
	h := awsapi.NewHandler(awsapi.Options{})
	if err := svc.Register(h); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	creds := credentials.NewStaticCredentialsProvider("AK", "SK", "")
	acc := ac.New(ac.Options{BaseEndpoint: aws.String(srv.URL), HTTPClient: sdkhttp.Client(nil), Region: "us-east-1", Credentials: creds,
		RetryMaxAttempts: 1})
	cw := cloudwatch.New(cloudwatch.Options{BaseEndpoint: aws.String(srv.URL), HTTPClient: sdkhttp.Client(nil), Region: "us-east-1",
		Credentials: creds, RetryMaxAttempts: 1})
	app, _ := acc.CreateApplication(ctx, &ac.CreateApplicationInput{Name: aws.String("a")})
	env, _ := acc.CreateEnvironment(ctx, &ac.CreateEnvironmentInput{ApplicationId: app.Id, Name: aws.String("e")})
	prof, err := acc.CreateConfigurationProfile(ctx, &ac.CreateConfigurationProfileInput{ApplicationId: app.Id,
		Name: aws.String("p"), LocationUri: aws.String("hosted")})
	if err != nil {
		t.Fatal(err)
	}
	deploy := func(content, label string) {
		t.Helper()
		v, err := acc.CreateHostedConfigurationVersion(ctx, &ac.CreateHostedConfigurationVersionInput{
			ApplicationId: app.Id, ConfigurationProfileId: prof.Id, Content: []byte(content),
			ContentType: aws.String("text/plain"), VersionLabel: aws.String(label)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := acc.StartDeployment(ctx, &ac.StartDeploymentInput{ApplicationId: app.Id, EnvironmentId: env.Id,
			ConfigurationProfileId: prof.Id, DeploymentStrategyId: aws.String("AppConfig.AllAtOnce"),
			ConfigurationVersion: aws.String(itoa(v.VersionNumber))}); err != nil {
			t.Fatal(err)
		}
		c.Advance(11 * time.Minute) // past the bake
		eng.Tick()
	}
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok.sh")
	bad := filepath.Join(dir, "bad.sh")
	os.WriteFile(ok, []byte("test -s \"$1\" && test -n \"$CONFIG_VERSION\"\n"), 0o755)
	os.WriteFile(bad, []byte("echo refusing >&2; exit 5\n"), 0o755)
	var states []string
	newDevice := func() *Device {
		d, err := New(Options{Thing: "robot-1", Endpoint: srv.URL, Clock: c, Application: aws.ToString(app.Id),
			Environment: "e", Profile: "p", Dir: filepath.Join(dir, "robot-1"), Hook: ok,
			OnEvent: func(e Event) { states = append(states, e.State+" "+e.Version) }})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	d := newDevice()
	poll := func() {
		t.Helper()
		c.Advance(15 * time.Second)
		if _, err := d.poll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	chain := func(want ...string) {
		t.Helper()
		if !slices.Equal(states, want) {
			t.Errorf("states %q, want %q", states, want)
		}
		states = nil
	}
	onDisk := func(content, version string) {
		t.Helper()
		got, _ := os.ReadFile(filepath.Join(dir, "robot-1", FileConfig))
		v, _ := os.ReadFile(filepath.Join(dir, "robot-1", FileVersion))
		if string(got) != content || string(v) != version {
			t.Errorf("on disk %q %q, want %q %q", got, v, content, version)
		}
		if _, err := os.Stat(filepath.Join(dir, "robot-1", FileNext)); !os.IsNotExist(err) {
			t.Errorf("%s left behind", FileNext)
		}
	}

	poll() // nothing deployed
	chain("Session ", "Polling ")
	deploy("one", "v1")
	poll()
	chain("Polling ", "Applying v1", "Applied v1")
	onDisk("one", "v1")
	poll() // unchanged
	chain("Polling ")

	d.SetHook(bad)
	deploy("two", "v2")
	poll()
	chain("Polling ", "Applying v2", "ApplyFailed v2")
	onDisk("one", "v1")
	if d.Healthy() || d.Applied() != "v1" {
		t.Errorf("after a refused configuration: healthy %v, applied %q", d.Healthy(), d.Applied())
	}
	// Its health reached CloudWatch: an alarm on it goes to ALARM.
	if _, err := cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String("h"),
		Namespace: aws.String(wire.HealthNamespace), MetricName: aws.String(wire.HealthMetric),
		Dimensions: []cwt.Dimension{{Name: aws.String(wire.HealthDimension), Value: app.Id}},
		Statistic:  cwt.StatisticMaximum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(2),
		DatapointsToAlarm: aws.Int32(1), Threshold: aws.Float64(1),
		ComparisonOperator: cwt.ComparisonOperatorGreaterThanOrEqualToThreshold}); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	al, err := cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{"h"}})
	if err != nil || al.MetricAlarms[0].StateValue != cwt.StateValueAlarm {
		t.Fatalf("alarm on the device's health: %v %v", al, err)
	}

	// A restarted device knows what it holds and takes the next configuration in a new session.
	d = newDevice()
	if d.Applied() != "v1" {
		t.Errorf("restarted device holds %q", d.Applied())
	}
	deploy("three", "v3")
	poll()
	chain("Session ", "Polling ", "Applying v3", "Applied v3")
	onDisk("three", "v3")
	if !d.Healthy() {
		t.Error("unhealthy after a configuration applied")
	}
	if !strings.HasPrefix(d.opts.Endpoint, "http://") {
		t.Errorf("endpoint %s", d.opts.Endpoint)
	}
}

func itoa(n int32) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
