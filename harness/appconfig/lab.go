// Package appconfig is the harness's AppConfig lab: the deployment service and a fleet of AppConfig devices (the
// agent's AppConfig kind, each with a real apply hook) in one virtual-time world, driven through the official
// SDK clients, and scenarios of AppConfig rollouts as data (Spec, fixtures/scenarios/appconfig) that Run carries
// out and checks — what the service says of the deployment, and what each device holds on its disk.
//
// AppConfig has no jobs and no robots: its devices are anonymous AppConfigData clients, so the lab is an
// environment of its own rather than a dialect.Driver of the jobs harness.
package appconfig

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ac "github.com/aws/aws-sdk-go-v2/service/appconfig"
	act "github.com/aws/aws-sdk-go-v2/service/appconfig/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwt "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/fleetlab/fleetlab/harness"
	agent "github.com/fleetlab/fleetlab/sim/agent/appconfig"
	"github.com/fleetlab/fleetlab/sim/awsapi"
	dialect "github.com/fleetlab/fleetlab/sim/awsapi/appconfig"
	"github.com/fleetlab/fleetlab/sim/awsapi/sdkhttp"
	"github.com/fleetlab/fleetlab/sim/clock"
	wire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/appconfig"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/fleet/link"
	"github.com/fleetlab/fleetlab/sim/service"
)

// AlarmName is the lab's alarm on the devices' health metric: ALARM once a device has reported unhealthy in
// any of the last five one-minute periods (so a datapoint that comes late still counts).
const AlarmName = "devices-unhealthy"

// LabOptions shape a lab.
type LabOptions struct {
	Seed uint64
	// Devices is the number of devices at start (device-0001 …).
	Devices int
	// PollInterval is the devices' poll interval (default 15s, the floor).
	PollInterval time.Duration
	// ProfileType is the profile's type (default AWS.Freeform); Validator a JSON schema for it ("" none).
	ProfileType string
	Validator   string
	// Monitor gives the environment the lab's alarm as its monitor.
	Monitor bool
	// MetricDelay delays every device's health metric.
	MetricDelay time.Duration
	// Sink, when set, is sent the lab's events — the engine's, and every device's state changes as agent.state
	// events (harness.AgentState) but for its polls — each stamped with Scenario.
	Sink     event.Sink
	Scenario string
}

// Lab is an AppConfig lab. Its methods are called from the test's goroutine, outside the world.
type Lab struct {
	t     harness.T
	opts  LabOptions
	dir   string
	world *clock.World
	svc   *service.Service
	AC    *ac.Client
	CW    *cloudwatch.Client
	// App, Env and Profile are the ids of the lab's application, environment and profile.
	App, Env, Profile string
	AlarmArn          string

	ctx          context.Context
	cancel       context.CancelFunc
	devTransport http.RoundTripper
	actors       *clock.Group
	mu           sync.Mutex
	devices      map[string]*agent.Device
	names        []string
	log          []string // what happened, in order: the run's digest
	seqs         map[string]uint64
}

// NewLab starts a lab; the test's cleanup stops it.
func NewLab(t harness.T, opts LabOptions) *Lab {
	t.Helper()
	if opts.PollInterval == 0 {
		opts.PollInterval = 15 * time.Second
	}
	l := &Lab{t: t, opts: opts, dir: t.TempDir(), devices: map[string]*agent.Device{}, seqs: map[string]uint64{}}
	l.world = clock.NewWorld(clock.WorldOptions{Seed: opts.Seed, OnStall: func(report string) {
		harness.InfraErrorf(t, "appconfig lab: the world stalled\n%s", report)
	}})
	svc, err := service.New(service.Options{Dir: filepath.Join(l.dir, "service"), InMemoryStore: true,
		Clock: l.world, Random: awsapi.NewSeededSource(opts.Seed), Events: event.SinkFunc(l.engineEvent)})
	if err != nil {
		l.world.Close()
		harness.InfraFatalf(t, "appconfig lab: start the service: %v", err)
	}
	l.svc = svc
	if err := svc.Start("127.0.0.1:0", ""); err != nil {
		svc.Close()
		l.world.Close()
		harness.InfraFatalf(t, "appconfig lab: start the service: %v", err)
	}
	inproc := &link.InProcess{Clock: l.world, Handler: func(string) (http.Handler, error) { return svc.API, nil }}
	l.ctx, l.cancel = clock.WithCancel(l.world, context.Background())
	l.actors = clock.NewGroup(l.world)
	t.Cleanup(l.close)
	creds := credentials.NewStaticCredentialsProvider("test", "test", "")
	hc := sdkhttp.Client(inproc)
	l.AC = ac.New(ac.Options{BaseEndpoint: aws.String(svc.Endpoint()), Region: "us-east-1", Credentials: creds,
		RetryMaxAttempts: 1, HTTPClient: hc})
	l.CW = cloudwatch.New(cloudwatch.Options{BaseEndpoint: aws.String(svc.Endpoint()), Region: "us-east-1",
		Credentials: creds, RetryMaxAttempts: 1, HTTPClient: hc})
	l.devTransport = inproc.ForActors()
	l.setUp()
	l.AddDevices(opts.Devices)
	return l
}

