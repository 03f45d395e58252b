package robomaker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/robomaker"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"
	"github.com/aws/smithy-go"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/awsapi/sdkhttp"
	"github.com/fleetlab/fleetlab/sim/clock/clocktest"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/store"
)

// env is a RoboMaker service on a memory store and a fake clock, behind the awsapi handler on a loopback test
// server, driven with the official SDK client. Robots are played by calling the engine's device-side methods.
type env struct {
	t       testing.TB
	clock   *clocktest.Fake
	store   store.Store
	engine  *engine.Engine
	svc     *Service
	srv     *httptest.Server
	c       *robomaker.Client
	objects *objects
	opts    Options
	ctx     context.Context
	direct  bool // the client calls the handler directly (handlerTransport), not over the test server
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

func (o *objects) put(bucket, key, etag string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.etags[bucket+"/"+key] = etag
}

func (o *objects) remove(bucket, key string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.etags, bucket+"/"+key)
}

func newEnv(t testing.TB, mods ...func(*Options)) *env {
	t.Helper()
	return newEnvOn(t, store.NewMemory(), mods...)
}

// newEnvOn is newEnv over st, which it closes at cleanup.
func newEnvOn(t testing.TB, st store.Store, mods ...func(*Options)) *env {
	return newEnvWith(t, st, false, mods...)
}

// newEnvWith is newEnvOn whose client calls the handler directly when direct.
func newEnvWith(t testing.TB, st store.Store, direct bool, mods ...func(*Options)) *env {
	t.Helper()
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, clock: clocktest.New(time.Time{}), store: st, ctx: context.Background(), direct: direct,
		objects: &objects{etags: map[string]string{
			"bundles/app-x86.tar":  `"11111111111111111111111111111111"`,
			"bundles/app-arm.tar":  `"22222222222222222222222222222222"`,
			"scripts/condition.sh": `"33333333333333333333333333333333"`,
		}}}
	e.opts = Options{Objects: e.objects}
	for _, m := range mods {
		m(&e.opts)
	}
	e.start()
	return e
}

// start builds the engine, the service and the server over the env's store, as a (re)started process does.
func (e *env) start() {
	e.t.Helper()
	eng, err := engine.New(engine.Options{Clock: e.clock, Store: e.store})
	if err != nil {
		e.t.Fatal(err)
	}
	opts := e.opts
	opts.Engine, opts.Store, opts.Clock = eng, e.store, e.clock
	svc, err := New(opts)
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
	e.c = robomaker.New(robomaker.Options{BaseEndpoint: aws.String(srv.URL), HTTPClient: sdkhttp.Client(nil), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AK", "SK", ""), RetryMaxAttempts: 1},
		func(o *robomaker.Options) {
			if e.direct {
				o.HTTPClient = &http.Client{Transport: handlerTransport{h}}
			}
		})
}

// handlerTransport serves a client's requests with a handler in the same goroutine, without a socket: for tests
// that make thousands of calls.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body == nil {
		req.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	return rec.Result(), nil
}

// restart drops the engine and the service and starts new ones over the same store.
func (e *env) restart() {
	e.t.Helper()
	e.srv.Close()
	e.start()
}

func (e *env) fleet(name string) string {
	e.t.Helper()
	out, err := e.c.CreateFleet(e.ctx, &robomaker.CreateFleetInput{Name: aws.String(name)})
	if err != nil {
		e.t.Fatal(err)
	}
	return aws.ToString(out.Arn)
}

func (e *env) robot(name string) string {
	e.t.Helper()
	out, err := e.c.CreateRobot(e.ctx, &robomaker.CreateRobotInput{Name: aws.String(name),
		Architecture: types.ArchitectureArm64, GreengrassGroupId: aws.String("gg-" + name)})
	if err != nil {
		e.t.Fatal(err)
	}
	return aws.ToString(out.Arn)
}

func (e *env) register(fleet, robot string) {
	e.t.Helper()
	if _, err := e.c.RegisterRobot(e.ctx, &robomaker.RegisterRobotInput{Fleet: aws.String(fleet),
		Robot: aws.String(robot)}); err != nil {
		e.t.Fatal(err)
	}
}

// fleetWith creates a fleet with n registered robots named <fleet>-r1….
func (e *env) fleetWith(name string, n int) (string, []string) {
	e.t.Helper()
	f := e.fleet(name)
	var robots []string
	for i := 1; i <= n; i++ {
		r := e.robot(fmt.Sprintf("%s-r%d", name, i))
		e.register(f, r)
		robots = append(robots, r)
	}
	return f, robots
}

