// Package greengrassv2 is the harness's Greengrass V2 dialect: its Driver registers an environment's devices as
// IoT things and members of one thing group, creates components from the fixture bundles (the bundle is the
// component's artifact, with its SHA-256 in the recipe), deploys them to the group with CreateDeployment — a
// continuous deployment, which things that join the group later get too — and names Greengrass V2's statuses
// and the Greengrass kind's steps. Scenarios reach the Greengrass-only parts of an environment — the SDK
// clients, the group, effective deployments, installed components, what a core device runs — through Of(env).
//
// A job of the harness is a deployment revision's IoT job, by its ARN: the harness's timelines and settling
// follow the rollout the job is. Its status is the deployment's (GetDeployment); each robot's is its
// coreDeviceExecutionStatus (ListEffectiveDeployments), with the nucleus's failure cause as its failure code.
package greengrassv2

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	gg "github.com/aws/aws-sdk-go-v2/service/greengrassv2"
	ggtypes "github.com/aws/aws-sdk-go-v2/service/greengrassv2/types"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	iottypes "github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness/dialect"
	"github.com/fleetlab/fleetlab/harness/faults"
	agentgg "github.com/fleetlab/fleetlab/sim/agent/greengrassv2"
	"github.com/fleetlab/fleetlab/sim/awsapi/sdkhttp"
	ggwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/greengrassv2"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// Name is the dialect's name in specs.
const Name = "greengrassv2"

// GroupName is the thing group an environment's devices are members of, and its deployments' target.
const GroupName = "fleetlab"

// Deployment statuses (DeploymentStatus) and robot statuses (coreDeviceExecutionStatus).
const (
	JobActive    = string(ggtypes.DeploymentStatusActive)
	JobCompleted = string(ggtypes.DeploymentStatusCompleted)
	JobCanceled  = string(ggtypes.DeploymentStatusCanceled)
	JobFailed    = string(ggtypes.DeploymentStatusFailed)
	JobInactive  = string(ggtypes.DeploymentStatusInactive)

	RobotQueued     = string(ggtypes.EffectiveDeploymentExecutionStatusQueued)
	RobotInProgress = string(ggtypes.EffectiveDeploymentExecutionStatusInProgress)
	RobotSucceeded  = string(ggtypes.EffectiveDeploymentExecutionStatusSucceeded)
	RobotCompleted  = string(ggtypes.EffectiveDeploymentExecutionStatusCompleted)
	RobotFailed     = string(ggtypes.EffectiveDeploymentExecutionStatusFailed)
	RobotTimedOut   = string(ggtypes.EffectiveDeploymentExecutionStatusTimedOut)
	RobotCanceled   = string(ggtypes.EffectiveDeploymentExecutionStatusCanceled)
	RobotRejected   = string(ggtypes.EffectiveDeploymentExecutionStatusRejected)
)

// The scripts a script-exit fault can fail in this dialect: the lifecycle steps the kind runs as scripts.
const (
	ScriptInstall  = faults.ScriptInstall
	ScriptStartup  = faults.ScriptStartup
	ScriptShutdown = faults.ScriptShutdown
	ScriptRun      = faults.ScriptRun
)

// DefaultComponent is the name of the component a deployment without components of its own deploys.
const DefaultComponent = "com.fleetlab.Hello"

// Driver is the Greengrass V2 dialect. The zero value is ready to use.
type Driver struct{}

var _ dialect.Driver = Driver{}

// Name implements dialect.Driver.
func (Driver) Name() string { return Name }

// Steps implements dialect.Driver: the Greengrass kind's steps, in order. The install and shutdown steps of the
// lifecycle run in Installing, startup and (in the in-memory family) run in Starting; each is told from the
// others by its script's name.
func (Driver) Steps() faults.Dialect {
	return faults.Dialect{Name: "Greengrass V2",
		Steps: []string{agentgg.StepResolving, agentgg.StepDownloading, agentgg.StepInstalling, agentgg.StepStarting,
			agentgg.StepFinished},
		Download: agentgg.StepDownloading,
		Scripts: map[string]string{ScriptInstall: agentgg.StepInstalling, ScriptStartup: agentgg.StepStarting,
			ScriptShutdown: agentgg.StepInstalling, ScriptRun: agentgg.StepStarting},
		ScriptSuffix: map[string]string{ScriptInstall: " " + ggwire.StepInstall,
			ScriptStartup: " " + ggwire.StepStartup, ScriptShutdown: " " + ggwire.StepShutdown,
			ScriptRun: " " + ggwire.StepRun},
	}
}

