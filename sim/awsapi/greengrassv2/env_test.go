package greengrassv2

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	gg "github.com/aws/aws-sdk-go-v2/service/greengrassv2"
	"github.com/aws/smithy-go"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/awsapi/sdkhttp"
	"github.com/fleetlab/fleetlab/sim/clock/clocktest"
	"github.com/fleetlab/fleetlab/sim/store"
)

// env is the dialect on a store and a fake clock, behind the awsapi handler on a loopback test server, driven
// with the official SDK client.
type env struct {
	t       testing.TB
	clock   *clocktest.Fake
	store   store.Store
	objects *objects
	srv     *httptest.Server
	c       *gg.Client
	ctx     context.Context
}

// objects is an artifact store of ETags only.
type objects struct {
	mu    sync.Mutex
	etags map[string]string
}

func (o *objects) ETag(bucket, key string) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if e, ok := o.etags[bucket+"/"+key]; ok {
		return e, nil
	}
	return "", errors.New("NoSuchKey")
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvOn(t, store.NewMemory())
}

// newEnvOn is newEnv over st, which it closes at cleanup.
func newEnvOn(t testing.TB, st store.Store) *env {
	t.Helper()
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, clock: clocktest.New(time.Date(2026, 5, 24, 19, 26, 55, 241e6, time.UTC)), store: st,
		ctx: context.Background(), objects: &objects{etags: map[string]string{
			"artifacts/hello/1.0.0/hello.py": `"11111111111111111111111111111111"`,
			"artifacts/hello/2.0.0/hello.py": `"22222222222222222222222222222222"`,
		}}}
	e.start()
	return e
}

// start builds the dialect and the server over the env's store, as a (re)started process does.
func (e *env) start() {
	e.t.Helper()
	svc, err := New(Options{Store: e.store, Clock: e.clock, Objects: e.objects})
	if err != nil {
		e.t.Fatal(err)
	}
	h := awsapi.NewHandler(awsapi.Options{})
	if err := svc.Register(h); err != nil {
		e.t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	e.t.Cleanup(srv.Close)
	e.srv = srv
	e.c = gg.New(gg.Options{BaseEndpoint: aws.String(srv.URL), HTTPClient: sdkhttp.Client(nil), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AK", "SK", ""), RetryMaxAttempts: 1})
}

// restart closes the server and builds a new one over the same store.
func (e *env) restart() {
	e.t.Helper()
	e.srv.Close()
	e.start()
}

// recipe returns a JSON recipe of name and version with one s3 artifact per key given.
func recipe(name, version string, keys ...string) []byte {
	var arts []string
	for _, k := range keys {
		arts = append(arts, fmt.Sprintf(`{"URI": "s3://artifacts/%s"}`, k))
	}
	return []byte(fmt.Sprintf(`{
  "RecipeFormatVersion": "2020-01-25",
  "ComponentName": %q,
  "ComponentVersion": %q,
  "ComponentDescription": "Says hello.",
  "ComponentPublisher": "Fleetlab",
  "ComponentConfiguration": {"DefaultConfiguration": {"Message": "world"}},
  "Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": {"run": "python3 -u {artifacts:path}/hello.py"},
    "Artifacts": [%s]}]
}`, name, version, strings.Join(arts, ", ")))
}

// create makes a component version and returns its ARN.
func (e *env) create(data []byte) string {
	e.t.Helper()
	out, err := e.c.CreateComponentVersion(e.ctx, &gg.CreateComponentVersionInput{InlineRecipe: data})
	if err != nil {
		e.t.Fatal(err)
	}
	return aws.ToString(out.Arn)
}

const (
	account = "123456789012"
	region  = "us-east-1"
)

func componentARN(name string) string {
	return "arn:aws:greengrass:" + region + ":" + account + ":components:" + name
}

func versionARN(name, version string) string { return componentARN(name) + ":versions:" + version }

// wantError checks that err is the typed error T with the HTTP status.
func wantError[T error](t *testing.T, err error, status int) T {
	t.Helper()
	var typed T
	if !errors.As(err, &typed) {
		t.Fatalf("error %v (%T), want a %T", err, err, typed)
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != status {
		t.Fatalf("error %v: status want %d", err, status)
	}
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorMessage() == "" {
		t.Errorf("error %v has no message", err)
	}
	return typed
}
