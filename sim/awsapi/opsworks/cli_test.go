package opsworks

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/fleetlab/fleetlab/sim/awsapi/awsclitest"
	"github.com/fleetlab/fleetlab/sim/engine"
)

// The AWS CLI 2 drives OpsWorks over awsJson1_1: a stack, a layer, an app, a registered instance, a deploy, its
// commands with exit code and log, and a typed error with its exit status.
func TestAWSCLI(t *testing.T) {
	e := newEnv(t)
	_, run, aws := awsclitest.AWSCLI(t, e.srv.URL)
	var st struct{ StackId string }
	aws(&st, "opsworks", "create-stack", "--name", "cli", "--stack-region", "us-east-1", "--service-role-arn", serviceRole,
		"--default-instance-profile-arn", profile)
	var ly struct{ LayerId string }
	aws(&ly, "opsworks", "create-layer", "--stack-id", st.StackId, "--type", "custom", "--name", "Boards", "--shortname", "boards")
	var ap struct{ AppId string }
	aws(&ap, "opsworks", "create-app", "--stack-id", st.StackId, "--name", "hello", "--type", "other",
		"--app-source", "Type=s3,Url=s3://apps/hello.tar.gz")
	var in struct{ InstanceId string }
	aws(&in, "opsworks", "register-instance", "--stack-id", st.StackId, "--hostname", "cli-board", "--private-ip", "10.0.0.2",
		"--public-ip", "192.0.2.2")
	var dep struct{ DeploymentId string }
	aws(&dep, "opsworks", "create-deployment", "--stack-id", st.StackId, "--app-id", ap.AppId,
		"--command", `{"Name":"deploy","Args":{"migrate":["true"]}}`)
	e.run("cli-board", engine.ExecFailed, 3, "migrate exited 3\n")
	var ds struct {
		Deployments []struct {
			Status   string
			Duration int
			Command  struct{ Name string }
		}
	}
	aws(&ds, "opsworks", "describe-deployments", "--deployment-ids", dep.DeploymentId)
	if len(ds.Deployments) != 1 || ds.Deployments[0].Status != "failed" || ds.Deployments[0].Duration != 15 ||
		ds.Deployments[0].Command.Name != "deploy" {
		t.Fatalf("deployments %+v", ds)
	}
	var cs struct {
		Commands []struct {
			Status, Type, LogUrl, CompletedAt string
			ExitCode                          int
		}
	}
	aws(&cs, "opsworks", "describe-commands", "--deployment-id", dep.DeploymentId)
	if len(cs.Commands) != 1 || cs.Commands[0].Status != "failed" || cs.Commands[0].ExitCode != 3 ||
		!strings.HasPrefix(cs.Commands[0].LogUrl, "data:text/plain;base64,") || !strings.HasSuffix(cs.Commands[0].CompletedAt, "+00:00") {
		t.Fatalf("commands %+v", cs)
	}
	_, stderr, err := run("opsworks", "describe-stacks", "--stack-ids", "nope")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 254 || !strings.Contains(stderr, "ResourceNotFoundException") {
		t.Fatalf("describe-stacks of nothing: %v %q", err, stderr)
	}
	_, stderr, err = run("opsworks", "describe-deployments")
	if !errors.As(err, &exit) || !strings.Contains(stderr, "ValidationException") {
		t.Fatalf("describe-deployments of nothing: %v %q", err, stderr)
	}
}