// Statuses implements dialect.Driver. A thing-group deployment stays ACTIVE (it is continuous): a scenario
// that has settled with every robot ended expects it ACTIVE.
func (Driver) Statuses() dialect.Statuses {
	return dialect.Statuses{Final: []string{JobActive, JobCompleted, JobFailed, JobCanceled, JobInactive},
		Failed: JobFailed,
		Device: []string{RobotSucceeded, RobotCompleted, RobotFailed, RobotTimedOut, RobotRejected, RobotCanceled,
			RobotInProgress, RobotQueued},
		DeviceFailed: []string{RobotFailed, RobotTimedOut, RobotRejected}}
}

// CheckJob implements dialect.Driver: a job's timeout is the IoT job's in-progress timeout (whole minutes, 1 to
// 10080), its failureThreshold an abort criterion on every failure type; a rate is the options' rollout, so
// concurrency is refused, as is a download condition (Greengrass has none). The options decode strictly into
// Deployment.
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
	if j.Concurrency != 0 {
		bad("job.concurrency", "job: Greengrass V2 has no concurrency: give a rollout rate in options.rollout")
	}
	if j.DownloadCondition != "" {
		bad("job.downloadCondition", "job: Greengrass V2 has no download condition")
	}
	if c := j.FailureThreshold; c < 0 || c > 100 {
		bad("job.failureThreshold", "job: failureThreshold %d outside 0-100", c)
	}
	if t := j.Timeout.D(); t != 0 && (t%time.Minute != 0 || t < time.Minute || t > 7*24*time.Hour) {
		bad("job.timeout", "job: timeout %v: the in-progress timeout is whole minutes from 1m to 168h", t)
	}
	if len(j.Options) > 0 {
		d, err := decodeOptions(j.Options)
		if err != nil {
			bad("job.options", "job: options: %v", err)
		} else {
			for _, p := range d.check() {
				bad("job.options."+p.Path, "job: options: %v", p.Err)
			}
		}
	}
	return ps
}

// decodeOptions reads a job's options, strictly.
func decodeOptions(raw json.RawMessage) (Deployment, error) {
	var d Deployment
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return Deployment{}, err
	}
	return d, nil
}

// Config implements dialect.Driver: the job's Deployment — its options, with the job's timeout and
// failureThreshold.
func (Driver) Config(j dialect.JobSpec) any {
	var d Deployment
	if len(j.Options) > 0 {
		d, _ = decodeOptions(j.Options) // checked by CheckJob
	}
	if t := j.Timeout.D(); t != 0 {
		d.InProgressTimeout = faults.Duration(t)
	}
	if j.FailureThreshold != 0 {
		d.Abort = append(d.Abort, Abort{FailureType: "ALL", Threshold: float64(j.FailureThreshold), MinExecuted: 1})
	}
	return d
}

// Open implements dialect.Driver.
func (Driver) Open(h dialect.Host) (dialect.Session, error) {
	return &Session{h: h, gg: ggClient(h.Endpoint(), h.Transport()), iot: iotClient(h.Endpoint(), h.Transport()),
		ggOut: ggClient(h.Endpoint(), h.PublicTransport()), iotOut: iotClient(h.Endpoint(), h.PublicTransport()),
		jobs: map[string]string{}, versions: map[string]string{}}, nil
}

func ggClient(endpoint string, rt http.RoundTripper) *gg.Client {
	return gg.New(gg.Options{BaseEndpoint: aws.String(endpoint), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("fleetlab", "fleetlab", ""), RetryMaxAttempts: 1,
		HTTPClient: sdkhttp.Client(rt)})
}

