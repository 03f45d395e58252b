package appconfig

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ac "github.com/aws/aws-sdk-go-v2/service/appconfig"
	act "github.com/aws/aws-sdk-go-v2/service/appconfig/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwt "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

func TestSchedule(t *testing.T) {
	m := time.Minute
	for _, tc := range []struct {
		name    string
		st      Strategy
		hold    bool
		at      []time.Duration
		percent []float64
	}{
		{"linear 20% over 10 h (the documented example)", Strategy{GrowthType: "LINEAR", GrowthFactor: 20,
			DeploymentDurationInMinutes: 600}, false,
			[]time.Duration{120 * m, 240 * m, 360 * m, 480 * m, 600 * m}, []float64{20, 40, 60, 80, 100}},
		{"linear 25% over 15 min, held (the captured timeline)", Strategy{GrowthType: "LINEAR", GrowthFactor: 25,
			DeploymentDurationInMinutes: 15}, true,
			[]time.Duration{3 * m, 6 * m, 9 * m, 12 * m}, []float64{25, 50, 75, 100}},
		{"linear 30% over 8 min: the last step is short of a full factor", Strategy{GrowthType: "LINEAR",
			GrowthFactor: 30, DeploymentDurationInMinutes: 8}, false,
			[]time.Duration{2 * m, 4 * m, 6 * m, 8 * m}, []float64{30, 60, 90, 100}},
		{"exponential 10% over 20 min (Canary10Percent20Minutes)", Strategy{GrowthType: "EXPONENTIAL",
			GrowthFactor: 10, DeploymentDurationInMinutes: 20}, false,
			[]time.Duration{4 * m, 8 * m, 12 * m, 16 * m, 20 * m}, []float64{10, 20, 40, 80, 100}},
		{"exponential 10% over 24 min, held", Strategy{GrowthType: "EXPONENTIAL", GrowthFactor: 10,
			DeploymentDurationInMinutes: 24}, true,
			[]time.Duration{4 * m, 8 * m, 12 * m, 16 * m, 20 * m}, []float64{10, 20, 40, 80, 100}},
		{"all at once", Strategy{GrowthType: "LINEAR", GrowthFactor: 100}, false,
			[]time.Duration{0}, []float64{100}},
		{"linear 50% over 1 min (Linear50PercentEvery30Seconds)", Strategy{GrowthType: "LINEAR", GrowthFactor: 50,
			DeploymentDurationInMinutes: 1}, false, []time.Duration{30 * time.Second, m}, []float64{50, 100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at, pct := Schedule(tc.st, tc.hold)
			if !slices.Equal(at, tc.at) || !slices.Equal(pct, tc.percent) {
				t.Errorf("schedule %v %v, want %v %v", at, pct, tc.at, tc.percent)
			}
		})
	}
}

