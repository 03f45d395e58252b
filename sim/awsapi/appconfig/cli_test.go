package appconfig

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/sim/awsapi/awsclitest"
)

// The AWS CLI 2 drives a rollout: the resources, a hosted version from a file (its content written to an outfile),
// a deployment followed to COMPLETE, a stop, and a typed error with its exit status.
func TestAWSCLI(t *testing.T) {
	e := newEnv(t)
	work, run, aws := awsclitest.AWSCLI(t, e.srv.URL)
	var app, env, prof, strat struct{ Id string }
	aws(&app, "appconfig", "create-application", "--name", "cli")
	aws(&env, "appconfig", "create-environment", "--application-id", app.Id, "--name", "prod")
	aws(&prof, "appconfig", "create-configuration-profile", "--application-id", app.Id, "--name", "settings",
		"--location-uri", "hosted")
	aws(&strat, "appconfig", "create-deployment-strategy", "--name", "half", "--deployment-duration-in-minutes", "2",
		"--growth-factor", "50", "--final-bake-time-in-minutes", "1", "--growth-type", "LINEAR")
	content := filepath.Join(work, "config.json")
	if err := os.WriteFile(content, []byte(`{"rate": 7}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var version struct {
		VersionNumber any // the CLI prints this header-bound integer as it read it: a string
		ContentType   string
	}
	aws(&version, "appconfig", "create-hosted-configuration-version", "--application-id", app.Id,
		"--configuration-profile-id", prof.Id, "--content", "fileb://"+content, "--content-type", "application/json",
		"--latest-version-number", "0", filepath.Join(work, "out.json"))
	if fmt.Sprint(version.VersionNumber) != "1" || version.ContentType != "application/json" {
		t.Fatalf("hosted version %+v", version)
	}
	if out, _ := os.ReadFile(filepath.Join(work, "out.json")); string(out) != `{"rate": 7}` {
		t.Errorf("outfile %q", out)
	}
	var d struct {
		DeploymentNumber   int
		State              string
		PercentageComplete float64
		EventLog           []struct{ EventType string }
	}
	aws(&d, "appconfig", "start-deployment", "--application-id", app.Id, "--environment-id", env.Id,
		"--deployment-strategy-id", strat.Id, "--configuration-profile-id", prof.Id, "--configuration-version", "1")
	if d.DeploymentNumber != 1 || d.State != "DEPLOYING" {
		t.Fatalf("start: %+v", d)
	}
	e.advance(time.Minute)
	aws(&d, "appconfig", "get-deployment", "--application-id", app.Id, "--environment-id", env.Id,
		"--deployment-number", "1")
	if d.State != "DEPLOYING" || d.PercentageComplete != 50 {
		t.Fatalf("after a minute: %+v", d)
	}
	e.advance(2 * time.Minute)
	aws(&d, "appconfig", "get-deployment", "--application-id", app.Id, "--environment-id", env.Id,
		"--deployment-number", "1")
	if d.State != "COMPLETE" || d.EventLog[0].EventType != "DEPLOYMENT_COMPLETED" {
		t.Fatalf("after three minutes: %+v", d)
	}
	// The CLI 2.9 predates Allow-Revert: it stops a deployment in progress.
	aws(&d, "appconfig", "start-deployment", "--application-id", app.Id, "--environment-id", env.Id,
		"--deployment-strategy-id", strat.Id, "--configuration-profile-id", prof.Id, "--configuration-version", "1")
	aws(&d, "appconfig", "stop-deployment", "--application-id", app.Id, "--environment-id", env.Id,
		"--deployment-number", "2")
	if d.State != "ROLLED_BACK" || d.EventLog[1].EventType != "ROLLBACK_STARTED" {
		t.Fatalf("stop: %+v", d)
	}
	var list struct {
		Items []struct {
			DeploymentNumber int
			State            string
		}
	}
	aws(&list, "appconfig", "list-deployments", "--application-id", app.Id, "--environment-id", env.Id)
	if len(list.Items) != 2 || list.Items[0].DeploymentNumber != 2 || list.Items[1].State != "COMPLETE" {
		t.Errorf("list: %+v", list)
	}
	_, stderr, err := run("appconfig", "get-application", "--application-id", "zzzzzzz")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 254 || !strings.Contains(stderr, "ResourceNotFoundException") {
		t.Errorf("unknown application: %v %s", err, stderr)
	}
}
