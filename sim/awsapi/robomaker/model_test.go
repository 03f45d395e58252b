package robomaker

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/fleetlab/fleetlab/sim/awsapi/model"
)

// Every pattern of the RoboMaker model compiles, and means what the service meant by it.
func TestModelPatternsCompile(t *testing.T) {
	var raw struct {
		Shapes map[string]struct {
			Pattern *string `json:"pattern"`
		} `json:"shapes"`
	}
	if err := json.Unmarshal(modelJSON, &raw); err != nil {
		t.Fatal(err)
	}
	n := 0
	for name, s := range raw.Shapes {
		if s.Pattern == nil {
			continue
		}
		n++
		if _, err := model.CompilePattern(*s.Pattern); err != nil {
			t.Errorf("shape %s: %v", name, err)
		}
	}
	if n < 20 {
		t.Fatalf("only %d patterns found in the model", n)
	}
	m, err := LoadModel()
	if err != nil {
		t.Fatal(err)
	}
	for shape, cases := range map[string]map[string]bool{
		"Name":                   {"fleet_1-A": true, "": true, "fleet 1": false, "f/1": false},
		"Arn":                    {"arn:aws:robomaker:us-east-1:1:robot/r/1": true, "robot/r": false},
		"ClientRequestToken":     {"67F707C9-0b1=_": true, "tok en": false},
		"DeploymentVersion":      {"12": true, "$LATEST": false},
		"Version":                {"$LATEST": true, "3": true, "$LATEST3": false},
		"S3Bucket":               {"my.bucket-1": true, "-bucket": false, "Bucket": false},
		"Command":                {"hello_pkg.launch": true, "rm -rf": false},
		"EnvironmentVariableKey": {"ROS_DOMAIN_ID": true, "lower": false, "1X": false},
		"ImageDigest":            {"sha256:" + strings.Repeat("a", 64): true, "sha256:abc": false},
		"TagKey":                 {"team:a/b=c+d": true, "tab\t": false},
		"PaginationToken":        {"eyJzIjoi-_": true, "a b": false},
		"VersionQualifier":       {"ALL": true, "SOME": false},
	} {
		s := m.Shape(shape)
		if s == nil {
			t.Fatalf("no shape %s", shape)
		}
		for value, want := range cases {
			if got := s.Pattern.MatchString(value); got != want {
				t.Errorf("%s pattern %s on %q = %v, want %v", shape, s.Pattern, value, got, want)
			}
		}
	}
	// The List operations' FilterValues follow their documentation (three values), not the model (one).
	if max := m.Shape("FilterValues").Max; max == nil || *max != 3 {
		t.Errorf("FilterValues max = %v", max)
	}
}

func TestValidatorAgainstModel(t *testing.T) {
	m, err := LoadModel()
	if err != nil {
		t.Fatal(err)
	}
	const (
		fleet = `"fleet": "arn:aws:robomaker:us-east-1:123456789012:deployment-fleet/f/1"`
		token = `"clientRequestToken": "t-1"`
		app   = `"application": "arn:aws:robomaker:us-east-1:123456789012:robot-application/a/1", "applicationVersion": "1"`
	)
	launch := func(extra string) string {
		return `"deploymentApplicationConfigs": [{` + app + `, "launchConfig": {"packageName": "p", "launchFile": "l"` + extra + `}}]`
	}
	tests := []struct {
		op, body, want string
	}{
		{"CreateDeploymentJob", `{` + fleet + `, ` + token + `, ` + launch("") + `}`, ""},
		{"CreateDeploymentJob", `{` + fleet + `, ` + launch("") + `}`,
			"Value null at 'clientRequestToken' failed to satisfy constraint: Member must not be null"},
		{"CreateDeploymentJob", `{` + fleet + `, "clientRequestToken": "` + strings.Repeat("t", 65) + `", ` + launch("") + `}`,
			"at 'clientRequestToken' failed to satisfy constraint: Member must have length less than or equal to 64"},
		{"CreateDeploymentJob", `{` + fleet + `, ` + token + `, ` + launch(`, "packageName": "p q"`) + `}`,
			"Value 'p q' at 'deploymentApplicationConfigs.1.member.launchConfig.packageName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.\\-]*"},
		{"CreateDeploymentJob", `{` + fleet + `, ` + token + `, ` + launch(`, "environmentVariables": {"K": ""}`) + `}`,
			"Map value must satisfy constraint: [Member must have length greater than or equal to 1]"},
		{"CreateDeploymentJob", `{` + fleet + `, ` + token + `, ` + launch("") + `, "deploymentConfig": {"downloadConditionFile": {"bucket": "ab"}}}`,
			"Value 'ab' at 'deploymentConfig.downloadConditionFile.bucket' failed to satisfy constraint: Member must have length greater than or equal to 3"},
		{"CreateDeploymentJob", `{` + fleet + `, ` + token + `, ` + launch("") + `, "deploymentConfig": {"downloadConditionFile": {"bucket": "abc"}}}`,
			"Value null at 'deploymentConfig.downloadConditionFile.key'"},
		{"CreateDeploymentJob", `{` + fleet + `, ` + token + `, ` + launch("") + `, "deploymentConfig": {"robotDeploymentTimeoutInSeconds": "60"}}`,
			"at 'deploymentConfig.robotDeploymentTimeoutInSeconds' failed to satisfy constraint: Member must be a number"},
		{"CreateDeploymentJob", `{` + fleet + `, ` + token + `, ` + launch("") + `, "tags": {"k": "` + strings.Repeat("v", 257) + `"}}`,
			"Value '{k=" + strings.Repeat("v", 245)},
		{"CreateRobot", `{"name": "r", "architecture": "X86_64", "greengrassGroupId": ""}`,
			"Value '' at 'greengrassGroupId' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{"ListDeploymentJobs", `{"filters": [{"name": "status", "values": ["a", "b", "c"]}], "maxResults": 5}`, ""},
		{"ListDeploymentJobs", `{"filters": []}`,
			"Value '[]' at 'filters' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{"ListDeploymentJobs", `{"maxResults": 2.5}`, "at 'maxResults' failed to satisfy constraint: Member must be an integer"},
		{"ListDeploymentJobs", `{"nextToken": ""}`, "at 'nextToken' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{"CreateRobotApplicationVersion", `{"application": "arn:x", "imageDigest": "md5:1"}`,
			"at 'imageDigest' failed to satisfy constraint: Member must satisfy regular expression pattern"},
		{"CreateRobotApplication", `{"name": "a", "robotSoftwareSuite": {"name": "ROS", "version": "Noetic"}}`,
			"Value 'Noetic' at 'robotSoftwareSuite.version' failed to satisfy constraint: Member must satisfy enum value set: [Kinetic, Melodic, Dashing, Foxy]"},
	}
	for _, tc := range tests {
		dec := json.NewDecoder(bytes.NewReader([]byte(tc.body)))
		dec.UseNumber()
		var in map[string]any
		if err := dec.Decode(&in); err != nil {
			t.Fatalf("%s: %v", tc.body, err)
		}
		err := m.ValidateInput(tc.op, in)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s %s: %v", tc.op, tc.body, err)
			}
			continue
		}
		var ve *model.ValidationError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %.80s…\n got %v\nwant %s", tc.op, tc.body, err, tc.want)
		}
	}
}
