// Package scenarios is the RoboMaker scenario suite, run by `go test ./scenarios`: the outcomes users meet —
// clean rollouts at several concurrencies, the failure threshold just below and exactly at its boundary, each
// failure code the agent produces, a robot that stops answering, cancel mid-rollout, SyncDeploymentJob for
// robots registered after a job, a second job while one is active, a service restart mid-rollout, an idempotent
// retry through a lost response, and a partition that heals before or after the robot timeout.
//
// The data-only scenarios are the JSON files of fixtures/scenarios (`fleetlab run` runs them outside go test);
// the ones that need code are declared here. Every scenario asserts the final state of its job and of every
// robot in it. Run one with -run 'TestScenarios/<name>'; -fleetlab.seed sets the seed.
package scenarios
