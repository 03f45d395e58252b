package greengrassv2

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestParseRecipeJSONAndYAMLAgree(t *testing.T) {
	j := mustRecipe(t, "testdata/hello.json")
	y := mustRecipe(t, "testdata/hello.yaml")
	if !reflect.DeepEqual(j, y) {
		t.Fatalf("JSON and YAML recipes differ:\n%+v\n%+v", j, y)
	}
	if j.ComponentName != "com.example.HelloWorld" || j.ComponentVersion != "1.0.0" {
		t.Errorf("name/version %s %s", j.ComponentName, j.ComponentVersion)
	}
	if d := j.ComponentDependencies["aws.greengrass.Nucleus"]; d.Type() != DependencySoft ||
		d.VersionRequirement != ">=2.0.0 <3.0.0" {
		t.Errorf("nucleus dependency %+v", d)
	}
	if d := j.ComponentDependencies["com.example.Lib"]; d.Type() != DependencyHard {
		t.Errorf("default dependency type %q", d.Type())
	}
	if j.Defaults()["Message"] != "world" {
		t.Errorf("defaults %v", j.Defaults())
	}
	m, ok := j.Manifest(map[string]string{"os": "Linux", "architecture": "x86_64"})
	if !ok || len(m.Artifacts) != 1 {
		t.Fatalf("linux manifest %+v %v", m, ok)
	}
	steps, err := m.Steps()
	if err != nil {
		t.Fatal(err)
	}
	if s := steps[StepInstall]; s.Timeout != 300 || !s.RequiresPrivilege || !strings.HasPrefix(s.Script, "pip3") {
		t.Errorf("install %+v", s)
	}
	if steps[StepRun].Script == "" || steps[StepShutdown].Script != "pkill -f hello_world.py" {
		t.Errorf("steps %+v", steps)
	}
	obj, isS3, err := m.Artifacts[0].S3()
	if err != nil || !isS3 || obj.Bucket != "DOC-EXAMPLE-BUCKET" ||
		obj.Key != "artifacts/com.example.HelloWorld/1.0.0/hello_world.py" {
		t.Errorf("S3 %+v %v %v", obj, isS3, err)
	}
	if m.Artifacts[0].Name() != "hello_world.py" {
		t.Errorf("artifact name %q", m.Artifacts[0].Name())
	}
	if _, ok := j.Manifest(map[string]string{"os": "darwin"}); ok {
		t.Error("a darwin device found a manifest")
	}
	if m, ok := j.Manifest(map[string]string{"os": "windows", "architecture": "amd64"}); !ok ||
		m.Platform["os"] != "windows" {
		t.Errorf("windows manifest %+v", m)
	}
}

func TestParseRecipeRoundTrips(t *testing.T) {
	r := mustRecipe(t, "testdata/hello.json")
	for name, enc := range map[string]func() ([]byte, error){"JSON": r.JSON, "YAML": r.YAML} {
		data, err := enc()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseRecipe(data)
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, data)
		}
		if !reflect.DeepEqual(r, back) {
			t.Errorf("%s round trip differs:\n%+v\n%+v", name, r, back)
		}
	}
}

func TestParseRecipeKeysAreCaseInsensitive(t *testing.T) {
	r, err := ParseRecipe([]byte(`recipeformatversion: "2020-01-25"
componentname: a.b
COMPONENTVERSION: 2.0.0
manifests:
  - platform: {os: "*"}
`))
	if err != nil {
		t.Fatal(err)
	}
	if r.ComponentName != "a.b" || r.ComponentVersion != "2.0.0" || len(r.Manifests) != 1 {
		t.Errorf("%+v", r)
	}
}

