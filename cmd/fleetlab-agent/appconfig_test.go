package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ac "github.com/aws/aws-sdk-go-v2/service/appconfig"

	"github.com/fleetlab/fleetlab/harness/robomaker/robomakertest"
	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/awsapi/sdkhttp"
	"github.com/fleetlab/fleetlab/sim/fleet/process"
	"github.com/fleetlab/fleetlab/sim/service"
)

// TestAppConfigFlags: the AppConfig flags go together, over HTTP only.
func TestAppConfigFlags(t *testing.T) {
	base := []string{"--endpoint", "http://h:1", "--thing", "d1", "--dir", "d"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--appconfig-application", "a"}, "needs --appconfig-application, --appconfig-environment and --appconfig-profile"},
		{[]string{"--appconfig-application", "a", "--appconfig-environment", "e"}, "needs --appconfig-application"},
		{[]string{"--apply-hook", "h.sh"}, "--apply-hook is for an AppConfig device"},
		{[]string{"--appconfig-poll", "30s"}, "--appconfig-poll is for an AppConfig device"},
		{[]string{"--appconfig-application", "a", "--appconfig-environment", "e", "--appconfig-profile", "p",
			"--appconfig-poll", "5s"}, "below AppConfigData's least interval"},
	} {
		var out, errOut bytes.Buffer
		if code := run(append(append([]string(nil), base...), tc.args...), env(nil), &out, &errOut, nil); code != exitUsage ||
			!strings.Contains(errOut.String(), tc.want) || !strings.Contains(errOut.String(), "hint:") {
			t.Errorf("%v: exit %d, %q; want 2 and %q with a hint", tc.args, code, errOut.String(), tc.want)
		}
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"--serial", "/dev/ttyS0", "--thing", "d1", "--dir", "d", "--appconfig-application", "a",
		"--appconfig-environment", "e", "--appconfig-profile", "p"}, env(nil), &out, &errOut, nil); code != exitUsage ||
		!strings.Contains(errOut.String(), "not over --serial") {
		t.Errorf("--serial: exit %d, %q", code, errOut.String())
	}
	c, err := parseArgs(base, env(map[string]string{"FLEETLAB_APPCONFIG_APPLICATION": "a",
		"FLEETLAB_APPCONFIG_ENVIRONMENT": "e", "FLEETLAB_APPCONFIG_PROFILE": "p", "FLEETLAB_APPLY_HOOK": "h.sh"}), &out)
	if err != nil || c.appconfig != (appConfigFlags{application: "a", environment: "e", profile: "p", hook: "h.sh"}) {
		t.Errorf("from the environment: %+v, %v", c.appconfig, err)
	}
	out.Reset()
	run([]string{"--help"}, env(nil), &out, &errOut, nil)
	for _, want := range []string{"--appconfig-application A", "FLEETLAB_APPCONFIG_PROFILE", "-apply-hook"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help does not say %q", want)
		}
	}
}

