package scenarios_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	gg "github.com/aws/aws-sdk-go-v2/service/greengrassv2"
	ggtypes "github.com/aws/aws-sdk-go-v2/service/greengrassv2/types"
	. "github.com/onsi/gomega"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/faults"
	ggh "github.com/fleetlab/fleetlab/harness/greengrassv2"
	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	agentgg "github.com/fleetlab/fleetlab/sim/agent/greengrassv2"
	ggwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/greengrassv2"
	"github.com/fleetlab/fleetlab/sim/event"
)

// ggCodeScenarios are the Greengrass V2 scenarios that need more than a fault plan and a deployment.
func ggCodeScenarios() []harness.Spec {
	return []harness.Spec{ggExponentialRollout(), ggRevisionSupersedes(), ggThingJoinsLater(), ggThingLeaves(),
		ggRollbackRestores(), ggDoNothingKeepsPartial(), ggConfigurationMergeReset(), ggBrokenComponent(),
		ggCancelMidway(), ggServiceRestart(), ggSlowInstallPastTimeout(), ggShutdownExit(), ggConfigurationInScripts(),
		ggBrokenAfterDeployment()}
}

const hello = ggh.DefaultComponent

// ggSucceeded is the expectation of a core device whose deployment succeeded (a thing-group target's).
var ggSucceeded = &harness.RobotExpect{Status: ggh.RobotSucceeded, Step: agentgg.StepFinished}

// onDevice returns what a core device runs, failing the test when it cannot be read.
func onDevice(env *harness.Env, name string) ggh.Set {
	set, err := ggh.Of(env).OnDevice(name)
	env.Expect(err).NotTo(HaveOccurred(), "read %s", name)
	return set
}

// releases returns, in order, when the engine released each of the job's executions.
func releases(env *harness.Env, job string) []time.Time {
	var out []time.Time
	for _, e := range env.Events().Events() {
		if e.Deployment == harness.JobID(job) && e.Kind == event.ExecutionReleased && harness.Source(e) == harness.SourceEngine {
			out = append(out, e.Time)
		}
	}
	return out
}

// ggExponentialRollout rolls a deployment out to a 50-device group at an exponential rate and checks when the
// engine released each device against the IoT Jobs formula.
func ggExponentialRollout() harness.Spec {
	const base, factor, every, max = 4, 2.0, 8, 32
	return harness.Spec{
		Name:        "exponential-rollout",
		Dialect:     ggh.Name,
		Description: "50 core devices, 4 a minute doubling every 8 notified things up to 32 a minute: each release at the time the IoT Jobs formula gives",
		Fleet:       harness.FleetSpec{Robots: 50},
		Run: func(env *harness.Env, _ harness.Spec) string {
			job := env.Deploy(bundles.Hello, ggh.Deployment{Rollout: &ggh.Rollout{BaseRatePerMinute: base,
				IncrementFactor: factor, NotifiedThings: every, MaximumPerMinute: max}})
			env.WaitJob(job)
			got := releases(env, job)
			env.Expect(got).To(HaveLen(50))
			// Release k comes 1/rate_k minutes after release k-1, rate_k = min(max, base·factor^⌊k/every⌋),
			// k the things notified before it.
			want := time.Duration(0)
			for k := 1; k < len(got); k++ {
				rate := math.Min(max, base*math.Pow(factor, float64(k/every)))
				want += time.Duration(float64(time.Minute) / rate)
				env.Expect(got[k].Sub(got[0])).To(Equal(want), "release %d", k+1)
			}
			env.Expect(want).To(Equal(243750 * time.Millisecond))
			// Every device's effective deployment and what it runs are the driver's to check (Describe, Verify);
			// the first and the last released say why they succeeded.
			for _, name := range []string{"robot-0001", "robot-0050"} {
				effs, err := ggh.Of(env).Effective(name)
				env.Expect(err).NotTo(HaveOccurred())
				env.Expect(effs).To(HaveLen(1), name)
				env.Expect(effs[0].CoreDeviceExecutionStatus).To(Equal(ggtypes.EffectiveDeploymentExecutionStatusSucceeded))
				env.Expect(aws.ToString(effs[0].Reason)).To(Equal(agentgg.StatusSuccessful))
			}
			return job
		},
		Expect: harness.Expect{Status: ggh.JobActive, Others: ggSucceeded, Counts: map[string]int{ggh.RobotSucceeded: 50}},
	}
}

