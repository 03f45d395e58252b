package greengrassv2

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/sim/awsapi/awsclitest"
)

// The AWS CLI 2 drives the components API: create from a YAML recipe file, list, get in YAML, and a typed error
// with its exit status.
func TestAWSCLI(t *testing.T) {
	e := newEnv(t)
	work, run, aws := awsclitest.AWSCLI(t, e.srv.URL)

	recipeFile := filepath.Join(work, "recipe.yaml")
	if err := os.WriteFile(recipeFile, []byte(`RecipeFormatVersion: "2020-01-25"
ComponentName: com.example.Cli
ComponentVersion: "1.0.0"
ComponentConfiguration:
  DefaultConfiguration:
    Message: world
Manifests:
  - Platform: {os: linux}
    Lifecycle:
      run: python3 -u {artifacts:path}/hello.py
    Artifacts:
      - URI: s3://artifacts/hello/1.0.0/hello.py
`), 0o600); err != nil {
		t.Fatal(err)
	}
	var created struct {
		Arn               string
		ComponentName     string `json:"componentName"`
		CreationTimestamp string `json:"creationTimestamp"`
		Status            struct{ ComponentState string }
	}
	aws(&created, "greengrassv2", "create-component-version", "--inline-recipe", "fileb://"+recipeFile)
	if created.Arn != versionARN("com.example.Cli", "1.0.0") || created.Status.ComponentState != "DEPLOYABLE" ||
		!strings.HasPrefix(created.CreationTimestamp, "2026-05-24T19:26:55") {
		t.Fatalf("create-component-version: %+v", created)
	}

	var list struct {
		Components []struct {
			ComponentName string `json:"componentName"`
			LatestVersion struct {
				ComponentVersion string `json:"componentVersion"`
			} `json:"latestVersion"`
		} `json:"components"`
	}
	aws(&list, "greengrassv2", "list-components")
	if len(list.Components) != 1 || list.Components[0].ComponentName != "com.example.Cli" ||
		list.Components[0].LatestVersion.ComponentVersion != "1.0.0" {
		t.Fatalf("list-components: %+v", list)
	}

	// The CLI shows a blob output base64-encoded.
	var got struct {
		RecipeOutputFormat string `json:"recipeOutputFormat"`
		Recipe             []byte `json:"recipe"`
	}
	aws(&got, "greengrassv2", "get-component", "--arn", created.Arn, "--recipe-output-format", "YAML")
	if got.RecipeOutputFormat != "YAML" || !strings.Contains(string(got.Recipe), "ComponentName: com.example.Cli") {
		t.Fatalf("get-component: %s %s", got.RecipeOutputFormat, got.Recipe)
	}

	out, stderr, err := run("greengrassv2", "describe-component", "--arn", versionARN("com.example.Cli", "9.0.0"))
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 254 ||
		!strings.Contains(stderr, "(ResourceNotFoundException) when calling the DescribeComponent operation") {
		t.Fatalf("describe-component of a missing version: %v\n%s%s", err, out, stderr)
	}
}

// The AWS CLI 2 creates a thing-group deployment from a JSON file, gets it, and lists a device's effective
// deployments.
func TestAWSCLIDeployments(t *testing.T) {
	e := newDeployEnv(t)
	work, _, aws := awsclitest.AWSCLI(t, e.srv.URL)
	e.things("fleet", "t1")
	spec := filepath.Join(work, "deployment.json")
	if err := os.WriteFile(spec, []byte(`{
  "targetArn": "`+groupARN("fleet")+`",
  "deploymentName": "cli",
  "components": {"com.example.Hello": {"componentVersion": "1.0.0",
    "configurationUpdate": {"merge": "{\"Message\": \"cli\"}"}}},
  "iotJobConfiguration": {"jobExecutionsRolloutConfig": {"maximumPerMinute": 10},
    "timeoutConfig": {"inProgressTimeoutInMinutes": 30}}
}`), 0o600); err != nil {
		t.Fatal(err)
	}
	var created struct {
		DeploymentID string `json:"deploymentId"`
		IoTJobID     string `json:"iotJobId"`
		IoTJobARN    string `json:"iotJobArn"`
	}
	aws(&created, "greengrassv2", "create-deployment", "--cli-input-json", "file://"+spec)
	if created.DeploymentID == "" || created.IoTJobARN != "arn:aws:iot:us-east-1:123456789012:job/"+created.IoTJobID {
		t.Fatalf("create-deployment: %+v", created)
	}
	var got struct {
		DeploymentStatus  string `json:"deploymentStatus"`
		RevisionID        string `json:"revisionId"`
		IsLatestForTarget bool   `json:"isLatestForTarget"`
		Components        map[string]struct {
			ConfigurationUpdate struct{ Merge string } `json:"configurationUpdate"`
		} `json:"components"`
	}
	aws(&got, "greengrassv2", "get-deployment", "--deployment-id", created.DeploymentID)
	if got.DeploymentStatus != "ACTIVE" || got.RevisionID != "1" || !got.IsLatestForTarget ||
		got.Components["com.example.Hello"].ConfigurationUpdate.Merge != `{"Message": "cli"}` {
		t.Fatalf("get-deployment: %+v", got)
	}
	e.run(time.Second)
	var eff struct {
		EffectiveDeployments []struct {
			DeploymentID              string `json:"deploymentId"`
			CoreDeviceExecutionStatus string `json:"coreDeviceExecutionStatus"`
		} `json:"effectiveDeployments"`
	}
	aws(&eff, "greengrassv2", "list-effective-deployments", "--core-device-thing-name", "t1")
	if len(eff.EffectiveDeployments) != 1 || eff.EffectiveDeployments[0].DeploymentID != created.DeploymentID ||
		eff.EffectiveDeployments[0].CoreDeviceExecutionStatus != "QUEUED" {
		t.Fatalf("list-effective-deployments: %+v", eff)
	}
}
