// Package robomaker is the harness's RoboMaker dialect: its Driver registers an environment's devices as robots
// of one RoboMaker fleet, deploys robot application versions to it with deployment jobs, and names RoboMaker's
// statuses and steps with the SDK's own enum types. Scenarios reach the RoboMaker-only parts of an environment
// — the SDK client, the fleet's ARN, applications, SyncDeploymentJob — through Of(env).
package robomaker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/robomaker"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness/dialect"
	"github.com/fleetlab/fleetlab/harness/faults"
	agentrm "github.com/fleetlab/fleetlab/sim/agent/robomaker"
	"github.com/fleetlab/fleetlab/sim/awsapi/sdkhttp"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// Name is the dialect's name in specs.
const Name = "robomaker"

// FleetName is the RoboMaker fleet an environment registers its robots with.
const FleetName = "fleetlab"

// RoboMaker job statuses (DeploymentStatus) and robot statuses (RobotStatus), as matchers and specs compare them.
const (
	JobPending    = string(types.DeploymentStatusPending)
	JobPreparing  = string(types.DeploymentStatusPreparing)
	JobInProgress = string(types.DeploymentStatusInProgress)
	JobSucceeded  = string(types.DeploymentStatusSucceeded)
	JobFailed     = string(types.DeploymentStatusFailed)
	JobCanceled   = string(types.DeploymentStatusCanceled)

	RobotPending    = string(types.RobotStatusPendingNewDeployment)
	RobotDeploying  = string(types.RobotStatusDeploying)
	RobotInSync     = string(types.RobotStatusInSync)
	RobotFailed     = string(types.RobotStatusFailed)
	RobotNoResponse = string(types.RobotStatusNoResponse)
)

// Driver is the RoboMaker dialect. The zero value is ready to use.
type Driver struct{}

var _ dialect.Driver = Driver{}

// Name implements dialect.Driver.
func (Driver) Name() string { return Name }

// Steps implements dialect.Driver: RoboMaker's robot deployment steps, in order.
func (Driver) Steps() faults.Dialect {
	var steps []string
	for _, s := range []types.RobotDeploymentStep{types.RobotDeploymentStepValidatingStep,
		types.RobotDeploymentStepDownloadingExtractingStep, types.RobotDeploymentStepExecutingDownloadCondition,
		types.RobotDeploymentStepPreLaunchStep, types.RobotDeploymentStepLaunchingStep,
		types.RobotDeploymentStepPostLaunchStep, types.RobotDeploymentStepFinishedStep} {
		steps = append(steps, string(s))
	}
	return faults.Dialect{Name: "RoboMaker", Steps: steps,
		Download: string(types.RobotDeploymentStepDownloadingExtractingStep),
		Scripts: map[string]string{
			faults.ScriptDownloadCondition: string(types.RobotDeploymentStepExecutingDownloadCondition),
			faults.ScriptPreLaunch:         string(types.RobotDeploymentStepPreLaunchStep),
			faults.ScriptPostLaunch:        string(types.RobotDeploymentStepPostLaunchStep),
		}}
}

// Statuses implements dialect.Driver.
func (Driver) Statuses() dialect.Statuses {
	return dialect.Statuses{Final: []string{JobSucceeded, JobFailed, JobCanceled}, Failed: JobFailed,
		Device:       []string{RobotInSync, RobotFailed, RobotNoResponse, RobotDeploying, RobotPending},
		DeviceFailed: []string{RobotFailed, RobotNoResponse}}
}