// ggRevisionSupersedes deploys a second revision while the first is rolling out one device a minute: the
// first becomes INACTIVE, its devices not yet notified are CANCELED, and every device ends on the second.
func ggRevisionSupersedes() harness.Spec {
	return harness.Spec{
		Name:        "revision-supersedes-midway",
		Dialect:     ggh.Name,
		Description: "Revision 2 (2.0.0) while revision 1 has reached 2 of 6 devices: revision 1 INACTIVE, its queued devices CANCELED, all 6 run 2.0.0",
		Fleet:       harness.FleetSpec{Robots: 6},
		Run: func(env *harness.Env, _ harness.Spec) string {
			first := env.Deploy(bundles.Hello, ggh.Deployment{Rollout: &ggh.Rollout{MaximumPerMinute: 1}})
			env.WaitFor(func(j harness.Job) bool { return j.Counts()[ggh.RobotSucceeded] >= 2 }, first)
			second := env.Deploy(bundles.Hello, ggh.Deployment{Components: []ggh.Component{{Name: hello, Version: "2.0.0"}}})
			old := env.WaitJob(first)
			env.Expect(old.Status).To(Equal(ggh.JobInactive))
			env.Expect(old.Counts()[ggh.RobotSucceeded]).To(BeNumerically(">=", 2))
			// Revision 1 lists the things it notified: they succeeded, or (notified and not started) were canceled.
			env.Expect(old.Counts()[ggh.RobotSucceeded]+old.Counts()[ggh.RobotCanceled]).To(Equal(len(old.Robots)), "%s", old)
			env.Expect(len(old.Robots)).To(BeNumerically("<", 6), "%s", old)
			id1, _ := ggh.Of(env).Deployment(first)
			id2, _ := ggh.Of(env).Deployment(second)
			d1, err := ggh.Of(env).Client().GetDeployment(env.Context(), &gg.GetDeploymentInput{DeploymentId: aws.String(id1)})
			env.Expect(err).NotTo(HaveOccurred())
			env.Expect(d1.IsLatestForTarget).To(BeFalse())
			d2, err := ggh.Of(env).Client().GetDeployment(env.Context(), &gg.GetDeploymentInput{DeploymentId: aws.String(id2)})
			env.Expect(err).NotTo(HaveOccurred())
			env.Expect(d2.IsLatestForTarget).To(BeTrue())
			env.Expect(aws.ToString(d2.RevisionId)).To(Equal("2"))
			env.WaitJob(second)
			for _, name := range env.Robots() {
				env.Expect(onDevice(env, name).Components).To(Equal(map[string]string{hello: "2.0.0"}), name)
			}
			return second
		},
		Expect: harness.Expect{Status: ggh.JobActive, Others: ggSucceeded},
	}
}

// ggThingJoinsLater adds a thing to the group after the deployment has reached every member: the continuous
// deployment gets it too.
func ggThingJoinsLater() harness.Spec {
	return harness.Spec{
		Name:        "thing-joins-later",
		Dialect:     ggh.Name,
		Description: "A thing that joins the group after the rollout gets the group's latest revision and runs it",
		Fleet:       harness.FleetSpec{Robots: 3, Late: []string{"late-0001"}},
		Run: func(env *harness.Env, _ harness.Spec) string {
			job := env.Deploy(bundles.Hello, ggh.Deployment{})
			j := env.WaitJob(job)
			env.Expect(j.RobotNames()).To(Equal([]string{"robot-0001", "robot-0002", "robot-0003"}))
			env.Expect(onDevice(env, "late-0001").Job).To(BeEmpty())
			env.RegisterLate()
			env.WaitFor(func(j harness.Job) bool {
				r, ok := j.Robot("late-0001")
				return ok && r.Status == ggh.RobotSucceeded
			}, job)
			env.Expect(onDevice(env, "late-0001")).To(And(
				HaveField("Job", harness.JobID(job)), HaveField("Components", map[string]string{hello: "1.0.0"})))
			return job
		},
		Expect: harness.Expect{Status: ggh.JobActive, Others: ggSucceeded, Counts: map[string]int{ggh.RobotSucceeded: 4}},
	}
}

