// Package greengrass is the harness's Greengrass V1 dialect: its Driver makes each device of an environment the
// core of a Greengrass V1 group of its own (a core definition naming the device's thing, a group whose version
// has that core), and deploys a fixture bundle to every group at once with a bulk deployment — one group version
// per group, the bundle an S3 resource unpacked at /bundle, its pre- and post-launch files on-demand functions
// the core invokes, its launch file a pinned function the core keeps running. A job is the bulk deployment; a
// device's status is its group's deployment status (GetDeploymentStatus's Building, InProgress, Success,
// Failure) with the core's detailed error code. Scenarios reach the Greengrass-only parts — the SDK client, each
// device's group — through Of(env).
package greengrass

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	gg "github.com/aws/aws-sdk-go-v2/service/greengrass"
	"github.com/aws/aws-sdk-go-v2/service/greengrass/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness/dialect"
	"github.com/fleetlab/fleetlab/harness/faults"
	agentgg "github.com/fleetlab/fleetlab/sim/agent/greengrass"
	"github.com/fleetlab/fleetlab/sim/awsapi/sdkhttp"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// Name is the dialect's name in specs.
const Name = "greengrass"

// Statuses, as specs name them: a bulk deployment's (the job's) and a group deployment's (a device's).
const (
	JobRunning   = string(types.BulkDeploymentStatusRunning)
	JobCompleted = string(types.BulkDeploymentStatusCompleted)
	JobStopped   = string(types.BulkDeploymentStatusStopped)
	JobFailed    = string(types.BulkDeploymentStatusFailed)

	DeviceBuilding   = "Building"
	DeviceInProgress = "InProgress"
	DeviceSuccess    = "Success"
	DeviceFailure    = "Failure"
)

// The functions of every group version the driver deploys, by id.
const (
	FunctionPreLaunch  = "pre-launch"
	FunctionPostLaunch = "post-launch"
	FunctionApp        = "app"
)

// ExecutionRole is the role the bulk deployments name.
const ExecutionRole = "arn:aws:iam::123456789012:role/fleetlab-greengrass-bulk"

// Driver is the Greengrass V1 dialect. The zero value is ready to use.
type Driver struct{}

var _ dialect.Driver = Driver{}

// Name implements dialect.Driver.
func (Driver) Name() string { return Name }

// Steps implements dialect.Driver: the core's steps, in order. The bundle's pre- and post-launch files, the
// group's on-demand functions, run in Starting, each told from the other by its function's id.
func (Driver) Steps() faults.Dialect {
	return faults.Dialect{Name: "Greengrass V1", Steps: []string{agentgg.StepDownloading, agentgg.StepStarting,
		agentgg.StepFinished}, Download: agentgg.StepDownloading,
		Scripts:      map[string]string{faults.ScriptPreLaunch: agentgg.StepStarting, faults.ScriptPostLaunch: agentgg.StepStarting},
		ScriptSuffix: map[string]string{faults.ScriptPreLaunch: " " + FunctionPreLaunch, faults.ScriptPostLaunch: " " + FunctionPostLaunch}}
}

// Statuses implements dialect.Driver.
func (Driver) Statuses() dialect.Statuses {
	return dialect.Statuses{Final: []string{JobCompleted, JobStopped, JobFailed}, Failed: JobFailed,
		Device:       []string{DeviceSuccess, DeviceFailure, DeviceInProgress, DeviceBuilding},
		DeviceFailed: []string{DeviceFailure}}
}

// CheckJob implements dialect.Driver: Greengrass V1 deployments have no rollout policy, timeout, download
// condition or architecture.
func (Driver) CheckJob(j dialect.JobSpec) []dialect.Problem {
	return dialect.NoRolloutPolicy("Greengrass V1", j)
}

// Config implements dialect.Driver: there is nothing to configure.
func (Driver) Config(dialect.JobSpec) any { return nil }

// Open implements dialect.Driver.
func (Driver) Open(h dialect.Host) (dialect.Session, error) {
	return &Session{h: h, gg: client(h.Endpoint(), h.Transport()), out: client(h.Endpoint(), h.PublicTransport()),
		s3:     dialect.S3(h.Endpoint(), h.Transport()),
		groups: map[string]string{}}, nil
}

func client(endpoint string, rt http.RoundTripper) *gg.Client {
	return gg.New(gg.Options{BaseEndpoint: aws.String(endpoint), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("fleetlab", "fleetlab", ""), RetryMaxAttempts: 1,
		HTTPClient: sdkhttp.Client(rt)})
}

// Session is the Greengrass V1 dialect in one environment.
type Session struct {
	h      dialect.Host
	gg     *gg.Client // the session's own, from within the world
	out    *gg.Client // what Client hands out
	s3     *s3.Client
	groups map[string]string // device → group id; only from within Host.Do
	order  []string          // devices in registration order
	jobs   int
}

var _ dialect.Session = (*Session)(nil)

