package scenarios_test

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	rmsdk "github.com/aws/aws-sdk-go-v2/service/robomaker"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	. "github.com/onsi/gomega"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/harness/robomaker"
	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
	"github.com/fleetlab/fleetlab/sim/event"
)

// hold keeps a robot in a step until the fault recovers: a slow step far longer than any scenario.
func hold(robot, step string) faults.Spec {
	return faults.Spec{Fault: "slow-step", Params: []byte(`{"delay":"100h"}`),
		Target: faults.Selector{Devices: []string{robot}, Step: step}}
}

// codeScenarios are the scenarios that need more than a fault plan and a job.
func codeScenarios() []harness.Spec {
	return []harness.Spec{cancelMidRollout(), syncLateRobots(), concurrentDeployment(), serviceRestartMidRollout(),
		idempotentRetryThrough5xx()}
}

// cancelMidRollout cancels a one-at-a-time rollout while its second robot is launching: the first robot stays in
// sync, the second (already deploying) carries on to the end, the rest are never deployed.
func cancelMidRollout() harness.Spec {
	return harness.Spec{
		Name:        "cancel-mid-rollout",
		Description: "CancelDeploymentJob while robot 2 of 5 is launching: robots not started are aborted, the one deploying finishes",
		Fleet:       harness.FleetSpec{Robots: 5},
		Run: func(env *harness.Env, _ harness.Spec) string {
			held, err := env.Arm(hold("robot-0002", rmwire.StepLaunching))
			env.Expect(err).NotTo(HaveOccurred())
			env.Expect(held.Inject(env.Context())).To(Succeed())
			job := env.Deploy(bundles.Hello, robomaker.Deployment{Concurrency: 20})
			env.Eventually(env.Robot(job, "robot-0002")).Should(And(
				harness.HaveStatus(robomaker.RobotDeploying), harness.HaveStep(rmwire.StepLaunching)))
			env.Expect(env.Cancel(job)).To(Succeed())
			env.Eventually(env.Job(job)).Should(harness.HaveStatus(robomaker.JobCanceled))
			env.Recover(held)
			return job
		},
		Expect: harness.Expect{
			Status: robomaker.JobCanceled,
			Robots: map[string]harness.RobotExpect{
				"robot-0001": {Status: robomaker.RobotInSync},
				"robot-0002": {Status: robomaker.RobotInSync},
			},
			Others: &harness.RobotExpect{Status: robomaker.RobotFailed, FailureCode: "RobotDeploymentAborted"},
		},
	}
}

// syncLateRobots deploys to a fleet, then registers two more robots and synchronizes: the sync job deploys the
// last successful job to the late robots only.
func syncLateRobots() harness.Spec {
	return harness.Spec{
		Name:        "sync-late-robots",
		Description: "SyncDeploymentJob after two robots join the fleet: only they get the fleet's last successful deployment",
		Fleet:       harness.FleetSpec{Robots: 3, Late: []string{"late-0001", "late-0002"}},
		Run: func(env *harness.Env, _ harness.Spec) string {
			first := env.WaitJob(env.Deploy(bundles.Hello, robomaker.Deployment{}))
			env.Expect(first).To(harness.HaveStatus(robomaker.JobSucceeded))
			env.Expect(first).To(harness.HaveRobotCounts(map[string]int{robomaker.RobotInSync: 3}))
			_, err := robomaker.Of(env).Sync()
			var bad *types.InvalidParameterException
			env.Expect(errors.As(err, &bad)).To(BeTrue(), "sync with every robot in sync: %v", err)
			env.RegisterLate()
			job, err := robomaker.Of(env).Sync()
			env.Expect(err).NotTo(HaveOccurred())
			return job
		},
		Expect: harness.Expect{
			Status: robomaker.JobSucceeded,
			Robots: map[string]harness.RobotExpect{
				"late-0001": {Status: robomaker.RobotInSync, Step: rmwire.StepFinished},
				"late-0002": {Status: robomaker.RobotInSync, Step: rmwire.StepFinished},
			},
		},
	}
}

// concurrentDeployment starts a second job while the first is still deploying.
func concurrentDeployment() harness.Spec {
	return harness.Spec{
		Name:        "concurrent-deployment",
		Description: "A second CreateDeploymentJob on a fleet with an active job is ConcurrentDeploymentException; the first job is unharmed",
		Fleet:       harness.FleetSpec{Robots: 3},
		Run: func(env *harness.Env, _ harness.Spec) string {
			held, err := env.Arm(hold("robot-0001", rmwire.StepExecutingPreLaunch))
			env.Expect(err).NotTo(HaveOccurred())
			env.Expect(held.Inject(env.Context())).To(Succeed())
			job := env.Deploy(bundles.Hello, robomaker.Deployment{})
			env.Eventually(env.Robot(job, "robot-0001")).Should(harness.HaveStep(rmwire.StepExecutingPreLaunch))
			_, err = robomaker.Of(env).StartJob(robomaker.Of(env).CreateApplication(bundles.Hello), robomaker.Deployment{})
			var conflict *types.ConcurrentDeploymentException
			env.Expect(errors.As(err, &conflict)).To(BeTrue(), "second job: %v", err)
			env.Recover(held)
			return job
		},
		Expect: harness.Expect{Status: robomaker.JobSucceeded, Others: &harness.RobotExpect{Status: robomaker.RobotInSync}},
	}
}

