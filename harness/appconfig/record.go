package appconfig

import (
	"github.com/fleetlab/fleetlab/sim/awsapi/sdkhttp"

	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ac "github.com/aws/aws-sdk-go-v2/service/appconfig"

	hd "github.com/fleetlab/fleetlab/harness/dialect"
)

// An AppConfig field record is one deployment as GetDeployment gives it — its State, PercentageComplete, its
// strategy's numbers and its EventLog, newest first — and optionally the history of the environment's alarm as
// CloudWatch's DescribeAlarmHistory gives it (when it went to ALARM). AppConfig's devices are anonymous
// AppConfigData clients: a record names none, so the replay runs a lab of RecordDevices devices and compares the
// deployment, not devices.
const (
	RecordDeployment   = "get-deployment.json"
	RecordAlarmHistory = "describe-alarm-history.json"
	// RecordDevices is how many devices the replay of a record runs.
	RecordDevices = 10
)

// RecordFiles names the files of an AppConfig record and the commands that write them.
func RecordFiles() []hd.RecordFile {
	return []hd.RecordFile{
		{Name: RecordDeployment, Command: "aws appconfig get-deployment --application-id APP_ID --environment-id ENV_ID --deployment-number N --output json"},
		{Name: RecordAlarmHistory, Command: "aws cloudwatch describe-alarm-history --alarm-name ALARM --history-item-type StateUpdate --output json (the alarm of the environment's Monitors)", Optional: true},
	}
}

// recordedDeployment is what fleetlab reads of GetDeployment's output.
type recordedDeployment struct {
	ApplicationID               string   `json:"ApplicationId"`
	EnvironmentID               string   `json:"EnvironmentId"`
	DeploymentStrategyID        string   `json:"DeploymentStrategyId"`
	ConfigurationProfileID      string   `json:"ConfigurationProfileId"`
	DeploymentNumber            int32    `json:"DeploymentNumber"`
	ConfigurationName           string   `json:"ConfigurationName"`
	ConfigurationLocationURI    string   `json:"ConfigurationLocationUri"`
	ConfigurationVersion        string   `json:"ConfigurationVersion"`
	Description                 string   `json:"Description"`
	DeploymentDurationInMinutes int32    `json:"DeploymentDurationInMinutes"`
	GrowthType                  string   `json:"GrowthType"`
	GrowthFactor                float32  `json:"GrowthFactor"`
	FinalBakeTimeInMinutes      int32    `json:"FinalBakeTimeInMinutes"`
	State                       string   `json:"State"`
	PercentageComplete          *float64 `json:"PercentageComplete"`
	EventLog                    []struct {
		EventType         string  `json:"EventType"`
		TriggeredBy       string  `json:"TriggeredBy"`
		Description       string  `json:"Description"`
		ActionInvocations []any   `json:"ActionInvocations"`
		OccurredAt        hd.Time `json:"OccurredAt"`
	} `json:"EventLog"`
	StartedAt         hd.Time `json:"StartedAt"`
	CompletedAt       hd.Time `json:"CompletedAt"`
	AppliedExtensions []any   `json:"AppliedExtensions"`
	KmsKeyArn         string  `json:"KmsKeyArn"`
	KmsKeyIdentifier  string  `json:"KmsKeyIdentifier"`
	VersionLabel      string  `json:"VersionLabel"`
}

// recordedAlarmHistory is what fleetlab reads of DescribeAlarmHistory's output.
type recordedAlarmHistory struct {
	AlarmHistoryItems []struct {
		AlarmName       string  `json:"AlarmName"`
		AlarmType       string  `json:"AlarmType"`
		Timestamp       hd.Time `json:"Timestamp"`
		HistoryItemType string  `json:"HistoryItemType"`
		HistorySummary  string  `json:"HistorySummary"`
		HistoryData     string  `json:"HistoryData"`
	} `json:"AlarmHistoryItems"`
	NextToken string `json:"NextToken"`
}