// CheckJob implements dialect.Driver with the limits of CreateDeploymentJob.
func (Driver) CheckJob(j dialect.JobSpec) []dialect.Problem {
	var ps []dialect.Problem
	bad := func(path, format string, args ...any) {
		ps = append(ps, dialect.Problem{Path: path, Err: fmt.Errorf(format, args...)})
	}
	for i, a := range j.Architectures {
		if err := fleet.CheckArchitecture(a); err != nil {
			bad(fmt.Sprintf("job.architectures[%d]", i), "job: %v", err)
		}
	}
	if c := j.Concurrency; c < 0 || c > 100 {
		bad("job.concurrency", "job: concurrency %d outside 1-100", c)
	}
	if c := j.FailureThreshold; c < 0 || c > 100 {
		bad("job.failureThreshold", "job: failureThreshold %d outside 1-100", c)
	}
	if t := j.Timeout.D(); t != 0 && t < time.Minute {
		bad("job.timeout", "job: timeout %v is below RoboMaker's minimum of one minute", t)
	}
	return ps
}

// Config implements dialect.Driver: the job's Deployment.
func (Driver) Config(j dialect.JobSpec) any {
	return Deployment{Concurrency: j.Concurrency, FailureThreshold: j.FailureThreshold, Timeout: j.Timeout.D(),
		DownloadCondition: j.DownloadCondition}
}

// Open implements dialect.Driver.
func (Driver) Open(h dialect.Host) (dialect.Session, error) {
	return &Session{h: h, rm: client(h.Endpoint(), h.Transport()), out: client(h.Endpoint(), h.PublicTransport())}, nil
}

// client returns a RoboMaker client of the service at endpoint over rt, retries off.
func client(endpoint string, rt http.RoundTripper) *robomaker.Client {
	return robomaker.New(robomaker.Options{BaseEndpoint: aws.String(endpoint), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("fleetlab", "fleetlab", ""), RetryMaxAttempts: 1,
		HTTPClient: sdkhttp.Client(rt)})
}

// Deployment is a RoboMaker deployment job's configuration. The zero value is RoboMaker's defaults: every robot
// at once, no failure threshold, a five-hour robot timeout, no download condition, the fixtures' launch config.
type Deployment struct {
	// Concurrency is concurrentDeploymentPercentage, 1-100.
	Concurrency int32
	// FailureThreshold is failureThresholdPercentage, 1-100.
	FailureThreshold int32
	// Timeout is robotDeploymentTimeoutInSeconds, in policy time (at least a minute).
	Timeout time.Duration
	// DownloadCondition names a fixtures/bundles script run before the download.
	DownloadCondition string
	// Token is the clientRequestToken; empty lets the SDK make one.
	Token string
	// Launch replaces the fixtures' launch config.
	Launch *types.DeploymentLaunchConfig
}

// Launch is the launch config every fixture bundle is laid out for.
func Launch() *types.DeploymentLaunchConfig {
	return &types.DeploymentLaunchConfig{PackageName: aws.String(bundles.Package),
		LaunchFile: aws.String(bundles.LaunchFile), PreLaunchFile: aws.String(bundles.PreLaunchFile),
		PostLaunchFile: aws.String(bundles.PostLaunchFile)}
}

// App is a robot application version created from a fixture bundle.
type App struct {
	Name, ARN, Version string
	// Bundle is the object its sources point at.
	Bundle dialect.Object
}

// Session is the RoboMaker dialect in one environment: its SDK clients, its fleet and its applications.
type Session struct {
	h        dialect.Host
	rm       *robomaker.Client // the session's own, used from within the world on virtual time
	out      *robomaker.Client // what Client hands out, for calls from anywhere
	fleetARN string
	apps     int // applications made, for their names; only from within Host.Do
}

var (
	_ dialect.Session        = (*Session)(nil)
	_ dialect.BulkRegisterer = (*Session)(nil)
)

// Of returns the RoboMaker session of an environment (a *harness.Env). An environment of another dialect is a
// mistake of the test's code: Of panics naming it.
func Of(env interface{ Session() dialect.Session }) *Session {
	s, ok := env.Session().(*Session)
	if !ok {
		panic(fmt.Sprintf("robomaker.Of: the environment runs another dialect (%T)", env.Session()))
	}
	return s
}