// serviceRestartMidRollout restarts the service while a rollout is half done: every acknowledged outcome
// survives, each robot deploys exactly once, and the rollout finishes on the restarted service.
func serviceRestartMidRollout() harness.Spec {
	return harness.Spec{
		Name:        "service-restart-mid-rollout",
		Description: "The service is dropped and restarted on its data while robots deploy: nothing is lost, nothing done twice",
		Fleet:       harness.FleetSpec{Robots: 6},
		Run: func(env *harness.Env, _ harness.Spec) string {
			held, err := env.Arm(hold("robot-0004", rmwire.StepLaunching))
			env.Expect(err).NotTo(HaveOccurred())
			env.Expect(held.Inject(env.Context())).To(Succeed())
			job := env.Deploy(bundles.Hello, robomaker.Deployment{Concurrency: 50})
			env.Eventually(env.Robot(job, "robot-0004")).Should(harness.HaveStep(rmwire.StepLaunching))
			before := env.WaitFor(func(j harness.Job) bool { return j.Counts()[robomaker.RobotInSync] >= 2 }, job)

			env.Inject(faults.Spec{Fault: "service-restart", Params: []byte(`{"down":"30s"}`)})
			env.Recover(held)
			after := env.WaitJob(job)
			for _, r := range before.Robots {
				if r.Status == robomaker.RobotInSync {
					env.Expect(after).To(harness.HaveRobot(r.Name, harness.HaveStatus(robomaker.RobotInSync)))
				}
			}
			// Each robot was released and succeeded exactly once, across both lives of the service.
			id := harness.JobID(job)
			for _, name := range env.Robots() {
				env.Expect(count(env, id, name, event.ExecutionReleased, "")).To(Equal(1), "%s released", name)
				env.Expect(count(env, id, name, event.ExecutionState, "SUCCEEDED")).To(Equal(1), "%s succeeded", name)
			}
			// The agents lost their notify channel with the service and got it back.
			env.Expect(env.Events()).To(harness.ContainEvents(
				event.Event{Fault: "service-restart", Kind: event.FaultInjected},
				event.Event{Kind: harness.AgentDisconnected},
				event.Event{Kind: harness.AgentConnected}))
			return job
		},
		Expect: harness.Expect{Status: robomaker.JobSucceeded, Others: &harness.RobotExpect{Status: robomaker.RobotInSync},
			MaxInFlight: 3},
	}
}

// count counts the engine events of kind (to status to, when set) for one robot of a job.
func count(env *harness.Env, job, robot string, kind event.Kind, to string) int {
	return len(harness.Filter(env.Events().Events(), func(e event.Event) bool {
		return e.Deployment == job && e.Device == robot && e.Kind == kind && (to == "" || e.To == to) &&
			harness.Source(e) == harness.SourceEngine
	}))
}

// idempotentRetryThrough5xx loses the answer to CreateDeploymentJob behind a 500 after the service created the
// job; the caller retries with the same client token and gets the same job, not a second one nor a conflict.
func idempotentRetryThrough5xx() harness.Spec {
	return harness.Spec{
		Name:        "idempotent-retry-through-5xx",
		Description: "CreateDeploymentJob answered 500 after the job was made; the retry with the same token returns that job",
		Fleet:       harness.FleetSpec{Robots: 3},
		Faults: []faults.Spec{{Fault: "http-5xx",
			Params: []byte(`{"api":"robomaker","operation":"CreateDeploymentJob","times":1,"after":true}`)}},
		Run: func(env *harness.Env, _ harness.Spec) string {
			ctx := context.Background()
			in := robomaker.Of(env).JobInput(robomaker.Of(env).CreateApplication(bundles.Hello), robomaker.Deployment{Token: "retry-after-lost-answer"})
			_, err := robomaker.Of(env).Client().CreateDeploymentJob(ctx, in)
			var ae smithy.APIError
			var re *smithyhttp.ResponseError
			env.Expect(errors.As(err, &ae) && errors.As(err, &re)).To(BeTrue(), "first call: %v", err)
			env.Expect(ae.ErrorCode()).To(Equal("InternalServerException"))
			env.Expect(re.HTTPStatusCode()).To(Equal(http.StatusInternalServerError))

			out, err := robomaker.Of(env).Client().CreateDeploymentJob(ctx, in)
			env.Expect(err).NotTo(HaveOccurred())
			list, err := robomaker.Of(env).Client().ListDeploymentJobs(ctx, &rmsdk.ListDeploymentJobsInput{})
			env.Expect(err).NotTo(HaveOccurred())
			var arns []string
			for _, j := range list.DeploymentJobs {
				arns = append(arns, aws.ToString(j.Arn))
			}
			env.Expect(arns).To(Equal([]string{aws.ToString(out.Arn)}), "one job, the one the retry returned")
			env.Expect(slices.Contains(arns, aws.ToString(out.Arn))).To(BeTrue())
			return aws.ToString(out.Arn)
		},
		Expect: harness.Expect{Status: robomaker.JobSucceeded, Others: &harness.RobotExpect{Status: robomaker.RobotInSync}},
	}
}