// ggThingLeaves removes a thing from the group after it runs the group's components: it loses them.
func ggThingLeaves() harness.Spec {
	return harness.Spec{
		Name:        "thing-leaves",
		Dialect:     ggh.Name,
		Description: "A thing removed from the group after it runs the group's deployment has the group's components removed",
		Fleet:       harness.FleetSpec{Robots: 3},
		Run: func(env *harness.Env, _ harness.Spec) string {
			job := env.Deploy(bundles.Hello, ggh.Deployment{})
			env.WaitJob(job)
			env.Expect(onDevice(env, "robot-0002").Components).To(Equal(map[string]string{hello: "1.0.0"}))
			env.Expect(ggh.Of(env).Leave("robot-0002")).To(Succeed())
			env.Eventually(func() map[string]string { return onDevice(env, "robot-0002").Components }).Should(BeEmpty())
			inst, err := ggh.Of(env).Installed("robot-0002")
			env.Expect(err).NotTo(HaveOccurred())
			env.Expect(inst).To(BeEmpty())
			for _, name := range []string{"robot-0001", "robot-0003"} {
				env.Expect(onDevice(env, name).Components).To(Equal(map[string]string{hello: "1.0.0"}), name)
			}
			return job
		},
		Expect: harness.Expect{Status: ggh.JobActive, Others: ggSucceeded},
	}
}

// ggRollbackRestores deploys 1.0.0 with a configuration, then 2.0.0 with another whose install exits on two
// devices: those roll back to 1.0.0 and its configuration, checked on the devices.
func ggRollbackRestores() harness.Spec {
	defaults := map[string]any{"mode": "default", "level": 1}
	return harness.Spec{
		Name:        "rollback-restores",
		Dialect:     ggh.Name,
		Description: "2.0.0's install exits 4 on two devices: ROLLBACK restores 1.0.0 with its configuration there; the others run 2.0.0 with the new one",
		Fleet:       harness.FleetSpec{Robots: 4},
		Run: func(env *harness.Env, _ harness.Spec) string {
			first := env.Deploy(bundles.Hello, ggh.Deployment{Components: []ggh.Component{{Name: hello,
				Defaults: defaults, Merge: `{"mode":"fast"}`}}})
			env.Expect(env.WaitJob(first).Counts()[ggh.RobotSucceeded]).To(Equal(4))
			env.Inject(faults.Spec{Fault: "script-exit", Params: json.RawMessage(`{"script":"install","code":4,"component":"` + hello + `"}`),
				Target: faults.Selector{Devices: []string{"robot-0002", "robot-0003"}}})
			second := env.Deploy(bundles.Hello, ggh.Deployment{Components: []ggh.Component{{Name: hello, Version: "2.0.0",
				Defaults: defaults, Merge: `{"mode":"slow","level":2}`}}})
			env.WaitJob(second)
			for _, name := range env.Robots() {
				set := onDevice(env, name)
				if name == "robot-0002" || name == "robot-0003" {
					env.Expect(set.Job).To(Equal(harness.JobID(first)), name)
					env.Expect(set.Components).To(Equal(map[string]string{hello: "1.0.0"}), name)
					env.Expect(fmt.Sprint(set.Config[hello])).To(Equal("map[level:1 mode:fast]"), name)
					det, err := ggh.Of(env).Details(second, name)
					env.Expect(err).NotTo(HaveOccurred())
					env.Expect(det).To(HaveKeyWithValue(agentgg.DetailDeploymentStatus, agentgg.StatusFailedRollbackComplete))
					core, err := ggh.Of(env).CoreDevice(name)
					env.Expect(err).NotTo(HaveOccurred())
					env.Expect(core.Status).To(Equal(ggtypes.CoreDeviceStatusUnhealthy), name)
					continue
				}
				env.Expect(set.Components).To(Equal(map[string]string{hello: "2.0.0"}), name)
				env.Expect(fmt.Sprint(set.Config[hello])).To(Equal("map[level:2 mode:slow]"), name)
			}
			return second
		},
		Expect: harness.Expect{Status: ggh.JobActive, Others: ggSucceeded,
			Robots: map[string]harness.RobotExpect{
				"robot-0002": {Status: ggh.RobotFailed, FailureCode: agentgg.CodeComponentBroken, Step: agentgg.StepInstalling},
				"robot-0003": {Status: ggh.RobotFailed, FailureCode: agentgg.CodeComponentBroken, Step: agentgg.StepInstalling},
			}},
	}
}

