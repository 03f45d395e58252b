package scenarios_test

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	owsdk "github.com/aws/aws-sdk-go-v2/service/opsworks"
	owtypes "github.com/aws/aws-sdk-go-v2/service/opsworks/types"
	. "github.com/onsi/gomega"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/opsworks"
)

// opsworksCodeScenarios are the OpsWorks scenarios that need more than a fault plan and a job.
func opsworksCodeScenarios() []harness.Spec {
	return []harness.Spec{owOfflineSkipped(), owRollbacks()}
}

// owOfflineSkipped deploys to the layer, which has an instance that was never started (late-0001's, an EC2-style
// instance): its command is skipped, the deployment still succeeds on the online ones, and the device of the
// stopped instance is never handed the command.
func owOfflineSkipped() harness.Spec {
	return harness.Spec{
		Name:        "ow-offline-instance-skipped",
		Dialect:     opsworks.Name,
		Description: "A deploy to the layer skips the layer's instance that is not online; the online instances deploy",
		Fleet:       harness.FleetSpec{Robots: 2, Late: []string{"late-0001"}},
		Run: func(env *harness.Env, _ harness.Spec) string {
			s := opsworks.Of(env)
			_, err := s.Client().CreateInstance(context.Background(), &owsdk.CreateInstanceInput{StackId: aws.String(s.StackID()),
				LayerIds: []string{s.LayerID()}, InstanceType: aws.String("t2.micro"), Hostname: aws.String("late-0001")})
			env.Expect(err).NotTo(HaveOccurred())
			job := env.WaitJob(env.Deploy(bundles.Hello, opsworks.Deployment{LayerIDs: []string{s.LayerID()}}))
			for _, ev := range env.Events().Events() {
				env.Expect(ev.Device == "late-0001" && ev.Deployment == job.ID).To(BeFalse(), "late-0001 took part: %v", ev)
			}
			return job.ARN
		},
		Expect: harness.Expect{Status: opsworks.JobSuccessful,
			Robots: map[string]harness.RobotExpect{"late-0001": {Status: opsworks.CommandSkipped}},
			Others: &harness.RobotExpect{Status: opsworks.CommandSuccessful}},
	}
}

// owRollbacks deploys two releases, rolls back to the first, then rolls back again: there is no release before
// the first, so every instance fails the second rollback.
func owRollbacks() harness.Spec {
	return harness.Spec{
		Name:        "ow-rollbacks",
		Dialect:     opsworks.Name,
		Description: "deploy, deploy, rollback (to the first release), rollback again (nothing before the first: failed)",
		Fleet:       harness.FleetSpec{Robots: 2},
		Run: func(env *harness.Env, _ harness.Spec) string {
			for range 2 {
				env.Expect(env.WaitJob(env.Deploy(bundles.Hello, nil))).To(harness.HaveStatus(opsworks.JobSuccessful))
			}
			back := env.WaitJob(env.Deploy(bundles.Hello, opsworks.Deployment{Command: owtypes.DeploymentCommandNameRollback}))
			env.Expect(back).To(harness.HaveStatus(opsworks.JobSuccessful))
			env.Expect(back).To(harness.HaveRobotCounts(map[string]int{opsworks.CommandSuccessful: 2}))
			cs, err := opsworks.Of(env).Client().DescribeCommands(context.Background(), &owsdk.DescribeCommandsInput{
				DeploymentId: aws.String(back.ID)})
			env.Expect(err).NotTo(HaveOccurred())
			for _, c := range cs.Commands {
				env.Expect(aws.ToString(c.Type)).To(Equal("rollback"))
				env.Expect(aws.ToInt32(c.ExitCode)).To(BeZero())
				env.Expect(opsworks.Log(aws.ToString(c.LogUrl))).To(ContainSubstring("running deploy hook before_migrate"))
			}
			return env.Deploy(bundles.Hello, opsworks.Deployment{Command: owtypes.DeploymentCommandNameRollback})
		},
		Expect: harness.Expect{Status: opsworks.JobFailed,
			Others: &harness.RobotExpect{Status: opsworks.CommandFailed, FailureCode: "exit-1"}},
	}
}