// Of returns the Greengrass V1 session of an environment (a *harness.Env); another dialect's panics.
func Of(env interface{ Session() dialect.Session }) *Session {
	s, ok := env.Session().(*Session)
	if !ok {
		panic(fmt.Sprintf("greengrass.Of: the environment runs another dialect (%T)", env.Session()))
	}
	return s
}

// Client returns the Greengrass V1 client (AWS SDK for Go v2, retries off) pointed at the service.
func (s *Session) Client() *gg.Client { return s.out }

// Group returns the id of the group whose core is device ("" when it is not registered).
func (s *Session) Group(device string) (id string) {
	s.h.Do(func() { id = s.groups[device] })
	return id
}

// ThingARN is the ARN of a device's thing, as its core definition names it.
func ThingARN(device string) string { return "arn:aws:iot:us-east-1:123456789012:thing/" + device }

// Register implements dialect.Session: each new device gets a core definition and a group of its own.
func (s *Session) Register(ctx context.Context, devs []fleet.Device) error {
	for _, d := range devs {
		name := d.Name()
		if _, ok := s.groups[name]; ok {
			continue
		}
		core, err := s.gg.CreateCoreDefinition(ctx, &gg.CreateCoreDefinitionInput{Name: aws.String(name),
			InitialVersion: &types.CoreDefinitionVersion{Cores: []types.Core{{Id: aws.String(name),
				ThingArn: aws.String(ThingARN(name)), CertificateArn: aws.String("arn:aws:iot:us-east-1:123456789012:cert/" + name)}}}})
		if err != nil {
			return fmt.Errorf("register core %s: %w", name, err)
		}
		g, err := s.gg.CreateGroup(ctx, &gg.CreateGroupInput{Name: aws.String(name),
			InitialVersion: &types.GroupVersion{CoreDefinitionVersionArn: core.LatestVersionArn}})
		if err != nil {
			return fmt.Errorf("register group of %s: %w", name, err)
		}
		s.groups[name] = aws.ToString(g.Id)
		s.order = append(s.order, name)
	}
	return nil
}

// Deploy implements dialect.Session: the bundle to every registered device's group, in one bulk deployment. The
// job is the bulk deployment's ARN. config must be nil.
func (s *Session) Deploy(ctx context.Context, bundle string, archs []string, config any) (string, error) {
	if config != nil {
		return "", fmt.Errorf("greengrass: deployment config %T: Greengrass V1 deployments take none", config)
	}
	if len(archs) > 0 {
		return "", errors.New("greengrass: Greengrass V1 deployments have no architectures")
	}
	obj := s.h.PutBundle(bundle)
	fn := func(id, file string, pinned bool) types.Function {
		return types.Function{Id: aws.String(id),
			FunctionArn: aws.String("arn:aws:lambda:us-east-1:123456789012:function:" + bundle + "-" + id + ":1"),
			FunctionConfiguration: &types.FunctionConfiguration{Executable: aws.String("resources/bundle/" + file),
				Pinned: aws.Bool(pinned), Environment: &types.FunctionConfigurationEnvironment{
					Variables: map[string]string{"FLEETLAB_BUNDLE": bundle}}}}
	}
	fns, err := s.gg.CreateFunctionDefinition(ctx, &gg.CreateFunctionDefinitionInput{Name: aws.String(bundle),
		InitialVersion: &types.FunctionDefinitionVersion{Functions: []types.Function{
			fn(FunctionPreLaunch, bundles.PreLaunchFile, false), fn(FunctionPostLaunch, bundles.PostLaunchFile, false),
			fn(FunctionApp, bundles.Package+"/"+bundles.LaunchFile, true)}}})
	if err != nil {
		return "", fmt.Errorf("greengrass: function definition: %w", err)
	}
	res, err := s.gg.CreateResourceDefinition(ctx, &gg.CreateResourceDefinitionInput{Name: aws.String(bundle),
		InitialVersion: &types.ResourceDefinitionVersion{Resources: []types.Resource{{Id: aws.String("bundle"),
			Name: aws.String(bundle), ResourceDataContainer: &types.ResourceDataContainer{
				S3MachineLearningModelResourceData: &types.S3MachineLearningModelResourceData{
					S3Uri: aws.String("s3://" + obj.Bucket + "/" + obj.Key), DestinationPath: aws.String("/bundle")}}}}}})
	if err != nil {
		return "", fmt.Errorf("greengrass: resource definition: %w", err)
	}
	subs, err := s.gg.CreateSubscriptionDefinition(ctx, &gg.CreateSubscriptionDefinitionInput{Name: aws.String(bundle),
		InitialVersion: &types.SubscriptionDefinitionVersion{Subscriptions: []types.Subscription{{Id: aws.String("cloud-to-app"),
			Source: aws.String("cloud"), Subject: aws.String("fleetlab/" + bundle),
			Target: aws.String("arn:aws:lambda:us-east-1:123456789012:function:" + bundle + "-" + FunctionApp + ":1")}}}})
	if err != nil {
		return "", fmt.Errorf("greengrass: subscription definition: %w", err)
	}
	var lines []string
	for _, dev := range s.order {
		gid := s.groups[dev]
		g, err := s.gg.GetGroup(ctx, &gg.GetGroupInput{GroupId: aws.String(gid)})
		if err != nil {
			return "", fmt.Errorf("greengrass: group of %s: %w", dev, err)
		}
		cur, err := s.gg.GetGroupVersion(ctx, &gg.GetGroupVersionInput{GroupId: aws.String(gid), GroupVersionId: g.LatestVersion})
		if err != nil {
			return "", fmt.Errorf("greengrass: group version of %s: %w", dev, err)
		}
		v, err := s.gg.CreateGroupVersion(ctx, &gg.CreateGroupVersionInput{GroupId: aws.String(gid),
			CoreDefinitionVersionArn: cur.Definition.CoreDefinitionVersionArn, FunctionDefinitionVersionArn: fns.LatestVersionArn,
			ResourceDefinitionVersionArn: res.LatestVersionArn, SubscriptionDefinitionVersionArn: subs.LatestVersionArn})
		if err != nil {
			return "", fmt.Errorf("greengrass: group version for %s: %w", dev, err)
		}
		lines = append(lines, fmt.Sprintf(`{"GroupId":%q,"GroupVersionId":%q,"DeploymentType":"NewDeployment"}`, gid,
			aws.ToString(v.Version)))
	}
	s.jobs++
	key := fmt.Sprintf("greengrass/bulk-%d.jsonl", s.jobs)
	if _, err := s.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(obj.Bucket)}); err != nil &&
		!errors.As(err, new(*s3types.BucketAlreadyOwnedByYou)) && !errors.As(err, new(*s3types.BucketAlreadyExists)) {
		return "", fmt.Errorf("greengrass: input file bucket: %w", err)
	}
	if _, err := s.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(obj.Bucket), Key: aws.String(key),
		Body: bytes.NewReader([]byte(strings.Join(lines, "\n") + "\n"))}); err != nil {
		return "", fmt.Errorf("greengrass: input file: %w", err)
	}
	out, err := s.gg.StartBulkDeployment(ctx, &gg.StartBulkDeploymentInput{
		InputFileUri: aws.String("s3://" + obj.Bucket + "/" + key), ExecutionRoleArn: aws.String(ExecutionRole)})
	if err != nil {
		return "", err
	}
	job := aws.ToString(out.BulkDeploymentArn)
	s.h.Logf("created bulk deployment %s", job)
	return job, nil
}

