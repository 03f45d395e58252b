package replay_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/harness/appconfig"
	"github.com/fleetlab/fleetlab/harness/replay"
	"github.com/fleetlab/fleetlab/sim/awsapi/awsclitest"
)

// faultyAppConfig are AppConfig field failures: the environment's alarm at 40% of a linear rollout (rolled
// back by CLOUDWATCH_ALARM), a user's stop at 60% (rolled back by USER), a completed deployment reverted, and for
// contrast one that completes.
func faultyAppConfig() map[string]appconfig.Spec {
	base := func(name string) appconfig.Spec {
		return appconfig.Spec{Name: name, Devices: 6, Initial: `{"color": "blue"}`, Content: `{"color": "green"}`,
			Strategy: appconfig.StrategySpec{GrowthType: "LINEAR", GrowthFactor: 20, DurationMinutes: 10, BakeMinutes: 10}}
	}
	alarm := base("field-alarm")
	alarm.Monitor = true
	alarm.Steps = []appconfig.Step{{At: appconfig.Duration(5 * time.Minute), Do: "alarm"}}
	alarm.Expect = appconfig.Expect{State: "ROLLED_BACK", TriggeredBy: "CLOUDWATCH_ALARM", Devices: "previous"}
	stop := base("field-stop")
	stop.Steps = []appconfig.Step{{At: appconfig.Duration(7*time.Minute + 30*time.Second), Do: "stop"}}
	stop.Expect = appconfig.Expect{State: "ROLLED_BACK", TriggeredBy: "USER", Devices: "previous"}
	done := base("field-complete")
	done.Strategy = appconfig.StrategySpec{GrowthType: "EXPONENTIAL", GrowthFactor: 10, DurationMinutes: 20, BakeMinutes: 5}
	done.Expect = appconfig.Expect{State: "COMPLETE", Devices: "new"}
	revert := base("field-revert")
	revert.Strategy = appconfig.StrategySpec{GrowthType: "LINEAR", GrowthFactor: 50, DurationMinutes: 2, BakeMinutes: 1}
	revert.Steps = []appconfig.Step{{At: appconfig.Duration(25 * time.Minute), Do: "revert"}}
	revert.Expect = appconfig.Expect{State: "REVERTED", Devices: "previous"}
	return map[string]appconfig.Spec{"alarm": alarm, "stop": stop, "complete": done, "revert": revert}
}

func collectAppConfig(l *appconfig.Lab, n int32, dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return appconfig.Collect(ctx, l.Endpoint(), http.DefaultTransport, l.Job(n), dir)
}

// roundTripAppConfig runs spec in an AppConfig lab, collects a record of its deployment with collect, replays it
// and checks the replay's deployment ends as the field's did.
func roundTripAppConfig(t *testing.T, spec appconfig.Spec, collect func(t *testing.T, l *appconfig.Lab, n int32, dir string) error) {
	dir := filepath.Join(t.TempDir(), "field-failure")
	field := appconfig.RunWith(t, spec, appconfig.RunOptions{Seed: 7, OnEnd: func(l *appconfig.Lab, n int32) {
		if err := collect(t, l, n, dir); err != nil {
			t.Fatalf("collect: %v", err)
		}
	}})
	if !field.OK() {
		t.Fatalf("the field run: %v", field.Failures)
	}
	rec, err := replay.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rec.AppConfig == nil || rec.AppConfig.State != field.State || rec.AppConfig.Percentage != field.Percentage ||
		!slices.Equal(rec.AppConfig.Events, field.Events) || rec.AppConfig.TriggeredBy != field.TriggeredBy {
		t.Fatalf("record %+v, the field's %s %v%% %v %s", rec.AppConfig, field.State, field.Percentage, field.Events, field.TriggeredBy)
	}
	var log strings.Builder
	out, err := replay.RunAppConfig(rec, rec.AppConfigSpec(), 0, &log)
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, log.String())
	}
	var b strings.Builder
	out.Report(&b)
	if !out.Reproduced() {
		t.Fatalf("not reproduced:\n%s\n%s", b.String(), log.String())
	}
	got := out.AppConfigResult
	if got.State != field.State || got.Percentage != field.Percentage || !slices.Equal(got.Events, field.Events) || got.TriggeredBy != field.TriggeredBy {
		t.Errorf("replayed %s %v%% %v %s, the field's %s %v%% %v %s", got.State, got.Percentage, got.Events, got.TriggeredBy,
			field.State, field.Percentage, field.Events, field.TriggeredBy)
	}
	t.Logf("%s", b.String())
}

func TestReplayRoundTripAppConfig(t *testing.T) {
	for name, spec := range faultyAppConfig() {
		t.Run(name, func(t *testing.T) {
			roundTripAppConfig(t, spec, func(_ *testing.T, l *appconfig.Lab, n int32, dir string) error { return collectAppConfig(l, n, dir) })
		})
	}
	t.Run("alarm-aws-cli", func(t *testing.T) {
		skipWithoutCLI(t)
		roundTripAppConfig(t, faultyAppConfig()["alarm"], func(t *testing.T, l *appconfig.Lab, n int32, dir string) error {
			_, run, _ := awsclitest.AWSCLI(t, l.Endpoint())
			parts := strings.Split(l.Job(n), "/")
			out, stderr, err := run("appconfig", "get-deployment", "--application-id", parts[0], "--environment-id", parts[1], "--deployment-number", parts[2])
			if err != nil {
				t.Fatalf("aws appconfig get-deployment: %v\n%s", err, stderr)
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, "get-deployment.json"), []byte(out), 0o644)
		})
	})
}
