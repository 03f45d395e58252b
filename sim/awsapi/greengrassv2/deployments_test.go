package greengrassv2

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	gg "github.com/aws/aws-sdk-go-v2/service/greengrassv2"
	ggtypes "github.com/aws/aws-sdk-go-v2/service/greengrassv2/types"
	iotsdk "github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/awsapi/iot"
	"github.com/fleetlab/fleetlab/sim/awsapi/sdkhttp"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/store"
)

// deployEnv is env with the rollout engine and the IoT dialect (the thing registry and its jobs views) on the
// same handler, as the service assembles them.
type deployEnv struct {
	*env
	eng *engine.Engine
	gg  *Service
	iot *iotsdk.Client
	// auth, when set, is the handler's signature check.
	auth *awsapi.SigV4
}

func newDeployEnv(t *testing.T) *deployEnv { return newDeployEnvOn(t, store.NewMemory()) }

func newDeployEnvOn(t *testing.T, st store.Store) *deployEnv {
	t.Helper()
	e := &deployEnv{env: newEnvOn(t, st)}
	e.startAll()
	e.component("com.example.Hello", "1.0.0", "hello/1.0.0/hello.py")
	return e
}

// startAll builds the engine and both dialects over the env's store, as a (re)started process does.
func (e *deployEnv) startAll() {
	t := e.t
	eng, err := engine.New(engine.Options{Clock: e.clock, Store: e.store})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := iot.New(iot.Options{Store: e.store, Clock: e.clock, Engine: eng})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(Options{Store: e.store, Clock: e.clock, Objects: e.objects, Engine: eng, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	h := awsapi.NewHandler(awsapi.Options{Auth: e.auth})
	if err := reg.Register(h); err != nil {
		t.Fatal(err)
	}
	if err := svc.Register(h); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e.srv, e.eng, e.gg = srv, eng, svc
	creds := credentials.NewStaticCredentialsProvider("AK", "SK", "")
	e.c = gg.New(gg.Options{BaseEndpoint: aws.String(srv.URL), HTTPClient: sdkhttp.Client(nil), Region: region, Credentials: creds,
		RetryMaxAttempts: 1})
	e.iot = iotsdk.New(iotsdk.Options{BaseEndpoint: aws.String(srv.URL), HTTPClient: sdkhttp.Client(nil), Region: region, Credentials: creds,
		RetryMaxAttempts: 1})
}

func (e *deployEnv) restartAll() {
	e.t.Helper()
	e.gg.Close()
	e.srv.Close()
	e.startAll()
}

func (e *deployEnv) component(name, version string, keys ...string) {
	e.t.Helper()
	e.create(recipe(name, version, keys...))
}

func thingARN(name string) string { return "arn:aws:iot:" + region + ":" + account + ":thing/" + name }
func groupARN(name string) string {
	return "arn:aws:iot:" + region + ":" + account + ":thinggroup/" + name
}

// things creates things, and the group with them as members when group is not "".
func (e *deployEnv) things(group string, names ...string) {
	e.t.Helper()
	if group != "" {
		if _, err := e.iot.CreateThingGroup(e.ctx, &iotsdk.CreateThingGroupInput{ThingGroupName: &group}); err != nil {
			e.t.Fatal(err)
		}
	}
	for _, n := range names {
		if _, err := e.iot.CreateThing(e.ctx, &iotsdk.CreateThingInput{ThingName: aws.String(n)}); err != nil {
			e.t.Fatal(err)
		}
		if group != "" {
			e.join(group, n)
		}
	}
}

func (e *deployEnv) join(group, thing string) {
	e.t.Helper()
	if _, err := e.iot.AddThingToThingGroup(e.ctx, &iotsdk.AddThingToThingGroupInput{
		ThingGroupName: &group, ThingName: &thing}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *deployEnv) leave(group, thing string) {
	e.t.Helper()
	if _, err := e.iot.RemoveThingFromThingGroup(e.ctx, &iotsdk.RemoveThingFromThingGroupInput{
		ThingGroupName: &group, ThingName: &thing}); err != nil {
		e.t.Fatal(err)
	}
}

func hello() map[string]ggtypes.ComponentDeploymentSpecification {
	return map[string]ggtypes.ComponentDeploymentSpecification{
		"com.example.Hello": {ComponentVersion: aws.String("1.0.0")}}
}

func (e *deployEnv) deploy(in *gg.CreateDeploymentInput) *gg.CreateDeploymentOutput {
	e.t.Helper()
	if in.Components == nil {
		in.Components = hello()
	}
	out, err := e.c.CreateDeployment(e.ctx, in)
	if err != nil {
		e.t.Fatalf("create deployment: %v", err)
	}
	return out
}

func (e *deployEnv) get(id string) *gg.GetDeploymentOutput {
	e.t.Helper()
	out, err := e.c.GetDeployment(e.ctx, &gg.GetDeploymentInput{DeploymentId: aws.String(id)})
	if err != nil {
		e.t.Fatalf("get deployment %s: %v", id, err)
	}
	return out
}

// run ticks the engine at every time it names until it names none or until is passed.
func (e *deployEnv) run(until time.Duration) {
	end := e.clock.Now().Add(until)
	for next := e.eng.Tick(); !next.IsZero() && !next.After(end); next = e.eng.Tick() {
		e.clock.Set(next)
	}
}

// finish has the device start its next execution and end it with status and details.
func (e *deployEnv) finish(thing string, status engine.ExecStatus, details map[string]string) {
	e.t.Helper()
	x, ok, err := e.eng.StartNext(thing, engine.Update{Status: engine.ExecInProgress})
	if err != nil || !ok {
		e.t.Fatalf("%s starts nothing: %v", thing, err)
	}
	if _, err := e.eng.Report(thing, x.Deployment, engine.Update{Status: status, Details: details}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *deployEnv) effective(thing string) []ggtypes.EffectiveDeployment {
	e.t.Helper()
	out, err := e.c.ListEffectiveDeployments(e.ctx, &gg.ListEffectiveDeploymentsInput{
		CoreDeviceThingName: aws.String(thing)})
	if err != nil {
		e.t.Fatal(err)
	}
	return out.EffectiveDeployments
}

func TestCreateDeploymentErrors(t *testing.T) {
	e := newDeployEnv(t)
	e.things("fleet", "t1")
	one := 1
	tests := []struct {
		name   string
		in     gg.CreateDeploymentInput
		check  func(t *testing.T, err error)
		status int
	}{
		{"unknown thing", gg.CreateDeploymentInput{TargetArn: aws.String(thingARN("nope"))},
			func(t *testing.T, err error) {
				if got := aws.ToString(wantError[*ggtypes.ResourceNotFoundException](t, err, 404).ResourceType); got != "thing" {
					t.Errorf("resourceType %q", got)
				}
			}, 404},
		{"unknown group", gg.CreateDeploymentInput{TargetArn: aws.String(groupARN("nope"))},
			func(t *testing.T, err error) { wantError[*ggtypes.ResourceNotFoundException](t, err, 404) }, 404},
		{"not a target ARN", gg.CreateDeploymentInput{TargetArn: aws.String("arn:aws:iot:us-east-1:1:job/x")},
			func(t *testing.T, err error) { wantError[*ggtypes.ValidationException](t, err, 400) }, 400},
		{"missing component version", gg.CreateDeploymentInput{TargetArn: aws.String(thingARN("t1")),
			Components: map[string]ggtypes.ComponentDeploymentSpecification{
				"com.example.Hello": {ComponentVersion: aws.String("9.0.0")}}},
			func(t *testing.T, err error) {
				nf := wantError[*ggtypes.ResourceNotFoundException](t, err, 404)
				if aws.ToString(nf.ResourceId) != versionARN("com.example.Hello", "9.0.0") {
					t.Errorf("resourceId %q", aws.ToString(nf.ResourceId))
				}
			}, 404},
		{"parent of a thing target", gg.CreateDeploymentInput{TargetArn: aws.String(thingARN("t1")),
			ParentTargetArn: aws.String(groupARN("fleet"))},
			func(t *testing.T, err error) { wantError[*ggtypes.ValidationException](t, err, 400) }, 400},
		{"merge not an object", gg.CreateDeploymentInput{TargetArn: aws.String(thingARN("t1")),
			Components: map[string]ggtypes.ComponentDeploymentSpecification{"com.example.Hello": {
				ComponentVersion:    aws.String("1.0.0"),
				ConfigurationUpdate: &ggtypes.ComponentConfigurationUpdate{Merge: aws.String("[1]")}}}},
			func(t *testing.T, err error) { wantError[*ggtypes.ValidationException](t, err, 400) }, 400},
		{"both rate criteria", gg.CreateDeploymentInput{TargetArn: aws.String(groupARN("fleet")),
			IotJobConfiguration: &ggtypes.DeploymentIoTJobConfiguration{
				JobExecutionsRolloutConfig: &ggtypes.IoTJobExecutionsRolloutConfig{
					ExponentialRate: &ggtypes.IoTJobExponentialRolloutRate{BaseRatePerMinute: aws.Int32(1),
						IncrementFactor: aws.Float64(2), RateIncreaseCriteria: &ggtypes.IoTJobRateIncreaseCriteria{
							NumberOfNotifiedThings: aws.Int32(int32(one)), NumberOfSucceededThings: aws.Int32(1)}}}}},
			func(t *testing.T, err error) {
				v := wantError[*ggtypes.ValidationException](t, err, 400)
				if v.Reason != ggtypes.ValidationExceptionReasonFieldValidationFailed || len(v.Fields) != 1 {
					t.Errorf("reason %s fields %v", v.Reason, v.Fields)
				}
			}, 400},
		{"rate above the model's bound", gg.CreateDeploymentInput{TargetArn: aws.String(groupARN("fleet")),
			IotJobConfiguration: &ggtypes.DeploymentIoTJobConfiguration{
				JobExecutionsRolloutConfig: &ggtypes.IoTJobExecutionsRolloutConfig{MaximumPerMinute: aws.Int32(1001)}}},
			func(t *testing.T, err error) { wantError[*ggtypes.ValidationException](t, err, 400) }, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			if in.Components == nil {
				in.Components = hello()
			}
			_, err := e.c.CreateDeployment(e.ctx, &in)
			tt.check(t, err)
		})
	}
	if ds := e.eng.Deployments(Kind); len(ds) != 0 {
		t.Errorf("refused requests made %d engine deployments", len(ds))
	}
}

// A new deployment for a target is its next revision: the previous one's job is CANCELED (the IoT view of the
// same job id) and it is no longer the latest.
func TestRevisionSupersedes(t *testing.T) {
	e := newDeployEnv(t)
	e.things("fleet", "t1", "t2")
	first := e.deploy(&gg.CreateDeploymentInput{TargetArn: aws.String(groupARN("fleet")),
		DeploymentName: aws.String("one")})
	got := e.get(aws.ToString(first.DeploymentId))
	if got.DeploymentStatus != ggtypes.DeploymentStatusActive || aws.ToString(got.RevisionId) != "1" ||
		!got.IsLatestForTarget || aws.ToString(got.IotJobId) != aws.ToString(first.IotJobId) ||
		aws.ToString(got.IotJobArn) != "arn:aws:iot:us-east-1:123456789012:job/"+aws.ToString(first.IotJobId) ||
		got.DeploymentPolicies.FailureHandlingPolicy != ggtypes.DeploymentFailureHandlingPolicyRollback {
		t.Fatalf("first revision %+v", got)
	}
	second := e.deploy(&gg.CreateDeploymentInput{TargetArn: aws.String(groupARN("fleet")),
		DeploymentName: aws.String("two")})
	old := e.get(aws.ToString(first.DeploymentId))
	if old.DeploymentStatus != ggtypes.DeploymentStatusInactive || old.IsLatestForTarget {
		t.Errorf("superseded revision: status %s, latest %v", old.DeploymentStatus, old.IsLatestForTarget)
	}
	if n := e.get(aws.ToString(second.DeploymentId)); aws.ToString(n.RevisionId) != "2" || !n.IsLatestForTarget {
		t.Errorf("second revision %s latest %v", aws.ToString(n.RevisionId), n.IsLatestForTarget)
	}
	job, err := e.iot.DescribeJob(e.ctx, &iotsdk.DescribeJobInput{JobId: first.IotJobId})
	if err != nil {
		t.Fatal(err)
	}
	if job.Job.Status != "CANCELED" || job.Job.TargetSelection != "CONTINUOUS" {
		t.Errorf("previous revision's IoT job: %s %s", job.Job.Status, job.Job.TargetSelection)
	}
	for _, th := range []string{"t1", "t2"} {
		if x, err := e.eng.Execution(aws.ToString(first.IotJobId), th); err != nil || x.Status != engine.ExecCanceled {
			t.Errorf("%s old execution %v %v", th, x.Status, err)
		}
	}

	list := func(in gg.ListDeploymentsInput) []string {
		t.Helper()
		out, err := e.c.ListDeployments(e.ctx, &in)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, d := range out.Deployments {
			ids = append(ids, aws.ToString(d.DeploymentId))
		}
		return ids
	}
	e.things("", "solo")
	third := e.deploy(&gg.CreateDeploymentInput{TargetArn: aws.String(thingARN("solo"))})
	a, b, c := aws.ToString(first.DeploymentId), aws.ToString(second.DeploymentId), aws.ToString(third.DeploymentId)
	for _, tt := range []struct {
		name string
		in   gg.ListDeploymentsInput
		want []string
	}{
		{"latest only by default", gg.ListDeploymentsInput{}, []string{b, c}},
		{"all", gg.ListDeploymentsInput{HistoryFilter: ggtypes.DeploymentHistoryFilterAll}, []string{a, b, c}},
		{"all of one target", gg.ListDeploymentsInput{HistoryFilter: ggtypes.DeploymentHistoryFilterAll,
			TargetArn: aws.String(groupARN("fleet"))}, []string{a, b}},
		{"parent target", gg.ListDeploymentsInput{ParentTargetArn: aws.String(groupARN("fleet"))}, nil},
	} {
		if got := list(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	p := gg.NewListDeploymentsPaginator(e.c, &gg.ListDeploymentsInput{
		HistoryFilter: ggtypes.DeploymentHistoryFilterAll, MaxResults: aws.Int32(1)})
	var paged []string
	for p.HasMorePages() {
		out, err := p.NextPage(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range out.Deployments {
			paged = append(paged, aws.ToString(d.DeploymentId))
		}
	}
	if !slices.Equal(paged, []string{a, b, c}) {
		t.Errorf("paged %v", paged)
	}
	_, err = e.c.ListDeployments(e.ctx, &gg.ListDeploymentsInput{NextToken: aws.String("garbage")})
	wantError[*ggtypes.ValidationException](t, err, 400)
}

// A thing-group deployment is continuous: a thing that joins the group later gets the latest revision, one that
// leaves loses it, and a restart catches up with what changed while nobody watched.
func TestGroupMembershipFollowed(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "gg.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := newDeployEnvOn(t, st)
	e.things("fleet", "t1")
	e.things("", "t2", "t3")
	d := e.deploy(&gg.CreateDeploymentInput{TargetArn: aws.String(groupARN("fleet"))})
	job := aws.ToString(d.IotJobId)
	e.run(time.Minute)
	e.join("fleet", "t2")
	if x, err := e.eng.Execution(job, "t2"); err != nil || !x.Released || x.Status != engine.ExecQueued {
		t.Fatalf("t2 joined: execution %+v %v", x, err)
	}
	if got := e.effective("t2"); len(got) != 1 || got[0].CoreDeviceExecutionStatus != "QUEUED" ||
		aws.ToString(got[0].DeploymentId) != aws.ToString(d.DeploymentId) {
		t.Errorf("t2 effective deployments %+v", got)
	}
	e.leave("fleet", "t1")
	if x, _ := e.eng.Execution(job, "t1"); x.Status != engine.ExecRemoved {
		t.Errorf("t1 left: execution %s", x.Status)
	}

	// Changes while the dialect is down are caught up at start.
	e.gg.Close()
	e.join("fleet", "t3")
	if _, err := e.eng.Execution(job, "t3"); err == nil {
		t.Fatal("a closed dialect still follows the group")
	}
	e.restartAll()
	if x, err := e.eng.Execution(job, "t3"); err != nil || !x.Released {
		t.Errorf("after restart t3 has %+v %v", x, err)
	}
	got := e.get(aws.ToString(d.DeploymentId))
	if got.DeploymentStatus != ggtypes.DeploymentStatusActive || aws.ToString(got.RevisionId) != "1" {
		t.Errorf("after restart %+v", got)
	}
	again := e.deploy(&gg.CreateDeploymentInput{TargetArn: aws.String(groupARN("fleet"))})
	if r := aws.ToString(e.get(aws.ToString(again.DeploymentId)).RevisionId); r != "2" {
		t.Errorf("revision after restart %q", r)
	}
}

// A thing target's deployment ends with its one execution; the device's report shows in its effective
// deployments.
func TestThingTargetOutcome(t *testing.T) {
	e := newDeployEnv(t)
	e.things("", "ok", "bad")
	good := e.deploy(&gg.CreateDeploymentInput{TargetArn: aws.String(thingARN("ok"))})
	broken := e.deploy(&gg.CreateDeploymentInput{TargetArn: aws.String(thingARN("bad"))})
	e.run(time.Minute)
	e.finish("ok", engine.ExecSucceeded, map[string]string{detailDeploymentStatus: "SUCCESSFUL"})
	e.finish("bad", engine.ExecFailed, map[string]string{detailDeploymentStatus: "FAILED_ROLLBACK_COMPLETE",
		detailErrorStack: "DEPLOYMENT_FAILURE,ARTIFACT_DOWNLOAD_ERROR", detailErrorTypes: "HTTP_ERROR"})
	e.run(time.Minute)
	if s := e.get(aws.ToString(good.DeploymentId)).DeploymentStatus; s != ggtypes.DeploymentStatusCompleted {
		t.Errorf("good: %s", s)
	}
	if s := e.get(aws.ToString(broken.DeploymentId)).DeploymentStatus; s != ggtypes.DeploymentStatusFailed {
		t.Errorf("broken: %s", s)
	}
	ok := e.effective("ok")
	if len(ok) != 1 || ok[0].CoreDeviceExecutionStatus != ggtypes.EffectiveDeploymentExecutionStatusCompleted ||
		aws.ToString(ok[0].Reason) != "SUCCESSFUL" || ok[0].StatusDetails != nil {
		t.Errorf("ok effective %+v", ok)
	}
	bad := e.effective("bad")
	if len(bad) != 1 || bad[0].CoreDeviceExecutionStatus != ggtypes.EffectiveDeploymentExecutionStatusFailed ||
		aws.ToString(bad[0].Reason) != "FAILED_ROLLBACK_COMPLETE" || bad[0].StatusDetails == nil ||
		!slices.Equal(bad[0].StatusDetails.ErrorStack, []string{"DEPLOYMENT_FAILURE", "ARTIFACT_DOWNLOAD_ERROR"}) ||
		!slices.Equal(bad[0].StatusDetails.ErrorTypes, []string{"HTTP_ERROR"}) {
		t.Errorf("bad effective %+v", bad)
	}
	_, err := e.c.ListEffectiveDeployments(e.ctx, &gg.ListEffectiveDeploymentsInput{
		CoreDeviceThingName: aws.String("stranger")})
	wantError[*ggtypes.ResourceNotFoundException](t, err, 404)
	if !e.gg.KnowsThing("ok") || e.gg.KnowsThing("stranger") {
		t.Error("KnowsThing")
	}
}

// jobExecutionsRolloutConfig paces releases as IoT Jobs does: maximumPerMinute evenly, or an exponential rate
// that multiplies each time the notified count reaches another multiple of the threshold.
func TestRolloutPacing(t *testing.T) {
	tests := []struct {
		name   string
		config *ggtypes.IoTJobExecutionsRolloutConfig
		want   []time.Duration
	}{
		{"none releases at once", nil, []time.Duration{0, 0, 0, 0}},
		{"constant 2 a minute", &ggtypes.IoTJobExecutionsRolloutConfig{MaximumPerMinute: aws.Int32(2)},
			[]time.Duration{0, 30 * time.Second, 60 * time.Second, 90 * time.Second}},
		{"exponential from 1, doubling every 2 notified", &ggtypes.IoTJobExecutionsRolloutConfig{
			ExponentialRate: &ggtypes.IoTJobExponentialRolloutRate{BaseRatePerMinute: aws.Int32(1),
				IncrementFactor: aws.Float64(2), RateIncreaseCriteria: &ggtypes.IoTJobRateIncreaseCriteria{
					NumberOfNotifiedThings: aws.Int32(2)}}},
			[]time.Duration{0, 60 * time.Second, 90 * time.Second, 120 * time.Second}},
		{"exponential capped by maximumPerMinute", &ggtypes.IoTJobExecutionsRolloutConfig{
			MaximumPerMinute: aws.Int32(1),
			ExponentialRate: &ggtypes.IoTJobExponentialRolloutRate{BaseRatePerMinute: aws.Int32(1),
				IncrementFactor: aws.Float64(2), RateIncreaseCriteria: &ggtypes.IoTJobRateIncreaseCriteria{
					NumberOfNotifiedThings: aws.Int32(1)}}},
			[]time.Duration{0, time.Minute, 2 * time.Minute, 3 * time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newDeployEnv(t)
			e.things("fleet", "a", "b", "c", "d")
			start := e.clock.Now()
			out := e.deploy(&gg.CreateDeploymentInput{TargetArn: aws.String(groupARN("fleet")),
				IotJobConfiguration: &ggtypes.DeploymentIoTJobConfiguration{JobExecutionsRolloutConfig: tt.config}})
			e.run(time.Hour)
			xs, err := e.eng.Executions(aws.ToString(out.IotJobId))
			if err != nil {
				t.Fatal(err)
			}
			var got []time.Duration
			for _, x := range xs {
				if !x.Released {
					t.Fatalf("%s never released", x.Device)
				}
				got = append(got, x.ReleasedAt.Sub(start))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("releases at %v, want %v", got, tt.want)
			}
		})
	}
}

// abortConfig cancels the job once the failed percentage of notified things exceeds the threshold: queued
// executions are canceled, and the deployment is CANCELED. inProgressTimeoutInMinutes times executions out.
func TestAbortAndTimeout(t *testing.T) {
	e := newDeployEnv(t)
	e.things("fleet", "a", "b", "c", "d")
	out := e.deploy(&gg.CreateDeploymentInput{TargetArn: aws.String(groupARN("fleet")),
		IotJobConfiguration: &ggtypes.DeploymentIoTJobConfiguration{
			AbortConfig: &ggtypes.IoTJobAbortConfig{CriteriaList: []ggtypes.IoTJobAbortCriteria{{
				FailureType: ggtypes.IoTJobExecutionFailureTypeFailed, Action: ggtypes.IoTJobAbortActionCancel,
				ThresholdPercentage: 25, MinNumberOfExecutedThings: aws.Int32(2)}}},
			TimeoutConfig: &ggtypes.IoTJobTimeoutConfig{InProgressTimeoutInMinutes: aws.Int64(5)}}})
	id, job := aws.ToString(out.DeploymentId), aws.ToString(out.IotJobId)
	e.run(time.Second)
	e.finish("a", engine.ExecFailed, nil)
	e.run(time.Second)
	if s := e.get(id).DeploymentStatus; s != ggtypes.DeploymentStatusActive {
		t.Fatalf("25%% failed is not above the threshold, yet the deployment is %s", s)
	}
	if _, _, err := e.eng.StartNext("b", engine.Update{Status: engine.ExecInProgress}); err != nil {
		t.Fatal(err)
	}
	e.finish("c", engine.ExecFailed, nil)
	e.run(time.Second)
	if s := e.get(id).DeploymentStatus; s != ggtypes.DeploymentStatusCanceled {
		t.Fatalf("50%% failed: deployment %s, want CANCELED", s)
	}
	if x, _ := e.eng.Execution(job, "d"); x.Status != engine.ExecCanceled {
		t.Errorf("queued d is %s", x.Status)
	}
	if x, _ := e.eng.Execution(job, "b"); x.Status != engine.ExecInProgress {
		t.Errorf("in-progress b is %s", x.Status)
	}
	e.run(5 * time.Minute)
	if got := e.effective("b"); len(got) != 1 ||
		got[0].CoreDeviceExecutionStatus != ggtypes.EffectiveDeploymentExecutionStatusTimedOut {
		t.Errorf("b after its in-progress timeout: %+v", got)
	}
}

func TestCancelAndDelete(t *testing.T) {
	e := newDeployEnv(t)
	e.things("fleet", "a", "b")
	out := e.deploy(&gg.CreateDeploymentInput{TargetArn: aws.String(groupARN("fleet"))})
	id, job := out.DeploymentId, aws.ToString(out.IotJobId)
	e.run(time.Second)
	if _, _, err := e.eng.StartNext("a", engine.Update{Status: engine.ExecInProgress}); err != nil {
		t.Fatal(err)
	}
	_, err := e.c.DeleteDeployment(e.ctx, &gg.DeleteDeploymentInput{DeploymentId: id})
	wantError[*ggtypes.ConflictException](t, err, http.StatusConflict)

	c, err := e.c.CancelDeployment(e.ctx, &gg.CancelDeploymentInput{DeploymentId: id})
	if err != nil || aws.ToString(c.Message) != "SUCCESS" {
		t.Fatalf("cancel: %v %v", c, err)
	}
	if s := e.get(aws.ToString(id)).DeploymentStatus; s != ggtypes.DeploymentStatusCanceled {
		t.Errorf("canceled deployment is %s", s)
	}
	if x, _ := e.eng.Execution(job, "a"); x.Status != engine.ExecInProgress {
		t.Errorf("a had it and keeps it: %s", x.Status)
	}
	if x, _ := e.eng.Execution(job, "b"); x.Status != engine.ExecCanceled {
		t.Errorf("b had not started: %s", x.Status)
	}
	_, err = e.c.CancelDeployment(e.ctx, &gg.CancelDeploymentInput{DeploymentId: id})
	wantError[*ggtypes.ConflictException](t, err, http.StatusConflict)

	if _, err := e.c.DeleteDeployment(e.ctx, &gg.DeleteDeploymentInput{DeploymentId: id}); err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"get": func() error {
			_, err := e.c.GetDeployment(e.ctx, &gg.GetDeploymentInput{DeploymentId: id})
			return err
		},
		"cancel": func() error {
			_, err := e.c.CancelDeployment(e.ctx, &gg.CancelDeploymentInput{DeploymentId: id})
			return err
		},
		"delete": func() error {
			_, err := e.c.DeleteDeployment(e.ctx, &gg.DeleteDeploymentInput{DeploymentId: id})
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			nf := wantError[*ggtypes.ResourceNotFoundException](t, call(), 404)
			if aws.ToString(nf.ResourceType) != "deployment" {
				t.Errorf("resourceType %q", aws.ToString(nf.ResourceType))
			}
		})
	}
	list, err := e.c.ListDeployments(e.ctx, &gg.ListDeploymentsInput{HistoryFilter: ggtypes.DeploymentHistoryFilterAll})
	if err != nil || len(list.Deployments) != 0 {
		t.Errorf("after delete: %v %v", list, err)
	}
}

// A clientToken answers the deployment it first created, across a restart.
func TestDeploymentClientToken(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "gg.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := newDeployEnvOn(t, st)
	e.things("", "t1")
	in := &gg.CreateDeploymentInput{TargetArn: aws.String(thingARN("t1")), ClientToken: aws.String("tok-1")}
	first := e.deploy(in)
	again := e.deploy(in)
	if aws.ToString(again.DeploymentId) != aws.ToString(first.DeploymentId) {
		t.Errorf("same token: %s then %s", aws.ToString(first.DeploymentId), aws.ToString(again.DeploymentId))
	}
	e.restartAll()
	third := e.deploy(in)
	if aws.ToString(third.DeploymentId) != aws.ToString(first.DeploymentId) ||
		aws.ToString(third.IotJobId) != aws.ToString(first.IotJobId) {
		t.Errorf("after restart the token made %s", aws.ToString(third.DeploymentId))
	}
	if n := len(e.eng.Deployments(Kind)); n != 1 {
		t.Errorf("%d engine deployments, want 1", n)
	}
	if got := e.get(aws.ToString(first.DeploymentId)); got.DeploymentStatus != ggtypes.DeploymentStatusActive ||
		aws.ToString(got.Components["com.example.Hello"].ComponentVersion) != "1.0.0" {
		t.Errorf("after restart %+v", got)
	}
}

// Revisions created while things join the group: the latest revision ends with every member, and nothing
// deadlocks between the dialect, the registry and the engine.
func TestRevisionsWhileThingsJoin(t *testing.T) {
	e := newDeployEnv(t)
	e.things("fleet", "t0")
	var names []string
	for i := 1; i <= 8; i++ {
		names = append(names, "t"+strconv.Itoa(i))
	}
	e.things("", names...)
	e.deploy(&gg.CreateDeploymentInput{TargetArn: aws.String(groupARN("fleet"))}) // t0 is a device from the start
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 3; j++ {
				if _, err := e.c.CreateDeployment(e.ctx, &gg.CreateDeploymentInput{
					TargetArn: aws.String(groupARN("fleet")), Components: hello()}); err != nil {
					errs <- err
				}
				if _, err := e.c.ListCoreDevices(e.ctx, &gg.ListCoreDevicesInput{}); err != nil {
					errs <- err
				}
			}
		}()
	}
	for _, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.iot.AddThingToThingGroup(e.ctx, &iotsdk.AddThingToThingGroupInput{
				ThingGroupName: aws.String("fleet"), ThingName: aws.String(n)}); err != nil {
				errs <- err
			}
			if _, err := e.c.ListEffectiveDeployments(e.ctx, &gg.ListEffectiveDeploymentsInput{
				CoreDeviceThingName: aws.String("t0")}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	list, err := e.c.ListDeployments(e.ctx, &gg.ListDeploymentsInput{TargetArn: aws.String(groupARN("fleet"))})
	if err != nil || len(list.Deployments) != 1 || aws.ToString(list.Deployments[0].RevisionId) != "13" {
		t.Fatalf("latest: %+v %v", list, err)
	}
	latest := e.get(aws.ToString(list.Deployments[0].DeploymentId))
	xs, err := e.eng.Executions(aws.ToString(latest.IotJobId))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range xs {
		got = append(got, x.Device)
	}
	slices.Sort(got)
	want := append([]string{"t0"}, names...)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("latest revision's devices %v, want %v", got, want)
	}
}

// A thing that leaves the group after its deployment succeeded gets a job of its own whose document runs no
// component; the API shows no deployment of it, and the core device, once it ran it, has nothing installed.
func TestLeavingThingLosesComponents(t *testing.T) {
	e := newDeployEnv(t)
	e.things("fleet", "t1", "t2")
	d := e.deploy(&gg.CreateDeploymentInput{TargetArn: aws.String(groupARN("fleet"))})
	e.run(time.Minute)
	e.finish("t1", engine.ExecSucceeded, map[string]string{detailDeploymentStatus: "SUCCESSFUL"})
	e.finish("t2", engine.ExecSucceeded, map[string]string{detailDeploymentStatus: "SUCCESSFUL"})
	e.leave("fleet", "t1")
	e.run(time.Minute)
	x, ok, err := e.eng.StartNext("t1", engine.Update{Status: engine.ExecInProgress})
	if err != nil || !ok {
		t.Fatalf("t1 has no job after leaving: %v", err)
	}
	if x.Deployment == aws.ToString(d.IotJobId) {
		t.Fatalf("t1's next job is the group's")
	}
	dep, err := e.eng.Deployment(x.Deployment)
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Payload struct {
			Components map[string]any `json:"components"`
			TargetARN  string         `json:"targetArn"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(dep.Document, &env); err != nil {
		t.Fatal(err)
	}
	if len(env.Payload.Components) != 0 || env.Payload.TargetARN != groupARN("fleet") {
		t.Errorf("removal document %s", dep.Document)
	}
	if _, ok, _ := e.eng.StartNext("t2", engine.Update{Status: engine.ExecInProgress}); ok {
		t.Errorf("t2, still a member, got a job")
	}
	if _, err := e.eng.Report("t1", x.Deployment, engine.Update{Status: engine.ExecSucceeded}); err != nil {
		t.Fatal(err)
	}
	list, err := e.c.ListDeployments(e.ctx, &gg.ListDeploymentsInput{HistoryFilter: ggtypes.DeploymentHistoryFilterAll})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Deployments) != 1 || aws.ToString(list.Deployments[0].DeploymentId) != aws.ToString(d.DeploymentId) {
		t.Errorf("deployments %+v, want only the group's", list.Deployments)
	}
	if got := e.effective("t1"); len(got) != 1 || aws.ToString(got[0].DeploymentId) != aws.ToString(d.DeploymentId) {
		t.Errorf("t1 effective deployments %+v, want only the group's", got)
	}
	inst, err := e.c.ListInstalledComponents(e.ctx, &gg.ListInstalledComponentsInput{CoreDeviceThingName: aws.String("t1")})
	if err != nil {
		t.Fatal(err)
	}
	if len(inst.InstalledComponents) != 0 {
		t.Errorf("t1 installed %+v after the removal", inst.InstalledComponents)
	}
	inst, err = e.c.ListInstalledComponents(e.ctx, &gg.ListInstalledComponentsInput{CoreDeviceThingName: aws.String("t2")})
	if err != nil || len(inst.InstalledComponents) != 1 {
		t.Errorf("t2 installed %+v %v", inst, err)
	}
}
