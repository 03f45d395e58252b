package iot

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"
	"github.com/aws/smithy-go"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/awsapi/sdkhttp"
	"github.com/fleetlab/fleetlab/sim/clock/clocktest"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/store"
)

// env is the IoT dialect on a store, a fake clock and an engine (whose deployments the tests create directly), behind the awsapi handler (which checks signatures) on a
// loopback test server, driven with the official SDK client.
type env struct {
	t     testing.TB
	clock *clocktest.Fake
	store store.Store
	svc   *Service
	eng   *engine.Engine
	h     *awsapi.Handler
	srv   *httptest.Server
	c     *iot.Client
	ctx   context.Context
}

// testAuth are the keys the env's handler accepts.
var testAuth = &awsapi.SigV4{Keys: map[string]string{"AK": "SK"}}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvOn(t, store.NewMemory())
}

// newEnvOn is newEnv over st, which it closes at cleanup.
func newEnvOn(t testing.TB, st store.Store) *env {
	t.Helper()
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, clock: clocktest.New(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)), store: st,
		ctx: context.Background()}
	e.start()
	return e
}

// start builds the service and the server over the env's store, as a (re)started process does.
func (e *env) start() {
	e.t.Helper()
	eng, err := engine.New(engine.Options{Clock: e.clock, Store: e.store})
	if err != nil {
		e.t.Fatal(err)
	}
	svc, err := New(Options{Store: e.store, Clock: e.clock, Engine: eng})
	if err != nil {
		e.t.Fatal(err)
	}
	h := awsapi.NewHandler(awsapi.Options{Auth: testAuth})
	if err := svc.Register(h); err != nil {
		e.t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	e.t.Cleanup(srv.Close)
	e.svc, e.eng, e.h, e.srv = svc, eng, h, srv
	e.c = iot.New(iot.Options{BaseEndpoint: aws.String(srv.URL), HTTPClient: sdkhttp.Client(nil), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AK", "SK", ""), RetryMaxAttempts: 1})
}

func (e *env) thing(name string, attrs map[string]string) *iot.CreateThingOutput {
	e.t.Helper()
	in := &iot.CreateThingInput{ThingName: aws.String(name)}
	if attrs != nil {
		in.AttributePayload = &types.AttributePayload{Attributes: attrs}
	}
	out, err := e.c.CreateThing(e.ctx, in)
	if err != nil {
		e.t.Fatalf("create thing %s: %v", name, err)
	}
	return out
}

func (e *env) group(name, parent string) *iot.CreateThingGroupOutput {
	e.t.Helper()
	in := &iot.CreateThingGroupInput{ThingGroupName: aws.String(name)}
	if parent != "" {
		in.ParentGroupName = aws.String(parent)
	}
	out, err := e.c.CreateThingGroup(e.ctx, in)
	if err != nil {
		e.t.Fatalf("create thing group %s: %v", name, err)
	}
	return out
}

func (e *env) add(group, thing string) {
	e.t.Helper()
	if _, err := e.c.AddThingToThingGroup(e.ctx, &iot.AddThingToThingGroupInput{ThingGroupName: aws.String(group),
		ThingName: aws.String(thing)}); err != nil {
		e.t.Fatalf("add %s to %s: %v", thing, group, err)
	}
}

// wantError fails unless err is the modeled error code with HTTP status, decoded by the SDK; it returns the
// error for further checks.
func wantError(t testing.TB, err error, code string, status int) smithy.APIError {
	t.Helper()
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != code {
		t.Fatalf("error %v, want %s", err, code)
	}
	var resp *awshttp.ResponseError
	if !errors.As(err, &resp) || resp.HTTPStatusCode() != status {
		t.Fatalf("%s: status %v, want %d", code, err, status)
	}
	return api
}