func (l *Lab) close() {
	if err := l.world.Do(func() {
		l.cancel()
		l.actors.Wait()
		l.svc.Close()
	}); err != nil {
		harness.InfraErrorf(l.t, "appconfig lab: tear down: %v", err)
	}
	if err := l.world.Close(); err != nil {
		harness.InfraErrorf(l.t, "appconfig lab: %v", err)
	}
}

func (l *Lab) engineEvent(e event.Event) {
	l.emit(e)
	if e.Kind != event.DeploymentState {
		return
	}
	l.mu.Lock()
	l.log = append(l.log, fmt.Sprintf("%s deployment %s %s→%s", e.Time.Format(time.TimeOnly), e.Deployment,
		e.From, e.To))
	l.mu.Unlock()
}

// emit sends e to the lab's sink, stamped with the scenario and numbered within its source (harness.Source).
func (l *Lab) emit(e event.Event) {
	if l.opts.Sink == nil {
		return
	}
	if e.Scenario == "" {
		e.Scenario = l.opts.Scenario
	}
	if e.Time.IsZero() {
		e.Time = l.world.Now()
	}
	l.mu.Lock()
	src := harness.Source(e)
	l.seqs[src]++
	e.Seq = l.seqs[src]
	l.mu.Unlock()
	l.opts.Sink.Emit(e)
}

// Log returns what happened in the run, in order: deployment states and every device's state changes.
func (l *Lab) Log() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.log...)
}

func (l *Lab) must(err error, what string) {
	l.t.Helper()
	if err != nil {
		l.t.Fatalf("appconfig lab: %s: %v", what, err)
	}
}

func (l *Lab) setUp() {
	ctx := context.Background()
	app, err := l.AC.CreateApplication(ctx, &ac.CreateApplicationInput{Name: aws.String("fleet")})
	l.must(err, "create application")
	l.App = aws.ToString(app.Id)
	var monitors []act.Monitor
	if l.opts.Monitor {
		_, err := l.CW.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String(AlarmName),
			Namespace: aws.String(wire.HealthNamespace), MetricName: aws.String(wire.HealthMetric),
			Dimensions: []cwt.Dimension{{Name: aws.String(wire.HealthDimension), Value: aws.String(l.App)}},
			Statistic:  cwt.StatisticSum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(5), DatapointsToAlarm: aws.Int32(1),
			Threshold: aws.Float64(1), ComparisonOperator: cwt.ComparisonOperatorGreaterThanOrEqualToThreshold,
			TreatMissingData: aws.String("notBreaching")})
		l.must(err, "put alarm")
		out, err := l.CW.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{AlarmName}})
		l.must(err, "describe alarm")
		l.AlarmArn = aws.ToString(out.MetricAlarms[0].AlarmArn)
		monitors = []act.Monitor{{AlarmArn: aws.String(l.AlarmArn)}}
	}
	env, err := l.AC.CreateEnvironment(ctx, &ac.CreateEnvironmentInput{ApplicationId: app.Id,
		Name: aws.String("field"), Monitors: monitors})
	l.must(err, "create environment")
	l.Env = aws.ToString(env.Id)
	in := &ac.CreateConfigurationProfileInput{ApplicationId: app.Id, Name: aws.String("settings"),
		LocationUri: aws.String("hosted")}
	if l.opts.ProfileType != "" {
		in.Type = aws.String(l.opts.ProfileType)
	}
	if l.opts.Validator != "" {
		in.Validators = []act.Validator{{Type: act.ValidatorTypeJsonSchema, Content: aws.String(l.opts.Validator)}}
	}
	p, err := l.AC.CreateConfigurationProfile(ctx, in)
	l.must(err, "create profile")
	l.Profile = aws.ToString(p.Id)
	// The devices' hooks: ok.sh applies (checks the file is there); fail-N.sh exit N.
	if err := os.WriteFile(filepath.Join(l.dir, "ok.sh"), []byte("test -s \"$1\"\n"), 0o755); err != nil {
		harness.InfraFatalf(l.t, "appconfig lab: write the apply hook: %v", err)
	}
}