// FieldRecord is an AppConfig field record as read: the scenario that reproduces it, and the deployment's end
// to compare a run with.
type FieldRecord struct {
	// Spec reproduces the record: its strategy, and the alarm, stop or revert at the record's time.
	Spec Spec
	// State, Percentage, Events (types, newest first) and TriggeredBy (the rollback's) are the record's end.
	State       string
	Percentage  float64
	Events      []string
	TriggeredBy string
	// Unmapped names what the record holds that fleetlab does not reproduce, as "file: field: why".
	Unmapped []string
}

var (
	states   = []string{"VALIDATING", "DEPLOYING", "BAKING", "COMPLETE", "ROLLING_BACK", "ROLLED_BACK", "REVERTED"}
	ended    = []string{"COMPLETE", "ROLLED_BACK", "REVERTED"}
	types    = []string{"DEPLOYMENT_STARTED", "PERCENTAGE_UPDATED", "BAKE_TIME_STARTED", "DEPLOYMENT_COMPLETED", "ROLLBACK_STARTED", "ROLLBACK_COMPLETED", "REVERT_COMPLETED"}
	triggers = []string{"USER", "APPCONFIG", "CLOUDWATCH_ALARM", "INTERNAL_ERROR"}
)

// ReadRecord reads an AppConfig record from dir; ok is false when dir has no AppConfig get-deployment.json. The
// strategy is the record's GrowthType, GrowthFactor, DeploymentDurationInMinutes and FinalBakeTimeInMinutes, as
// a strategy of the lab's; the configuration a placeholder (the record has no content), deployed over another.
// The end becomes what makes it:
//
//	COMPLETE                                   nothing: the deployment bakes and completes
//	ROLLED_BACK, ROLLBACK_STARTED by CLOUDWATCH_ALARM
//	                                           the environment's alarm goes to ALARM when the alarm history says
//	                                           it did, else at the ROLLBACK_STARTED's time
//	ROLLED_BACK, ROLLBACK_STARTED by USER      StopDeployment at that time
//	REVERTED                                   StopDeployment with Allow-Revert at the REVERT_COMPLETED's time
//
// and the replay is compared on the State, the PercentageComplete, the EventLog's types and the rollback's
// trigger.
func ReadRecord(dir fs.FS) (FieldRecord, bool, error) {
	var d recordedDeployment
	unknown, err := hd.ReadJSON(dir, RecordDeployment, &d)
	if errors.Is(err, fs.ErrNotExist) {
		return FieldRecord{}, false, nil
	}
	if err != nil {
		return FieldRecord{}, true, err
	}
	if d.ApplicationID == "" && d.EnvironmentID == "" && d.State == "" {
		return FieldRecord{}, false, nil // another dialect's get-deployment (Greengrass V2's)
	}
	rec := FieldRecord{State: d.State, Unmapped: unknown}
	note := func(format string, args ...any) { rec.Unmapped = append(rec.Unmapped, fmt.Sprintf(format, args...)) }
	bad := func(file, field, format string, args ...any) error {
		return &hd.RecordError{File: file, Field: field, Err: fmt.Errorf(format, args...)}
	}
	switch {
	case !slices.Contains(states, d.State):
		return rec, true, bad(RecordDeployment, "State", "%q is not an AppConfig deployment state", d.State)
	case !slices.Contains(ended, d.State):
		return rec, true, bad(RecordDeployment, "State", "%s: the deployment had not ended; collect the record once it is COMPLETE, ROLLED_BACK or REVERTED", d.State)
	}
	growth := d.GrowthType
	if growth == "" {
		growth = "LINEAR"
	}
	switch {
	case growth != "LINEAR" && growth != "EXPONENTIAL":
		return rec, true, bad(RecordDeployment, "GrowthType", "%q: want LINEAR or EXPONENTIAL", d.GrowthType)
	case d.GrowthFactor < 1 || d.GrowthFactor > 100:
		return rec, true, bad(RecordDeployment, "GrowthFactor", "%v: want 1.0 to 100.0", d.GrowthFactor)
	case d.DeploymentDurationInMinutes < 0 || d.DeploymentDurationInMinutes > 1440:
		return rec, true, bad(RecordDeployment, "DeploymentDurationInMinutes", "%d: want 0 to 1440", d.DeploymentDurationInMinutes)
	case d.FinalBakeTimeInMinutes < 0 || d.FinalBakeTimeInMinutes > 1440:
		return rec, true, bad(RecordDeployment, "FinalBakeTimeInMinutes", "%d: want 0 to 1440", d.FinalBakeTimeInMinutes)
	}
	if d.PercentageComplete != nil {
		rec.Percentage = *d.PercentageComplete
	}
	for _, t := range []struct {
		name string
		t    hd.Time
	}{{"StartedAt", d.StartedAt}, {"CompletedAt", d.CompletedAt}} {
		if err := t.t.Check(RecordDeployment, t.name); err != nil {
			return rec, true, err
		}
	}
	// The events, oldest first, and the times that matter.
	var started, rollback, revert time.Time
	for i := len(d.EventLog) - 1; i >= 0; i-- {
		e := d.EventLog[i]
		field := fmt.Sprintf("EventLog[%d]", i)
		if !slices.Contains(types, e.EventType) {
			return rec, true, bad(RecordDeployment, field+".EventType", "%q is not a deployment event type", e.EventType)
		}
		if e.TriggeredBy != "" && !slices.Contains(triggers, e.TriggeredBy) {
			return rec, true, bad(RecordDeployment, field+".TriggeredBy", "%q: want %s", e.TriggeredBy, strings.Join(triggers, ", "))
		}
		if err := e.OccurredAt.Check(RecordDeployment, field+".OccurredAt"); err != nil {
			return rec, true, err
		}
		if i+1 < len(d.EventLog) && e.OccurredAt.Before(d.EventLog[i+1].OccurredAt.Time) {
			return rec, true, bad(RecordDeployment, field+".OccurredAt", "before the event after it in the log: the EventLog is newest first")
		}
		switch e.EventType {
		case "DEPLOYMENT_STARTED":
			started = e.OccurredAt.Time
		case "ROLLBACK_STARTED":
			rollback, rec.TriggeredBy = e.OccurredAt.Time, e.TriggeredBy
		case "REVERT_COMPLETED":
			revert = e.OccurredAt.Time
		}
		if len(e.ActionInvocations) > 0 {
			note("%s: %s.ActionInvocations: extensions' actions are not reproduced", RecordDeployment, field)
		}
	}
	for _, e := range d.EventLog {
		rec.Events = append(rec.Events, e.EventType)
	}
	if started.IsZero() {
		started = d.StartedAt.Time
	}
	if started.IsZero() {
		return rec, true, bad(RecordDeployment, "EventLog", "no DEPLOYMENT_STARTED and no StartedAt: the record has no start to count its times from")
	}
	s := Spec{Dialect: Dialect, Name: "replay", Devices: RecordDevices,
		Initial: `{"replay": "the configuration before"}`,
		Content: fmt.Sprintf(`{"replay": "configuration version %s"}`, d.ConfigurationVersion),
		Strategy: StrategySpec{GrowthType: growth, GrowthFactor: d.GrowthFactor,
			DurationMinutes: d.DeploymentDurationInMinutes, BakeMinutes: d.FinalBakeTimeInMinutes},
		Expect: Expect{State: d.State, Events: rec.Events, Devices: "new"}}
	note("%s: the configuration's content is not in the record; a placeholder of version %s stands in, on %d devices", RecordDeployment, d.ConfigurationVersion, RecordDevices)
	if d.DeploymentStrategyID != "" {
		note("%s: DeploymentStrategyId: %s, replayed as a strategy of the record's growth, duration and bake", RecordDeployment, d.DeploymentStrategyID)
	}
	at := func(t time.Time) Duration { return Duration(max(t.Sub(started).Truncate(time.Second), 0)) }
	alarm, err := alarmTime(dir, started, &rec)
	if err != nil {
		return rec, true, err
	}
	switch d.State {
	case "ROLLED_BACK":
		s.Expect.Devices, s.Expect.TriggeredBy = "previous", rec.TriggeredBy
		switch {
		case rollback.IsZero():
			return rec, true, bad(RecordDeployment, "EventLog", "ROLLED_BACK with no ROLLBACK_STARTED: the record does not say what rolled it back")
		case rec.TriggeredBy == "CLOUDWATCH_ALARM":
			s.Monitor = true
			if alarm.IsZero() || alarm.After(rollback) {
				alarm = rollback
			}
			s.Steps = append(s.Steps, Step{At: at(alarm), Do: "alarm"})
		case rec.TriggeredBy == "USER":
			s.Steps = append(s.Steps, Step{At: at(rollback), Do: "stop"})
		default:
			note("%s: EventLog: a rollback by %s: no step of fleetlab's makes one; not reproduced", RecordDeployment, rec.TriggeredBy)
		}
	case "REVERTED":
		s.Expect.Devices = "previous"
		if revert.IsZero() {
			return rec, true, bad(RecordDeployment, "EventLog", "REVERTED with no REVERT_COMPLETED: the record does not say when it was reverted")
		}
		s.Steps = append(s.Steps, Step{At: at(revert), Do: "revert"})
	}
	if len(s.Steps) > 0 { // what the step ended, checked at once: a scenario written from the record says so itself
		pct := rec.Percentage
		s.Steps = append(s.Steps, Step{At: s.Steps[0].At, Do: "check", State: d.State, Percent: &pct})
	}
	rec.Spec = s
	return rec, true, nil
}

