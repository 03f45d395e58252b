// Package opsworks is the harness's OpsWorks Stacks dialect: its Driver registers an environment's devices as
// on-premises instances (RegisterInstance, their hostnames the devices' names) of one stack, in one custom
// layer, and deploys a fixture bundle as an app: the bundle's files laid out as an OpsWorks release — its
// pre-launch file the deploy hook before_migrate, its post-launch file after_restart, its package's launch file
// the app's launch.sh (DocumentRoot the package) — with a deploy command to the stack's online instances. A job
// is the deployment; a device's status is its command's (pending, successful, failed, skipped), a failed one
// with the code exit-<ExitCode> and its log's last line. Scenarios reach the OpsWorks-only parts — the SDK client,
// the stack, the layer, more commands — through Of(env).
package opsworks

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ow "github.com/aws/aws-sdk-go-v2/service/opsworks"
	"github.com/aws/aws-sdk-go-v2/service/opsworks/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness/dialect"
	"github.com/fleetlab/fleetlab/harness/faults"
	agentow "github.com/fleetlab/fleetlab/sim/agent/opsworks"
	"github.com/fleetlab/fleetlab/sim/awsapi/sdkhttp"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// Name is the dialect's name in specs.
const Name = "opsworks"

// Statuses, as specs name them: a deployment's (the job's) and a command's (a device's).
const (
	JobRunning    = "running"
	JobSuccessful = "successful"
	JobFailed     = "failed"

	CommandPending    = "pending"
	CommandSuccessful = "successful"
	CommandFailed     = "failed"
	CommandSkipped    = "skipped"
)

// The stack and layer every environment registers its instances in.
const (
	StackName = "fleetlab"
	LayerName = "boards"
)

// Driver is the OpsWorks dialect. The zero value is ready to use.
type Driver struct{}

var _ dialect.Driver = Driver{}

// Name implements dialect.Driver.
func (Driver) Name() string { return Name }

// Steps implements dialect.Driver: the instance agent's steps. The release's deploy hooks — the bundle's pre- and
// post-launch files, before_migrate and after_restart — run in Running, each told from the other by its name.
func (Driver) Steps() faults.Dialect {
	return faults.Dialect{Name: "OpsWorks", Steps: []string{agentow.StepPreparing, agentow.StepRunning, agentow.StepFinished},
		Download:     agentow.StepPreparing,
		Scripts:      map[string]string{faults.ScriptPreLaunch: agentow.StepRunning, faults.ScriptPostLaunch: agentow.StepRunning},
		ScriptSuffix: map[string]string{faults.ScriptPreLaunch: " before_migrate", faults.ScriptPostLaunch: " after_restart"}}
}

// Statuses implements dialect.Driver.
func (Driver) Statuses() dialect.Statuses {
	return dialect.Statuses{Final: []string{JobSuccessful, JobFailed}, Failed: JobFailed,
		Device:       []string{CommandSuccessful, CommandFailed, CommandSkipped, CommandPending},
		DeviceFailed: []string{CommandFailed}}
}

// CheckJob implements dialect.Driver: OpsWorks deployments have no rollout policy, timeout, download condition
// or architectures.
func (Driver) CheckJob(j dialect.JobSpec) []dialect.Problem {
	return dialect.NoRolloutPolicy("OpsWorks", j)
}

// Config implements dialect.Driver: a deploy.
func (Driver) Config(dialect.JobSpec) any { return nil }

// Open implements dialect.Driver.
func (Driver) Open(h dialect.Host) (dialect.Session, error) {
	return &Session{h: h, ow: client(h.Endpoint(), h.Transport()), out: client(h.Endpoint(), h.PublicTransport()),
		s3:        dialect.S3(h.Endpoint(), h.Transport()),
		instances: map[string]string{}, apps: map[string]string{}}, nil
}

func client(endpoint string, rt http.RoundTripper) *ow.Client {
	return ow.New(ow.Options{BaseEndpoint: aws.String(endpoint), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("fleetlab", "fleetlab", ""), RetryMaxAttempts: 1,
		HTTPClient: sdkhttp.Client(rt)})
}

// Deployment is a deployment's configuration: the command (deploy when empty) and its args, the instances and
// layers it targets (none: the stack's online instances).
type Deployment struct {
	Command     types.DeploymentCommandName
	Args        map[string][]string
	InstanceIDs []string
	LayerIDs    []string
}

// Session is the OpsWorks dialect in one environment.
type Session struct {
	h         dialect.Host
	ow        *ow.Client
	out       *ow.Client
	s3        *s3.Client
	stackID   string
	layerID   string
	instances map[string]string // device → instance id
	apps      map[string]string // bundle → app id
}