// TestLinearRollout follows a deployment through the SDK: the percentage over time against the schedule, bake,
// COMPLETE, the event log newest first, the environment's state.
func TestLinearRollout(t *testing.T) {
	e := newEnv(t)
	w := e.world(nil)
	v := e.version(w, `{"x":1}`)
	st := e.strategy(act.GrowthTypeLinear, 25, 20, 10)
	out := e.start(w, st, v)
	if out.State != act.DeploymentStateDeploying || out.DeploymentNumber != 1 ||
		out.GrowthType != act.GrowthTypeLinear || aws.ToFloat32(out.PercentageComplete) != 0 {
		t.Fatalf("started: %s %d %s %v", out.State, out.DeploymentNumber, out.GrowthType,
			aws.ToFloat32(out.PercentageComplete))
	}
	env, err := e.c.GetEnvironment(e.ctx, &ac.GetEnvironmentInput{ApplicationId: &w.app, EnvironmentId: &w.env})
	if err != nil || env.State != act.EnvironmentStateDeploying {
		t.Fatalf("environment while deploying: %v %v", env.State, err)
	}
	for _, step := range []struct {
		after time.Duration
		state act.DeploymentState
		pct   float32
	}{
		{4*time.Minute + 59*time.Second, act.DeploymentStateDeploying, 0},
		{time.Second, act.DeploymentStateDeploying, 25},
		{5 * time.Minute, act.DeploymentStateDeploying, 50},
		{5 * time.Minute, act.DeploymentStateDeploying, 75},
		{5 * time.Minute, act.DeploymentStateBaking, 100},
		{10*time.Minute - time.Second, act.DeploymentStateBaking, 100},
		{time.Second, act.DeploymentStateComplete, 100},
	} {
		e.advance(step.after)
		d := e.deployment(w, 1)
		if d.State != step.state || aws.ToFloat32(d.PercentageComplete) != step.pct {
			t.Fatalf("at %v: %s %v%%, want %s %v%%", e.clock.Now().Sub(epoch), d.State,
				aws.ToFloat32(d.PercentageComplete), step.state, step.pct)
		}
	}
	d := e.deployment(w, 1)
	var got []string
	for _, ev := range d.EventLog {
		got = append(got, string(ev.EventType)+"@"+ev.OccurredAt.Sub(epoch).String()+"/"+string(ev.TriggeredBy))
	}
	want := []string{"DEPLOYMENT_COMPLETED@30m0s/APPCONFIG", "BAKE_TIME_STARTED@20m0s/APPCONFIG",
		"PERCENTAGE_UPDATED@20m0s/APPCONFIG", "PERCENTAGE_UPDATED@15m0s/APPCONFIG",
		"PERCENTAGE_UPDATED@10m0s/APPCONFIG", "PERCENTAGE_UPDATED@5m0s/APPCONFIG", "DEPLOYMENT_STARTED@0s/USER"}
	if !slices.Equal(got, want) {
		t.Errorf("event log\n%v\nwant\n%v", got, want)
	}
	if desc := aws.ToString(d.EventLog[5].Description); desc != "Configuration available to 25.00% of clients" {
		t.Errorf("percentage event: %q", desc)
	}
	if d.CompletedAt == nil || !d.CompletedAt.Equal(epoch.Add(30*time.Minute)) {
		t.Errorf("CompletedAt %v", d.CompletedAt)
	}
	env, _ = e.c.GetEnvironment(e.ctx, &ac.GetEnvironmentInput{ApplicationId: &w.app, EnvironmentId: &w.env})
	if env.State != act.EnvironmentStateReadyForDeployment {
		t.Errorf("environment after COMPLETE: %s", env.State)
	}
}

func TestExponentialRollout(t *testing.T) {
	e := newEnv(t)
	w := e.world(nil)
	v := e.version(w, `{}`)
	e.start(w, "AppConfig.Canary10Percent20Minutes", v)
	for i, want := range []float32{10, 20, 40, 80, 100} {
		e.advance(4 * time.Minute)
		d := e.deployment(w, 1)
		if aws.ToFloat32(d.PercentageComplete) != want {
			t.Fatalf("step %d at %v: %v%%, want %v%%", i+1, e.clock.Now().Sub(epoch), aws.ToFloat32(d.PercentageComplete),
				want)
		}
		if d.GrowthType != act.GrowthTypeExponential || d.FinalBakeTimeInMinutes != 10 {
			t.Fatalf("strategy fields %s %d", d.GrowthType, d.FinalBakeTimeInMinutes)
		}
	}
	if d := e.deployment(w, 1); d.State != act.DeploymentStateBaking {
		t.Fatalf("after 20 min: %s", d.State)
	}
	e.advance(10 * time.Minute)
	if d := e.deployment(w, 1); d.State != act.DeploymentStateComplete {
		t.Fatalf("after bake: %s", d.State)
	}
}

func TestHoldLastStepOption(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.HoldLastStep = true })
	w := e.world(nil)
	v := e.version(w, `{}`)
	e.start(w, e.strategy(act.GrowthTypeLinear, 25, 15, 0), v)
	e.advance(12 * time.Minute)
	if d := e.deployment(w, 1); aws.ToFloat32(d.PercentageComplete) != 100 || d.State != act.DeploymentStateDeploying {
		t.Fatalf("at 12 min: %s %v%%, want DEPLOYING at 100%% (held)", d.State, aws.ToFloat32(d.PercentageComplete))
	}
	e.advance(3 * time.Minute)
	if d := e.deployment(w, 1); d.State != act.DeploymentStateComplete {
		t.Fatalf("at 15 min: %s", d.State)
	}
}

