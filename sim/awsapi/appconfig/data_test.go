package appconfig

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	acd "github.com/aws/aws-sdk-go-v2/service/appconfigdata"
	acdt "github.com/aws/aws-sdk-go-v2/service/appconfigdata/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwt "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func (e *env) session(w world, interval int32) string {
	e.t.Helper()
	out, err := e.data.StartConfigurationSession(e.ctx, &acd.StartConfigurationSessionInput{
		ApplicationIdentifier: aws.String(w.app), EnvironmentIdentifier: aws.String(w.env),
		ConfigurationProfileIdentifier: aws.String(w.prof), RequiredMinimumPollIntervalInSeconds: aws.Int32(interval)})
	if err != nil {
		e.t.Fatal(err)
	}
	return aws.ToString(out.InitialConfigurationToken)
}

func TestConfigurationSession(t *testing.T) {
	e := newEnv(t)
	w := e.world(nil)
	v := e.version(w, `{"a":1}`)
	tok := e.session(w, 30)
	// Nothing deployed yet: an empty configuration.
	out, err := e.data.GetLatestConfiguration(e.ctx, &acd.GetLatestConfigurationInput{ConfigurationToken: &tok})
	if err != nil || len(out.Configuration) != 0 || out.NextPollIntervalInSeconds != 30 {
		t.Fatalf("before any deployment: %v %v", out, err)
	}
	e.start(w, "AppConfig.AllAtOnce", v)
	// Too soon: the session's poll interval.
	_, err = e.data.GetLatestConfiguration(e.ctx, &acd.GetLatestConfigurationInput{ConfigurationToken: out.NextPollConfigurationToken})
	br := wantError[*acdt.BadRequestException](t, err, http.StatusBadRequest)
	if d, ok := br.Details.(*acdt.BadRequestDetailsMemberInvalidParameters); !ok ||
		d.Value["ConfigurationToken"].Problem != acdt.InvalidParameterProblemPollIntervalNotSatisfied {
		t.Errorf("details %#v", br.Details)
	}
	e.advance(30 * time.Second)
	next, err := e.data.GetLatestConfiguration(e.ctx, &acd.GetLatestConfigurationInput{ConfigurationToken: out.NextPollConfigurationToken})
	if err != nil || string(next.Configuration) != `{"a":1}` || aws.ToString(next.ContentType) != "application/json" {
		t.Fatalf("after the deployment: %q %v", next.Configuration, err)
	}
	// A used token is expired.
	_, err = e.data.GetLatestConfiguration(e.ctx, &acd.GetLatestConfigurationInput{ConfigurationToken: out.NextPollConfigurationToken})
	br = wantError[*acdt.BadRequestException](t, err, http.StatusBadRequest)
	if d, ok := br.Details.(*acdt.BadRequestDetailsMemberInvalidParameters); !ok ||
		d.Value["ConfigurationToken"].Problem != acdt.InvalidParameterProblemExpired {
		t.Errorf("reused token: %#v", br.Details)
	}
	// Unchanged: an empty body.
	e.advance(30 * time.Second)
	same, err := e.data.GetLatestConfiguration(e.ctx, &acd.GetLatestConfigurationInput{ConfigurationToken: next.NextPollConfigurationToken})
	if err != nil || len(same.Configuration) != 0 {
		t.Fatalf("unchanged: %q %v", same.Configuration, err)
	}
	_, err = e.data.GetLatestConfiguration(e.ctx, &acd.GetLatestConfigurationInput{ConfigurationToken: aws.String("garbage")})
	br = wantError[*acdt.BadRequestException](t, err, http.StatusBadRequest)
	if d, ok := br.Details.(*acdt.BadRequestDetailsMemberInvalidParameters); !ok ||
		d.Value["ConfigurationToken"].Problem != acdt.InvalidParameterProblemCorrupted {
		t.Errorf("corrupted token: %#v", br.Details)
	}
	// Tokens last 24 hours.
	e.advance(25 * time.Hour)
	_, err = e.data.GetLatestConfiguration(e.ctx, &acd.GetLatestConfigurationInput{ConfigurationToken: same.NextPollConfigurationToken})
	wantError[*acdt.BadRequestException](t, err, http.StatusBadRequest)
	// Names work as identifiers; an unknown one is ResourceNotFoundException with its type.
	if _, err := e.data.StartConfigurationSession(e.ctx, &acd.StartConfigurationSessionInput{
		ApplicationIdentifier: aws.String("shop"), EnvironmentIdentifier: aws.String("prod"),
		ConfigurationProfileIdentifier: aws.String("settings")}); err != nil {
		t.Errorf("by name: %v", err)
	}
	_, err = e.data.StartConfigurationSession(e.ctx, &acd.StartConfigurationSessionInput{
		ApplicationIdentifier: aws.String("shop"), EnvironmentIdentifier: aws.String("nowhere"),
		ConfigurationProfileIdentifier: aws.String("settings")})
	nf := wantError[*acdt.ResourceNotFoundException](t, err, http.StatusNotFound)
	if nf.ResourceType != acdt.ResourceTypeEnvironment {
		t.Errorf("resource type %s", nf.ResourceType)
	}
	_, err = e.data.StartConfigurationSession(e.ctx, &acd.StartConfigurationSessionInput{
		ApplicationIdentifier: aws.String("shop"), EnvironmentIdentifier: aws.String("prod"),
		ConfigurationProfileIdentifier: aws.String("settings"), RequiredMinimumPollIntervalInSeconds: aws.Int32(5)})
	wantError[*acdt.BadRequestException](t, err, http.StatusBadRequest)
}