// ggDoNothingKeepsPartial deploys, with DO_NOTHING, a new App and an Extra component whose install exits on one
// device: that device keeps the new set applied, the broken component with it.
func ggDoNothingKeepsPartial() harness.Spec {
	return harness.Spec{
		Name:        "do-nothing-keeps-partial",
		Dialect:     ggh.Name,
		Description: "DO_NOTHING: Extra's install exits 5 on robot-0001, which fails FAILED_ROLLBACK_NOT_REQUESTED and keeps App 2.0.0 and Extra applied",
		Fleet:       harness.FleetSpec{Robots: 3},
		Run: func(env *harness.Env, _ harness.Spec) string {
			first := env.Deploy(bundles.Hello, ggh.Deployment{Components: []ggh.Component{{Name: "com.fleetlab.App"}}})
			env.WaitJob(first)
			env.Inject(faults.Spec{Fault: "script-exit", Params: json.RawMessage(`{"script":"install","code":5,"component":"com.fleetlab.Extra"}`),
				Target: faults.Selector{Devices: []string{"robot-0001"}}})
			second := env.Deploy(bundles.Hello, ggh.Deployment{FailureHandling: "DO_NOTHING", Components: []ggh.Component{
				{Name: "com.fleetlab.App", Version: "2.0.0"}, {Name: "com.fleetlab.Extra", NoArtifact: true}}})
			env.WaitJob(second)
			set := onDevice(env, "robot-0001")
			env.Expect(set.Job).To(Equal(harness.JobID(second)))
			env.Expect(set.Components).To(Equal(map[string]string{"com.fleetlab.App": "2.0.0", "com.fleetlab.Extra": "1.0.0"}))
			det, err := ggh.Of(env).Details(second, "robot-0001")
			env.Expect(err).NotTo(HaveOccurred())
			env.Expect(det).To(HaveKeyWithValue(agentgg.DetailDeploymentStatus, agentgg.StatusFailedRollbackNotRequested))
			for _, name := range []string{"robot-0002", "robot-0003"} {
				env.Expect(onDevice(env, name).Components).To(Equal(set.Components), name)
			}
			return second
		},
		Expect: harness.Expect{Status: ggh.JobActive, Others: ggSucceeded,
			Robots: map[string]harness.RobotExpect{
				"robot-0001": {Status: ggh.RobotFailed, FailureCode: agentgg.CodeComponentBroken, Step: agentgg.StepInstalling}}},
	}
}

// ggConfigurationMergeReset deploys three revisions of configuration updates and reads each result on the
// devices: a merge over the defaults (keys matched case-insensitively), a reset of one key back to its
// default with another merge, and a reset of everything.
func ggConfigurationMergeReset() harness.Spec {
	defaults := map[string]any{"mode": "default", "limits": map[string]any{"cpu": 1, "mem": 32}}
	comp := func(version, merge string, reset ...string) ggh.Deployment {
		return ggh.Deployment{Components: []ggh.Component{{Name: hello, Version: version, Defaults: defaults,
			Merge: merge, Reset: reset}}}
	}
	return harness.Spec{
		Name:        "configuration-merge-reset",
		Dialect:     ggh.Name,
		Description: "merge over the defaults, then reset /limits/cpu with another merge, then reset everything: each effective configuration read on the devices",
		Fleet:       harness.FleetSpec{Robots: 2},
		Run: func(env *harness.Env, _ harness.Spec) string {
			check := func(job, want string) {
				env.Expect(env.WaitJob(job).Counts()[ggh.RobotSucceeded]).To(Equal(2))
				for _, name := range env.Robots() {
					env.Expect(fmt.Sprint(onDevice(env, name).Config[hello])).To(Equal(want), name)
				}
			}
			check(env.Deploy(bundles.Hello, comp("1.0.0", `{"MODE":"fast","limits":{"cpu":2,"mem":64}}`)),
				"map[limits:map[cpu:2 mem:64] mode:fast]")
			check(env.Deploy(bundles.Hello, comp("1.0.0", `{"extra":true}`, "/limits/cpu")),
				"map[extra:true limits:map[cpu:1 mem:64] mode:fast]")
			last := env.Deploy(bundles.Hello, comp("1.0.0", "", ""))
			check(last, "map[limits:map[cpu:1 mem:32] mode:default]")
			return last
		},
		Expect: harness.Expect{Status: ggh.JobActive, Others: ggSucceeded},
	}
}