func TestOneDeploymentPerEnvironment(t *testing.T) {
	e := newEnv(t)
	w := e.world(nil)
	v := e.version(w, `{}`)
	e.start(w, "AppConfig.Linear20PercentEvery6Minutes", v)
	_, err := e.c.StartDeployment(e.ctx, &ac.StartDeploymentInput{ApplicationId: &w.app, EnvironmentId: &w.env,
		ConfigurationProfileId: &w.prof, DeploymentStrategyId: aws.String("AppConfig.AllAtOnce"),
		ConfigurationVersion: aws.String("1")})
	wantError[*act.ConflictException](t, err, http.StatusConflict)
	// The optimistic lock on the deployment number.
	e.advance(time.Hour)
	// LatestDeploymentNumber is newer than the SDK module the tests pin: sent raw.
	body := `{"DeploymentStrategyId":"AppConfig.AllAtOnce","ConfigurationProfileId":"` + w.prof +
		`","ConfigurationVersion":"1","LatestDeploymentNumber":0}`
	status, resp := e.raw("POST", "/applications/"+w.app+"/environments/"+w.env+"/deployments", body)
	if status != http.StatusConflict || !strings.Contains(resp, `"Message":"Deployment number 1 already exists"`) ||
		!strings.Contains(resp, `"__type":"ConflictException"`) {
		t.Errorf("stale LatestDeploymentNumber: %d %s", status, resp)
	}
	status, resp = e.raw("POST", "/applications/"+w.app+"/environments/"+w.env+"/deployments",
		strings.Replace(body, `"LatestDeploymentNumber":0`, `"LatestDeploymentNumber":1`, 1))
	if status != http.StatusCreated || !strings.Contains(resp, `"DeploymentNumber":2`) {
		t.Fatalf("second deployment: %d %s", status, resp)
	}
	list, err := e.c.ListDeployments(e.ctx, &ac.ListDeploymentsInput{ApplicationId: &w.app, EnvironmentId: &w.env})
	if err != nil || len(list.Items) != 2 || list.Items[0].DeploymentNumber != 2 {
		t.Fatalf("list descending: %+v %v", list, err)
	}
	page, err := e.c.ListDeployments(e.ctx, &ac.ListDeploymentsInput{ApplicationId: &w.app, EnvironmentId: &w.env,
		MaxResults: aws.Int32(1)})
	if err != nil || len(page.Items) != 1 || page.NextToken == nil {
		t.Fatalf("first page: %v", err)
	}
	page, err = e.c.ListDeployments(e.ctx, &ac.ListDeploymentsInput{ApplicationId: &w.app, EnvironmentId: &w.env,
		MaxResults: aws.Int32(1), NextToken: page.NextToken})
	if err != nil || len(page.Items) != 1 || page.Items[0].DeploymentNumber != 1 {
		t.Fatalf("second page: %v", err)
	}
}