func TestParseRecipeRejects(t *testing.T) {
	base := `"RecipeFormatVersion": "2020-01-25", "ComponentName": "a.b", "ComponentVersion": "1.0.0"`
	cases := []struct {
		name, recipe, field string
	}{
		{"empty", ``, ""},
		{"not JSON", `{"a":`, ""},
		{"not an object", `[1, 2]`, ""},
		{"bad YAML", "a: [", ""},
		{"no format version", `{"ComponentName": "a", "ComponentVersion": "1.0.0"}`, "RecipeFormatVersion"},
		{"unknown format version", `{"RecipeFormatVersion": "2021-01-01", "ComponentName": "a",
			"ComponentVersion": "1.0.0"}`, "RecipeFormatVersion"},
		{"no name", `{"RecipeFormatVersion": "2020-01-25", "ComponentVersion": "1.0.0"}`, "ComponentName"},
		{"bad name", `{"RecipeFormatVersion": "2020-01-25", "ComponentName": "a b", "ComponentVersion": "1.0.0"}`,
			"ComponentName"},
		{"no version", `{"RecipeFormatVersion": "2020-01-25", "ComponentName": "a"}`, "ComponentVersion"},
		{"version not semver", `{"RecipeFormatVersion": "2020-01-25", "ComponentName": "a",
			"ComponentVersion": "1.0"}`, "ComponentVersion"},
		{"version as a number", "RecipeFormatVersion: '2020-01-25'\nComponentName: a\nComponentVersion: 1.0\n",
			"ComponentVersion"},
		{"bad type", `{` + base + `, "ComponentType": "x"}`, "ComponentType"},
		{"bad requirement", `{` + base + `, "ComponentDependencies": {"c.d": {"VersionRequirement": ">=a.b"}}}`,
			"ComponentDependencies.c.d.VersionRequirement"},
		{"bad dependency type", `{` + base + `, "ComponentDependencies": {"c.d": {"DependencyType": "WEAK"}}}`,
			"ComponentDependencies.c.d.DependencyType"},
		{"self dependency", `{` + base + `, "ComponentDependencies": {"a.b": {}}}`, "ComponentDependencies.a.b"},
		{"bad platform regex", `{` + base + `, "Manifests": [{"Platform": {"os": "/(/"}}]}`,
			"Manifests[0].Platform.os"},
		{"step without script", `{` + base + `, "Manifests": [{"Lifecycle": {"run": {"Timeout": 3}}}]}`,
			"Manifests[0].Lifecycle.run"},
		{"step of a wrong type", `{` + base + `, "Manifests": [{"Lifecycle": {"install": 3}}]}`,
			"Manifests[0].Lifecycle.install"},
		{"artifact without URI", `{` + base + `, "Manifests": [{"Artifacts": [{}]}]}`,
			"Manifests[0].Artifacts[0].URI"},
		{"artifact of another scheme", `{` + base + `, "Manifests": [{"Artifacts": [{"URI": "https://x/y"}]}]}`,
			"Manifests[0].Artifacts[0].URI"},
		{"s3 URI without key", `{` + base + `, "Manifests": [{"Artifacts": [{"URI": "s3://bucket"}]}]}`,
			"Manifests[0].Artifacts[0].URI"},
		{"bad algorithm", `{` + base + `, "Manifests": [{"Artifacts": [{"URI": "s3://b/k", "Digest": "x",
			"Algorithm": "MD5"}]}]}`, "Manifests[0].Artifacts[0].Algorithm"},
		{"bad unarchive", `{` + base + `, "Manifests": [{"Artifacts": [{"URI": "s3://b/k", "Unarchive": "RAR"}]}]}`,
			"Manifests[0].Artifacts[0].Unarchive"},
		{"bad permission", `{` + base + `, "Manifests": [{"Artifacts": [{"URI": "s3://b/k",
			"Permission": {"Read": "SOME"}}]}]}`, "Manifests[0].Artifacts[0].Permission.Read"},
		{"manifests of a wrong type", `{` + base + `, "Manifests": {"a": 1}}`, "Manifests"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseRecipe([]byte(c.recipe))
			var re *RecipeError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want a *RecipeError", err)
			}
			if re.Field != c.field {
				t.Errorf("field %q, want %q (%v)", re.Field, c.field, err)
			}
		})
	}
}

func TestDocumentEnvelope(t *testing.T) {
	d := Document{DeploymentID: "d-1", TargetARN: "arn:aws:iot:us-east-1:123456789012:thing/a",
		Components: map[string]Component{"com.example.A": {Version: "1.0.0",
			ConfigurationUpdate: &ConfigurationUpdate{Merge: `{"x":1}`, Reset: []string{"/y"}}}}}.WithDefaults()
	if d.FailureHandlingPolicy != FailureRollback || d.ComponentUpdatePolicy.Action != UpdateNotifyComponents ||
		d.ComponentUpdatePolicy.TimeoutSeconds != 60 || d.ConfigurationValidationPolicy.TimeoutSeconds != 30 {
		t.Errorf("defaults %+v", d)
	}
	env, err := d.Envelope()
	if err != nil || env.Kind != Kind {
		t.Fatalf("%+v %v", env, err)
	}
	back, err := FromEnvelope(env)
	if err != nil || !reflect.DeepEqual(back, d) {
		t.Fatalf("%+v %v", back, err)
	}
	env.Kind = "robomaker"
	if _, err := FromEnvelope(env); err == nil {
		t.Error("another kind accepted")
	}
	for name, bad := range map[string]func(*Document){
		"no id":       func(d *Document) { d.DeploymentID = "" },
		"no target":   func(d *Document) { d.TargetARN = "" },
		"bad version": func(d *Document) { d.Components = map[string]Component{"a": {Version: "1"}} },
		"bad merge": func(d *Document) {
			d.Components = map[string]Component{"a": {Version: "1.0.0", ConfigurationUpdate: &ConfigurationUpdate{Merge: "[]"}}}
		},
		"bad failure policy": func(d *Document) { d.FailureHandlingPolicy = "RETRY" },
		"bad update action":  func(d *Document) { d.ComponentUpdatePolicy.Action = "NOW" },
		"negative timeout":   func(d *Document) { d.ConfigurationValidationPolicy.TimeoutSeconds = -1 },
	} {
		c := d
		bad(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func mustRecipe(t *testing.T, path string) *Recipe {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseRecipe(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return r
}