// ggBrokenComponent deploys a version whose install always exits: three errors make it BROKEN, the
// device rolls back, the core device is UNHEALTHY and lists the component BROKEN.
func ggBrokenComponent() harness.Spec {
	return harness.Spec{
		Name:        "broken-component",
		Dialect:     ggh.Name,
		Description: "2.0.0's install exits 2 every time: BROKEN after three errors, rolled back to 1.0.0, the core device UNHEALTHY with the component BROKEN",
		Fleet:       harness.FleetSpec{Robots: 2},
		Run: func(env *harness.Env, _ harness.Spec) string {
			env.WaitJob(env.Deploy(bundles.Hello, ggh.Deployment{}))
			job := env.Deploy(bundles.Hello, ggh.Deployment{Components: []ggh.Component{{Name: hello, Version: "2.0.0",
				Install: "echo installing\nexit 2"}}})
			env.WaitJob(job)
			for _, name := range env.Robots() {
				env.Expect(onDevice(env, name).Components).To(Equal(map[string]string{hello: "1.0.0"}), name)
				core, err := ggh.Of(env).CoreDevice(name)
				env.Expect(err).NotTo(HaveOccurred())
				env.Expect(core.Status).To(Equal(ggtypes.CoreDeviceStatusUnhealthy))
				inst, err := ggh.Of(env).Installed(name)
				env.Expect(err).NotTo(HaveOccurred())
				env.Expect(inst).To(HaveKey(hello))
				env.Expect(inst[hello].LifecycleState).To(Equal(ggtypes.InstalledComponentLifecycleStateBroken))
				// The agent ran the install three times before giving up.
				errored := harness.Filter(env.Events().Events(), func(e event.Event) bool {
					return e.Device == name && e.Deployment == harness.JobID(job) && e.Kind == harness.AgentError && strings.Contains(e.Reason, "ERRORED")
				})
				env.Expect(len(errored)).To(BeNumerically(">=", 2), "ERRORED warnings of %s", name)
			}
			return job
		},
		Expect: harness.Expect{Status: ggh.JobActive,
			Others: &harness.RobotExpect{Status: ggh.RobotFailed, FailureCode: agentgg.CodeComponentBroken, Step: agentgg.StepInstalling}},
	}
}

// ggCancelMidway cancels a one-a-minute rollout once two devices have it: they keep it, the rest never get it.
func ggCancelMidway() harness.Spec {
	return harness.Spec{
		Name:        "cancel-midway",
		Dialect:     ggh.Name,
		Description: "CancelDeployment after 2 of 6 devices succeeded: those keep the deployment, the 4 not notified are CANCELED and run nothing",
		Fleet:       harness.FleetSpec{Robots: 6},
		Run: func(env *harness.Env, _ harness.Spec) string {
			job := env.Deploy(bundles.Hello, ggh.Deployment{Rollout: &ggh.Rollout{MaximumPerMinute: 1}})
			env.WaitFor(func(j harness.Job) bool { return j.Counts()[ggh.RobotSucceeded] == 2 }, job)
			env.Expect(env.Cancel(job)).To(Succeed())
			j := env.WaitJob(job)
			env.Expect(j.RobotNames()).To(Equal([]string{"robot-0001", "robot-0002"}), "the things notified")
			for _, name := range env.Robots()[2:] {
				// Never notified: no effective deployment, nothing on the device.
				effs, err := ggh.Of(env).Effective(name)
				env.Expect(err == nil && len(effs) == 0 || err != nil).To(BeTrue())
				env.Expect(onDevice(env, name).Job).To(BeEmpty(), name)
			}
			return job
		},
		Expect: harness.Expect{Status: ggh.JobCanceled, Counts: map[string]int{ggh.RobotSucceeded: 2},
			Others: ggSucceeded},
	}
}

