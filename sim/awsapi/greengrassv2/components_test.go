package greengrassv2

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	gg "github.com/aws/aws-sdk-go-v2/service/greengrassv2"
	"github.com/aws/aws-sdk-go-v2/service/greengrassv2/types"

	ggwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/greengrassv2"
)

func TestCreateComponentVersion(t *testing.T) {
	e := newEnv(t)
	yamlRecipe := []byte(`RecipeFormatVersion: "2020-01-25"
ComponentName: com.example.Yaml
ComponentVersion: "1.2.3"
Manifests:
  - Platform: {os: linux}
    Lifecycle: {run: echo hi}
`)
	out, err := e.c.CreateComponentVersion(e.ctx, &gg.CreateComponentVersionInput{
		InlineRecipe: recipe("com.example.Hello", "1.0.0", "hello/1.0.0/hello.py"), Tags: map[string]string{"team": "a"}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.Arn) != versionARN("com.example.Hello", "1.0.0") ||
		aws.ToString(out.ComponentName) != "com.example.Hello" || aws.ToString(out.ComponentVersion) != "1.0.0" ||
		!out.CreationTimestamp.Equal(e.clock.Now()) || out.Status.ComponentState != types.CloudComponentStateDeployable ||
		out.Status.VendorGuidance != types.VendorGuidanceActive {
		t.Fatalf("create = %+v %+v", out, out.Status)
	}
	if _, err := e.c.CreateComponentVersion(e.ctx, &gg.CreateComponentVersionInput{InlineRecipe: yamlRecipe}); err != nil {
		t.Fatalf("YAML recipe: %v", err)
	}

	cases := []struct {
		name  string
		in    *gg.CreateComponentVersionInput
		check func(*testing.T, error)
	}{
		{"the same name and version", &gg.CreateComponentVersionInput{
			InlineRecipe: recipe("com.example.Hello", "1.0.0", "hello/1.0.0/hello.py")},
			func(t *testing.T, err error) {
				c := wantError[*types.ConflictException](t, err, http.StatusConflict)
				if aws.ToString(c.ResourceId) != versionARN("com.example.Hello", "1.0.0") || c.ResourceType == nil {
					t.Errorf("conflict %+v", c)
				}
			}},
		{"no recipe", &gg.CreateComponentVersionInput{}, validationCheck(types.ValidationExceptionReasonOther, "")},
		{"a lambda function", &gg.CreateComponentVersionInput{LambdaFunction: &types.LambdaFunctionRecipeSource{
			LambdaArn: aws.String("arn:aws:lambda:us-east-1:123456789012:function:f:1")}},
			validationCheck(types.ValidationExceptionReasonOther, "")},
		{"a recipe that does not parse", &gg.CreateComponentVersionInput{InlineRecipe: []byte(`{"a":`)},
			validationCheck(types.ValidationExceptionReasonFieldValidationFailed, "inlineRecipe")},
		{"a version that is not semver", &gg.CreateComponentVersionInput{InlineRecipe: recipe("a.b", "1.0")},
			validationCheck(types.ValidationExceptionReasonFieldValidationFailed, "inlineRecipe")},
		{"no name", &gg.CreateComponentVersionInput{InlineRecipe: []byte(`{"RecipeFormatVersion": "2020-01-25",
			"ComponentVersion": "1.0.0"}`)}, validationCheck(types.ValidationExceptionReasonFieldValidationFailed, "inlineRecipe")},
		{"an artifact the store lacks", &gg.CreateComponentVersionInput{
			InlineRecipe: recipe("com.example.Hello", "3.0.0", "hello/3.0.0/missing.py")},
			func(t *testing.T, err error) {
				v := validationCheck(types.ValidationExceptionReasonFieldValidationFailed, "inlineRecipe")
				v(t, err)
				if !strings.Contains(err.Error(), "s3://artifacts/hello/3.0.0/missing.py = Specified artifact resource cannot be accessed") {
					t.Errorf("message %v", err)
				}
			}},
		{"an artifact of another scheme", &gg.CreateComponentVersionInput{InlineRecipe: []byte(strings.Replace(
			string(recipe("a.b", "1.0.0", "k")), "s3://", "ftp://", 1))},
			validationCheck(types.ValidationExceptionReasonFieldValidationFailed, "inlineRecipe")},
		{"a client token breaking its pattern", &gg.CreateComponentVersionInput{
			InlineRecipe: recipe("a.b", "1.0.0"), ClientToken: aws.String("bad token")},
			validationCheck(types.ValidationExceptionReasonFieldValidationFailed, "clientToken")},
		{"a tag key too long", &gg.CreateComponentVersionInput{InlineRecipe: recipe("a.b", "1.0.0"),
			Tags: map[string]string{strings.Repeat("k", 129): "v"}},
			validationCheck(types.ValidationExceptionReasonFieldValidationFailed, "tags")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.c.CreateComponentVersion(e.ctx, c.in)
			c.check(t, err)
		})
	}
	// Nothing refused was stored.
	list, err := e.c.ListComponents(e.ctx, &gg.ListComponentsInput{})
	if err != nil || len(list.Components) != 2 {
		t.Fatalf("components after refusals: %+v %v", list, err)
	}
}

