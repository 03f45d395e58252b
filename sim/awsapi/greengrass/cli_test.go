package greengrass

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetlab/fleetlab/sim/awsapi/awsclitest"
	"github.com/fleetlab/fleetlab/sim/engine"
)

// The AWS CLI 2 drives a group deployment: a core definition from a JSON file, a group, a deployment, its status
// as the core moves it, the listing with its ARN quirks, a reset, and a typed error with its exit status.
func TestAWSCLI(t *testing.T) {
	e := newEnv(t)
	work, run, aws := awsclitest.AWSCLI(t, e.srv.URL)

	coreFile := filepath.Join(work, "core.json")
	if err := os.WriteFile(coreFile, []byte(fmt.Sprintf(`{"Cores":[{"Id":"core","ThingArn":%q,"CertificateArn":%q}]}`,
		thingARN("cli-core"), certARN)), 0o644); err != nil {
		t.Fatal(err)
	}
	var core struct{ LatestVersionArn string }
	aws(&core, "greengrass", "create-core-definition", "--name", "cli", "--initial-version", "file://"+coreFile)
	var group struct{ Id, LatestVersion string }
	aws(&group, "greengrass", "create-group", "--name", "cli-group", "--initial-version",
		`{"CoreDefinitionVersionArn":"`+core.LatestVersionArn+`"}`)
	var dep struct{ DeploymentId, DeploymentArn string }
	aws(&dep, "greengrass", "create-deployment", "--group-id", group.Id, "--group-version-id", group.LatestVersion,
		"--deployment-type", "NewDeployment")
	var st struct{ DeploymentStatus, DeploymentType, UpdatedAt, ErrorMessage string }
	aws(&st, "greengrass", "get-deployment-status", "--group-id", group.Id, "--deployment-id", dep.DeploymentId)
	if st.DeploymentStatus != StatusBuilding || st.DeploymentType != "NewDeployment" || !strings.HasSuffix(st.UpdatedAt, "Z") {
		t.Fatalf("status %+v", st)
	}
	e.core("cli-core", engine.ExecFailed, "GG-FUNCTION-FAILED", "function f exited 1")
	aws(&st, "greengrass", "get-deployment-status", "--group-id", group.Id, "--deployment-id", dep.DeploymentId)
	if st.DeploymentStatus != StatusFailure || st.ErrorMessage != "function f exited 1" {
		t.Fatalf("status %+v", st)
	}
	var list struct {
		Deployments []struct{ GroupArn, DeploymentArn string }
	}
	aws(&list, "greengrass", "list-deployments", "--group-id", group.Id)
	if len(list.Deployments) != 1 || !strings.HasSuffix(list.Deployments[0].GroupArn, "/versions/"+group.LatestVersion) ||
		!strings.Contains(list.Deployments[0].DeploymentArn, ":/greengrass/groups/") {
		t.Fatalf("list %+v", list)
	}
	var reset struct{ DeploymentId string }
	aws(&reset, "greengrass", "reset-deployments", "--group-id", group.Id, "--force")
	aws(&st, "greengrass", "get-deployment-status", "--group-id", group.Id, "--deployment-id", reset.DeploymentId)
	if st.DeploymentStatus != StatusSuccess || st.DeploymentType != "ForceResetDeployment" {
		t.Fatalf("forced reset %+v", st)
	}
	_, stderr, err := run("greengrass", "get-group", "--group-id", "nope")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 254 || !strings.Contains(stderr, "IdNotFoundException") {
		t.Fatalf("get-group of nothing: %v %q", err, stderr)
	}
}