// ggServiceRestart restarts the service while the rollout is half done: every device deploys once and the
// rollout finishes on the restarted service.
func ggServiceRestart() harness.Spec {
	return harness.Spec{
		Name:        "restart-mid-rollout",
		Dialect:     ggh.Name,
		Description: "The service is dropped and restarted on its data while core devices deploy: nothing lost, nothing done twice",
		Fleet:       harness.FleetSpec{Robots: 6},
		Run: func(env *harness.Env, _ harness.Spec) string {
			held := env.Inject(hold("robot-0003", agentgg.StepInstalling))
			job := env.Deploy(bundles.Hello, ggh.Deployment{Rollout: &ggh.Rollout{MaximumPerMinute: 2}})
			env.Eventually(env.Robot(job, "robot-0003")).Should(harness.HaveStep(agentgg.StepInstalling))
			env.WaitFor(func(j harness.Job) bool { return j.Counts()[ggh.RobotSucceeded] >= 2 }, job)
			env.Inject(faults.Spec{Fault: "service-restart", Params: []byte(`{"down":"30s"}`)})
			env.Recover(held)
			env.WaitJob(job)
			id := harness.JobID(job)
			for _, name := range env.Robots() {
				env.Expect(count(env, id, name, event.ExecutionReleased, "")).To(Equal(1), "%s released", name)
				env.Expect(count(env, id, name, event.ExecutionState, "SUCCEEDED")).To(Equal(1), "%s succeeded", name)
			}
			return job
		},
		Expect: harness.Expect{Status: ggh.JobActive, Others: ggSucceeded},
	}
}

// ggSlowInstallPastTimeout makes the install step take longer than its recipe's Timeout on one device: the
// step times out each time, the component is BROKEN, the device rolls back.
func ggSlowInstallPastTimeout() harness.Spec {
	return harness.Spec{
		Name:        "slow-install-past-timeout",
		Dialect:     ggh.Name,
		Description: "The install step (Timeout 60s) takes 5 minutes on robot-0002: it times out three times, the component is BROKEN",
		Fleet:       harness.FleetSpec{Robots: 3},
		Faults: []faults.Spec{{Fault: "slow-script", Params: []byte(`{"script":"install","delay":"5m"}`),
			Target: faults.Selector{Devices: []string{"robot-0002"}}}},
		Run: func(env *harness.Env, _ harness.Spec) string {
			job := env.Deploy(bundles.Hello, ggh.Deployment{Components: []ggh.Component{{Name: hello,
				InstallTimeout: faults.Duration(time.Minute)}}})
			j := env.WaitJob(job)
			r, _ := j.Robot("robot-0002")
			env.Expect(r.FailureReason).To(ContainSubstring("timed out"))
			env.Expect(onDevice(env, "robot-0002").Job).To(BeEmpty())
			return job
		},
		Expect: harness.Expect{Status: ggh.JobActive, Others: ggSucceeded,
			Targets: &harness.RobotExpect{Status: ggh.RobotFailed, FailureCode: agentgg.CodeComponentBroken, Step: agentgg.StepInstalling}},
	}
}