var _ dialect.Session = (*Session)(nil)

// Of returns the OpsWorks session of an environment (a *harness.Env); another dialect's panics.
func Of(env interface{ Session() dialect.Session }) *Session {
	s, ok := env.Session().(*Session)
	if !ok {
		panic(fmt.Sprintf("opsworks.Of: the environment runs another dialect (%T)", env.Session()))
	}
	return s
}

// Client returns the OpsWorks client (AWS SDK for Go v2, retries off) pointed at the service.
func (s *Session) Client() *ow.Client { return s.out }

// StackID and LayerID are the environment's stack and layer.
func (s *Session) StackID() string { return s.stackID }
func (s *Session) LayerID() string { return s.layerID }

// Instance returns the instance id of a device.
func (s *Session) Instance(device string) (id string) {
	s.h.Do(func() { id = s.instances[device] })
	return id
}

func (s *Session) ensureStack(ctx context.Context) error {
	if s.stackID != "" {
		return nil
	}
	st, err := s.ow.CreateStack(ctx, &ow.CreateStackInput{Name: aws.String(StackName), Region: aws.String("us-east-1"),
		ServiceRoleArn:            aws.String("arn:aws:iam::123456789012:role/aws-opsworks-service-role"),
		DefaultInstanceProfileArn: aws.String("arn:aws:iam::123456789012:instance-profile/aws-opsworks-ec2-role")})
	if err != nil {
		return fmt.Errorf("create stack: %w", err)
	}
	ly, err := s.ow.CreateLayer(ctx, &ow.CreateLayerInput{StackId: st.StackId, Type: types.LayerTypeCustom,
		Name: aws.String("Boards"), Shortname: aws.String(LayerName)})
	if err != nil {
		return fmt.Errorf("create layer: %w", err)
	}
	s.stackID, s.layerID = aws.ToString(st.StackId), aws.ToString(ly.LayerId)
	return nil
}

// Register implements dialect.Session: each new device becomes a registered instance in the layer.
func (s *Session) Register(ctx context.Context, devs []fleet.Device) error {
	if err := s.ensureStack(ctx); err != nil {
		return err
	}
	for _, d := range devs {
		if _, ok := s.instances[d.Name()]; ok {
			continue
		}
		in, err := s.ow.RegisterInstance(ctx, &ow.RegisterInstanceInput{StackId: aws.String(s.stackID),
			Hostname: aws.String(d.Name())})
		if err != nil {
			return fmt.Errorf("register instance %s: %w", d.Name(), err)
		}
		if _, err := s.ow.AssignInstance(ctx, &ow.AssignInstanceInput{InstanceId: in.InstanceId,
			LayerIds: []string{s.layerID}}); err != nil {
			return fmt.Errorf("assign instance %s: %w", d.Name(), err)
		}
		s.instances[d.Name()] = aws.ToString(in.InstanceId)
	}
	return nil
}

// Release lays a fixture bundle out as an OpsWorks release (see the package documentation); a bundle checked in
// as an archive is kept as it is.
func Release(bundle string) ([]byte, error) {
	files, err := bundles.Files(bundle)
	if err != nil {
		return bundles.Build(bundle)
	}
	out := map[string]string{}
	for name, body := range files {
		switch name {
		case bundles.PreLaunchFile:
			out["deploy/before_migrate.sh"] = body
		case bundles.PostLaunchFile:
			out["deploy/after_restart.sh"] = body
		default:
			out[name] = body
		}
	}
	return bundles.Pack(out)
}

// app returns the app of a bundle, creating it (and storing its release) the first time.
func (s *Session) app(ctx context.Context, bundle string) (string, error) {
	if id, ok := s.apps[bundle]; ok {
		return id, nil
	}
	obj := s.h.PutBundle(bundle) // the bucket, and the fixture as it is
	rel, err := Release(bundle)
	if err != nil {
		return "", err
	}
	key := "opsworks/" + bundle + ".tar.gz"
	if _, err := s.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(obj.Bucket), Key: aws.String(key),
		Body: bytes.NewReader(rel)}); err != nil {
		return "", fmt.Errorf("store release of %s: %w", bundle, err)
	}
	a, err := s.ow.CreateApp(ctx, &ow.CreateAppInput{StackId: aws.String(s.stackID), Name: aws.String(bundle),
		Shortname: aws.String(strings.ReplaceAll(bundle, "-", "_")), Type: types.AppTypeOther,
		AppSource:  &types.Source{Type: types.SourceTypeS3, Url: aws.String("s3://" + obj.Bucket + "/" + key)},
		Attributes: map[string]string{"DocumentRoot": bundles.Package}})
	if err != nil {
		return "", fmt.Errorf("create app %s: %w", bundle, err)
	}
	s.apps[bundle] = aws.ToString(a.AppId)
	return s.apps[bundle], nil
}

