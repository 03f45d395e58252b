// Package container hosts robots as containers: one fleetlab-agent container per device, on a user-defined
// Docker network of its own, with the device directory on a named volume, on one Docker engine or spread over
// several. It drives the engines through testcontainers-go (image build, container creation, readiness,
// termination) and the Docker API (the faults), and it needs nothing of the service but its endpoint: the fleet
// runs wherever the engines can reach the machine it runs on.
//
// # Image
//
// The robot image is built locally, with no registry: FROM scratch, the static fleetlab-agent, Debian's static
// busybox with its applet links (launch scripts need a shell), a non-root user (uid 1000) and the device directory
// /var/lib/fleetlab owned by it. BuildImage builds it through testcontainers-go's Dockerfile build and tags it
// with a hash of its inputs (the agent binary, busybox, the Dockerfile), so it is built once and reused while
// they do not change.
//
// # Reaching the service
//
// The service listens on loopback. Each robot gets a link proxy (package link) on this machine, listening on the
// address its engine's containers reach the machine at — the gateway of the fleet's Docker network, an address of
// this machine on that network only, when the engine runs here; Engine.Listen for an engine elsewhere — and
// forwarding to the endpoint. The proxy carries the link shaping and the step hook (fleet.StepHooker).
//
// # Abilities
//
// Every Device implements fleet.Crasher (docker kill, then docker start on the same volume), fleet.Freezer
// (docker pause and unpause), fleet.Linker (a partition disconnects the container from its network and
// reconnecting heals it; latency, drops and bandwidth are shaped by the link proxy), fleet.Limiter (docker
// update of CPU and memory), fleet.StepHooker (the link proxy holds the answer to a step report) and
// fleet.ScriptFailer (the script file in the version unpacked on the volume is replaced through the Docker API).
// It does not implement fleet.ExecutorHook or fleet.ClockSkewer: the agent runs in the container, out of reach.
//
// # Hygiene
//
// Every container, network and volume is labelled with the fleet's run id and its owner (this machine's name,
// the process id and its start time), and so is each image build context. Close removes everything the fleet
// made; New first sweeps what runs of dead owners on this machine left behind (a test binary killed before its
// cleanup ran). The reaper of testcontainers-go (Ryuk) is never used: its image cannot be pulled where there is
// no registry, and this package cleans after itself. New sets TESTCONTAINERS_RYUK_DISABLED=true before its first
// call into testcontainers-go, and refuses to run when the setting was read otherwise before.
package container
