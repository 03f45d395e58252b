package greengrassv2_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	gg "github.com/aws/aws-sdk-go-v2/service/greengrassv2"
	rm "github.com/aws/aws-sdk-go-v2/service/robomaker"

	"github.com/fleetlab/fleetlab/sim/awsapi/greengrassv2"
	"github.com/fleetlab/fleetlab/sim/awsapi/sdkhttp"
	"github.com/fleetlab/fleetlab/sim/service"
)

// In the whole service, beside RoboMaker on the same endpoint: a recipe's artifact is checked in the service's
// artifact store, its URL downloads it from the same endpoint, and /tags/{arn} reaches each dialect's tags.
func TestInTheService(t *testing.T) {
	svc, err := service.New(service.Options{Dir: t.TempDir(), InMemoryStore: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	if d, ok := svc.Dialect(greengrassv2.Kind); !ok || d.Name() != greengrassv2.Kind {
		t.Fatalf("dialect %s: %v %v", greengrassv2.Kind, d, ok)
	}
	if err := svc.Start("127.0.0.1:0", ""); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	creds := credentials.NewStaticCredentialsProvider("AK", "SK", "")
	c := gg.New(gg.Options{BaseEndpoint: aws.String(svc.Endpoint()), HTTPClient: sdkhttp.Client(nil), Region: "us-east-1", Credentials: creds,
		RetryMaxAttempts: 1})
	r := rm.New(rm.Options{BaseEndpoint: aws.String(svc.Endpoint()), HTTPClient: sdkhttp.Client(nil), Region: "us-east-1", Credentials: creds,
		RetryMaxAttempts: 1})

	recipe := []byte(`{"RecipeFormatVersion": "2020-01-25", "ComponentName": "com.example.S",
		"ComponentVersion": "1.0.0", "Manifests": [{"Artifacts": [{"URI": "s3://comps/s/hello.py"}]}]}`)
	if _, err := c.CreateComponentVersion(ctx, &gg.CreateComponentVersionInput{InlineRecipe: recipe}); err == nil {
		t.Fatal("a recipe whose artifact is not in the store was accepted")
	}
	if err := svc.Artifacts.CreateBucket("comps"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Artifacts.Put("comps", "s/hello.py", strings.NewReader("print('hello')\n")); err != nil {
		t.Fatal(err)
	}
	out, err := c.CreateComponentVersion(ctx, &gg.CreateComponentVersionInput{InlineRecipe: recipe,
		Tags: map[string]string{"d": "gg"}})
	if err != nil {
		t.Fatal(err)
	}
	art, err := c.GetComponentVersionArtifact(ctx, &gg.GetComponentVersionArtifactInput{Arn: out.Arn,
		ArtifactName: aws.String("hello.py")})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(aws.ToString(art.PreSignedUrl))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "print('hello')\n" {
		t.Fatalf("GET %s: %d %q", aws.ToString(art.PreSignedUrl), resp.StatusCode, body)
	}

	fleet, err := r.CreateFleet(ctx, &rm.CreateFleetInput{Name: aws.String("f"), Tags: map[string]string{"d": "rm"}})
	if err != nil {
		t.Fatal(err)
	}
	ggTags, err := c.ListTagsForResource(ctx, &gg.ListTagsForResourceInput{ResourceArn: out.Arn})
	if err != nil || ggTags.Tags["d"] != "gg" {
		t.Fatalf("greengrass tags %v %v", ggTags, err)
	}
	rmTags, err := r.ListTagsForResource(ctx, &rm.ListTagsForResourceInput{ResourceArn: fleet.Arn})
	if err != nil || rmTags.Tags["d"] != "rm" {
		t.Fatalf("robomaker tags %v %v", rmTags, err)
	}
}
