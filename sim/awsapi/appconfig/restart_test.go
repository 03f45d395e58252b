package appconfig

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ac "github.com/aws/aws-sdk-go-v2/service/appconfig"
	act "github.com/aws/aws-sdk-go-v2/service/appconfig/types"
	acd "github.com/aws/aws-sdk-go-v2/service/appconfigdata"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwt "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/fleetlab/fleetlab/sim/clock/clocktest"
	"github.com/fleetlab/fleetlab/sim/store"
)

// TestRestartMidRollout: a service restarted (on bbolt) mid-rollout keeps its resources, deployments, sessions
// and alarms, and the rollout goes on where the clock says it is; an alarm after the restart still rolls back.
func TestRestartMidRollout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	open := func() store.Store {
		st, err := store.Open(path, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	c := clocktest.New(epoch)
	st := open()
	e := newEnvOn(t, st, c)
	arn := e.alarm("health")
	w := e.world([]act.Monitor{{AlarmArn: aws.String(arn)}})
	v := e.version(w, `{"k":1}`)
	e.start(w, "AppConfig.Linear20PercentEvery6Minutes", v)
	tok := e.session(w, 15)
	e.advance(7 * time.Minute)
	e.srv.Close()
	st.Close()

	st = open()
	t.Cleanup(func() { st.Close() })
	e = newEnvOn(t, st, c)
	d := e.deployment(w, 1)
	if d.State != act.DeploymentStateDeploying || aws.ToFloat32(d.PercentageComplete) != 20 {
		t.Fatalf("after the restart: %s %v%%", d.State, aws.ToFloat32(d.PercentageComplete))
	}
	if _, err := e.data.GetLatestConfiguration(e.ctx, &acd.GetLatestConfigurationInput{ConfigurationToken: &tok}); err != nil {
		t.Fatalf("a session from before the restart: %v", err)
	}
	e.advance(6 * time.Minute)
	if d := e.deployment(w, 1); aws.ToFloat32(d.PercentageComplete) != 40 {
		t.Fatalf("the rollout goes on: %v%%", aws.ToFloat32(d.PercentageComplete))
	}
	if _, err := e.cw.SetAlarmState(e.ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String("health"),
		StateValue: cwt.StateValueAlarm, StateReason: aws.String("after the restart")}); err != nil {
		t.Fatal(err)
	}
	if d := e.deployment(w, 1); d.State != act.DeploymentStateRolledBack {
		t.Fatalf("alarm after the restart: %s", d.State)
	}
	list, err := e.c.ListApplications(e.ctx, &ac.ListApplicationsInput{})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("applications after the restart: %v %v", list, err)
	}
}