// AddDevices starts n more devices.
func (l *Lab) AddDevices(n int) {
	l.t.Helper()
	err := l.world.Do(func() {
		for range n {
			l.mu.Lock()
			name := fmt.Sprintf("device-%04d", len(l.names)+1)
			l.names = append(l.names, name)
			l.mu.Unlock()
			d, err := agent.New(agent.Options{Thing: name, Endpoint: l.svc.Endpoint(), Transport: l.devTransport,
				Clock: l.world, Application: l.App, Environment: l.Env, Profile: l.Profile,
				PollInterval: l.opts.PollInterval, Dir: filepath.Join(l.dir, "devices", name),
				Hook: filepath.Join(l.dir, "ok.sh"), MetricDelay: l.opts.MetricDelay, OnEvent: l.deviceEvent})
			if err != nil {
				l.t.Errorf("appconfig lab: device %s: %v", name, err)
				return
			}
			l.mu.Lock()
			l.devices[name] = d
			l.mu.Unlock()
			l.actors.Go(name, func() { d.Run(l.ctx) })
		}
	})
	l.must(err, "add devices")
}

func (l *Lab) deviceEvent(e agent.Event) {
	if e.State == agent.StatePolling && e.Err == nil {
		return // every poll: too many to keep
	}
	line := fmt.Sprintf("%s %s %s %s", e.Time.Format(time.TimeOnly), e.Thing, e.State, e.Version)
	ev := event.Event{Kind: harness.AgentState, Time: e.Time, Dialect: dialect.Kind, Device: e.Thing,
		Step: e.State, Reason: e.Version}
	if e.Err != nil {
		line += " (" + e.Err.Error() + ")"
		ev.Code, ev.Reason = "Error", strings.TrimSpace(e.Version+": "+e.Err.Error())
		if e.State == agent.StateApplyFailed {
			ev.Code = agent.StateApplyFailed
		}
	}
	l.emit(ev)
	l.mu.Lock()
	l.log = append(l.log, line)
	l.mu.Unlock()
}

// Devices returns the devices' names.
func (l *Lab) Devices() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.names...)
}

// Device returns a device by name.
func (l *Lab) Device(name string) *agent.Device {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.devices[name]
}

// FailHook makes a device's apply hook exit code on the configuration labelled version (any other it applies).
func (l *Lab) FailHook(name, version string, code int) {
	l.t.Helper()
	path := filepath.Join(l.dir, fmt.Sprintf("fail-%s-%d.sh", version, code))
	script := fmt.Sprintf("if [ \"$CONFIG_VERSION\" = %q ]; then echo 'configuration refused' >&2; exit %d; fi\n"+
		"test -s \"$1\"\n", version, code)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		harness.InfraFatalf(l.t, "appconfig lab: write the apply hook: %v", err)
	}
	d := l.Device(name)
	if d == nil {
		l.t.Fatalf("appconfig lab: no device %s", name)
	}
	d.SetHook(path)
}

// OnDisk returns what a device holds: the configuration in force and its version, read from its directory.
func (l *Lab) OnDisk(name string) (content, version string) {
	dir := filepath.Join(l.dir, "devices", name)
	c, _ := os.ReadFile(filepath.Join(dir, agent.FileConfig))
	v, _ := os.ReadFile(filepath.Join(dir, agent.FileVersion))
	return string(c), string(v)
}

// Now is the world's time.
func (l *Lab) Now() time.Time { return l.world.Now() }

// Advance lets d of virtual time pass.
func (l *Lab) Advance(d time.Duration) {
	l.t.Helper()
	l.must(l.world.Do(func() { clock.Sleep(l.world, d, nil) }), "advance")
}