func iotClient(endpoint string, rt http.RoundTripper) *iot.Client {
	return iot.New(iot.Options{BaseEndpoint: aws.String(endpoint), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("fleetlab", "fleetlab", ""), RetryMaxAttempts: 1,
		HTTPClient: sdkhttp.Client(rt)})
}

// Deployment is a Greengrass V2 deployment as the harness makes it: its components (created as component
// versions when they are not yet) and its policies and IoT job configuration. The zero value deploys
// DefaultComponent 1.0.0 of the job's bundle to the environment's thing group, every device at once, ROLLBACK.
type Deployment struct {
	// Components are the root components, with their recipes; empty: DefaultComponent.
	Components []Component `json:"components,omitempty"`
	// Libraries are components created (when not yet) but not deployed as roots: what roots depend on.
	Libraries []Component `json:"libraries,omitempty"`
	// Thing, when set, targets that thing instead of the group (a thing deployment, which completes).
	Thing string `json:"thing,omitempty"`
	// FailureHandling is ROLLBACK (default) or DO_NOTHING.
	FailureHandling string `json:"failureHandling,omitempty"`
	// Rollout is jobExecutionsRolloutConfig; nil releases to every device at once.
	Rollout *Rollout `json:"rollout,omitempty"`
	// Abort are the abort criteria (action CANCEL).
	Abort []Abort `json:"abort,omitempty"`
	// InProgressTimeout is the IoT job's in-progress timeout, whole minutes.
	InProgressTimeout faults.Duration `json:"inProgressTimeout,omitempty"`
	// Name is the deploymentName.
	Name string `json:"name,omitempty"`
	// Token is the clientToken.
	Token string `json:"token,omitempty"`
}

// Rollout is a jobExecutionsRolloutConfig: a constant MaximumPerMinute, or an exponential rate from
// BaseRatePerMinute growing by IncrementFactor each time NotifiedThings (or SucceededThings) more things have
// been notified (have succeeded), capped at MaximumPerMinute.
type Rollout struct {
	MaximumPerMinute  int32   `json:"maximumPerMinute,omitempty"`
	BaseRatePerMinute int32   `json:"baseRatePerMinute,omitempty"`
	IncrementFactor   float64 `json:"incrementFactor,omitempty"`
	NotifiedThings    int32   `json:"notifiedThings,omitempty"`
	SucceededThings   int32   `json:"succeededThings,omitempty"`
}

// Abort is one abort criterion: FailureType FAILED, REJECTED, TIMED_OUT or ALL; Threshold a percentage of the
// things executed; MinExecuted the things executed before it is evaluated.
type Abort struct {
	FailureType string  `json:"failureType"`
	Threshold   float64 `json:"threshold"`
	MinExecuted int32   `json:"minExecuted,omitempty"`
}

// Component is one component version and how a deployment configures it. Its recipe is made from these
// fields: a manifest for Linux with the fixture bundle (the job's, or Bundle) as its artifact unless NoArtifact,
// the lifecycle scripts given (in-memory robots run only trivial scripts: echo lines and exit N), the
// dependencies and the default configuration.
type Component struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"` // default 1.0.0
	// Bundle is the fixture bundle of the artifact (default the job's); NoArtifact makes a recipe without one.
	Bundle     string `json:"bundle,omitempty"`
	NoArtifact bool   `json:"noArtifact,omitempty"`
	// Digest replaces the artifact's SHA-256 in the recipe (base64): a recipe whose artifact does not match.
	Digest string `json:"digest,omitempty"`
	// Install, Startup, Run and Shutdown are the lifecycle scripts; an empty one is left out, except Install,
	// which defaults to a line saying the component is installed.
	Install  string `json:"install,omitempty"`
	Startup  string `json:"startup,omitempty"`
	Run      string `json:"run,omitempty"`
	Shutdown string `json:"shutdown,omitempty"`
	// InstallTimeout is the install step's Timeout, whole seconds.
	InstallTimeout faults.Duration `json:"installTimeout,omitempty"`
	// Depends are the component's dependencies: name → version requirement (HARD).
	Depends map[string]string `json:"depends,omitempty"`
	// Defaults is the DefaultConfiguration.
	Defaults map[string]any `json:"defaults,omitempty"`
	// Merge and Reset are the deployment's configurationUpdate of the component (roots only).
	Merge string   `json:"merge,omitempty"`
	Reset []string `json:"reset,omitempty"`
}