// Cancel implements dialect.Session with StopBulkDeployment.
func (s *Session) Cancel(ctx context.Context, job string) error {
	_, err := s.gg.StopBulkDeployment(ctx, &gg.StopBulkDeploymentInput{BulkDeploymentId: aws.String(JobID(job))})
	return err
}

// Describe implements dialect.Session with GetBulkDeploymentStatus and ListBulkDeploymentDetailedReports.
func (s *Session) Describe(ctx context.Context, job string) (dialect.Job, error) {
	id := JobID(job)
	st, err := s.gg.GetBulkDeploymentStatus(ctx, &gg.GetBulkDeploymentStatusInput{BulkDeploymentId: aws.String(id)})
	if err != nil {
		return dialect.Job{}, err
	}
	j := dialect.Job{ARN: job, ID: id, Status: string(st.BulkDeploymentStatus), FailureReason: aws.ToString(st.ErrorMessage)}
	if len(st.ErrorDetails) > 0 {
		j.FailureCode = aws.ToString(st.ErrorDetails[0].DetailedErrorCode)
	}
	device := map[string]string{}
	for dev, gid := range s.groups {
		device[gid] = dev
	}
	var token *string
	for {
		rep, err := s.gg.ListBulkDeploymentDetailedReports(ctx, &gg.ListBulkDeploymentDetailedReportsInput{
			BulkDeploymentId: aws.String(id), NextToken: token})
		if err != nil {
			return dialect.Job{}, err
		}
		for _, d := range rep.Deployments {
			gid := GroupID(aws.ToString(d.GroupArn))
			r := dialect.Robot{Name: device[gid], Status: aws.ToString(d.DeploymentStatus),
				FailureReason: aws.ToString(d.ErrorMessage)}
			if r.Name == "" {
				r.Name = gid
			}
			if len(d.ErrorDetails) > 0 {
				r.FailureCode = aws.ToString(d.ErrorDetails[0].DetailedErrorCode)
			}
			j.Robots = append(j.Robots, r)
		}
		if token = rep.NextToken; token == nil {
			break
		}
	}
	slices.SortFunc(j.Robots, func(a, b dialect.Robot) int { return strings.Compare(a.Name, b.Name) })
	return j, nil
}

// JobID returns the bulk deployment id at the end of its ARN.
func JobID(arn string) string { return arn[strings.LastIndexByte(arn, '/')+1:] }

// GroupID returns the group id of a group or group version ARN (…:/greengrass/groups/<id>[/versions/<v>]).
func GroupID(arn string) string {
	_, rest, ok := strings.Cut(arn, "/greengrass/groups/")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, "/")
	return id
}