// validationCheck expects a ValidationException with reason and, when field is set, a fields entry naming it
// (by prefix: the model names nested members "tags.key").
func validationCheck(reason types.ValidationExceptionReason, field string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		v := wantError[*types.ValidationException](t, err, http.StatusBadRequest)
		if v.Reason != reason {
			t.Errorf("reason %q, want %q (%v)", v.Reason, reason, err)
		}
		if field == "" {
			return
		}
		for _, f := range v.Fields {
			if strings.HasPrefix(aws.ToString(f.Name), field) && aws.ToString(f.Message) != "" {
				return
			}
		}
		t.Errorf("fields %+v do not name %s", v.Fields, field)
	}
}

func TestClientTokenAnswersTheFirstResponse(t *testing.T) {
	e := newEnv(t)
	in := &gg.CreateComponentVersionInput{InlineRecipe: recipe("com.example.Tok", "1.0.0"), ClientToken: aws.String("tok-1")}
	first, err := e.c.CreateComponentVersion(e.ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(ggHour)
	again, err := e.c.CreateComponentVersion(e.ctx, in)
	if err != nil {
		t.Fatalf("the same token again: %v", err)
	}
	if !again.CreationTimestamp.Equal(*first.CreationTimestamp) || aws.ToString(again.Arn) != aws.ToString(first.Arn) {
		t.Errorf("replay %v, first %v", again.CreationTimestamp, first.CreationTimestamp)
	}
	// After 8 hours the token is forgotten: the same request is a new creation, which conflicts.
	e.clock.Advance(TokenLifetime)
	_, err = e.c.CreateComponentVersion(e.ctx, in)
	wantError[*types.ConflictException](t, err, http.StatusConflict)
	// Without a token the SDK makes one up: a repeat conflicts.
	in.ClientToken = nil
	_, err = e.c.CreateComponentVersion(e.ctx, in)
	wantError[*types.ConflictException](t, err, http.StatusConflict)
}

const ggHour = 3600 * 1e9

func TestDescribeAndGetComponent(t *testing.T) {
	e := newEnv(t)
	arn := e.create(recipe("com.example.Hello", "1.0.0", "hello/1.0.0/hello.py"))
	if _, err := e.c.TagResource(e.ctx, &gg.TagResourceInput{ResourceArn: aws.String(arn),
		Tags: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	d, err := e.c.DescribeComponent(e.ctx, &gg.DescribeComponentInput{Arn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(d.ComponentName) != "com.example.Hello" || aws.ToString(d.Description) != "Says hello." ||
		aws.ToString(d.Publisher) != "Fleetlab" || d.Tags["k"] != "v" || len(d.Platforms) != 1 ||
		d.Platforms[0].Attributes["os"] != "linux" || aws.ToString(d.Platforms[0].Name) != "linux" ||
		d.Status.ComponentState != types.CloudComponentStateDeployable || !d.CreationTimestamp.Equal(e.clock.Now()) {
		t.Errorf("describe %+v", d)
	}
	for _, f := range []types.RecipeOutputFormat{"", types.RecipeOutputFormatJson, types.RecipeOutputFormatYaml} {
		g, err := e.c.GetComponent(e.ctx, &gg.GetComponentInput{Arn: aws.String(arn), RecipeOutputFormat: f})
		if err != nil {
			t.Fatal(err)
		}
		want := f
		if want == "" {
			want = types.RecipeOutputFormatJson
		}
		if g.RecipeOutputFormat != want || g.Tags["k"] != "v" {
			t.Errorf("format %q: %q %v", f, g.RecipeOutputFormat, g.Tags)
		}
		r, err := ggwire.ParseRecipe(g.Recipe)
		if err != nil {
			t.Fatalf("format %q: the recipe does not parse: %v\n%s", f, err, g.Recipe)
		}
		if r.ComponentName != "com.example.Hello" || r.Defaults()["Message"] != "world" ||
			(want == types.RecipeOutputFormatJson) != json.Valid(g.Recipe) {
			t.Errorf("format %q: recipe %s", f, g.Recipe)
		}
	}
	missing := versionARN("com.example.Hello", "9.9.9")
	_, err = e.c.DescribeComponent(e.ctx, &gg.DescribeComponentInput{Arn: aws.String(missing)})
	nf := wantError[*types.ResourceNotFoundException](t, err, http.StatusNotFound)
	if aws.ToString(nf.ResourceId) != missing || aws.ToString(nf.ResourceType) == "" {
		t.Errorf("not found %+v", nf)
	}
	_, err = e.c.GetComponent(e.ctx, &gg.GetComponentInput{Arn: aws.String(missing)})
	wantError[*types.ResourceNotFoundException](t, err, http.StatusNotFound)
	_, err = e.c.DescribeComponent(e.ctx, &gg.DescribeComponentInput{Arn: aws.String("arn:aws:iot:x")})
	validationCheck(types.ValidationExceptionReasonFieldValidationFailed, "arn")(t, err)
	_, err = e.c.GetComponent(e.ctx, &gg.GetComponentInput{Arn: aws.String(arn), RecipeOutputFormat: "XML"})
	validationCheck(types.ValidationExceptionReasonFieldValidationFailed, "recipeOutputFormat")(t, err)
}

func TestListComponentsAndVersions(t *testing.T) {
	e := newEnv(t)
	for _, v := range []string{"1.0.0", "2.0.0", "1.10.0", "1.2.0"} {
		e.create(recipe("com.example.B", v))
	}
	e.create(recipe("com.example.A", "0.1.0"))
	e.create(recipe("com.example.C", "3.0.0-rc.1"))

	var names []string
	var latest []string
	p := gg.NewListComponentsPaginator(e.c, &gg.ListComponentsInput{MaxResults: aws.Int32(2)})
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, c := range out.Components {
			names = append(names, aws.ToString(c.ComponentName))
			latest = append(latest, aws.ToString(c.LatestVersion.ComponentVersion))
			if aws.ToString(c.Arn) != componentARN(aws.ToString(c.ComponentName)) {
				t.Errorf("component ARN %s", aws.ToString(c.Arn))
			}
		}
	}
	if strings.Join(names, ",") != "com.example.A,com.example.B,com.example.C" ||
		strings.Join(latest, ",") != "0.1.0,2.0.0,3.0.0-rc.1" || pages != 2 {
		t.Errorf("list = %v %v in %d pages", names, latest, pages)
	}
	pub, err := e.c.ListComponents(e.ctx, &gg.ListComponentsInput{Scope: types.ComponentVisibilityScopePublic})
	if err != nil || len(pub.Components) != 0 {
		t.Errorf("public = %+v %v", pub, err)
	}

	var versions []string
	vp := gg.NewListComponentVersionsPaginator(e.c, &gg.ListComponentVersionsInput{
		Arn: aws.String(componentARN("com.example.B")), MaxResults: aws.Int32(3)})
	for vp.HasMorePages() {
		out, err := vp.NextPage(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range out.ComponentVersions {
			versions = append(versions, aws.ToString(v.ComponentVersion))
			if aws.ToString(v.Arn) != versionARN("com.example.B", aws.ToString(v.ComponentVersion)) {
				t.Errorf("version ARN %s", aws.ToString(v.Arn))
			}
		}
	}
	if strings.Join(versions, ",") != "2.0.0,1.10.0,1.2.0,1.0.0" {
		t.Errorf("versions = %v", versions)
	}

	_, err = e.c.ListComponentVersions(e.ctx, &gg.ListComponentVersionsInput{Arn: aws.String(componentARN("nope"))})
	wantError[*types.ResourceNotFoundException](t, err, http.StatusNotFound)
	_, err = e.c.ListComponents(e.ctx, &gg.ListComponentsInput{MaxResults: aws.Int32(101)})
	validationCheck(types.ValidationExceptionReasonFieldValidationFailed, "maxResults")(t, err)
	_, err = e.c.ListComponents(e.ctx, &gg.ListComponentsInput{NextToken: aws.String("forged")})
	validationCheck(types.ValidationExceptionReasonFieldValidationFailed, "nextToken")(t, err)
	_, err = e.c.ListComponentVersions(e.ctx, &gg.ListComponentVersionsInput{
		Arn: aws.String(versionARN("com.example.B", "1.0.0"))})
	validationCheck(types.ValidationExceptionReasonFieldValidationFailed, "arn")(t, err)
}

func TestDeleteComponent(t *testing.T) {
	e := newEnv(t)
	one := e.create(recipe("com.example.D", "1.0.0"))
	two := e.create(recipe("com.example.D", "2.0.0"))
	if _, err := e.c.TagResource(e.ctx, &gg.TagResourceInput{ResourceArn: aws.String(componentARN("com.example.D")),
		Tags: map[string]string{"on": "component"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.DeleteComponent(e.ctx, &gg.DeleteComponentInput{Arn: aws.String(one)}); err != nil {
		t.Fatal(err)
	}
	_, err := e.c.DescribeComponent(e.ctx, &gg.DescribeComponentInput{Arn: aws.String(one)})
	wantError[*types.ResourceNotFoundException](t, err, http.StatusNotFound)
	_, err = e.c.DeleteComponent(e.ctx, &gg.DeleteComponentInput{Arn: aws.String(one)})
	wantError[*types.ResourceNotFoundException](t, err, http.StatusNotFound)
	// The name is free again for the deleted version.
	e.create(recipe("com.example.D", "1.0.0"))
	for _, arn := range []string{one, two} {
		if _, err := e.c.DeleteComponent(e.ctx, &gg.DeleteComponentInput{Arn: aws.String(arn)}); err != nil {
			t.Fatal(err)
		}
	}
	// The component went with its last version, and its tags with it.
	_, err = e.c.ListComponentVersions(e.ctx, &gg.ListComponentVersionsInput{Arn: aws.String(componentARN("com.example.D"))})
	wantError[*types.ResourceNotFoundException](t, err, http.StatusNotFound)
	_, err = e.c.ListTagsForResource(e.ctx, &gg.ListTagsForResourceInput{ResourceArn: aws.String(componentARN("com.example.D"))})
	wantError[*types.ResourceNotFoundException](t, err, http.StatusNotFound)
	e.create(recipe("com.example.D", "1.0.0"))
	tags, err := e.c.ListTagsForResource(e.ctx, &gg.ListTagsForResourceInput{ResourceArn: aws.String(componentARN("com.example.D"))})
	if err != nil || len(tags.Tags) != 0 {
		t.Errorf("a new component has the old one's tags: %v %v", tags, err)
	}
}

func TestGetComponentVersionArtifact(t *testing.T) {
	e := newEnv(t)
	arn := e.create(recipe("com.example.Hello", "1.0.0", "hello/1.0.0/hello.py"))
	for _, name := range []string{"hello.py", "artifacts/hello/1.0.0/hello.py", "hello/1.0.0/hello.py"} {
		out, err := e.c.GetComponentVersionArtifact(e.ctx, &gg.GetComponentVersionArtifactInput{Arn: aws.String(arn),
			ArtifactName: aws.String(name)})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want := e.srv.URL + "/artifacts/artifacts/hello/1.0.0/hello.py"; aws.ToString(out.PreSignedUrl) != want {
			t.Errorf("%s: url %s, want %s", name, aws.ToString(out.PreSignedUrl), want)
		}
	}
	_, err := e.c.GetComponentVersionArtifact(e.ctx, &gg.GetComponentVersionArtifactInput{Arn: aws.String(arn),
		ArtifactName: aws.String("other.py")})
	wantError[*types.ResourceNotFoundException](t, err, http.StatusNotFound)
	_, err = e.c.GetComponentVersionArtifact(e.ctx, &gg.GetComponentVersionArtifactInput{
		Arn: aws.String(versionARN("x", "1.0.0")), ArtifactName: aws.String("hello.py")})
	wantError[*types.ResourceNotFoundException](t, err, http.StatusNotFound)
}

func TestResolveComponentCandidates(t *testing.T) {
	e := newEnv(t)
	for _, v := range []string{"1.0.0", "1.5.0", "2.0.0"} {
		e.create(recipe("com.example.Lib", v))
	}
	e.create([]byte(`{"RecipeFormatVersion": "2020-01-25", "ComponentName": "com.example.Lib",
		"ComponentVersion": "1.9.0", "Manifests": [{"Platform": {"os": "windows"}}]}`))
	e.create([]byte(`{"RecipeFormatVersion": "2020-01-25", "ComponentName": "com.example.Any",
		"ComponentVersion": "0.1.0"}`))
	linux := &types.ComponentPlatform{Attributes: map[string]string{"os": "linux", "architecture": "amd64"}}
	resolve := func(cands ...types.ComponentCandidate) (*gg.ResolveComponentCandidatesOutput, error) {
		return e.c.ResolveComponentCandidates(e.ctx, &gg.ResolveComponentCandidatesInput{Platform: linux,
			ComponentCandidates: cands})
	}
	cand := func(name, version string, reqs map[string]string) types.ComponentCandidate {
		c := types.ComponentCandidate{ComponentName: aws.String(name), VersionRequirements: reqs}
		if version != "" {
			c.ComponentVersion = aws.String(version)
		}
		return c
	}
	cases := []struct {
		name string
		cand types.ComponentCandidate
		want string
	}{
		{"the highest satisfying version", cand("com.example.Lib", "", map[string]string{"a": ">=1.0.0 <2.0.0"}), "1.5.0"},
		{"the windows-only version is skipped", cand("com.example.Lib", "", map[string]string{"a": "^1.6"}), ""},
		{"every requirement holds", cand("com.example.Lib", "", map[string]string{"a": "^1.0", "b": "<1.5.0"}), "1.0.0"},
		{"the candidate's own version is kept", cand("com.example.Lib", "1.0.0", map[string]string{"a": "^1"}), "1.0.0"},
		{"a candidate version outside the requirements is not", cand("com.example.Lib", "2.0.0",
			map[string]string{"a": "~1.5.0"}), "1.5.0"},
		{"no requirement takes the highest", cand("com.example.Lib", "", nil), "2.0.0"},
		{"a recipe without manifests runs anywhere", cand("com.example.Any", "", nil), "0.1.0"},
		{"conflicting requirements", cand("com.example.Lib", "", map[string]string{"a": ">2.0.0", "b": "<2.0.0"}), ""},
		{"an unknown component", cand("com.example.Nope", "", nil), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := resolve(c.cand)
			if c.want == "" {
				wantError[*types.ResourceNotFoundException](t, err, http.StatusNotFound)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(out.ResolvedComponentVersions) != 1 {
				t.Fatalf("resolved %+v", out.ResolvedComponentVersions)
			}
			r := out.ResolvedComponentVersions[0]
			if aws.ToString(r.ComponentVersion) != c.want ||
				aws.ToString(r.Arn) != versionARN(aws.ToString(c.cand.ComponentName), c.want) ||
				r.VendorGuidance != types.VendorGuidanceActive {
				t.Errorf("resolved %s (%s)", aws.ToString(r.ComponentVersion), aws.ToString(r.Arn))
			}
			rec, err := ggwire.ParseRecipe(r.Recipe)
			if err != nil || rec.ComponentVersion != c.want {
				t.Errorf("recipe %s: %v", r.Recipe, err)
			}
		})
	}
	out, err := resolve(cand("com.example.Lib", "", nil), cand("com.example.Any", "", nil))
	if err != nil || len(out.ResolvedComponentVersions) != 2 {
		t.Fatalf("two candidates: %+v %v", out, err)
	}
	_, err = resolve(cand("com.example.Lib", "", map[string]string{"a": ">=one"}))
	validationCheck(types.ValidationExceptionReasonFieldValidationFailed, "componentCandidates.1.member.versionRequirements.a")(t, err)
	_, err = resolve(types.ComponentCandidate{})
	validationCheck(types.ValidationExceptionReasonFieldValidationFailed, "componentCandidates.1.member.componentName")(t, err)
}

func TestTags(t *testing.T) {
	e := newEnv(t)
	arn := e.create(recipe("com.example.T", "1.0.0"))
	if _, err := e.c.TagResource(e.ctx, &gg.TagResourceInput{ResourceArn: aws.String(arn),
		Tags: map[string]string{"a": "1", "b": "2"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.UntagResource(e.ctx, &gg.UntagResourceInput{ResourceArn: aws.String(arn),
		TagKeys: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	out, err := e.c.ListTagsForResource(e.ctx, &gg.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
	if err != nil || len(out.Tags) != 1 || out.Tags["b"] != "2" {
		t.Fatalf("tags %v %v", out, err)
	}
	missing := versionARN("com.example.T", "2.0.0")
	_, err = e.c.TagResource(e.ctx, &gg.TagResourceInput{ResourceArn: aws.String(missing), Tags: map[string]string{"a": "1"}})
	wantError[*types.ResourceNotFoundException](t, err, http.StatusNotFound)
	_, err = e.c.UntagResource(e.ctx, &gg.UntagResourceInput{ResourceArn: aws.String(missing), TagKeys: []string{"a"}})
	wantError[*types.ResourceNotFoundException](t, err, http.StatusNotFound)
	_, err = e.c.ListTagsForResource(e.ctx, &gg.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:iot:x:1:thing/a")})
	validationCheck(types.ValidationExceptionReasonFieldValidationFailed, "resourceArn")(t, err)
	many := map[string]string{}
	for i := 0; i < MaxTags; i++ {
		many[strings.Repeat("k", 1+i%100)+string(rune('a'+i/100))] = "v"
	}
	if _, err := e.c.TagResource(e.ctx, &gg.TagResourceInput{ResourceArn: aws.String(arn), Tags: many}); err == nil {
		t.Fatal("more than 200 tags accepted")
	} else {
		validationCheck(types.ValidationExceptionReasonFieldValidationFailed, "tags")(t, err)
	}
}

// The wire form the SDK does not show: 201 and 204, epoch-second timestamps, the error headers and members.
func TestWire(t *testing.T) {
	e := newEnv(t)
	body := `{"inlineRecipe": "` + b64(recipe("com.example.W", "1.0.0")) + `"}`
	resp := send(t, http.MethodPost, e.srv.URL+"/greengrass/v2/createComponentVersion", body)
	if resp.status != http.StatusCreated || !strings.Contains(resp.body, `"creationTimestamp":1779650815.241`) {
		t.Errorf("create: %d %s", resp.status, resp.body)
	}
	resp = send(t, http.MethodPost, e.srv.URL+"/greengrass/v2/createComponentVersion", body)
	if resp.status != http.StatusConflict || resp.header.Get("X-Amzn-ErrorType") != "ConflictException" ||
		!strings.Contains(resp.body, `"__type":"ConflictException"`) || !strings.Contains(resp.body, `"message":`) ||
		!strings.Contains(resp.body, `"resourceType":"componentVersion"`) {
		t.Errorf("conflict: %d %v %s", resp.status, resp.header, resp.body)
	}
	resp = send(t, http.MethodPost, e.srv.URL+"/greengrass/v2/createComponentVersion", `{"inlineRecipe": 3}`)
	if resp.status != http.StatusBadRequest || !strings.Contains(resp.body, `"reason":"FIELD_VALIDATION_FAILED"`) ||
		!strings.Contains(resp.body, `"fields":[{"name":"inlineRecipe"`) {
		t.Errorf("bad blob: %d %s", resp.status, resp.body)
	}
	resp = send(t, http.MethodPost, e.srv.URL+"/greengrass/v2/createComponentVersion", `{"inlineRecipe": `)
	if resp.status != http.StatusBadRequest || !strings.Contains(resp.body, `"reason":"CANNOT_PARSE"`) {
		t.Errorf("bad JSON: %d %s", resp.status, resp.body)
	}
	resp = send(t, http.MethodDelete, e.srv.URL+"/greengrass/v2/components/"+versionARN("com.example.W", "1.0.0"), "")
	if resp.status != http.StatusNoContent || resp.body != "" {
		t.Errorf("delete: %d %q", resp.status, resp.body)
	}
}

type response struct {
	status int
	header http.Header
	body   string
}

func send(t *testing.T, method, url, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, string(data)}
}