// withClientID names the client to the service as a device does.
func withClientID(id string) func(*acd.Options) {
	return func(o *acd.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			return s.Build.Add(middleware.BuildMiddlewareFunc("clientID", func(ctx context.Context,
				in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
				if req, ok := in.Request.(*smithyhttp.Request); ok {
					req.Header.Set(ClientIDHeader, id)
				}
				return next.HandleBuild(ctx, in)
			}), middleware.After)
		})
	}
}

// TestClientsFollowThePercentage: during a rollout a client sees the new version exactly when its bucket is
// below the deployment's percentage, and keeps its side across sessions; a rollback takes everyone back.
func TestClientsFollowThePercentage(t *testing.T) {
	e := newEnv(t)
	w := e.world(nil)
	old := e.version(w, `old`)
	e.start(w, e.strategy("LINEAR", 100, 0, 0), old)
	e.advance(time.Minute)
	v := e.version(w, `new`)
	e.start(w, e.strategy("LINEAR", 25, 20, 10), v)
	clients := make([]string, 40)
	for i := range clients {
		clients[i] = fmt.Sprintf("robot-%02d", i)
	}
	poll := func(id string) string {
		t.Helper()
		out, err := e.data.StartConfigurationSession(e.ctx, &acd.StartConfigurationSessionInput{
			ApplicationIdentifier: aws.String(w.app), EnvironmentIdentifier: aws.String(w.env),
			ConfigurationProfileIdentifier: aws.String(w.prof)}, withClientID(id))
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.data.GetLatestConfiguration(e.ctx, &acd.GetLatestConfigurationInput{
			ConfigurationToken: out.InitialConfigurationToken})
		if err != nil {
			t.Fatal(err)
		}
		return string(got.Configuration)
	}
	for _, pct := range []float64{25, 50, 75} {
		e.advance(5 * time.Minute)
		n := 0
		for _, c := range clients {
			want := "old"
			if Bucket(c) < pct {
				want = "new"
				n++
			}
			if got := poll(c); got != want {
				t.Errorf("at %v%%: %s (bucket %.2f) got %q, want %q", pct, c, Bucket(c), got, want)
			}
		}
		if n == 0 || n == len(clients) {
			t.Errorf("at %v%%: %d of %d clients on the new version: the buckets do not spread", pct, n, len(clients))
		}
	}
	if _, err := e.c.StopDeployment(e.ctx, stopIn(w, 2)); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		if got := poll(c); got != "old" {
			t.Errorf("after the stop %s got %q", c, got)
		}
	}
}