func (e *env) app(name string) string {
	e.t.Helper()
	out, err := e.c.CreateRobotApplication(e.ctx, &robomaker.CreateRobotApplicationInput{
		Name:               aws.String(name),
		RobotSoftwareSuite: &types.RobotSoftwareSuite{Name: types.RobotSoftwareSuiteTypeRos2, Version: types.RobotSoftwareSuiteVersionTypeFoxy},
		Sources: []types.SourceConfig{
			{S3Bucket: aws.String("bundles"), S3Key: aws.String("app-x86.tar"), Architecture: types.ArchitectureX8664},
			{S3Bucket: aws.String("bundles"), S3Key: aws.String("app-arm.tar"), Architecture: types.ArchitectureArm64},
		},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return aws.ToString(out.Arn)
}

func (e *env) version(app string) string {
	e.t.Helper()
	out, err := e.c.CreateRobotApplicationVersion(e.ctx, &robomaker.CreateRobotApplicationVersionInput{
		Application: aws.String(app)})
	if err != nil {
		e.t.Fatal(err)
	}
	return aws.ToString(out.Version)
}

func appConfigs(app, version string) []types.DeploymentApplicationConfig {
	return []types.DeploymentApplicationConfig{{
		Application: aws.String(app), ApplicationVersion: aws.String(version),
		LaunchConfig: &types.DeploymentLaunchConfig{PackageName: aws.String("hello_pkg"),
			LaunchFile: aws.String("hello.launch"), PreLaunchFile: aws.String("pre.sh"),
			EnvironmentVariables: map[string]string{"ROS_DOMAIN_ID": "7"}},
	}}
}

func (e *env) job(fleet, app, version string, cfg *types.DeploymentConfig) *robomaker.CreateDeploymentJobOutput {
	e.t.Helper()
	out, err := e.c.CreateDeploymentJob(e.ctx, &robomaker.CreateDeploymentJobInput{Fleet: aws.String(fleet),
		DeploymentApplicationConfigs: appConfigs(app, version), DeploymentConfig: cfg})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) describe(job string) *robomaker.DescribeDeploymentJobOutput {
	e.t.Helper()
	out, err := e.c.DescribeDeploymentJob(e.ctx, &robomaker.DescribeDeploymentJobInput{Job: aws.String(job)})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) robotStatus(robot string) types.RobotStatus {
	e.t.Helper()
	out, err := e.c.DescribeRobot(e.ctx, &robomaker.DescribeRobotInput{Robot: aws.String(robot)})
	if err != nil {
		e.t.Fatal(err)
	}
	return out.Status
}

// name is a resource's name from its ARN (…/Name/stamp), or a job's id.
func name(arn string) string {
	parts := strings.Split(arn, "/")
	if len(parts) == 2 {
		return parts[1]
	}
	return parts[len(parts)-2]
}

// act plays a robot: it starts its next execution (when status is IN_PROGRESS and it has not started) or reports.
func (e *env) act(robotARN, jobARN string, status engine.ExecStatus, details map[string]string) {
	e.t.Helper()
	dev, id := name(robotARN), name(jobARN)
	x, err := e.engine.Execution(id, dev)
	if err != nil {
		e.t.Fatal(err)
	}
	if x.Status == engine.ExecQueued {
		if _, ok, err := e.engine.StartNext(dev, engine.Update{Details: details}); err != nil || !ok {
			e.t.Fatalf("%s start %s: %v %v", dev, id, ok, err)
		}
		if status == engine.ExecInProgress {
			return
		}
	}
	if _, err := e.engine.Report(dev, id, engine.Update{Status: status, Details: details}); err != nil {
		e.t.Fatalf("%s reports %s on %s: %v", dev, status, id, err)
	}
}

// succeed runs a robot's deployment to the end.
func (e *env) succeed(robotARN, jobARN string) {
	e.t.Helper()
	e.act(robotARN, jobARN, engine.ExecInProgress, map[string]string{wire.DetailStep: rmwire.StepValidating})
	e.act(robotARN, jobARN, engine.ExecSucceeded, map[string]string{wire.DetailStep: rmwire.StepFinished})
}

// expectError checks that err is the typed SDK error T with HTTP status 400 (or status), and that its message
// contains msg.
func expectError[T error](t *testing.T, err error, status int, msg string) {
	t.Helper()
	var target T
	if !errors.As(err, &target) {
		t.Fatalf("error = %v, want %T", err, target)
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != status {
		t.Fatalf("error = %v, want HTTP %d", err, status)
	}
	var api smithy.APIError
	if errors.As(err, &api) && !strings.Contains(api.ErrorMessage(), msg) {
		t.Fatalf("message %q does not contain %q", api.ErrorMessage(), msg)
	}
}

// readAll reads and closes a response body.
func readAll(resp *http.Response) string {
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return string(data)
}

// raw sends a request by hand, for inputs the SDK refuses to send.
func (e *env) raw(method, path, body string) (int, string, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), string(data)
}
