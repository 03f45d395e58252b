package scenarios_test

import (
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/harness/robomaker"
	"github.com/fleetlab/fleetlab/sim/clock"
	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
	"github.com/fleetlab/fleetlab/sim/event"
)

// thousandRobots is a rollout to 1,000 robots, RoboMaker's most per fleet, with its default five-hour robot
// timeout, where one robot stops answering as it launches.
func thousandRobots() harness.Spec {
	return harness.Spec{
		Name:        "thousand-robots-five-hours",
		Description: "1,000 robots, the default five-hour robot timeout, one robot hung at Launching",
		Fleet:       harness.FleetSpec{Robots: 1000},
		Job:         harness.JobSpec{Bundle: bundles.Hello},
		Faults: []faults.Spec{{Fault: "no-response",
			Target: faults.Selector{Devices: []string{"robot-0500"}, Step: rmwire.StepLaunching}}},
		Expect: harness.Expect{Status: robomaker.JobFailed, FailureCode: "RobotDeploymentNoResponse",
			Targets: &harness.RobotExpect{Status: robomaker.RobotNoResponse, FailureCode: "RobotDeploymentNoResponse"},
			Others:  &harness.RobotExpect{Status: robomaker.RobotInSync},
			Counts:  map[string]int{robomaker.RobotInSync: 999, robomaker.RobotNoResponse: 1}},
	}
}

// TestThousandRobotsFiveHours: on virtual time the hung robot is timed out exactly five hours after it was
// told of the job, and the job's timeline spans those five hours, without the test waiting for them.
func TestThousandRobotsFiveHours(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 robots")
	}
	began := clock.Real{}.Now()
	res := harness.RunSpec(t, thousandRobots())
	t.Logf("five virtual hours of 1,000 robots took %v of wall time", clock.Real{}.Now().Sub(began).Round(time.Millisecond))
	if !res.OK() {
		return
	}
	var released, timedOut time.Time
	for _, e := range res.Job.Timeline {
		switch {
		case e.Device != "robot-0500" || harness.Source(e) != harness.SourceEngine:
		case e.Kind == event.ExecutionReleased:
			released = e.Time
		case e.Kind == event.ExecutionState && e.To == "TIMED_OUT":
			timedOut = e.Time
		}
	}
	if got := timedOut.Sub(released); got != 5*time.Hour {
		t.Errorf("robot-0500 timed out %v after it was released, want exactly 5h", got)
	}
	tl := res.Job.Timeline
	if span := tl[len(tl)-1].Time.Sub(tl[0].Time); span < 5*time.Hour {
		t.Errorf("the job's timeline spans %v, want the five hours", span)
	}
}

// BenchmarkThousandRobotsFiveHours measures the wall time of the five-virtual-hour rollout to 1,000 robots.
func BenchmarkThousandRobotsFiveHours(b *testing.B) {
	for b.Loop() {
		began := clock.Real{}.Now()
		if _, err := harness.Execute(thousandRobots(), nil, ""); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(5*time.Hour)/float64(clock.Real{}.Now().Sub(began)), "virtual/wall")
	}
}