// Version adds a hosted configuration version with a label and returns its number.
func (l *Lab) Version(content, label string) int32 {
	l.t.Helper()
	ctype := "application/json"
	if !strings.HasPrefix(strings.TrimSpace(content), "{") {
		ctype = "text/plain"
	}
	out, err := l.AC.CreateHostedConfigurationVersion(context.Background(), &ac.CreateHostedConfigurationVersionInput{
		ApplicationId: aws.String(l.App), ConfigurationProfileId: aws.String(l.Profile), Content: []byte(content),
		ContentType: aws.String(ctype), VersionLabel: aws.String(label)})
	l.must(err, "create hosted version")
	return out.VersionNumber
}

// Start starts a deployment of a version with a strategy (an id).
func (l *Lab) Start(strategy string, version int32) (int32, error) {
	out, err := l.AC.StartDeployment(context.Background(), &ac.StartDeploymentInput{
		ApplicationId: aws.String(l.App), EnvironmentId: aws.String(l.Env),
		ConfigurationProfileId: aws.String(l.Profile), DeploymentStrategyId: aws.String(strategy),
		ConfigurationVersion: aws.String(fmt.Sprint(version))})
	if err != nil {
		return 0, err
	}
	return out.DeploymentNumber, nil
}

// Strategy creates a deployment strategy and returns its id.
func (l *Lab) Strategy(growth string, factor float32, minutes, bake int32) string {
	l.t.Helper()
	out, err := l.AC.CreateDeploymentStrategy(context.Background(), &ac.CreateDeploymentStrategyInput{
		Name:       aws.String(fmt.Sprintf("%s-%v-%d-%d", strings.ToLower(growth), factor, minutes, bake)),
		GrowthType: act.GrowthType(growth), GrowthFactor: aws.Float32(factor),
		DeploymentDurationInMinutes: aws.Int32(minutes), FinalBakeTimeInMinutes: bake})
	l.must(err, "create strategy")
	return aws.ToString(out.Id)
}

// Deployment returns a deployment as GetDeployment tells it.
func (l *Lab) Deployment(n int32) *ac.GetDeploymentOutput {
	l.t.Helper()
	out, err := l.AC.GetDeployment(context.Background(), &ac.GetDeploymentInput{ApplicationId: aws.String(l.App),
		EnvironmentId: aws.String(l.Env), DeploymentNumber: aws.Int32(n)})
	l.must(err, "get deployment")
	return out
}

// EnvironmentState returns the environment's state.
func (l *Lab) EnvironmentState() string {
	l.t.Helper()
	out, err := l.AC.GetEnvironment(context.Background(), &ac.GetEnvironmentInput{ApplicationId: aws.String(l.App),
		EnvironmentId: aws.String(l.Env)})
	l.must(err, "get environment")
	return string(out.State)
}

// WaitEnd lets virtual time pass until deployment n is over (COMPLETE, ROLLED_BACK or REVERTED), at most max.
func (l *Lab) WaitEnd(n int32, max time.Duration) *ac.GetDeploymentOutput {
	l.t.Helper()
	deadline := l.Now().Add(max)
	for {
		d := l.Deployment(n)
		switch d.State {
		case act.DeploymentStateComplete, act.DeploymentStateRolledBack, act.DeploymentStateReverted:
			return d
		}
		if !l.Now().Before(deadline) {
			l.t.Fatalf("appconfig lab: deployment %d still %s after %v", n, d.State, max)
		}
		l.Advance(time.Minute)
	}
}

// SetAlarm sets the lab's alarm's state by hand.
func (l *Lab) SetAlarm(state string) {
	l.t.Helper()
	_, err := l.CW.SetAlarmState(context.Background(), &cloudwatch.SetAlarmStateInput{AlarmName: aws.String(AlarmName),
		StateValue: cwt.StateValue(state), StateReason: aws.String("set by the scenario")})
	l.must(err, "set alarm state")
}

func stopInput(l *Lab, n int32, revert bool) *ac.StopDeploymentInput {
	in := &ac.StopDeploymentInput{ApplicationId: aws.String(l.App), EnvironmentId: aws.String(l.Env),
		DeploymentNumber: aws.Int32(n)}
	if revert {
		in.AllowRevert = aws.Bool(true)
	}
	return in
}
