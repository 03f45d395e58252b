package appconfig

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ac "github.com/aws/aws-sdk-go-v2/service/appconfig"
	act "github.com/aws/aws-sdk-go-v2/service/appconfig/types"
	acd "github.com/aws/aws-sdk-go-v2/service/appconfigdata"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/smithy-go"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/awsapi/sdkhttp"
	"github.com/fleetlab/fleetlab/sim/clock/clocktest"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/store"
)

// env is the dialect over an engine, a memory store and a fake clock, behind the awsapi handler on a loopback
// test server, driven with the official SDK clients.
type env struct {
	t     testing.TB
	clock *clocktest.Fake
	store store.Store
	eng   *engine.Engine
	svc   *Service
	srv   *httptest.Server
	c     *ac.Client
	data  *acd.Client
	cw    *cloudwatch.Client
	ctx   context.Context
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newEnv(t testing.TB, opts ...func(*Options)) *env {
	t.Helper()
	st := store.NewMemory()
	t.Cleanup(func() { st.Close() })
	return newEnvOn(t, st, clocktest.New(epoch), opts...)
}

// newEnvOn builds the engine, the dialect and the server over st and c, as a (re)started service does.
func newEnvOn(t testing.TB, st store.Store, c *clocktest.Fake, opts ...func(*Options)) *env {
	t.Helper()
	e := &env{t: t, clock: c, store: st, ctx: context.Background()}
	eng, err := engine.New(engine.Options{Clock: e.clock, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	e.eng = eng
	o := Options{Engine: eng, Store: st, Clock: e.clock, IDs: mustIDs(t)}
	for _, f := range opts {
		f(&o)
	}
	if e.svc, err = New(o); err != nil {
		t.Fatal(err)
	}
	h := awsapi.NewHandler(awsapi.Options{})
	if err := e.svc.Register(h); err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	creds := credentials.NewStaticCredentialsProvider("AK", "SK", "")
	e.c = ac.New(ac.Options{BaseEndpoint: aws.String(e.srv.URL), HTTPClient: sdkhttp.Client(nil), Region: "us-east-1", Credentials: creds,
		RetryMaxAttempts: 1})
	e.data = acd.New(acd.Options{BaseEndpoint: aws.String(e.srv.URL), HTTPClient: sdkhttp.Client(nil), Region: "us-east-1", Credentials: creds,
		RetryMaxAttempts: 1})
	e.cw = cloudwatch.New(cloudwatch.Options{BaseEndpoint: aws.String(e.srv.URL), HTTPClient: sdkhttp.Client(nil), Region: "us-east-1",
		Credentials: creds, RetryMaxAttempts: 1})
	return e
}

func mustIDs(t testing.TB) *awsapi.IDs {
	ids, err := awsapi.NewIDs(awsapi.NewSeededSource(7))
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// advance moves the clock by d, ticking the engine at every instant it asks for on the way, as Run does.
func (e *env) advance(d time.Duration) {
	e.t.Helper()
	until := e.clock.Now().Add(d)
	for {
		next := e.eng.Tick()
		if next.IsZero() || next.After(until) {
			break
		}
		if next.After(e.clock.Now()) {
			e.clock.Set(next)
		}
	}
	e.clock.Set(until)
	e.eng.Tick()
}

// world is an application with an environment (monitors given), a hosted profile (validators given) and its
// first version.
type world struct {
	app, env, prof string
}

func (e *env) world(monitors []act.Monitor, validators ...act.Validator) world {
	e.t.Helper()
	app, err := e.c.CreateApplication(e.ctx, &ac.CreateApplicationInput{Name: aws.String("shop")})
	if err != nil {
		e.t.Fatal(err)
	}
	en, err := e.c.CreateEnvironment(e.ctx, &ac.CreateEnvironmentInput{ApplicationId: app.Id,
		Name: aws.String("prod"), Monitors: monitors})
	if err != nil {
		e.t.Fatal(err)
	}
	p, err := e.c.CreateConfigurationProfile(e.ctx, &ac.CreateConfigurationProfileInput{ApplicationId: app.Id,
		Name: aws.String("settings"), LocationUri: aws.String("hosted"), Validators: validators})
	if err != nil {
		e.t.Fatal(err)
	}
	return world{aws.ToString(app.Id), aws.ToString(en.Id), aws.ToString(p.Id)}
}

// version adds a hosted version of content to the world's profile and returns its number.
func (e *env) version(w world, content string) int32 {
	e.t.Helper()
	out, err := e.c.CreateHostedConfigurationVersion(e.ctx, &ac.CreateHostedConfigurationVersionInput{
		ApplicationId: aws.String(w.app), ConfigurationProfileId: aws.String(w.prof), Content: []byte(content),
		ContentType: aws.String("application/json")})
	if err != nil {
		e.t.Fatal(err)
	}
	return out.VersionNumber
}

func (e *env) strategy(typ act.GrowthType, factor float32, minutes, bake int32) string {
	e.t.Helper()
	out, err := e.c.CreateDeploymentStrategy(e.ctx, &ac.CreateDeploymentStrategyInput{
		Name: aws.String("s"), DeploymentDurationInMinutes: aws.Int32(minutes), GrowthFactor: aws.Float32(factor),
		GrowthType: typ, FinalBakeTimeInMinutes: bake})
	if err != nil {
		e.t.Fatal(err)
	}
	return aws.ToString(out.Id)
}

func (e *env) start(w world, strategy string, version int32) *ac.StartDeploymentOutput {
	e.t.Helper()
	out, err := e.c.StartDeployment(e.ctx, &ac.StartDeploymentInput{ApplicationId: aws.String(w.app),
		EnvironmentId: aws.String(w.env), ConfigurationProfileId: aws.String(w.prof),
		DeploymentStrategyId: aws.String(strategy), ConfigurationVersion: aws.String(itoa(version))})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) deployment(w world, n int32) *ac.GetDeploymentOutput {
	e.t.Helper()
	out, err := e.c.GetDeployment(e.ctx, &ac.GetDeploymentInput{ApplicationId: aws.String(w.app),
		EnvironmentId: aws.String(w.env), DeploymentNumber: aws.Int32(n)})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func itoa(n int32) string {
	return string(appendInt(nil, int(n)))
}

func appendInt(b []byte, n int) []byte {
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

// wantError checks that err is the typed error T with the HTTP status and a message.
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

// raw sends a request without the SDK and returns the status and body.
func (e *env) raw(method, path, body string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

func stopIn(w world, n int32) *ac.StopDeploymentInput {
	return &ac.StopDeploymentInput{ApplicationId: aws.String(w.app), EnvironmentId: aws.String(w.env),
		DeploymentNumber: aws.Int32(n)}
}

func asError[T error](err error, target *T) bool { return errors.As(err, target) }