func (c Component) version() string {
	if c.Version == "" {
		return "1.0.0"
	}
	return c.Version
}

// check reports what is wrong with the deployment's own values.
func (d Deployment) check() []dialect.Problem {
	var ps []dialect.Problem
	bad := func(path, format string, args ...any) {
		ps = append(ps, dialect.Problem{Path: path, Err: fmt.Errorf(format, args...)})
	}
	switch d.FailureHandling {
	case "", ggwire.FailureRollback, ggwire.FailureDoNothing:
	default:
		bad("failureHandling", "failureHandling %q: want ROLLBACK or DO_NOTHING", d.FailureHandling)
	}
	check := func(where string, cs []Component) {
		for i, c := range cs {
			at := fmt.Sprintf("%s[%d]", where, i)
			if c.Name == "" {
				bad(at+".name", "a component needs a name")
			}
			if _, err := ggwire.ParseVersion(c.version()); err != nil {
				bad(at+".version", "%v", err)
			}
			if b := c.Bundle; b != "" && !slices.Contains(bundles.Names(), b) {
				bad(at+".bundle", "bundle %q is not a fixture bundle", b)
			}
			if t := c.InstallTimeout.D(); t%time.Second != 0 || t < 0 {
				bad(at+".installTimeout", "installTimeout %v: want whole seconds", t)
			}
			for _, dep := range slices.Sorted(maps.Keys(c.Depends)) {
				if _, err := ggwire.ParseRequirement(c.Depends[dep]); err != nil {
					bad(at+".depends."+dep, "%v", err)
				}
			}
		}
	}
	check("components", d.Components)
	check("libraries", d.Libraries)
	if r := d.Rollout; r != nil && r.BaseRatePerMinute > 0 && (r.NotifiedThings == 0) == (r.SucceededThings == 0) {
		bad("rollout", "an exponential rollout needs exactly one of notifiedThings and succeededThings")
	}
	for i, a := range d.Abort {
		switch a.FailureType {
		case "FAILED", "REJECTED", "TIMED_OUT", "ALL":
		default:
			bad(fmt.Sprintf("abort[%d].failureType", i), "failureType %q: want FAILED, REJECTED, TIMED_OUT or ALL", a.FailureType)
		}
	}
	if t := d.InProgressTimeout.D(); t%time.Minute != 0 || t < 0 {
		bad("inProgressTimeout", "inProgressTimeout %v: want whole minutes", t)
	}
	return ps
}

// Session is the Greengrass V2 dialect in one environment: its SDK clients, its thing group and the components
// and deployments it made.
type Session struct {
	h           dialect.Host
	gg, ggOut   *gg.Client
	iot, iotOut *iot.Client
	groupARN    string

	mu       sync.Mutex
	jobs     map[string]string // IoT job ARN → deployment id
	versions map[string]string // "name@version" → recipe made, for the versions created
	order    []string          // job ARNs, oldest first
}

var _ dialect.Session = (*Session)(nil)

// Of returns the Greengrass V2 session of an environment (a *harness.Env). An environment of another dialect
// is a mistake of the test's code: Of panics naming it.
func Of(env interface{ Session() dialect.Session }) *Session {
	s, ok := env.Session().(*Session)
	if !ok {
		panic(fmt.Sprintf("greengrassv2.Of: the environment runs another dialect (%T)", env.Session()))
	}
	return s
}

// Client returns the Greengrass V2 client (AWS SDK for Go v2, retries off) pointed at the service; IoT the
// IoT client.
func (s *Session) Client() *gg.Client { return s.ggOut }
func (s *Session) IoT() *iot.Client   { return s.iotOut }

// GroupARN returns the ARN of the thing group the devices are members of.
func (s *Session) GroupARN() string { return s.groupARN }