// Client returns the RoboMaker client (AWS SDK for Go v2, retries off) pointed at the service.
func (s *Session) Client() *robomaker.Client { return s.out }

// FleetARN returns the ARN of the RoboMaker fleet the robots are registered with.
func (s *Session) FleetARN() string { return s.fleetARN }

// Register implements dialect.Session: devs become robots of the fleet FleetName (see the function Register).
func (s *Session) Register(ctx context.Context, devs []fleet.Device) error {
	arn, err := Register(ctx, s.rm, FleetName, devs, s.h.Clock())
	if err != nil {
		return err
	}
	s.fleetARN = arn
	return nil
}

// Deploy implements dialect.Session: config is a Deployment, or nil for RoboMaker's defaults.
func (s *Session) Deploy(_ context.Context, bundle string, archs []string, config any) (string, error) {
	var d Deployment
	switch c := config.(type) {
	case nil:
	case Deployment:
		d = c
	case *Deployment:
		d = *c
	default:
		return "", fmt.Errorf("robomaker: deployment config %T: want a robomaker.Deployment", config)
	}
	return s.StartJob(s.CreateApplication(bundle, archs...), d)
}

// CreateApplication stores the fixture bundle and creates a robot application from it, with one source per
// architecture, by its GOARCH name (amd64 when none is given; RoboMaker's X86_64, ARM64 or ARMHF in the
// source), and its version 1.
func (s *Session) CreateApplication(bundle string, archs ...string) (app App) {
	s.h.Do(func() { app = s.createApplication(bundle, archs) })
	return app
}

func (s *Session) createApplication(bundle string, archs []string) App {
	obj := s.h.PutBundle(bundle)
	if len(archs) == 0 {
		archs = []string{fleet.ArchAMD64}
	}
	var sources []types.SourceConfig
	for _, a := range archs {
		rm, err := agentrm.Architecture(a)
		if err != nil {
			s.h.Fatalf("create robot application of %s: %v", bundle, err)
		}
		sources = append(sources, types.SourceConfig{S3Bucket: aws.String(obj.Bucket), S3Key: aws.String(obj.Key),
			Architecture: types.Architecture(rm)})
	}
	s.apps++
	name := fmt.Sprintf("%s-%d", bundle, s.apps)
	ctx, cancel := s.h.CallContext()
	defer cancel()
	app, err := s.rm.CreateRobotApplication(ctx, &robomaker.CreateRobotApplicationInput{Name: aws.String(name),
		RobotSoftwareSuite: &types.RobotSoftwareSuite{Name: types.RobotSoftwareSuiteTypeGeneral}, Sources: sources})
	if err != nil {
		s.h.InfraFatalf("create robot application %s: %v", name, err)
	}
	v, err := s.rm.CreateRobotApplicationVersion(ctx, &robomaker.CreateRobotApplicationVersionInput{Application: app.Arn})
	if err != nil {
		s.h.InfraFatalf("create robot application version of %s: %v", name, err)
	}
	return App{Name: name, ARN: aws.ToString(app.Arn), Version: aws.ToString(v.Version), Bundle: obj}
}

// JobInput returns the CreateDeploymentJob request for app on the environment's fleet with d.
func (s *Session) JobInput(app App, d Deployment) (in *robomaker.CreateDeploymentJobInput) {
	s.h.Do(func() { in = s.jobInput(app, d) })
	return in
}

