package robomaker

import (
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/robomaker"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/awsapi/model"
)

func TestTags(t *testing.T) {
	e := newEnv(t)
	f, robots := e.fleetWith("lab", 1)
	app := e.app("hello")
	job := aws.ToString(e.job(f, app, e.version(app), nil).Arn)
	for _, arn := range []string{f, robots[0], app, job} {
		if _, err := e.c.TagResource(e.ctx, &robomaker.TagResourceInput{ResourceArn: aws.String(arn),
			Tags: map[string]string{"a": "1", "b": "2"}}); err != nil {
			t.Fatalf("tag %s: %v", arn, err)
		}
		if _, err := e.c.TagResource(e.ctx, &robomaker.TagResourceInput{ResourceArn: aws.String(arn),
			Tags: map[string]string{"b": "3", "c": ""}}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.c.UntagResource(e.ctx, &robomaker.UntagResourceInput{ResourceArn: aws.String(arn),
			TagKeys: []string{"a", "missing"}}); err != nil {
			t.Fatal(err)
		}
		out, err := e.c.ListTagsForResource(e.ctx, &robomaker.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
		if err != nil || len(out.Tags) != 2 || out.Tags["b"] != "3" || out.Tags["c"] != "" {
			t.Fatalf("tags of %s = %v, %v", arn, out.Tags, err)
		}
	}
	d, _ := e.c.DescribeFleet(e.ctx, &robomaker.DescribeFleetInput{Fleet: aws.String(f)})
	if d.Tags["b"] != "3" {
		t.Errorf("DescribeFleet tags = %v", d.Tags)
	}
	if dj := e.describe(job); dj.Tags["b"] != "3" {
		t.Errorf("DescribeDeploymentJob tags = %v", dj.Tags)
	}
	empty, err := e.c.ListTagsForResource(e.ctx, &robomaker.ListTagsForResourceInput{ResourceArn: aws.String(e.fleet("bare"))})
	if err != nil || empty.Tags == nil || len(empty.Tags) != 0 {
		t.Errorf("untagged resource = %v, %v", empty.Tags, err)
	}

	for _, arn := range []string{f + "9", "arn:aws:robomaker:eu-west-1:123456789012:deployment-fleet/lab/1",
		"arn:aws:s3:::bucket"} {
		_, err := e.c.TagResource(e.ctx, &robomaker.TagResourceInput{ResourceArn: aws.String(arn), Tags: map[string]string{"a": "1"}})
		expectError[*types.ResourceNotFoundException](t, err, 400, "does not exist")
	}
	many := map[string]string{}
	for i := range 49 {
		many[fmt.Sprintf("k%d", i)] = "v"
	}
	_, err = e.c.TagResource(e.ctx, &robomaker.TagResourceInput{ResourceArn: aws.String(f), Tags: many})
	expectError[*types.InvalidParameterException](t, err, 400, "at most 50 tags")
	_, err = e.c.TagResource(e.ctx, &robomaker.TagResourceInput{ResourceArn: aws.String(f),
		Tags: map[string]string{"k": strings.Repeat("v", 257)}})
	expectError[*types.InvalidParameterException](t, err, 400, "Map value must satisfy constraint: [Member must have length less than or equal to 256]")
	_, err = e.c.UntagResource(e.ctx, &robomaker.UntagResourceInput{ResourceArn: aws.String(f), TagKeys: []string{""}})
	expectError[*types.InvalidParameterException](t, err, 400, "at 'tagKeys.1.member'")
}

// otherTagsModel is a service that shares /tags/{arn} with RoboMaker, as Greengrass and AppConfig do.
const otherTagsModel = `{
 "metadata": {"protocol": "rest-json", "endpointPrefix": "greengrass", "apiVersion": "2020-11-30"},
 "operations": {"ListTagsForResource": {"name": "ListTagsForResource", "http": {"method": "GET", "requestUri": "/tags/{resourceArn}"},
   "input": {"shape": "In"}}},
 "shapes": {"In": {"type": "structure", "required": ["resourceArn"], "members": {
   "resourceArn": {"shape": "S", "location": "uri", "locationName": "resourceArn"}}}, "S": {"type": "string"}}
}`

func TestUnsignedTagsRoutedByARN(t *testing.T) {
	e := newEnv(t)
	f := e.fleet("lab")
	if _, err := e.c.TagResource(e.ctx, &robomaker.TagResourceInput{ResourceArn: aws.String(f),
		Tags: map[string]string{"owner": "lab"}}); err != nil {
		t.Fatal(err)
	}
	// One listener with RoboMaker registered after another service that serves the same path.
	h := awsapi.NewHandler(awsapi.Options{})
	m, err := model.Load([]byte(otherTagsModel))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Register(awsapi.Service{Model: m, Invalid: func(msg string) *awsapi.Error { return invalidParameter("%s", msg) }}, map[string]awsapi.Operation{
		"ListTagsForResource": {Handle: func(*awsapi.Request) (any, error) {
			return map[string]any{"tags": map[string]string{"served-by": "greengrass"}}, nil
		}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Register(h); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	for arn, want := range map[string]string{
		f: `{"tags":{"owner":"lab"}}`,
		"arn:aws:greengrass:us-east-1:123456789012:/greengrass/groups/g1": `{"tags":{"served-by":"greengrass"}}`,
	} {
		resp, err := srv.Client().Get(srv.URL + "/tags/" + url.PathEscape(arn))
		if err != nil {
			t.Fatal(err)
		}
		if body := readAll(resp); resp.StatusCode != 200 || body != want {
			t.Errorf("unsigned GET /tags/%s = %d %s, want %s", arn, resp.StatusCode, body, want)
		}
	}
}
