package appconfig

import (
	"testing"
	"testing/fstest"
	"time"
)

// TestRecordSteps: what ended a recorded deployment becomes the step at its time, counted from its start.
func TestRecordSteps(t *testing.T) {
	dep := func(state, events string) fstest.MapFS {
		return fstest.MapFS{"get-deployment.json": {Data: []byte(`{"ApplicationId":"a","EnvironmentId":"e","State":"` + state +
			`","GrowthType":"EXPONENTIAL","GrowthFactor":10,"DeploymentDurationInMinutes":20,"FinalBakeTimeInMinutes":5,"PercentageComplete":40,"EventLog":[` +
			events + `{"EventType":"DEPLOYMENT_STARTED","TriggeredBy":"USER","OccurredAt":"2026-11-22T10:00:00Z"}]}`)}}
	}
	for _, tc := range []struct {
		name, state, events, do, trigger string
		at                               time.Duration
	}{
		{"stop", "ROLLED_BACK", `{"EventType":"ROLLBACK_COMPLETED","TriggeredBy":"APPCONFIG","OccurredAt":"2026-11-22T10:07:30Z"},{"EventType":"ROLLBACK_STARTED","TriggeredBy":"USER","OccurredAt":"2026-11-22T10:07:30Z"},`, "stop", "USER", 7*time.Minute + 30*time.Second},
		{"alarm", "ROLLED_BACK", `{"EventType":"ROLLBACK_STARTED","TriggeredBy":"CLOUDWATCH_ALARM","OccurredAt":"2026-11-22T10:03:00.9Z"},`, "alarm", "CLOUDWATCH_ALARM", 3 * time.Minute},
		{"revert", "REVERTED", `{"EventType":"REVERT_COMPLETED","TriggeredBy":"USER","OccurredAt":"2026-11-22T11:00:00Z"},`, "revert", "", time.Hour},
		{"complete", "COMPLETE", ``, "", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, ok, err := ReadRecord(dep(tc.state, tc.events))
			if !ok || err != nil {
				t.Fatalf("ok %v err %v", ok, err)
			}
			s := rec.Spec
			if err := s.Validate(); err != nil {
				t.Fatal(err)
			}
			if s.Strategy.GrowthType != "EXPONENTIAL" || s.Strategy.GrowthFactor != 10 || s.Strategy.DurationMinutes != 20 || s.Strategy.BakeMinutes != 5 {
				t.Errorf("strategy %+v", s.Strategy)
			}
			if rec.Percentage != 40 || rec.TriggeredBy != tc.trigger || s.Expect.State != tc.state || s.Monitor != (tc.do == "alarm") {
				t.Errorf("record %+v", rec)
			}
			if tc.do == "" {
				if len(s.Steps) != 0 || s.Expect.Devices != "new" {
					t.Errorf("steps %+v devices %s", s.Steps, s.Expect.Devices)
				}
				return
			}
			if len(s.Steps) != 2 || s.Steps[0].Do != tc.do || time.Duration(s.Steps[0].At) != tc.at || s.Expect.Devices != "previous" ||
				s.Steps[1].Do != "check" || s.Steps[1].At != s.Steps[0].At || s.Steps[1].State != tc.state || *s.Steps[1].Percent != 40 {
				t.Errorf("steps %+v devices %s", s.Steps, s.Expect.Devices)
			}
		})
	}
}

// TestRecordNotAppConfig: Greengrass V2's get-deployment.json is not an AppConfig record.
func TestRecordNotAppConfig(t *testing.T) {
	_, ok, err := ReadRecord(fstest.MapFS{"get-deployment.json": {Data: []byte(`{"deploymentId":"d","deploymentStatus":"ACTIVE"}`)}})
	if ok || err != nil {
		t.Fatalf("ok %v err %v", ok, err)
	}
}