// Register implements dialect.Session: each device becomes a thing of its name (created once, in the order of
// devs, so the group lists its members — and a rollout releases them — in one order every run) and a member of
// GroupName. A device already a member is left alone.
func (s *Session) Register(ctx context.Context, devs []fleet.Device) error {
	if s.groupARN == "" {
		out, err := s.iot.CreateThingGroup(ctx, &iot.CreateThingGroupInput{ThingGroupName: aws.String(GroupName)})
		switch {
		case errors.As(err, new(*iottypes.ResourceAlreadyExistsException)):
			g, err := s.iot.DescribeThingGroup(ctx, &iot.DescribeThingGroupInput{ThingGroupName: aws.String(GroupName)})
			if err != nil {
				return fmt.Errorf("register: describe thing group %s: %w", GroupName, err)
			}
			s.groupARN = aws.ToString(g.ThingGroupArn)
		case err != nil:
			return fmt.Errorf("register: create thing group %s: %w", GroupName, err)
		default:
			s.groupARN = aws.ToString(out.ThingGroupArn)
		}
	}
	seen := map[string]bool{}
	for _, d := range devs {
		if seen[d.Name()] {
			return fmt.Errorf("register: device %s appears twice", d.Name())
		}
		seen[d.Name()] = true
		_, err := s.iot.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String(d.Name())})
		if err != nil && !errors.As(err, new(*iottypes.ResourceAlreadyExistsException)) {
			return fmt.Errorf("register: create thing %s: %w", d.Name(), err)
		}
		if _, err := s.iot.AddThingToThingGroup(ctx, &iot.AddThingToThingGroupInput{ThingName: aws.String(d.Name()),
			ThingGroupName: aws.String(GroupName)}); err != nil {
			return fmt.Errorf("register: add thing %s to %s: %w", d.Name(), GroupName, err)
		}
	}
	return nil
}

// Leave removes a thing from the group: the group's deployment removes its components from the device.
func (s *Session) Leave(thing string) (err error) {
	s.h.Do(func() {
		ctx, cancel := s.h.CallContext()
		defer cancel()
		_, err = s.iot.RemoveThingFromThingGroup(ctx, &iot.RemoveThingFromThingGroupInput{ThingName: aws.String(thing),
			ThingGroupName: aws.String(GroupName)})
		if err == nil {
			s.h.Logf("thing %s left thing group %s", thing, GroupName)
		}
	})
	return err
}

// Deploy implements dialect.Session: config is a Deployment, or nil for the defaults. The components are
// created first (a version already created is reused); the job is the revision's IoT job ARN. The
// architectures are not used: a component's one manifest runs on any Linux core device.
func (s *Session) Deploy(_ context.Context, bundle string, _ []string, config any) (string, error) {
	var d Deployment
	switch c := config.(type) {
	case nil:
	case Deployment:
		d = c
	case *Deployment:
		d = *c
	default:
		return "", fmt.Errorf("greengrassv2: deployment config %T: want a greengrassv2.Deployment", config)
	}
	if ps := d.check(); len(ps) > 0 {
		return "", fmt.Errorf("greengrassv2: deployment %s: %v", ps[0].Path, ps[0].Err)
	}
	var job string
	var err error
	s.h.Do(func() { job, err = s.deploy(bundle, d) })
	return job, err
}

func (s *Session) deploy(bundle string, d Deployment) (string, error) {
	if len(d.Components) == 0 {
		d.Components = []Component{{Name: DefaultComponent}}
	}
	for _, c := range append(slices.Clone(d.Libraries), d.Components...) {
		if err := s.createComponent(bundle, c); err != nil {
			return "", err
		}
	}
	ctx, cancel := s.h.CallContext()
	defer cancel()
	in := s.input(d)
	out, err := s.gg.CreateDeployment(ctx, in)
	if err != nil {
		return "", err
	}
	job := aws.ToString(out.IotJobArn)
	s.mu.Lock()
	if _, ok := s.jobs[job]; !ok {
		s.order = append(s.order, job)
	}
	s.jobs[job] = aws.ToString(out.DeploymentId)
	s.mu.Unlock()
	s.h.Logf("created deployment %s (job %s) to %s", aws.ToString(out.DeploymentId), aws.ToString(out.IotJobId),
		aws.ToString(in.TargetArn))
	return job, nil
}