// alarmTime reads the alarm history, when the record has it: the first time at or after the deployment's start
// the alarm went to ALARM.
func alarmTime(dir fs.FS, started time.Time, rec *FieldRecord) (time.Time, error) {
	var h recordedAlarmHistory
	unknown, err := hd.ReadJSON(dir, RecordAlarmHistory, &h)
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	rec.Unmapped = append(rec.Unmapped, unknown...)
	var first time.Time
	for i, it := range h.AlarmHistoryItems {
		field := fmt.Sprintf("AlarmHistoryItems[%d]", i)
		if err := it.Timestamp.Check(RecordAlarmHistory, field+".Timestamp"); err != nil {
			return time.Time{}, err
		}
		if it.HistoryItemType != "StateUpdate" || !strings.HasSuffix(strings.TrimSpace(it.HistorySummary), "to ALARM") {
			continue
		}
		if !it.Timestamp.Before(started) && (first.IsZero() || it.Timestamp.Before(first)) {
			first = it.Timestamp.Time
		}
	}
	if first.IsZero() {
		rec.Unmapped = append(rec.Unmapped, RecordAlarmHistory+": no StateUpdate to ALARM after the deployment started; the rollback's time stands for the alarm's")
	}
	return first, nil
}

// Collect writes the record of deployment job ("APPLICATION_ID/ENVIRONMENT_ID/DEPLOYMENT_NUMBER") on the service at
// endpoint into dir. fleetlab's CloudWatch keeps no alarm history, so the record it collects has none.
func Collect(ctx context.Context, endpoint string, rt http.RoundTripper, job, dir string) error {
	parts := strings.Split(job, "/")
	if len(parts) != 3 {
		return fmt.Errorf("job %q: want APPLICATION_ID/ENVIRONMENT_ID/DEPLOYMENT_NUMBER", job)
	}
	n, err := strconv.ParseInt(parts[2], 10, 32)
	if err != nil {
		return fmt.Errorf("job %q: deployment number %q: %w", job, parts[2], err)
	}
	rt, last := hd.CaptureAnswers(rt)
	c := ac.New(ac.Options{BaseEndpoint: aws.String(endpoint), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("fleetlab", "fleetlab", ""), RetryMaxAttempts: 1,
		HTTPClient: sdkhttp.Client(rt)})
	if _, err := c.GetDeployment(ctx, &ac.GetDeploymentInput{ApplicationId: aws.String(parts[0]),
		EnvironmentId: aws.String(parts[1]), DeploymentNumber: aws.Int32(int32(n))}); err != nil {
		return fmt.Errorf("get-deployment: %w", err)
	}
	return hd.WriteAnswer(filepath.Join(dir, RecordDeployment), last())
}

// Endpoint is the lab's service's endpoint on the loopback, for clients outside the process (the AWS CLI).
func (l *Lab) Endpoint() string { return l.svc.Endpoint() }

// Job names a deployment of the lab as Collect takes it.
func (l *Lab) Job(n int32) string { return fmt.Sprintf("%s/%s/%d", l.App, l.Env, n) }
