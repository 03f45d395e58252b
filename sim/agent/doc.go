// Package agent is the device agent: it carries out RoboMaker deployment jobs on one robot, talking the IoT
// Jobs data plane of the device API (package wire holds the contract), and reports every step.
//
// # The state machine
//
// One type per state; each state's handle does its work and returns the next state. An error goes to one
// place, decide, which retries the state after backoff (transient: a 5xx, throttling, a dropped connection
// while reporting or downloading), fails the execution with a failure code, rolls back first when the
// robot had already switched, or abandons the execution when the service has ended it.
//
//	Validating ─▶ DownloadingExtracting ─▶ ExecutingDownloadCondition ─▶ ExecutingPreLaunch ─▶ Launching
//	    │                   │                           │                        │               │
//	    │                   │                           │                        │               ▼
//	    │                   │                           │                        │      ExecutingPostLaunch ─▶ Finished
//	    │                   │                           │                        │               │          (SUCCEEDED)
//	    │                   │                           │                        │    RollingBack ◀┘ (also from Launching)
//	    ▼                   ▼                           ▼                        ▼               ▼
//	    └──────────────────────────────▶ Failed(code) | Rejected ◀─────────────────────────────┘
//	                                     (FAILED, REJECTED)
//
//	any state ── the service canceled, timed out or removed the execution ──▶ Abandoned (nothing reported)
//
// Every step is entered and reported in order, even with nothing to do (no download condition, no
// pre-launch file), so the service sees the same sequence from every robot. Each step is reported as
// UpdateJobExecution IN_PROGRESS with statusDetails step (and percentDone, estimatedTimeRemainingSeconds
// while downloading); Finished is reported SUCCEEDED; a failure FAILED with step, failureCode and reason.
//
// Where the checks sit, as a robot agent does them:
//   - Validating: the job document, the launch config's paths, and the robot's architecture
//     (MissingRobotApplicationArchitecture) — before anything is downloaded.
//   - DownloadingExtracting: the bundle's ETag (EtagMismatch), unpacking (ExtractingBundleFailure), then
//     the launch package, launch file and scripts in the bundle (MissingRobotDeploymentResource).
//   - ExecutingDownloadCondition: the condition file is fetched, its ETag checked (EtagMismatch), then run
//     (DownloadConditionFailed).
//   - ExecutingPreLaunch and ExecutingPostLaunch: PreLaunchFileFailure, PostLaunchFileFailure.
//
// Until Launching, nothing the robot runs changes: the old application keeps running while the new version
// is staged. Launching stops the old application, atomically switches the active version and starts the
// new one; a failure from there on restores the previous version before reporting. Only Finished commits
// the new version as current, so a half-installed version is never reported in sync.
//
// Choices where the service leaves room, as a robot agent makes them: a job document the agent cannot read
// (another dialect's kind, malformed) is REJECTED rather than FAILED; an application that cannot be started,
// and any other device-side error (disk, permissions), fails with EnvironmentSetupError; an artifact the
// store does not have fails with ResourceNotFound; a script killed after its timeout fails with the step's
// code; a job whose very document is already committed goes from Validating straight to Finished.
//
// # Versions are what was installed
//
// A version is identified by the job that installed it and the SHA-256 of that job's document
// (VersionID: "<jobId>@<16 hex digits>"), never by the job id alone: job ids repeat — across services, a
// data directory started afresh, a job recreated — and a robot that trusted an id would report in sync
// with a deployment it never carried out. State written by an older agent names versions by job id only;
// they still run, and match no job.
//
// # Supervision
//
// The launcher is the device's supervisor: exactly one application, of the version the device reports,
// runs at any time — also across a death of the agent itself (SIGKILL, a crash, the OOM killer) in any
// state, Launching and RollingBack included. The application does not die with the agent, as on a robot
// its supervisor's restart or upgrade must not restart the robot's work: the OS family records the
// application it runs (pid, start time, boot id) in the device directory, and the next agent's launcher,
// at start, adopts it when it is the active version's and stops it otherwise, together with every other
// process carrying the device's tag (an application whose start was cut short, what a script left). Scripts
// do die with the agent (Linux's parent-death signal): the agent that resumes the step runs them again.
//
// # On-device state
//
// The DeviceState (current and previous version, the execution in flight and the step reached) is saved
// atomically on entering every state, before the state changes anything. Killed at any point and started
// again, the agent adopts or relaunches the active version's application, asks the service about the
// execution in flight and resumes it at the saved step (every handle is idempotent), closes it if the
// service already has its outcome, or abandons it — restoring the previous version — if the service no
// longer holds it open. The robot runs the old version or the new one, never neither, and never both.
//
// The OS family lays a device directory out as:
//
//	state.json             the DeviceState
//	app.json               the application running: version, pid, start time, boot id (the launcher's)
//	device.log             script and application output
//	downloads/             staged artifacts (<name>.part, <name>.meta, <name>)
//	versions/<versionId>/  unpacked versions, <versionId> = <jobId>@<document digest>
//	current                symlink to versions/<versionId>, switched by renaming a new symlink over it
//	data/                  ROBOT_DATA_DIR: application data kept across versions
//
// # Bundles
//
// A bundle is a tar.gz holding the launch package directory (named as the launch config's packageName) with
// the launch file inside it, and the pre- and post-launch files at the paths the launch config gives,
// relative to the bundle's root. Unpacking refuses members that would land outside the version, through
// names or symlinks. The launch file is run as an executable from the version's directory; scripts too.
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
//   - In-memory, for thousands of robots in one process: bundles are still downloaded with the same resume
//     and ETag rules and still unpacked and checked member by member, but only small files' contents are
//     kept; scripts are "run" by SimRunner, which reads the outcome from a trivial `#!/bin/sh` script ending
//     in `exit N` and refuses anything else (EnvironmentSetupError, saying the OS family is needed); the
//     launch is recorded by SimLauncher without interpreting the launch file (a host that keeps the
//     SimLauncher across agents models an application outliving its agent, which the next one adopts). The trade-off: only outcomes
//     written in the scripts' text can be simulated, and an application's own behaviour once running is out
//     of reach unless a fault wrapping the Launcher models it.
//
// The Transport's HTTP implementation speaks the data plane, the artifact store and the websocket notify
// channel. The agent waits for a notify, polls as a fallback with capped, jittered backoff (from a seeded
// source), and reconnects after the service restarts. Time comes from a clock.Clock.
package agent