func TestCloudWatchErrors(t *testing.T) {
	e := newEnv(t)
	e.alarm("known")
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		call   func() error
		code   string
		status int
	}{
		{"SetAlarmState of an unknown alarm", func() error {
			_, err := e.cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String("nope"),
				StateValue: cwt.StateValueAlarm, StateReason: aws.String("x")})
			return err
		}, "ResourceNotFound", http.StatusNotFound},
		{"DeleteAlarms of an unknown alarm", func() error {
			_, err := e.cw.DeleteAlarms(ctx, &cloudwatch.DeleteAlarmsInput{AlarmNames: []string{"known", "nope"}})
			return err
		}, "ResourceNotFound", http.StatusNotFound},
		{"PutMetricAlarm with a period of 45 s", func() error {
			_, err := e.cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String("a"),
				Namespace: aws.String("n"), MetricName: aws.String("m"), Statistic: cwt.StatisticSum,
				Period: aws.Int32(45), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(1),
				ComparisonOperator: cwt.ComparisonOperatorGreaterThanThreshold})
			return err
		}, "InvalidParameterValueException", http.StatusBadRequest},
		{"PutMetricAlarm with more datapoints than periods", func() error {
			_, err := e.cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String("a"),
				Namespace: aws.String("n"), MetricName: aws.String("m"), Statistic: cwt.StatisticSum,
				Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1), DatapointsToAlarm: aws.Int32(2),
				Threshold: aws.Float64(1), ComparisonOperator: cwt.ComparisonOperatorGreaterThanThreshold})
			return err
		}, "InvalidParameterValueException", http.StatusBadRequest},
		{"PutMetricData without a namespace", func() error {
			_, err := e.cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String(""),
				MetricData: []cwt.MetricDatum{{MetricName: aws.String("m"), Value: aws.Float64(1)}}})
			return err
		}, "MissingRequiredParameterException", http.StatusBadRequest},
		{"DescribeAlarms in an unknown state", func() error {
			_, err := e.cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{StateValue: "BROKEN"})
			return err
		}, "InvalidParameterValueException", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil || !strings.Contains(err.Error(), tc.code) ||
				!strings.Contains(err.Error(), fmt.Sprintf("StatusCode: %d", tc.status)) {
				t.Fatalf("error %v, want %s (%d)", err, tc.code, tc.status)
			}
		})
	}
	var nf *cwt.ResourceNotFound
	_, err := e.cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String("nope"),
		StateValue: cwt.StateValueOk, StateReason: aws.String("x")})
	if !asError(err, &nf) {
		t.Errorf("SetAlarmState error %T, want *types.ResourceNotFound", err)
	}
	// A known alarm goes; DescribeAlarms then shows none.
	if _, err := e.cw.DeleteAlarms(ctx, &cloudwatch.DeleteAlarmsInput{AlarmNames: []string{"known"}}); err != nil {
		t.Fatal(err)
	}
	out, err := e.cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{})
	if err != nil || len(out.MetricAlarms) != 0 {
		t.Fatalf("after delete: %v %v", out, err)
	}
}

// TestAlarmEvaluation: statistics over periods, evaluation periods, datapoints to alarm, missing data.
func TestAlarmEvaluation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String("latency"),
		Namespace: aws.String("app"), MetricName: aws.String("Latency"), Statistic: cwt.StatisticAverage,
		Dimensions: []cwt.Dimension{{Name: aws.String("Host"), Value: aws.String("a")}},
		Period:     aws.Int32(60), EvaluationPeriods: aws.Int32(3), DatapointsToAlarm: aws.Int32(2),
		Threshold: aws.Float64(100), ComparisonOperator: cwt.ComparisonOperatorGreaterThanThreshold}); err != nil {
		t.Fatal(err)
	}
	state := func() cwt.StateValue {
		t.Helper()
		out, err := e.cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNamePrefix: aws.String("lat")})
		if err != nil || len(out.MetricAlarms) != 1 {
			t.Fatalf("describe: %v", err)
		}
		return out.MetricAlarms[0].StateValue
	}
	put := func(host string, vs ...float64) {
		t.Helper()
		var data []cwt.MetricDatum
		for _, v := range vs {
			data = append(data, cwt.MetricDatum{MetricName: aws.String("Latency"), Value: aws.Float64(v),
				Dimensions: []cwt.Dimension{{Name: aws.String("Host"), Value: aws.String(host)}}})
		}
		if _, err := e.cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("app"),
			MetricData: data}); err != nil {
			t.Fatal(err)
		}
	}
	if s := state(); s != cwt.StateValueInsufficientData {
		t.Fatalf("new alarm %s", s)
	}
	put("a", 50, 250) // average 150: breaching
	put("b", 1000)    // another host: not this alarm's metric
	e.advance(time.Minute)
	if s := state(); s != cwt.StateValueOk {
		t.Fatalf("one breaching period of the two needed: %s", s)
	}
	put("a", 90) // not breaching
	e.advance(time.Minute)
	if s := state(); s != cwt.StateValueOk {
		t.Fatalf("one of three: %s", s)
	}
	put("a", 101)
	e.advance(time.Minute)
	if s := state(); s != cwt.StateValueAlarm {
		t.Fatalf("two of the last three breaching: %s", s)
	}
}