// input is the CreateDeployment request of d.
func (s *Session) input(d Deployment) *gg.CreateDeploymentInput {
	target := s.groupARN
	if d.Thing != "" {
		target = "arn:aws:iot:us-east-1:000000000000:thing/" + d.Thing
		if i := strings.Index(s.groupARN, ":thinggroup/"); i > 0 {
			target = s.groupARN[:i] + ":thing/" + d.Thing
		}
	}
	comps := map[string]ggtypes.ComponentDeploymentSpecification{}
	for _, c := range d.Components {
		spec := ggtypes.ComponentDeploymentSpecification{ComponentVersion: aws.String(c.version())}
		if c.Merge != "" || c.Reset != nil {
			spec.ConfigurationUpdate = &ggtypes.ComponentConfigurationUpdate{Reset: c.Reset}
			if c.Merge != "" {
				spec.ConfigurationUpdate.Merge = aws.String(c.Merge)
			}
		}
		comps[c.Name] = spec
	}
	in := &gg.CreateDeploymentInput{TargetArn: aws.String(target), Components: comps}
	if d.Name != "" {
		in.DeploymentName = aws.String(d.Name)
	}
	if d.Token != "" {
		in.ClientToken = aws.String(d.Token)
	}
	if d.FailureHandling != "" {
		in.DeploymentPolicies = &ggtypes.DeploymentPolicies{
			FailureHandlingPolicy: ggtypes.DeploymentFailureHandlingPolicy(d.FailureHandling)}
	}
	var jc ggtypes.DeploymentIoTJobConfiguration
	set := false
	if r := d.Rollout; r != nil {
		rc := &ggtypes.IoTJobExecutionsRolloutConfig{}
		if r.MaximumPerMinute > 0 {
			rc.MaximumPerMinute = aws.Int32(r.MaximumPerMinute)
		}
		if r.BaseRatePerMinute > 0 {
			crit := &ggtypes.IoTJobRateIncreaseCriteria{}
			if r.NotifiedThings > 0 {
				crit.NumberOfNotifiedThings = aws.Int32(r.NotifiedThings)
			}
			if r.SucceededThings > 0 {
				crit.NumberOfSucceededThings = aws.Int32(r.SucceededThings)
			}
			rc.ExponentialRate = &ggtypes.IoTJobExponentialRolloutRate{BaseRatePerMinute: aws.Int32(r.BaseRatePerMinute),
				IncrementFactor: aws.Float64(r.IncrementFactor), RateIncreaseCriteria: crit}
		}
		jc.JobExecutionsRolloutConfig, set = rc, true
	}
	if len(d.Abort) > 0 {
		ac := &ggtypes.IoTJobAbortConfig{}
		for _, a := range d.Abort {
			c := ggtypes.IoTJobAbortCriteria{Action: ggtypes.IoTJobAbortActionCancel,
				FailureType: ggtypes.IoTJobExecutionFailureType(a.FailureType), ThresholdPercentage: a.Threshold}
			if a.MinExecuted > 0 {
				c.MinNumberOfExecutedThings = aws.Int32(a.MinExecuted)
			}
			ac.CriteriaList = append(ac.CriteriaList, c)
		}
		jc.AbortConfig, set = ac, true
	}
	if t := d.InProgressTimeout.D(); t > 0 {
		jc.TimeoutConfig = &ggtypes.IoTJobTimeoutConfig{InProgressTimeoutInMinutes: aws.Int64(int64(t / time.Minute))}
		set = true
	}
	if set {
		in.IotJobConfiguration = &jc
	}
	return in
}

