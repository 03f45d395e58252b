package engine

import (
	"encoding/json"
	"testing"
	"time"
)

func TestExecutionEncoding(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 890, time.UTC)
	cases := []Execution{
		{Deployment: "d", Device: "r", Status: ExecQueued, Number: 1, Version: 1, QueuedAt: at, UpdatedAt: at},
		{Deployment: "deployment-x1", Device: "robot-01", Status: ExecFailed, Released: true,
			Details: map[string]string{"step": "ExecutingPreLaunch", "failureCode": "PreLaunchFileFailure",
				"reason": "exit 3 <\"quoted\"> & \u2028 ünïcode \x01"},
			Reported: StepReport{Step: "ExecutingPreLaunch", Code: "PreLaunchFileFailure",
				Reason: "exit 3 <\"quoted\"> & \u2028 ünïcode \x01"},
			Reason: "timeout", Number: 1, Version: 7, QueuedAt: at, ReleasedAt: at.Add(time.Second),
			StartedAt: at.Add(2 * time.Second), UpdatedAt: at.Add(time.Hour), StepDeadline: at.Add(time.Minute),
			Order: 41},
		{Deployment: "d", Device: "r", Status: ExecInProgress, Details: map[string]string{}, Number: 1,
			QueuedAt: at.In(time.FixedZone("x", 3600)), UpdatedAt: at, Order: 0},
		{Deployment: "d", Device: "r", Status: ExecInProgress, Reported: StepReport{Step: "Downloading",
			Percent: 12.5}, QueuedAt: at, UpdatedAt: at},
		{Deployment: "d", Device: "r", Status: ExecInProgress, Reported: StepReport{Percent: 1e-7}, QueuedAt: at,
			UpdatedAt: at},
		{Deployment: "d", Device: "r", Status: ExecInProgress, Reported: StepReport{Percent: 100, Reason: "r"},
			QueuedAt: at, UpdatedAt: at},
		{Deployment: "bad\xffutf8", Device: "r", Status: ExecQueued, QueuedAt: at, UpdatedAt: at},
	}
	for _, x := range cases {
		want, err := json.Marshal(&x)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendExecution(nil, &x); string(got) != string(want) {
			t.Errorf("encoding differs\n got %s\nwant %s", got, want)
		}
	}
}
