package appconfig

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ac "github.com/aws/aws-sdk-go-v2/service/appconfig"

	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	"github.com/fleetlab/fleetlab/sim/awsapi"
	service "github.com/fleetlab/fleetlab/sim/awsapi/appconfig"
	"github.com/fleetlab/fleetlab/sim/awsapi/sdkhttp"
	"github.com/fleetlab/fleetlab/sim/clock/clocktest"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/store"
)

// TestStopDuringHookAndRestart: a device stopped while its apply hook runs neither takes nor refuses the
// configuration (it stays healthy, holds nothing new, leaves no config.next); started again it applies it, and a
// device that already holds a configuration is not made to apply it again by a new session.
func TestStopDuringHookAndRestart(t *testing.T) {
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
	acc := ac.New(ac.Options{BaseEndpoint: aws.String(srv.URL), HTTPClient: sdkhttp.Client(nil), Region: "us-east-1", RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AK", "SK", "")})
	app, _ := acc.CreateApplication(ctx, &ac.CreateApplicationInput{Name: aws.String("a")})
	env, _ := acc.CreateEnvironment(ctx, &ac.CreateEnvironmentInput{ApplicationId: app.Id, Name: aws.String("e")})
	prof, err := acc.CreateConfigurationProfile(ctx, &ac.CreateConfigurationProfileInput{ApplicationId: app.Id,
		Name: aws.String("p"), LocationUri: aws.String("hosted")})
	if err != nil {
		t.Fatal(err)
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
	c.Advance(11 * time.Minute)
	eng.Tick()

	dir := t.TempDir()
	started := filepath.Join(dir, "hook-started")
	slow := filepath.Join(dir, "slow.sh")
	ok := filepath.Join(dir, "ok.sh")
	os.WriteFile(slow, []byte("touch "+started+"\nexec sleep 60\n"), 0o755)
	os.WriteFile(ok, []byte("test -s \"$1\"\n"), 0o755)
	var states []string
	device := func(hook string) *Device {
		d, err := New(Options{Thing: "robot-1", Endpoint: srv.URL, Clock: c, Application: aws.ToString(app.Id),
			Environment: "e", Profile: "p", Dir: filepath.Join(dir, "robot-1"), Hook: hook,
			OnEvent: func(e Event) { states = append(states, e.State+" "+e.Version) }})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	d := device(slow)
	stopCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { _, err := d.poll(stopCtx); done <- err }()
	if !agenttest.Eventually(20*time.Second, func() bool { _, err := os.Stat(started); return err == nil }) {
		t.Fatal("the apply hook did not start")
	}
	stop()
	<-done
	for _, s := range states {
		if s == "ApplyFailed v1" {
			t.Errorf("a device stopped during its hook refused the configuration: %q", states)
		}
	}
	if !d.Healthy() || d.Applied() != "" {
		t.Errorf("after a stop during the hook: healthy %v, holds %q", d.Healthy(), d.Applied())
	}
	for _, f := range []string{FileConfig, FileVersion, FileNext} {
		if _, err := os.Stat(filepath.Join(dir, "robot-1", f)); !os.IsNotExist(err) {
			t.Errorf("%s after a stop during the hook: %v", f, err)
		}
	}

	states = nil
	d = device(ok)
	if _, err := d.poll(ctx); err != nil {
		t.Fatal(err)
	}
	if want := "Session  Polling  Applying v1 Applied v1"; join(states) != want {
		t.Errorf("started again: %q, want %q", join(states), want)
	}
	states = nil
	d = device(ok)
	if _, err := d.poll(ctx); err != nil {
		t.Fatal(err)
	}
	if want := "Session  Polling "; join(states) != want {
		t.Errorf("a restart holding v1: %q, want %q", join(states), want)
	}
	if !d.Healthy() || d.Applied() != "v1" {
		t.Errorf("a restart holding v1: healthy %v, holds %q", d.Healthy(), d.Applied())
	}
}

func join(states []string) string {
	out := ""
	for i, s := range states {
		if i > 0 {
			out += " "
		}
		out += s
	}
	return out
}