// Recipe returns the recipe of component c, with the job's bundle as its artifact unless c says otherwise,
// and the artifact's bytes (nil without one).
func Recipe(bundle string, c Component) (*ggwire.Recipe, []byte, error) {
	r := &ggwire.Recipe{RecipeFormatVersion: "2020-01-25", ComponentName: c.Name, ComponentVersion: c.version(),
		ComponentDescription: "fleetlab scenario component", ComponentPublisher: "fleetlab"}
	if c.Defaults != nil {
		r.ComponentConfiguration = &ggwire.Configuration{DefaultConfiguration: c.Defaults}
	}
	for _, dep := range slices.Sorted(maps.Keys(c.Depends)) {
		if r.ComponentDependencies == nil {
			r.ComponentDependencies = map[string]ggwire.Dependency{}
		}
		r.ComponentDependencies[dep] = ggwire.Dependency{VersionRequirement: c.Depends[dep], DependencyType: ggwire.DependencyHard}
	}
	lc := map[string]any{}
	install := c.Install
	if install == "" {
		install = "echo installed " + c.Name + " " + c.version() + "\nexit 0"
	}
	if t := c.InstallTimeout.D(); t > 0 {
		lc[ggwire.StepInstall] = map[string]any{"Script": install, "Timeout": int(t / time.Second)}
	} else {
		lc[ggwire.StepInstall] = install
	}
	for step, script := range map[string]string{ggwire.StepStartup: c.Startup, ggwire.StepRun: c.Run,
		ggwire.StepShutdown: c.Shutdown} {
		if script != "" {
			lc[step] = script
		}
	}
	m := ggwire.Manifest{Platform: ggwire.Platform{"os": "linux"}, Lifecycle: lc}
	var body []byte
	if !c.NoArtifact {
		b := c.Bundle
		if b == "" {
			b = bundle
		}
		if b == "" {
			b = bundles.Hello
		}
		var err error
		if body, err = bundles.Build(b); err != nil {
			return nil, nil, err
		}
		sum := sha256.Sum256(body)
		digest := base64.StdEncoding.EncodeToString(sum[:])
		if c.Digest != "" {
			digest = c.Digest
		}
		m.Artifacts = []ggwire.Artifact{{URI: "s3://" + ArtifactBucket + "/" + artifactKey(b), Digest: digest,
			Algorithm: "SHA-256"}}
	}
	r.Manifests = []ggwire.Manifest{m}
	return r, body, r.Validate()
}

// ArtifactBucket is where the harness stores components' artifacts: the harness's bundle bucket.
const ArtifactBucket = "fleetlab-bundles"

func artifactKey(bundle string) string { return bundle + ".tar.gz" }

// createComponent creates component c's version, once: a version created already with the same recipe is
// reused; one created with another recipe is the test's mistake.
func (s *Session) createComponent(bundle string, c Component) error {
	r, body, err := Recipe(bundle, c)
	if err != nil {
		return fmt.Errorf("greengrassv2: component %s: %w", c.Name, err)
	}
	data, err := r.JSON()
	if err != nil {
		return err
	}
	key := c.Name + "@" + c.version()
	s.mu.Lock()
	made, ok := s.versions[key]
	s.mu.Unlock()
	if ok {
		if made != string(data) {
			return fmt.Errorf("greengrassv2: component %s %s was created with another recipe", c.Name, c.version())
		}
		return nil
	}
	if body != nil {
		b := c.Bundle
		if b == "" {
			b = bundle
		}
		if b == "" {
			b = bundles.Hello
		}
		obj := s.h.PutBundle(b)
		if obj.Bucket != ArtifactBucket || obj.Key != artifactKey(b) {
			return fmt.Errorf("greengrassv2: the bundle %s is stored at %s/%s, not where the recipe says", b, obj.Bucket, obj.Key)
		}
	}
	ctx, cancel := s.h.CallContext()
	defer cancel()
	if _, err := s.gg.CreateComponentVersion(ctx, &gg.CreateComponentVersionInput{InlineRecipe: data}); err != nil {
		return fmt.Errorf("greengrassv2: create component %s %s: %w", c.Name, c.version(), err)
	}
	s.mu.Lock()
	s.versions[key] = string(data)
	s.mu.Unlock()
	return nil
}

// Deployment returns the deployment id of a job.
func (s *Session) Deployment(job string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.jobs[job]
	return id, ok
}

