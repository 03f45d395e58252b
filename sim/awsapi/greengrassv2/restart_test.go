package greengrassv2

import (
	"encoding/base64"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	gg "github.com/aws/aws-sdk-go-v2/service/greengrassv2"

	"github.com/fleetlab/fleetlab/sim/store"
)

func b64(data []byte) string { return base64.StdEncoding.EncodeToString(data) }

// A restarted service has every component version, its tags and the idempotency tokens.
func TestRestartLosesNothing(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "gg.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvOn(t, st)
	in := &gg.CreateComponentVersionInput{InlineRecipe: recipe("com.example.R", "1.0.0", "hello/1.0.0/hello.py"),
		ClientToken: aws.String("tok"), Tags: map[string]string{"run": "7"}}
	first, err := e.c.CreateComponentVersion(e.ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	e.create(recipe("com.example.R", "2.0.0"))

	e.restart()

	d, err := e.c.DescribeComponent(e.ctx, &gg.DescribeComponentInput{Arn: first.Arn})
	if err != nil || d.Tags["run"] != "7" || !d.CreationTimestamp.Equal(*first.CreationTimestamp) {
		t.Fatalf("after restart: %+v %v", d, err)
	}
	again, err := e.c.CreateComponentVersion(e.ctx, in)
	if err != nil || aws.ToString(again.Arn) != aws.ToString(first.Arn) {
		t.Fatalf("the token after restart: %+v %v", again, err)
	}
	vs, err := e.c.ListComponentVersions(e.ctx, &gg.ListComponentVersionsInput{Arn: aws.String(componentARN("com.example.R"))})
	if err != nil || len(vs.ComponentVersions) != 2 {
		t.Fatalf("versions after restart: %+v %v", vs, err)
	}
	g, err := e.c.GetComponent(e.ctx, &gg.GetComponentInput{Arn: first.Arn})
	if err != nil || len(g.Recipe) == 0 {
		t.Fatalf("recipe after restart: %v", err)
	}
}
