// Package harness runs fleet deployment scenarios: it starts the deployment service and a fleet of robots,
// registers the robots through the scenario's dialect (RoboMaker by default), injects faults, and asserts on the
// outcome with gomega matchers — all behind one call, so a scenario author never sees HTTP, SDK setup or cleanup.
//
//	env := harness.New(t, harness.WithRobots(4))
//	job := env.Deploy(bundles.Hello, robomaker.Deployment{Concurrency: 50})
//	env.Inject(faults.Spec{Fault: "no-response", Target: faults.Selector{Devices: []string{"robot-0002"}}})
//	env.Eventually(env.Job(job)).Should(harness.HaveStatus("Failed"))
//
// # The environment
//
// New starts the service (on-disk store in a test directory, so it can be restarted on its data), the fleet on
// the chosen backend (in-process goroutine robots by default), has the dialect's driver register the robots, and
// hands out the S3 client, the device handles and the event stream. Everything stops at the test's cleanup:
// faults are closed, the fleet and the service stopped, nothing outlives the test.
//
// # Dialects
//
// What differs between deployment APIs — how devices are registered, how a deployment is made and described,
// what its statuses and steps are called, which job parameters are valid — is a dialect.Driver's (package
// harness/dialect); Drivers lists them, RoboMaker first and default. A scenario picks one with WithDriver or its
// spec's "dialect", and the faults it arms take their step names from it. A dialect's own API is its package's:
// robomaker.Of(env) gives the RoboMaker SDK v2 client (retries off, so what a test sees is what the service
// said), the fleet's ARN, robot applications and SyncDeploymentJob.
//
// # Time
//
// With in-process robots the environment runs on virtual time: the service, the engine and the robots are the
// actors of one clock.World seeded with the run's seed. They run one at a time, in an order the seed draws, and
// time moves to the next timer only when nothing else can happen — and only while a method of Env waits
// (WaitJob, WaitFor, Eventually): between the test's calls the world stands still. A five-hour timeout costs no
// wall time, a loaded machine changes nothing, and the same seed gives the same events at the same times. The
// SDK clients and the robots reach the service without a socket (link.InProcess), through its middleware and
// fault hooks. Robots in other processes (Process), and any environment given WithTimeScale, run on scaled wall
// time instead: the clock runs that many times faster than the wall clock (DefaultTimeScale when the backend
// needs it), so RoboMaker's one-minute minimum robot timeout takes a tenth of a second.
//
// # Events
//
// One ordered stream of sim/event.Event holds what the engine did (deployment and execution transitions), what
// each agent did (the Agent* kinds of this package: steps entered, retries, reconnects) and what faults did, in
// arrival order. Seq numbers each source separately — the engine, each device's agent, the faults, the harness —
// and survives a service restart, so a per-device sequence reads the same in every run with the same seed.
//
// # Seeds
//
// A run's seed decides every random choice: which robots a percentage fault picks, which requests a lossy link
// drops, the agents' retry jitter, and on virtual time the order of the actors ready at one instant. It comes
// from WithSeed, else from the -fleetlab.seed test flag, else it is DefaultSeed. A failing test prints its seed
// and the command that reruns it; -fleetlab.seeds=N runs each scenario under N seeds and reports the first that
// fails (Sweep).
//
// # Failures
//
// A failure of the environment — a port, the fleet, the service refusing the harness's own setup — is reported
// as an infrastructure failure; an outcome that is not the one expected, as a product failure. `fleetlab run`
// exits 3 for the first and 1 for the second.
//
// # Scenarios
//
// A Spec declares a scenario as data — the fleet, the job, the fault plan and the expected outcome of the job
// and of every robot — and, for scenarios that need it, code. Specs are kept in a Registry; data-only ones can be
// read from JSON (fixtures/scenarios) and run outside go test by Execute, which `fleetlab run` uses.
package harness
