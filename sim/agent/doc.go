// Package agent is the device agent: it carries out deployment jobs on one device, talking the IoT Jobs
// data plane of the device API (package wire holds the contract), and reports every step. What a job is —
// how its document reads, its steps, its failure codes, what it launches — is its Kind's: one package per
// dialect (sim/agent/robomaker), listed in sim/agent/kinds. This package is the loop they run in, the
// executors they work through, and the on-device state; it names no dialect.
//
// # The loop
//
// An execution is a chain of states, one type per state; each State's Handle does its work and returns the
// next state. The job document's kind (wire.Document's Kind) chooses the Kind among Options.Kinds; the
// Kind parses the payload into a Job, whose First state begins the execution. A document the agent cannot
// carry out (malformed, of a kind it has none of, a payload its kind refuses) begins at its kind's Refuse
// state — the first kind's when none is its — which reports the kind's opening step and rejects it.
//
// An error goes to one place, decide, which retries the state after backoff (transient: a 5xx,
// throttling, a dropped connection while reporting or downloading), fails the execution with a failure
// code (a StepError, or the kind's DeviceErrorCode for any other device-side error), rolls back first when
// the kind says the state came after the switch to the new version (Kind.RollsBack), or abandons the
// execution when the service has ended it. The closing states are the loop's:
//
//	kind's states ─▶ … ─▶ Finished(step) ─▶ (SUCCEEDED; the new version is committed)
//	      │                    │
//	      │        (after the switch) ─▶ RollingBack ─▶ Failed(code)
//	      ▼                                                 (FAILED)
//	  Failed(code) | Rejected
//	  (FAILED, REJECTED)
//
//	any state ── the service canceled, timed out or removed the execution ──▶ Abandoned (nothing reported)
//
// A kind's state reports its step with Execution.Step (UpdateJobExecution IN_PROGRESS, statusDetails step
// and, while downloading, percentDone and estimatedTimeRemainingSeconds through Execution.Progress);
// Finished reports SUCCEEDED with the step the kind names it by; a failure FAILED with step, failureCode
// and reason. Until the kind launches (Execution.Launch), nothing the device runs may change: the old
// application keeps running while the new version is staged. Launch stops the old application, atomically
// switches the active version and starts the new one; a failure from there on restores the previous
// version before reporting. Only Finished commits the new version as current, so a half-installed version
// is never reported in sync.
//
// # Versions are what was installed
//
// A version is identified by the job that installed it and the SHA-256 of that job's document
// (VersionID: "<jobId>@<16 hex digits>"), never by the job id alone: job ids repeat — across services, a
// data directory started afresh, a job recreated — and a device that trusted an id would report in sync
// with a deployment it never carried out. State written by an older agent names versions by job id only;
// they still run, and match no job.
//
// # Supervision
//
// The launcher is the device's supervisor: exactly one application, of the version the device reports,
// runs at any time — also across a death of the agent itself (SIGKILL, a crash, the OOM killer) in any
// state, the switch and RollingBack included. The application does not die with the agent, as on a device
// its supervisor's restart or upgrade must not restart the device's work: the OS family records the
// application it runs (pid, start time, boot id) in the device directory, and the next agent's launcher,
// at start, adopts it when it is the active version's and stops it otherwise, together with every other
// process carrying the device's tag (an application whose start was cut short, what a script left). Scripts
// do die with the agent (Linux's parent-death signal): the agent that resumes the step runs them again.
//
// # On-device state
//
// The DeviceState (current and previous version, the execution in flight and the step reached) is saved
// atomically on entering every state, before the state changes anything. An installed version records its
// kind, its job id and document digest, and what its kind keeps to launch it again (Installed.Record); a
// version saved before kinds existed has no kind and is the first kind's. Killed at any point and started
// again, the agent adopts or relaunches the active version's application, asks the service about the
// execution in flight and resumes it at the saved step (Job.Resume; every Handle is idempotent), closes it
// if the service already has its outcome, or abandons it — restoring the previous version — if the service
// no longer holds it open. The device runs the old version or the new one, never neither, and never both.
//
// The OS family lays a device directory out as:
//
//	state.json             the DeviceState
//	app.json               the application running: version, pid, start time, boot id (the launcher's)
//	device.log             script and application output
//	downloads/             staged artifacts (<name>.part, <name>.meta, <name>)
//	versions/<versionId>/  unpacked versions, <versionId> = <jobId>@<document digest>
//	current                symlink to versions/<versionId>, switched by renaming a new symlink over it
//	data/                  Device.DataDir: application data kept across versions
//
// # Bundles
//
// A bundle is a tar.gz of a version's files, unpacked into the version (Versions.Extract); what it must
// hold is its kind's to check. Unpacking refuses members that would land outside the version, through
// names or symlinks. An application (App) is a file of the version run as an executable from the
// version's directory; scripts too.
//
// # Executors and the two families
//
// Everything the agent does to the world goes through Executors — Transport, Downloader, Versions,
// ScriptRunner, Launcher, StateStore — small interfaces a fault can wrap (Options.Wrap). Two families
// implement them:
//
//   - OS: files under a device directory, scripts and the application as processes (each leading a process
//     group, killed with it; every one tagged with the device in its environment, DeviceTag), output in the
//     device log. Options.Dir selects it.
//   - In-memory, for thousands of devices in one process: bundles are still downloaded with the same resume
//     and ETag rules and still unpacked and checked member by member, but only small files' contents are
//     kept; scripts are "run" by SimRunner, which reads the outcome from a trivial `#!/bin/sh` script ending
//     in `exit N` and refuses anything else (ErrNotSimulable, which a kind fails with its device error
//     code, saying the OS family is needed); the launch is recorded by SimLauncher without interpreting
//     the launch file (a host that keeps the SimLauncher across agents models an application outliving its
//     agent, which the next one adopts). The trade-off: only outcomes written in the scripts' text can be
//     simulated, and an application's own behaviour once running is out of reach unless a fault wrapping
//     the Launcher models it.
//
// The Transport's HTTP implementation speaks the data plane, the artifact store and the websocket notify
// channel. The agent waits for a notify, polls as a fallback with capped, jittered backoff (from a seeded
// source), and reconnects after the service restarts. Time comes from a clock.Clock.
package agent