func (s *Session) jobInput(app App, d Deployment) *robomaker.CreateDeploymentJobInput {
	cfg := &types.DeploymentConfig{}
	if d.Concurrency != 0 {
		cfg.ConcurrentDeploymentPercentage = aws.Int32(d.Concurrency)
	}
	if d.FailureThreshold != 0 {
		cfg.FailureThresholdPercentage = aws.Int32(d.FailureThreshold)
	}
	if d.Timeout != 0 {
		cfg.RobotDeploymentTimeoutInSeconds = aws.Int64(int64(d.Timeout / time.Second))
	}
	if d.DownloadCondition != "" {
		obj := s.h.PutScript(d.DownloadCondition)
		cfg.DownloadConditionFile = &types.S3Object{Bucket: aws.String(obj.Bucket), Key: aws.String(obj.Key)}
	}
	launch := d.Launch
	if launch == nil {
		launch = Launch()
	}
	in := &robomaker.CreateDeploymentJobInput{Fleet: aws.String(s.fleetARN), DeploymentConfig: cfg,
		DeploymentApplicationConfigs: []types.DeploymentApplicationConfig{{Application: aws.String(app.ARN),
			ApplicationVersion: aws.String(app.Version), LaunchConfig: launch}}}
	if d.Token != "" {
		in.ClientRequestToken = aws.String(d.Token)
	}
	return in
}

// StartJob creates a deployment job of app on the environment's fleet and returns its ARN, or the service's
// error (a test of ConcurrentDeploymentException wants it).
func (s *Session) StartJob(app App, d Deployment) (job string, err error) {
	s.h.Do(func() {
		ctx, cancel := s.h.CallContext()
		defer cancel()
		var out *robomaker.CreateDeploymentJobOutput
		if out, err = s.rm.CreateDeploymentJob(ctx, s.jobInput(app, d)); err != nil {
			return
		}
		job = aws.ToString(out.Arn)
		s.h.Logf("created deployment job %s", job)
	})
	return job, err
}

// Sync starts a SyncDeploymentJob on the environment's fleet and returns the job's ARN, or the service's error.
func (s *Session) Sync() (job string, err error) {
	s.h.Do(func() {
		ctx, cancel := s.h.CallContext()
		defer cancel()
		var out *robomaker.SyncDeploymentJobOutput
		if out, err = s.rm.SyncDeploymentJob(ctx, &robomaker.SyncDeploymentJobInput{Fleet: aws.String(s.fleetARN)}); err != nil {
			return
		}
		job = aws.ToString(out.Arn)
		s.h.Logf("created sync deployment job %s", job)
	})
	return job, err
}

// Cancel implements dialect.Session.
func (s *Session) Cancel(ctx context.Context, job string) error {
	_, err := s.rm.CancelDeploymentJob(ctx, &robomaker.CancelDeploymentJobInput{Job: aws.String(job)})
	return err
}

// Describe implements dialect.Session with DescribeDeploymentJob.
func (s *Session) Describe(ctx context.Context, job string) (dialect.Job, error) {
	out, err := s.rm.DescribeDeploymentJob(ctx, &robomaker.DescribeDeploymentJobInput{Job: aws.String(job)})
	if err != nil {
		return dialect.Job{}, err
	}
	j := dialect.Job{ARN: job, ID: JobID(job), Status: string(out.Status), FailureCode: string(out.FailureCode),
		FailureReason: aws.ToString(out.FailureReason)}
	for _, rd := range out.RobotDeploymentSummary {
		arn := aws.ToString(rd.Arn)
		parts := strings.Split(arn, "/")
		name := arn
		if len(parts) >= 2 {
			name = parts[1]
		}
		r := dialect.Robot{Name: name, Status: string(rd.Status), FailureCode: string(rd.FailureCode),
			FailureReason: aws.ToString(rd.FailureReason)}
		if rd.ProgressDetail != nil {
			r.Step = string(rd.ProgressDetail.CurrentProgress)
		}
		j.Robots = append(j.Robots, r)
	}
	slices.SortFunc(j.Robots, func(a, b dialect.Robot) int { return strings.Compare(a.Name, b.Name) })
	return j, nil
}

// JobID returns the job id at the end of a deployment job ARN.
func JobID(arn string) string { return arn[strings.LastIndexByte(arn, '/')+1:] }

// errAlreadyExists reports whether err is RoboMaker's ResourceAlreadyExistsException.
func errAlreadyExists(err error) bool {
	return errors.As(err, new(*types.ResourceAlreadyExistsException))
}