func TestValidatorRefusesAtStartDeployment(t *testing.T) {
	e := newEnv(t)
	schema := `{"$schema":"http://json-schema.org/draft-04/schema#","type":"object",
		"properties":{"rate":{"type":"integer","minimum":1}},"required":["rate"]}`
	w := e.world(nil, act.Validator{Type: act.ValidatorTypeJsonSchema, Content: aws.String(schema)})
	bad := e.version(w, `{"rate":0}`)
	_, err := e.c.StartDeployment(e.ctx, &ac.StartDeploymentInput{ApplicationId: &w.app, EnvironmentId: &w.env,
		ConfigurationProfileId: &w.prof, DeploymentStrategyId: aws.String("AppConfig.AllAtOnce"),
		ConfigurationVersion: aws.String(itoa(bad))})
	br := wantError[*act.BadRequestException](t, err, http.StatusBadRequest)
	if br.Reason != act.BadRequestReasonInvalidConfiguration || !strings.Contains(aws.ToString(br.Message), "minimum") {
		t.Errorf("reason %s, message %q", br.Reason, aws.ToString(br.Message))
	}
	if d, ok := br.Details.(*act.BadRequestDetailsMemberInvalidConfiguration); !ok || len(d.Value) == 0 ||
		aws.ToString(d.Value[0].Location) != "/rate" {
		t.Errorf("details %#v", br.Details)
	}
	_, err = e.c.ValidateConfiguration(e.ctx, &ac.ValidateConfigurationInput{ApplicationId: &w.app,
		ConfigurationProfileId: &w.prof, ConfigurationVersion: aws.String(itoa(bad))})
	wantError[*act.BadRequestException](t, err, http.StatusBadRequest)
	list, _ := e.c.ListDeployments(e.ctx, &ac.ListDeploymentsInput{ApplicationId: &w.app, EnvironmentId: &w.env})
	if len(list.Items) != 0 {
		t.Errorf("a refused deployment was recorded: %+v", list.Items)
	}
	good := e.version(w, `{"rate":3}`)
	if _, err := e.c.ValidateConfiguration(e.ctx, &ac.ValidateConfigurationInput{ApplicationId: &w.app,
		ConfigurationProfileId: &w.prof, ConfigurationVersion: aws.String(itoa(good))}); err != nil {
		t.Errorf("ValidateConfiguration of a good version: %v", err)
	}
	e.start(w, "AppConfig.AllAtOnce", good)
	// A schema that does not compile is refused when the profile is made.
	_, err = e.c.CreateConfigurationProfile(e.ctx, &ac.CreateConfigurationProfileInput{ApplicationId: &w.app,
		Name: aws.String("broken"), LocationUri: aws.String("hosted"),
		Validators: []act.Validator{{Type: act.ValidatorTypeJsonSchema, Content: aws.String(`{"type": 12}`)}}})
	wantError[*act.BadRequestException](t, err, http.StatusBadRequest)
}

func TestStopAndRevert(t *testing.T) {
	e := newEnv(t)
	w := e.world(nil)
	v := e.version(w, `{}`)
	e.start(w, "AppConfig.Linear20PercentEvery6Minutes", v)
	e.advance(7 * time.Minute)
	out, err := e.c.StopDeployment(e.ctx, &ac.StopDeploymentInput{ApplicationId: &w.app, EnvironmentId: &w.env,
		DeploymentNumber: aws.Int32(1)})
	if err != nil || out.State != act.DeploymentStateRolledBack || aws.ToFloat32(out.PercentageComplete) != 20 {
		t.Fatalf("stop: %v %v", out, err)
	}
	if out.EventLog[1].EventType != act.DeploymentEventTypeRollbackStarted ||
		out.EventLog[1].TriggeredBy != act.TriggeredByUser ||
		out.EventLog[0].EventType != act.DeploymentEventTypeRollbackCompleted {
		t.Errorf("event log head %+v", out.EventLog[:2])
	}
	env, _ := e.c.GetEnvironment(e.ctx, &ac.GetEnvironmentInput{ApplicationId: &w.app, EnvironmentId: &w.env})
	if env.State != act.EnvironmentStateRolledBack {
		t.Errorf("environment %s", env.State)
	}
	_, err = e.c.StopDeployment(e.ctx, &ac.StopDeploymentInput{ApplicationId: &w.app, EnvironmentId: &w.env,
		DeploymentNumber: aws.Int32(1)})
	wantError[*act.BadRequestException](t, err, http.StatusBadRequest)

	e.start(w, "AppConfig.AllAtOnce", v)
	e.advance(10 * time.Minute)
	_, err = e.c.StopDeployment(e.ctx, &ac.StopDeploymentInput{ApplicationId: &w.app, EnvironmentId: &w.env,
		DeploymentNumber: aws.Int32(2)})
	wantError[*act.BadRequestException](t, err, http.StatusBadRequest)
	out, err = e.c.StopDeployment(e.ctx, &ac.StopDeploymentInput{ApplicationId: &w.app, EnvironmentId: &w.env,
		DeploymentNumber: aws.Int32(2), AllowRevert: aws.Bool(true)})
	if err != nil || out.State != act.DeploymentStateReverted ||
		out.EventLog[0].EventType != act.DeploymentEventTypeRevertCompleted {
		t.Fatalf("revert: %v %v", out, err)
	}
	env, _ = e.c.GetEnvironment(e.ctx, &ac.GetEnvironmentInput{ApplicationId: &w.app, EnvironmentId: &w.env})
	if env.State != act.EnvironmentStateReverted {
		t.Errorf("environment after revert %s", env.State)
	}
	// The 72-hour window.
	e.start(w, "AppConfig.AllAtOnce", v)
	e.advance(10*time.Minute + RevertWindow + time.Second)
	_, err = e.c.StopDeployment(e.ctx, &ac.StopDeploymentInput{ApplicationId: &w.app, EnvironmentId: &w.env,
		DeploymentNumber: aws.Int32(3), AllowRevert: aws.Bool(true)})
	br := wantError[*act.BadRequestException](t, err, http.StatusBadRequest)
	if !strings.Contains(aws.ToString(br.Message), "72 hours") {
		t.Errorf("message %q", aws.ToString(br.Message))
	}
	_, err = e.c.StopDeployment(e.ctx, &ac.StopDeploymentInput{ApplicationId: &w.app, EnvironmentId: &w.env,
		DeploymentNumber: aws.Int32(9)})
	wantError[*act.ResourceNotFoundException](t, err, http.StatusNotFound)
}