// Deploy implements dialect.Session: config is a Deployment (nil: deploy to the online instances).
func (s *Session) Deploy(ctx context.Context, bundle string, archs []string, config any) (string, error) {
	var d Deployment
	switch c := config.(type) {
	case nil:
	case Deployment:
		d = c
	case *Deployment:
		d = *c
	default:
		return "", fmt.Errorf("opsworks: deployment config %T: want an opsworks.Deployment", config)
	}
	if len(archs) > 0 {
		return "", fmt.Errorf("opsworks: OpsWorks deployments have no architectures")
	}
	if err := s.ensureStack(ctx); err != nil {
		return "", err
	}
	if d.Command == "" {
		d.Command = types.DeploymentCommandNameDeploy
	}
	in := &ow.CreateDeploymentInput{StackId: aws.String(s.stackID), InstanceIds: d.InstanceIDs, LayerIds: d.LayerIDs,
		Command: &types.DeploymentCommand{Name: d.Command, Args: d.Args}}
	switch d.Command {
	case types.DeploymentCommandNameDeploy, types.DeploymentCommandNameRollback, types.DeploymentCommandNameStart,
		types.DeploymentCommandNameStop, types.DeploymentCommandNameRestart, types.DeploymentCommandNameUndeploy:
		id, err := s.app(ctx, bundle)
		if err != nil {
			return "", err
		}
		in.AppId = aws.String(id)
	}
	out, err := s.ow.CreateDeployment(ctx, in)
	if err != nil {
		return "", err
	}
	job := aws.ToString(out.DeploymentId)
	s.h.Logf("created %s deployment %s", d.Command, job)
	return job, nil
}

// Cancel implements dialect.Session: OpsWorks deployments cannot be canceled.
func (s *Session) Cancel(context.Context, string) error {
	return fmt.Errorf("opsworks: a deployment cannot be canceled")
}

// Describe implements dialect.Session with DescribeDeployments and DescribeCommands.
func (s *Session) Describe(ctx context.Context, job string) (dialect.Job, error) {
	ds, err := s.ow.DescribeDeployments(ctx, &ow.DescribeDeploymentsInput{DeploymentIds: []string{job}})
	if err != nil {
		return dialect.Job{}, err
	}
	if len(ds.Deployments) != 1 {
		return dialect.Job{}, fmt.Errorf("deployment %s: %d described", job, len(ds.Deployments))
	}
	j := dialect.Job{ARN: job, ID: job, Status: aws.ToString(ds.Deployments[0].Status)}
	cs, err := s.ow.DescribeCommands(ctx, &ow.DescribeCommandsInput{DeploymentId: aws.String(job)})
	if err != nil {
		return dialect.Job{}, err
	}
	device := map[string]string{}
	for dev, id := range s.instances {
		device[id] = dev
	}
	for _, c := range cs.Commands {
		name := device[aws.ToString(c.InstanceId)]
		if name == "" {
			is, err := s.ow.DescribeInstances(ctx, &ow.DescribeInstancesInput{InstanceIds: []string{aws.ToString(c.InstanceId)}})
			if err == nil && len(is.Instances) == 1 {
				name = aws.ToString(is.Instances[0].Hostname)
			}
		}
		r := dialect.Robot{Name: name, Status: aws.ToString(c.Status)}
		if r.Status == CommandFailed {
			r.FailureCode = fmt.Sprintf("exit-%d", aws.ToInt32(c.ExitCode))
			r.FailureReason = lastLine(aws.ToString(c.LogUrl))
		}
		j.Robots = append(j.Robots, r)
	}
	slices.SortFunc(j.Robots, func(a, b dialect.Robot) int { return strings.Compare(a.Name, b.Name) })
	return j, nil
}

// Log returns the text of a command's log from its LogUrl (a data: URL).
func Log(logURL string) string {
	_, enc, ok := strings.Cut(logURL, ";base64,")
	if !ok {
		return ""
	}
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return ""
	}
	return string(b)
}

func lastLine(logURL string) string {
	lines := strings.Split(strings.TrimSpace(Log(logURL)), "\n")
	return lines[len(lines)-1]
}
