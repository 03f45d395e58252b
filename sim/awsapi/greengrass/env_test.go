package greengrass

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	gg "github.com/aws/aws-sdk-go-v2/service/greengrass"
	"github.com/aws/aws-sdk-go-v2/service/greengrass/types"
	"github.com/aws/smithy-go"

	"github.com/fleetlab/fleetlab/sim/artifacts"
	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/awsapi/sdkhttp"
	"github.com/fleetlab/fleetlab/sim/clock/clocktest"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/store"
)

// env is the dialect on a memory store, an engine and a fake clock, behind the awsapi handler on a loopback
// test server, driven with the official SDK client. Cores are played by the engine's device-side methods.
type env struct {
	t       testing.TB
	clock   *clocktest.Fake
	store   store.Store
	engine  *engine.Engine
	svc     *Service
	handler *awsapi.Handler
	srv     *httptest.Server
	c       *gg.Client
	objects *objects
	ctx     context.Context
}

type objects struct {
	mu     sync.Mutex
	etags  map[string]string
	bodies map[string][]byte
}

func (o *objects) put(bucket, key string, body []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.bodies == nil {
		o.bodies = map[string][]byte{}
	}
	o.bodies[bucket+"/"+key] = body
	o.etags[bucket+"/"+key] = `"22222222222222222222222222222222"`
}

func (o *objects) Open(bucket, key string) (artifacts.Object, io.ReadSeekCloser, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	b, ok := o.bodies[bucket+"/"+key]
	if !ok {
		return artifacts.Object{}, nil, errors.New("NoSuchKey")
	}
	return artifacts.Object{Bucket: bucket, Key: key, Size: int64(len(b))}, nopCloser{bytes.NewReader(b)}, nil
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

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
	st := store.NewMemory()
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, clock: clocktest.New(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)), store: st,
		ctx: context.Background(), objects: &objects{etags: map[string]string{
			"models/model.tar.gz": `"11111111111111111111111111111111"`,
		}}}
	e.start()
	return e
}

// start builds the engine, the dialect and the server over the env's store, as a (re)started process does.
func (e *env) start() {
	e.t.Helper()
	eng, err := engine.New(engine.Options{Clock: e.clock, Store: e.store})
	if err != nil {
		e.t.Fatal(err)
	}
	svc, err := New(Options{Store: e.store, Clock: e.clock, Objects: e.objects, Engine: eng})
	if err != nil {
		e.t.Fatal(err)
	}
	h := awsapi.NewHandler(awsapi.Options{})
	if err := svc.Register(h); err != nil {
		e.t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	e.t.Cleanup(srv.Close)
	e.engine, e.svc, e.handler, e.srv = eng, svc, h, srv
	e.c = gg.New(gg.Options{BaseEndpoint: aws.String(srv.URL), HTTPClient: sdkhttp.Client(nil), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AK", "SK", ""), RetryMaxAttempts: 1})
}

func (e *env) restart() {
	e.t.Helper()
	e.srv.Close()
	e.start()
}

const (
	account = "123456789012"
	region  = "us-east-1"
)

func thingARN(name string) string { return "arn:aws:iot:" + region + ":" + account + ":thing/" + name }

const certARN = "arn:aws:iot:us-east-1:123456789012:cert/abcdef"

// coreVersion makes a core definition whose version's core is thing; it returns the version ARN.
func (e *env) coreVersion(thing string) string {
	e.t.Helper()
	out, err := e.c.CreateCoreDefinition(e.ctx, &gg.CreateCoreDefinitionInput{Name: aws.String("core-" + thing),
		InitialVersion: &types.CoreDefinitionVersion{Cores: []types.Core{{Id: aws.String("core"),
			ThingArn: aws.String(thingARN(thing)), CertificateArn: aws.String(certARN)}}}})
	if err != nil {
		e.t.Fatal(err)
	}
	return aws.ToString(out.LatestVersionArn)
}

// functionVersion makes a function definition with one function per executable.
func (e *env) functionVersion(executables ...string) string {
	e.t.Helper()
	var fs []types.Function
	for i, x := range executables {
		fs = append(fs, types.Function{Id: aws.String("f" + string(rune('0'+i))),
			FunctionArn: aws.String("arn:aws:lambda:us-east-1:123456789012:function:f:1"),
			FunctionConfiguration: &types.FunctionConfiguration{Executable: aws.String(x), Pinned: aws.Bool(true),
				Environment: &types.FunctionConfigurationEnvironment{Variables: map[string]string{"N": "1"}}}})
	}
	out, err := e.c.CreateFunctionDefinition(e.ctx, &gg.CreateFunctionDefinitionInput{
		InitialVersion: &types.FunctionDefinitionVersion{Functions: fs}})
	if err != nil {
		e.t.Fatal(err)
	}
	return aws.ToString(out.LatestVersionArn)
}

// group makes a group whose initial version has the core of thing (none when thing is "") and the functions.
func (e *env) group(thing string, executables ...string) (id, version string) {
	e.t.Helper()
	iv := &types.GroupVersion{}
	if thing != "" {
		iv.CoreDefinitionVersionArn = aws.String(e.coreVersion(thing))
	}
	if len(executables) > 0 {
		iv.FunctionDefinitionVersionArn = aws.String(e.functionVersion(executables...))
	}
	out, err := e.c.CreateGroup(e.ctx, &gg.CreateGroupInput{Name: aws.String("g-" + thing), InitialVersion: iv})
	if err != nil {
		e.t.Fatal(err)
	}
	return aws.ToString(out.Id), aws.ToString(out.LatestVersion)
}

func (e *env) deploy(gid, vid string) string {
	e.t.Helper()
	out, err := e.c.CreateDeployment(e.ctx, &gg.CreateDeploymentInput{GroupId: aws.String(gid),
		GroupVersionId: aws.String(vid), DeploymentType: types.DeploymentTypeNewDeployment})
	if err != nil {
		e.t.Fatal(err)
	}
	return aws.ToString(out.DeploymentId)
}

func (e *env) status(gid, did string) *gg.GetDeploymentStatusOutput {
	e.t.Helper()
	out, err := e.c.GetDeploymentStatus(e.ctx, &gg.GetDeploymentStatusInput{GroupId: aws.String(gid),
		DeploymentId: aws.String(did)})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// core plays thing's core: it takes its next deployment and ends it with status (and a failure code).
func (e *env) core(thing string, to engine.ExecStatus, code, reason string) string {
	e.t.Helper()
	x, ok, err := e.engine.StartNext(thing, engine.Update{})
	if err != nil || !ok {
		e.t.Fatalf("core %s: nothing to start (%v)", thing, err)
	}
	if to == engine.ExecInProgress {
		return x.Deployment
	}
	e.clock.Advance(3 * time.Second)
	u := engine.Update{Status: to}
	if code != "" {
		u.Details = map[string]string{"failureCode": code, "reason": reason}
		u.Reported = engine.StepReport{Code: code, Reason: reason}
	}
	if _, err := e.engine.Report(thing, x.Deployment, u); err != nil {
		e.t.Fatal(err)
	}
	return x.Deployment
}

// wantError checks that err is the API error code with the HTTP status, and returns it.
func wantError(t *testing.T, err error, code string, status int) smithy.APIError {
	t.Helper()
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != code {
		t.Fatalf("error %v (%T), want %s", err, err, code)
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != status {
		t.Fatalf("error %v: want status %d", err, status)
	}
	if api.ErrorMessage() == "" {
		t.Errorf("error %v has no message", err)
	}
	return api
}