// alarm creates a CloudWatch alarm on the devices' health metric and returns its ARN.
func (e *env) alarm(name string) string {
	e.t.Helper()
	_, err := e.cw.PutMetricAlarm(e.ctx, &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String(name),
		Namespace: aws.String("fleet"), MetricName: aws.String("Unhealthy"), Statistic: cwt.StatisticSum,
		Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(1),
		ComparisonOperator: cwt.ComparisonOperatorGreaterThanOrEqualToThreshold})
	if err != nil {
		e.t.Fatal(err)
	}
	out, err := e.cw.DescribeAlarms(e.ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{name}})
	if err != nil || len(out.MetricAlarms) != 1 {
		e.t.Fatalf("describe alarm: %v", err)
	}
	return aws.ToString(out.MetricAlarms[0].AlarmArn)
}

func TestAlarmRollsBack(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after time.Duration
		pct   float32
	}{
		{"during deploy", 7 * time.Minute, 20},
		{"during bake", 31 * time.Minute, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			arn := e.alarm("health")
			w := e.world([]act.Monitor{{AlarmArn: aws.String(arn)}})
			v := e.version(w, `{}`)
			e.start(w, "AppConfig.Linear20PercentEvery6Minutes", v)
			e.advance(tc.after)
			if _, err := e.cw.SetAlarmState(e.ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String("health"),
				StateValue: cwt.StateValueAlarm, StateReason: aws.String("by hand")}); err != nil {
				t.Fatal(err)
			}
			d := e.deployment(w, 1)
			if d.State != act.DeploymentStateRolledBack || aws.ToFloat32(d.PercentageComplete) != tc.pct {
				t.Fatalf("%s %v%%", d.State, aws.ToFloat32(d.PercentageComplete))
			}
			if ev := d.EventLog[1]; ev.EventType != act.DeploymentEventTypeRollbackStarted ||
				ev.TriggeredBy != act.TriggeredByCloudwatchAlarm || !strings.Contains(aws.ToString(ev.Description), arn) {
				t.Errorf("rollback event %+v", ev)
			}
		})
	}
}