// TestAppConfigDevice runs the agent binary as an AppConfig device against a service that checks signatures:
// signing with the devices' keys, it takes the deployed configuration, runs its apply hook on it and keeps it on
// its disk, and a restart knows what it holds; without keys it is refused and holds nothing.
func TestAppConfigDevice(t *testing.T) {
	bin, err := process.Build(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(service.Options{Dir: t.TempDir(), InMemoryStore: true, Auth: &awsapi.SigV4{
		Keys: map[string]string{"AK": "SK"}, DeviceKeys: map[string]string{"DK": "DS"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start("127.0.0.1:0", ""); err != nil {
		svc.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	ctx := context.Background()
	acc := ac.New(ac.Options{BaseEndpoint: aws.String(svc.Endpoint()), HTTPClient: sdkhttp.Client(nil), Region: "us-east-1", RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AK", "SK", "")})
	app, err := acc.CreateApplication(ctx, &ac.CreateApplicationInput{Name: aws.String("fleet")})
	if err != nil {
		t.Fatal(err)
	}
	envOut, err := acc.CreateEnvironment(ctx, &ac.CreateEnvironmentInput{ApplicationId: app.Id, Name: aws.String("field")})
	if err != nil {
		t.Fatal(err)
	}
	prof, err := acc.CreateConfigurationProfile(ctx, &ac.CreateConfigurationProfileInput{ApplicationId: app.Id,
		Name: aws.String("settings"), LocationUri: aws.String("hosted")})
	if err != nil {
		t.Fatal(err)
	}
	const content = `{"rate": 2}`
	v, err := acc.CreateHostedConfigurationVersion(ctx, &ac.CreateHostedConfigurationVersionInput{
		ApplicationId: app.Id, ConfigurationProfileId: prof.Id, Content: []byte(content),
		ContentType: aws.String("application/json"), VersionLabel: aws.String("v1")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acc.StartDeployment(ctx, &ac.StartDeploymentInput{ApplicationId: app.Id, EnvironmentId: envOut.Id,
		ConfigurationProfileId: prof.Id, DeploymentStrategyId: aws.String("AppConfig.AllAtOnce"),
		ConfigurationVersion: aws.String(strings.TrimSpace(itoa32(v.VersionNumber)))}); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	marker := filepath.Join(dir, "applied")
	hook := filepath.Join(dir, "apply.sh")
	if err := os.WriteFile(hook, []byte("grep -q rate \"$1\" && echo \"$CONFIG_VERSION\" >> "+marker+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	device := func(thing, devDir string, keys ...string) *agentProcess {
		args := []string{"--endpoint", svc.Endpoint(), "--thing", thing, "--dir", devDir,
			"--appconfig-application", "fleet", "--appconfig-environment", "field", "--appconfig-profile", "settings",
			"--apply-hook", hook}
		if len(keys) == 2 {
			args = append(args, "--access-key", keys[0], "--secret-key", keys[1])
		}
		return startAgent(t, bin, args...)
	}

	signedDir, unsignedDir := filepath.Join(dir, "device-1"), filepath.Join(dir, "device-2")
	signed := device("device-1", signedDir, "DK", "DS")
	unsigned := device("device-2", unsignedDir)
	signed.waitLog(t, "msg=\"started as an AppConfig device\"", "msg=Applied robot=device-1 version=v1")
	unsigned.waitLog(t, "level=ERROR msg=error robot=device-2 state=Polling", "403", "MissingAuthenticationTokenException")
	if got, _ := os.ReadFile(filepath.Join(signedDir, "config")); string(got) != content {
		t.Errorf("the signed device holds %q, want %q", got, content)
	}
	if got, _ := os.ReadFile(filepath.Join(signedDir, "config.version")); string(got) != "v1" {
		t.Errorf("the signed device's version %q, want v1", got)
	}
	if got, _ := os.ReadFile(marker); string(got) != "v1\n" {
		t.Errorf("the apply hook ran for %q, want once for v1", got)
	}
	if strings.Contains(signed.log(), "put health") {
		t.Errorf("the signed device's health was refused:\n%s", signed.log())
	}
	if _, err := os.Stat(filepath.Join(unsignedDir, "config")); !os.IsNotExist(err) {
		t.Errorf("the device without keys holds a configuration: %v", err)
	}
	signed.stop(t)
	unsigned.stop(t)

	again := device("device-1", signedDir, "DK", "DS")
	again.waitLog(t, "holds=v1")
	if !robomakertest.Eventually(10*time.Second, func() bool { return strings.Contains(again.log(), "msg=Session") }) {
		t.Fatalf("the restarted device did not open a session:\n%s", again.log())
	}
	again.stop(t)
	if strings.Contains(again.log(), "msg=Applying") {
		t.Errorf("the restarted device applied again what it holds:\n%s", again.log())
	}
}

func itoa32(n int32) string { return strings.TrimSpace(strings.Repeat(" ", 0) + fmtInt(int64(n))) }

func fmtInt(n int64) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return fmtInt(n/10) + string(rune('0'+n%10))
}
