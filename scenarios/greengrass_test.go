package scenarios_test

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	ggsdk "github.com/aws/aws-sdk-go-v2/service/greengrass"
	"github.com/aws/smithy-go"
	. "github.com/onsi/gomega"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/harness/greengrass"
	agentgg "github.com/fleetlab/fleetlab/sim/agent/greengrass"
)

// greengrassCodeScenarios are the Greengrass V1 scenarios that need more than a fault plan and a job.
func greengrassCodeScenarios() []harness.Spec {
	return []harness.Spec{ggBuildingUntilReachable(), ggResetCores()}
}

// groupStatus returns the status and type of a group's latest deployment, as GetDeploymentStatus tells it.
func groupStatus(env *harness.Env, device string) func() (string, error) {
	return func() (string, error) {
		s := greengrass.Of(env)
		gid := s.Group(device)
		ctx := context.Background()
		ds, err := s.Client().ListDeployments(ctx, &ggsdk.ListDeploymentsInput{GroupId: aws.String(gid)})
		if err != nil || len(ds.Deployments) == 0 {
			return "", err
		}
		last := ds.Deployments[len(ds.Deployments)-1]
		st, err := s.Client().GetDeploymentStatus(ctx, &ggsdk.GetDeploymentStatusInput{GroupId: aws.String(gid),
			DeploymentId: last.DeploymentId})
		if err != nil {
			return "", err
		}
		return string(last.DeploymentType) + " " + aws.ToString(st.DeploymentStatus), nil
	}
}

// ranOn returns the states a device's agent entered for an engine deployment.
func ranOn(env *harness.Env, device, deployment string) []string {
	var out []string
	for _, ev := range env.Events().Events() {
		if ev.Device == device && ev.Deployment == deployment && ev.Kind == harness.AgentState {
			out = append(out, ev.Step)
		}
	}
	return out
}

// ggBuildingUntilReachable: a core whose link is down when the bulk deployment starts leaves its group's
// deployment Building — Greengrass V1 deployments have no timeout — while the others succeed; once the link
// heals the core takes it and finishes.
func ggBuildingUntilReachable() harness.Spec {
	return harness.Spec{
		Name:        "gg-building-until-reachable",
		Dialect:     greengrass.Name,
		Description: "robot-0002 is unreachable for three hours: its group's deployment stays Building while the others are Success, then it finishes",
		Fleet:       harness.FleetSpec{Robots: 3},
		Faults: []faults.Spec{{Fault: "partition", Params: []byte(`{"duration":"3h"}`),
			Target: faults.Selector{Devices: []string{"robot-0002"}}}},
		Run: func(env *harness.Env, _ harness.Spec) string {
			job := env.Deploy(bundles.Hello, nil)
			env.Eventually(env.Robot(job, "robot-0001")).Should(harness.HaveStatus(greengrass.DeviceSuccess))
			env.Eventually(env.Robot(job, "robot-0003")).Should(harness.HaveStatus(greengrass.DeviceSuccess))
			j, err := env.Describe(job)
			env.Expect(err).NotTo(HaveOccurred())
			env.Expect(j).To(harness.HaveStatus(greengrass.JobRunning))
			r, _ := j.Robot("robot-0002")
			env.Expect(r.Status).To(Equal(greengrass.DeviceBuilding))
			env.Expect(groupStatus(env, "robot-0002")()).To(Equal("NewDeployment Building"))
			env.Expect(ranOn(env, "robot-0002", harness.JobID(job))).To(BeEmpty())
			return job
		},
		Expect: harness.Expect{Status: greengrass.JobCompleted, Others: &harness.RobotExpect{Status: greengrass.DeviceSuccess}},
	}
}

// ggResetCores resets two cores after a failed deployment: robot-0001's core carries the reset out; robot-0002
// is unreachable, so its reset is forced and is Success without the core, which never hears of it.
func ggResetCores() harness.Spec {
	return harness.Spec{
		Name:        "gg-reset-cores",
		Dialect:     greengrass.Name,
		Description: "ResetDeployments after a failed deployment: a reachable core resets itself; an unreachable one is reset with Force",
		Fleet:       harness.FleetSpec{Robots: 2},
		Run: func(env *harness.Env, _ harness.Spec) string {
			job := env.WaitJob(env.Deploy(bundles.PreLaunchExit3, nil))
			env.Expect(job).To(harness.HaveRobotCounts(map[string]int{greengrass.DeviceFailure: 2}))
			s := greengrass.Of(env)
			ctx := context.Background()

			reset, err := s.Client().ResetDeployments(ctx, &ggsdk.ResetDeploymentsInput{GroupId: aws.String(s.Group("robot-0001"))})
			env.Expect(err).NotTo(HaveOccurred())
			env.Eventually(groupStatus(env, "robot-0001")).Should(Equal("ResetDeployment Success"))
			env.Expect(ranOn(env, "robot-0001", aws.ToString(reset.DeploymentId))).To(Equal(
				[]string{agentgg.StepDownloading, agentgg.StepStarting, agentgg.StepFinished}))

			cut := env.Inject(faults.Spec{Fault: "partition", Params: []byte(`{"duration":"100h"}`),
				Target: faults.Selector{Devices: []string{"robot-0002"}}})
			_, err = s.Client().ResetDeployments(ctx, &ggsdk.ResetDeploymentsInput{GroupId: aws.String(s.Group("robot-0002")),
				Force: aws.Bool(true)})
			env.Expect(err).NotTo(HaveOccurred())
			env.Expect(groupStatus(env, "robot-0002")()).To(Equal("ForceResetDeployment Success"))
			_, err = s.Client().ResetDeployments(ctx, &ggsdk.ResetDeploymentsInput{GroupId: aws.String(s.Group("robot-0002"))})
			var api smithy.APIError
			env.Expect(errors.As(err, &api) && api.ErrorCode() == "ResourceNotFoundException").To(BeTrue(),
				"a reset after a forced reset: %v", err)
			env.Recover(cut)
			return job.ARN
		},
		Expect: harness.Expect{Status: greengrass.JobCompleted,
			Others: &harness.RobotExpect{Status: greengrass.DeviceFailure, FailureCode: "GG-FUNCTION-FAILED"}},
	}
}