func TestMetricAlarmRollsBack(t *testing.T) {
	e := newEnv(t)
	arn := e.alarm("health")
	w := e.world([]act.Monitor{{AlarmArn: aws.String(arn)}})
	v := e.version(w, `{}`)
	e.start(w, "AppConfig.Linear20PercentEvery6Minutes", v)
	e.advance(6*time.Minute + 10*time.Second)
	// A healthy period, then an unhealthy one.
	put := func(v float64) {
		t.Helper()
		if _, err := e.cw.PutMetricData(e.ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("fleet"),
			MetricData: []cwt.MetricDatum{{MetricName: aws.String("Unhealthy"), Value: aws.Float64(v)}}}); err != nil {
			t.Fatal(err)
		}
	}
	put(0)
	e.advance(time.Minute)
	if d := e.deployment(w, 1); d.State != act.DeploymentStateDeploying {
		t.Fatalf("healthy: %s", d.State)
	}
	put(1)
	e.advance(30 * time.Second)
	if d := e.deployment(w, 1); d.State != act.DeploymentStateDeploying {
		t.Fatalf("before the period ends: %s", d.State)
	}
	e.advance(30 * time.Second)
	d := e.deployment(w, 1)
	if d.State != act.DeploymentStateRolledBack || d.EventLog[1].TriggeredBy != act.TriggeredByCloudwatchAlarm {
		t.Fatalf("after an unhealthy period: %s", d.State)
	}
	al, _ := e.cw.DescribeAlarms(e.ctx, &cloudwatch.DescribeAlarmsInput{StateValue: cwt.StateValueAlarm})
	if len(al.MetricAlarms) != 1 {
		t.Errorf("alarms in ALARM: %d", len(al.MetricAlarms))
	}
}

// TestWireStatuses checks the statuses and bodies on the wire: 201 on create and StartDeployment, 202 with the
// deployment on StopDeployment, 204 on delete, errors with X-Amzn-ErrorType, __type and a capital Message, and
// snake_case query names.
func TestWireStatuses(t *testing.T) {
	e := newEnv(t)
	status, body := e.raw("POST", "/applications", `{"Name":"wire"}`)
	if status != http.StatusCreated || !strings.Contains(body, `"Id":"`) {
		t.Fatalf("CreateApplication: %d %s", status, body)
	}
	w := e.world(nil)
	e.version(w, `{}`)
	status, body = e.raw("POST", "/applications/"+w.app+"/environments/"+w.env+"/deployments",
		`{"DeploymentStrategyId":"AppConfig.Linear20PercentEvery6Minutes","ConfigurationProfileId":"`+w.prof+
			`","ConfigurationVersion":"1"}`)
	if status != http.StatusCreated || !strings.Contains(body, `"State":"DEPLOYING"`) {
		t.Fatalf("StartDeployment: %d %s", status, body)
	}
	status, body = e.raw("DELETE", "/applications/"+w.app+"/environments/"+w.env+"/deployments/1", "")
	if status != http.StatusAccepted || !strings.Contains(body, `"State":"ROLLED_BACK"`) {
		t.Fatalf("StopDeployment: %d %s", status, body)
	}
	status, body = e.raw("GET", "/applications/"+w.app+"/environments/"+w.env+"/deployments?max_results=1", "")
	if status != http.StatusOK || !strings.Contains(body, `"Items":[{"DeploymentNumber":1`) {
		t.Fatalf("ListDeployments with max_results: %d %s", status, body)
	}
	status, body = e.raw("GET", "/applications/"+w.app+"/environments/"+w.env+"/deployments?max_results=99", "")
	if status != http.StatusBadRequest || !strings.Contains(body, `"Message":`) ||
		!strings.Contains(body, `"__type":"BadRequestException"`) {
		t.Fatalf("max_results=99: %d %s", status, body)
	}
	status, body = e.raw("GET", "/applications/zzzzzzz", "")
	if status != http.StatusNotFound || !strings.Contains(body, `"Message":"Application zzzzzzz not found"`) ||
		!strings.Contains(body, `"ResourceName":"zzzzzzz"`) {
		t.Fatalf("GetApplication unknown: %d %s", status, body)
	}
	if status, body = e.raw("DELETE", "/deployementstrategies/"+e.strategy("LINEAR", 10, 1, 0), ""); status != http.StatusNoContent {
		t.Fatalf("DeleteDeploymentStrategy (the model's path): %d %s", status, body)
	}
}