// Cancel implements dialect.Session with CancelDeployment.
func (s *Session) Cancel(ctx context.Context, job string) error {
	id, ok := s.Deployment(job)
	if !ok {
		return fmt.Errorf("greengrassv2: job %s is no deployment of this environment", job)
	}
	_, err := s.gg.CancelDeployment(ctx, &gg.CancelDeploymentInput{DeploymentId: aws.String(id)})
	return err
}

// Describe implements dialect.Session: the deployment's status (GetDeployment) and, for each thing the job
// has an execution for (ListJobExecutionsForJob), its effective deployment (ListEffectiveDeployments): its
// coreDeviceExecutionStatus, the nucleus's failure cause as its failure code (deployment-failure-cause,
// from the execution's statusDetails) and its reason.
func (s *Session) Describe(ctx context.Context, job string) (dialect.Job, error) {
	id, ok := s.Deployment(job)
	if !ok {
		return dialect.Job{}, fmt.Errorf("greengrassv2: job %s is no deployment of this environment", job)
	}
	dep, err := s.gg.GetDeployment(ctx, &gg.GetDeploymentInput{DeploymentId: aws.String(id)})
	if err != nil {
		return dialect.Job{}, err
	}
	jobID := aws.ToString(dep.IotJobId)
	j := dialect.Job{ARN: job, ID: jobID, Status: string(dep.DeploymentStatus)}
	things, err := s.things(ctx, jobID)
	if err != nil {
		return dialect.Job{}, err
	}
	for _, th := range things {
		r := dialect.Robot{Name: th}
		eff, err := s.effective(ctx, th, id)
		if err != nil {
			return dialect.Job{}, err
		}
		if eff != nil {
			r.Status = string(eff.CoreDeviceExecutionStatus)
			r.FailureReason = aws.ToString(eff.Reason)
		} else {
			r.Status = RobotQueued // not released to the thing yet: it has no effective deployment of it
		}
		if isFailed(r.Status) {
			x, err := s.iot.DescribeJobExecution(ctx, &iot.DescribeJobExecutionInput{JobId: aws.String(jobID),
				ThingName: aws.String(th)})
			if err != nil {
				return dialect.Job{}, err
			}
			if x.Execution != nil && x.Execution.StatusDetails != nil {
				det := x.Execution.StatusDetails.DetailsMap
				r.FailureCode = det[agentgg.DetailFailureCause]
				if r.FailureCode == "" {
					r.FailureCode = det["failureCode"]
				}
				if reason := det["reason"]; reason != "" {
					r.FailureReason = reason
				}
				r.Step = det["step"]
			}
		}
		j.Robots = append(j.Robots, r)
	}
	sort.Slice(j.Robots, func(a, b int) bool { return j.Robots[a].Name < j.Robots[b].Name })
	return j, nil
}

func isFailed(status string) bool {
	return status == RobotFailed || status == RobotRejected || status == RobotTimedOut
}

// things returns the things the job has an execution for.
func (s *Session) things(ctx context.Context, jobID string) ([]string, error) {
	var out []string
	pages := iot.NewListJobExecutionsForJobPaginator(s.iot, &iot.ListJobExecutionsForJobInput{JobId: aws.String(jobID)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, x := range page.ExecutionSummaries {
			arn := aws.ToString(x.ThingArn)
			out = append(out, arn[strings.LastIndexByte(arn, '/')+1:])
		}
	}
	return out, nil
}

// effective returns thing's effective deployment of deployment id, nil when it has none.
func (s *Session) effective(ctx context.Context, thing, id string) (*ggtypes.EffectiveDeployment, error) {
	pages := gg.NewListEffectiveDeploymentsPaginator(s.gg, &gg.ListEffectiveDeploymentsInput{
		CoreDeviceThingName: aws.String(thing)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if errors.As(err, new(*ggtypes.ResourceNotFoundException)) {
			return nil, nil // no deployment has reached the thing
		}
		if err != nil {
			return nil, err
		}
		for i := range page.EffectiveDeployments {
			if aws.ToString(page.EffectiveDeployments[i].DeploymentId) == id {
				return &page.EffectiveDeployments[i], nil
			}
		}
	}
	return nil, nil
}
