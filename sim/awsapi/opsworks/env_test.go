package opsworks

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ow "github.com/aws/aws-sdk-go-v2/service/opsworks"
	"github.com/aws/aws-sdk-go-v2/service/opsworks/types"
	"github.com/aws/smithy-go"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/awsapi/sdkhttp"
	"github.com/fleetlab/fleetlab/sim/clock/clocktest"
	owwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/opsworks"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/store"
)

type env struct {
	t      testing.TB
	clock  *clocktest.Fake
	store  store.Store
	engine *engine.Engine
	svc    *Service
	srv    *httptest.Server
	c      *ow.Client
	ctx    context.Context
}

type objects struct{ mu sync.Mutex }

func (o *objects) ETag(bucket, key string) (string, error) {
	if bucket == "apps" || bucket == "cookbooks" {
		return `"` + strings.Repeat("1", 32) + `"`, nil
	}
	return "", errors.New("NoSuchKey")
}

func newEnv(t testing.TB) *env {
	t.Helper()
	st := store.NewMemory()
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, clock: clocktest.New(time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)), store: st, ctx: context.Background()}
	e.start()
	return e
}

func (e *env) start() {
	eng, err := engine.New(engine.Options{Clock: e.clock, Store: e.store})
	if err != nil {
		e.t.Fatal(err)
	}
	svc, err := New(Options{Store: e.store, Clock: e.clock, Objects: &objects{}, Engine: eng})
	if err != nil {
		e.t.Fatal(err)
	}
	h := awsapi.NewHandler(awsapi.Options{})
	if err := svc.Register(h); err != nil {
		e.t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	e.t.Cleanup(srv.Close)
	e.engine, e.svc, e.srv = eng, svc, srv
	e.c = ow.New(ow.Options{BaseEndpoint: aws.String(srv.URL), HTTPClient: sdkhttp.Client(nil), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AK", "SK", ""), RetryMaxAttempts: 1})
}

func (e *env) restart() {
	e.srv.Close()
	e.start()
}

const (
	serviceRole = "arn:aws:iam::123456789012:role/aws-opsworks-service-role"
	profile     = "arn:aws:iam::123456789012:instance-profile/aws-opsworks-ec2-role"
)

// stack makes a stack with custom cookbooks, a custom layer with recipes, an app, and the instances named
// (registered boards, online).
func (e *env) stack(hosts ...string) (stackID, layerID, appID string, instances []string) {
	e.t.Helper()
	st, err := e.c.CreateStack(e.ctx, &ow.CreateStackInput{Name: aws.String("lab"), Region: aws.String("us-east-1"),
		ServiceRoleArn: aws.String(serviceRole), DefaultInstanceProfileArn: aws.String(profile),
		UseCustomCookbooks: aws.Bool(true), CustomCookbooksSource: &types.Source{Type: types.SourceTypeS3,
			Url: aws.String("https://s3.amazonaws.com/cookbooks/cb.tar.gz")}})
	if err != nil {
		e.t.Fatal(err)
	}
	ly, err := e.c.CreateLayer(e.ctx, &ow.CreateLayerInput{StackId: st.StackId, Type: types.LayerTypeCustom,
		Name: aws.String("Boards"), Shortname: aws.String("boards"),
		CustomRecipes: &types.Recipes{Setup: []string{"base::setup"}, Deploy: []string{"app::deploy"}}})
	if err != nil {
		e.t.Fatal(err)
	}
	ap, err := e.c.CreateApp(e.ctx, &ow.CreateAppInput{StackId: st.StackId, Name: aws.String("Hello App"),
		Type: types.AppTypeOther, AppSource: &types.Source{Type: types.SourceTypeS3, Url: aws.String("s3://apps/hello.tar.gz")},
		Environment: []types.EnvironmentVariable{{Key: aws.String("GREETING"), Value: aws.String("hi")}}})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, h := range hosts {
		in, err := e.c.RegisterInstance(e.ctx, &ow.RegisterInstanceInput{StackId: st.StackId, Hostname: aws.String(h)})
		if err != nil {
			e.t.Fatal(err)
		}
		if _, err := e.c.AssignInstance(e.ctx, &ow.AssignInstanceInput{InstanceId: in.InstanceId, LayerIds: []string{aws.ToString(ly.LayerId)}}); err != nil {
			e.t.Fatal(err)
		}
		instances = append(instances, aws.ToString(in.InstanceId))
	}
	return aws.ToString(st.StackId), aws.ToString(ly.LayerId), aws.ToString(ap.AppId), instances
}

// run plays host's agent: it takes its next command and ends it with status and an exit code.
func (e *env) run(host string, to engine.ExecStatus, exit int, log string) {
	e.t.Helper()
	x, ok, err := e.engine.StartNext(host, engine.Update{})
	if err != nil || !ok {
		e.t.Fatalf("%s: nothing to start (%v)", host, err)
	}
	e.clock.Advance(15 * time.Second)
	d := map[string]string{owwire.DetailExitCode: strconv.Itoa(exit), owwire.DetailLog: base64.StdEncoding.EncodeToString([]byte(log))}
	if _, err := e.engine.Report(host, x.Deployment, engine.Update{Status: to, Details: d}); err != nil {
		e.t.Fatal(err)
	}
}

func wantError(t *testing.T, err error, code string) {
	t.Helper()
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != code {
		t.Fatalf("error %v (%T), want %s", err, err, code)
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != 400 {
		t.Fatalf("error %v: want status 400", err)
	}
	if api.ErrorMessage() == "" {
		t.Errorf("error %v has no message", err)
	}
}
