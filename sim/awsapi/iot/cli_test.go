package iot

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The AWS CLI 2 drives the dialect: it signs `aws iot` calls for execute-api, which the handler takes as IoT's,
// and decodes the dialect's errors into typed ones.
func TestAWSCLI(t *testing.T) {
	const aws = "/usr/bin/aws" // the AWS CLI 2; an older one may come first on PATH
	if _, err := os.Stat(aws); err != nil {
		t.Skip("the AWS CLI 2 is not installed at /usr/bin/aws; the SDK tests cover the dialect")
	}
	e := newEnv(t)
	home := t.TempDir()
	env := append(os.Environ(), "HOME="+home, "AWS_ACCESS_KEY_ID=AK", "AWS_SECRET_ACCESS_KEY=SK",
		"AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE="+filepath.Join(home, "config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "credentials"), "AWS_PAGER=",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_MAX_ATTEMPTS=1")
	run := func(args ...string) ([]byte, error) {
		cmd := exec.Command(aws, append([]string{"--endpoint-url", e.srv.URL, "--output", "json", "iot"},
			args...)...)
		cmd.Env = env
		return cmd.CombinedOutput()
	}
	cli := func(out any, args ...string) {
		t.Helper()
		data, err := run(args...)
		if err != nil {
			t.Fatalf("aws iot %v: %v\n%s", args, err, data)
		}
		if out != nil {
			if err := json.Unmarshal(data, out); err != nil {
				t.Fatalf("aws iot %v: %v\n%s", args, err, data)
			}
		}
	}

	var thing struct{ ThingName, ThingArn, ThingID string }
	cli(&thing, "create-thing", "--thing-name", "robot-1", "--attribute-payload", `{"attributes":{"color":"red"}}`)
	if thing.ThingArn != "arn:aws:iot:us-east-1:123456789012:thing/robot-1" {
		t.Fatalf("create-thing: %+v", thing)
	}
	var group struct{ ThingGroupName, ThingGroupArn string }
	cli(&group, "create-thing-group", "--thing-group-name", "site", "--tags", "Key=team,Value=a")
	if group.ThingGroupArn != "arn:aws:iot:us-east-1:123456789012:thinggroup/site" {
		t.Fatalf("create-thing-group: %+v", group)
	}
	cli(nil, "add-thing-to-thing-group", "--thing-group-name", "site", "--thing-name", "robot-1")
	var members struct{ Things []string }
	cli(&members, "list-things-in-thing-group", "--thing-group-name", "site", "--recursive")
	if !slices.Equal(members.Things, []string{"robot-1"}) {
		t.Fatalf("list-things-in-thing-group: %+v", members)
	}
	out, err := run("describe-thing", "--thing-name", "nobody")
	if err == nil || !strings.Contains(string(out), "(ResourceNotFoundException)") {
		t.Fatalf("describe-thing of a missing thing: %v\n%s", err, out)
	}
	out, err = run("create-thing", "--thing-name", "robot-1")
	if err == nil || !strings.Contains(string(out), "(ResourceAlreadyExistsException)") {
		t.Fatalf("create-thing of another configuration: %v\n%s", err, out)
	}
}