// ggShutdownExit replaces a set whose component's shutdown step exits on one device: the nucleus stops the
// component all the same, so the new set is installed there too.
func ggShutdownExit() harness.Spec {
	return harness.Spec{
		Name:        "shutdown-exit",
		Dialect:     ggh.Name,
		Description: "1.0.0's shutdown step exits 6 on robot-0001 when 2.0.0 replaces it: the failure is recorded, the component stopped, 2.0.0 installed",
		Fleet:       harness.FleetSpec{Robots: 2},
		Run: func(env *harness.Env, _ harness.Spec) string {
			env.WaitJob(env.Deploy(bundles.Hello, ggh.Deployment{Components: []ggh.Component{{Name: hello,
				Shutdown: "echo stopping\nexit 0"}}}))
			env.Inject(faults.Spec{Fault: "script-exit", Params: json.RawMessage(`{"script":"shutdown","code":6}`),
				Target: faults.Selector{Devices: []string{"robot-0001"}}})
			job := env.Deploy(bundles.Hello, ggh.Deployment{Components: []ggh.Component{{Name: hello, Version: "2.0.0"}}})
			env.WaitJob(job)
			env.Expect(env.Events()).To(harness.ContainEvents(event.Event{Fault: "script-exit", Kind: event.FaultInjected,
				Device: "robot-0001"}))
			for _, name := range env.Robots() {
				env.Expect(onDevice(env, name).Components).To(Equal(map[string]string{hello: "2.0.0"}), name)
			}
			return job
		},
		Expect: harness.Expect{Status: ggh.JobActive, Others: ggSucceeded},
	}
}

// ggConfigurationInScripts runs the lifecycle as real processes: the install step writes the configuration it
// was given ({configuration:/mode}, and the whole of it through GG_COMPONENT_CONFIG) beside itself, and a
// second deployment's merge reaches the script of the new set.
func ggConfigurationInScripts() harness.Spec {
	install := `printf '%s' '{configuration:/mode}' > observed-mode && cp "$GG_COMPONENT_CONFIG" observed-config.json`
	comp := func(merge string) ggh.Deployment {
		return ggh.Deployment{Components: []ggh.Component{{Name: hello, Defaults: map[string]any{"mode": "default", "n": 1},
			Install: install, Merge: merge}}}
	}
	return harness.Spec{
		Name:        "configuration-in-scripts",
		Dialect:     ggh.Name,
		Description: "Real install scripts read their configuration: the default, then the merged value, on each device",
		Fleet:       harness.FleetSpec{Robots: 2},
		Options:     []harness.Option{harness.WithBackend(harness.InProc{Executors: harness.Real})},
		Run: func(env *harness.Env, _ harness.Spec) string {
			observed := func(want, config string) {
				for _, name := range env.Robots() {
					b, err := ggh.Of(env).ReadFile(name, "observed-mode")
					env.Expect(err).NotTo(HaveOccurred(), name)
					env.Expect(string(b)).To(Equal(want), name)
					b, err = ggh.Of(env).ReadFile(name, "observed-config.json")
					env.Expect(err).NotTo(HaveOccurred(), name)
					env.Expect(string(b)).To(MatchJSON(config), name)
				}
			}
			env.WaitJob(env.Deploy(bundles.Hello, comp("")))
			observed("default", `{"mode":"default","n":1}`)
			job := env.Deploy(bundles.Hello, comp(`{"mode":"fast","n":2}`))
			env.WaitJob(job)
			observed("fast", `{"mode":"fast","n":2}`)
			return job
		},
		Expect: harness.Expect{Status: ggh.JobActive, Others: ggSucceeded},
	}
}

// ggBrokenAfterDeployment runs a component whose run step, a real process under the device's supervisor,
// exits 3 every time: the deployment has SUCCEEDED by then (it does not wait for run steps), the supervisor
// runs the step three times and the component is BROKEN. The device's fleet status carries that to the cloud:
// the core device is UNHEALTHY and lists the component BROKEN, and the harness's verification does not call
// the device good. A later deployment of a version that runs makes it HEALTHY again.
//
// The run step fails in wall-clock time; the scenario waits for the device to record BROKEN with the world
// standing still, then lets a fixed minute of virtual time pass, in which the agent's next look
// (StatusCheckInterval) publishes it: the same events at the same virtual times in every run.
func ggBrokenAfterDeployment() harness.Spec {
	return harness.Spec{
		Name:    "broken-after-deployment",
		Dialect: ggh.Name,
		Description: "The run step exits 3 after the deployment SUCCEEDED: BROKEN on the device after three errors, " +
			"the core device UNHEALTHY with the component BROKEN, the verification refuses the device; 3.0.0 makes it HEALTHY again",
		Fleet:   harness.FleetSpec{Robots: 1},
		Options: []harness.Option{harness.WithBackend(harness.InProc{Executors: harness.Real})},
		Run: func(env *harness.Env, _ harness.Spec) string {
			const name = "robot-0001"
			session := ggh.Of(env)
			deployed := env.Clock().Now()
			job := env.Deploy(bundles.Hello, ggh.Deployment{Components: []ggh.Component{{Name: hello, Version: "2.0.0",
				Run: "echo running\nexit 3"}}})
			j := env.WaitJob(job)
			r, _ := j.Robot(name)
			env.Expect(r.Status).To(Equal(ggh.RobotSucceeded), "the deployment does not wait for the run step")
			ended := env.Clock().Now()

			// The supervisor runs the step three times, in wall-clock time, while the world stands still.
			env.Expect(agenttest.Eventually(30*time.Second, func() bool {
				set, err := session.OnDevice(name)
				return err == nil && set.Lifecycle[hello].State == ggwire.LifecycleBroken
			})).To(BeTrue(), "%s never recorded %s BROKEN", name, hello)
			set := onDevice(env, name)
			env.Expect(set.Lifecycle[hello].Errors).To(Equal(agentgg.MaxStepErrors))
			env.Expect(set.Lifecycle[hello].LastExit).To(Equal(3))

			// A minute of virtual time: the agent's next look publishes the fleet status.
			env.Eventually(func() bool { return env.Clock().Now().Sub(ended) >= time.Minute }).Should(BeTrue())
			core, err := session.CoreDevice(name)
			env.Expect(err).NotTo(HaveOccurred())
			env.Expect(core.Status).To(Equal(ggtypes.CoreDeviceStatusUnhealthy))
			inst, err := session.Installed(name)
			env.Expect(err).NotTo(HaveOccurred())
			env.Expect(inst).To(HaveKey(hello))
			env.Expect(inst[hello].LifecycleState).To(Equal(ggtypes.InstalledComponentLifecycleStateBroken))
			env.Expect(aws.ToString(inst[hello].ComponentVersion)).To(Equal("2.0.0"))
			env.Expect(aws.ToString(inst[hello].LifecycleStateDetails)).To(ContainSubstring("BROKEN after 3 errors"))
			env.Expect(inst[hello].LifecycleStatusCodes).To(Equal([]string{agentgg.CodeComponentBroken}))
			// When the device saw it break: after the deployment began, by now.
			env.Expect(aws.ToTime(inst[hello].LastStatusChangeTimestamp)).To(And(
				BeTemporally(">=", deployed.Truncate(time.Millisecond)), BeTemporally("<=", env.Clock().Now())))
			list, err := session.Client().ListCoreDevices(context.Background(), &gg.ListCoreDevicesInput{
				Status: ggtypes.CoreDeviceStatusUnhealthy})
			env.Expect(err).NotTo(HaveOccurred())
			env.Expect(list.CoreDevices).To(HaveLen(1))
			env.Expect(aws.ToString(list.CoreDevices[0].CoreDeviceThingName)).To(Equal(name))

			// The job still says SUCCEEDED; the verification does not call the device good.
			fails := session.Check(j)
			env.Expect(fails).To(ContainElement(ContainSubstring("is BROKEN on the device")))
			env.Expect(fails).To(ContainElement(ContainSubstring("its core device UNHEALTHY, want HEALTHY")))
			env.Expect(fails).To(ContainElement(ContainSubstring("ListInstalledComponents has " + hello + " BROKEN")))

			// A version whose run step succeeds: the device is HEALTHY again.
			fix := env.Deploy(bundles.Hello, ggh.Deployment{Components: []ggh.Component{{Name: hello, Version: "3.0.0",
				Run: "echo running\nexit 0"}}})
			env.WaitJob(fix)
			core, err = session.CoreDevice(name)
			env.Expect(err).NotTo(HaveOccurred())
			env.Expect(core.Status).To(Equal(ggtypes.CoreDeviceStatusHealthy))
			return fix
		},
		Expect: harness.Expect{Status: ggh.JobActive, Others: ggSucceeded},
	}
}
