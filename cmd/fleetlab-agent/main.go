// Command fleetlab-agent is the fleetlab device agent as a program: it carries out the deployments a fleetlab
// service gives one robot, on a real Linux board or as one process of the process fleet backend — or, with the
// --appconfig-* flags, takes its configuration from AppConfigData as an AppConfig device. It talks to the
// service's device API over HTTP (the IoT Jobs data plane, artifact downloads, the notify websocket) and keeps
// everything it needs across restarts in its device directory.
//
// Usage:
//
//	fleetlab-agent --endpoint URL --thing NAME --dir DIR [flags]
//	fleetlab-agent --serial DEVICE --thing NAME --dir DIR [flags]
//	fleetlab-agent --endpoint URL --thing NAME --dir DIR --appconfig-application A --appconfig-environment E --appconfig-profile P [flags]
//
// Run 'fleetlab-agent --help' for the flags and their environment variables.
//
// Exit codes: 0 stopped cleanly (SIGINT or SIGTERM); 1 forced to stop by a second signal; 2 bad usage; 3 the
// device failed: its directory cannot be used or its state cannot be kept.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"strconv"
	"syscall"

	"github.com/fleetlab/fleetlab/rigs/bridge"
	"github.com/fleetlab/fleetlab/rigs/frame"
	"github.com/fleetlab/fleetlab/rigs/serial"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/agent/kinds"
	"github.com/fleetlab/fleetlab/sim/fleet/eventlog"
)

// Exit codes scripts can rely on.
const (
	exitOK     = 0
	exitForced = 1
	exitUsage  = 2
	exitDevice = 3
)

func main() {
	// Events on a stdout whose reader is gone (the fleet that started the agent died) fail with EPIPE instead of
	// killing the agent before it has stopped its application.
	signal.Ignore(syscall.SIGPIPE)
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr, sig))
}

const usageText = `fleetlab-agent carries out the deployments a fleetlab service gives this robot.

Usage:
  fleetlab-agent --endpoint URL --thing NAME --dir DIR [flags]
  fleetlab-agent --serial DEVICE [--baud N] --thing NAME --dir DIR [flags]
  fleetlab-agent --endpoint URL --thing NAME --dir DIR --appconfig-application A --appconfig-environment E \
    --appconfig-profile P [--apply-hook SCRIPT] [flags]

It connects to the service's device API at --endpoint as the robot --thing, waits for deployment jobs (the
service notifies it; it also polls now and then), and carries each one out: download the bundle and check its
ETag, unpack it, run the download condition and the pre-launch file, stop the old application and launch the
new one, run the post-launch file, report every step. Everything it needs across restarts lives in --dir:

  DIR/state.json     the installed versions and the job in flight
  DIR/app.json       the application running (pid, start time), for the next start to adopt
  DIR/versions/      unpacked versions;  DIR/current  the active one
  DIR/data/          the application's data (ROBOT_DATA_DIR), kept across versions
  DIR/device.log     output of the scripts and the application

It logs to stderr what it does: every step, the notify channel, retries and errors (--log-level, --quiet).
On a lab rig's board, --serial DEVICE (the console UART) instead of --endpoint: the device API travels as
frames on the console line, between the board's own console text, to the rig's bridge on the lab host, which
calls the service. The board needs no network. --baud is the line's speed (default 115200).

With --appconfig-application, --appconfig-environment and --appconfig-profile it is an AppConfig device
instead (AppConfig has no jobs): it polls AppConfigData as the client --thing, writes each new configuration
atomically, runs --apply-hook on it and keeps it only when the hook exits 0 (else the last good one stays), and
after every poll puts its health in CloudWatch (fleetlab/appconfig Unhealthy: 1 while the last configuration
given was refused), so a monitor's alarm on it rolls a bad deployment back. In --dir: config (the configuration
in force) and config.version (its version label).

Stop it with SIGINT (Ctrl-C) or SIGTERM: it stops the application; the next start launches it again and
finishes any job that was cut short. A second signal makes it exit at once. Killed (SIGKILL, a crash) it
leaves the application running: the next start adopts it, or stops it if it is not the version the robot
runs, so exactly one application runs at any time.

Flags (each can also be set by the environment variable shown; a flag wins):
`

const examplesText = `
Examples:
  # A robot of the 'lab' fleet, against 'fleetlab serve' on this machine:
  fleetlab-agent --endpoint http://127.0.0.1:4710 --thing robot-01 --dir /var/lib/fleetlab-agent

  # Against a service run with --auth sigv4, signing with the robots' keys it prints:
  fleetlab-agent --endpoint http://10.0.0.5:4710 --thing robot-01 --dir /var/lib/fleetlab-agent \
    --access-key device --secret-key device

  # The same from the environment, writing its events as JSON lines:
  FLEETLAB_ENDPOINT=http://10.0.0.5:4710 FLEETLAB_THING=arm-07 FLEETLAB_DIR=$HOME/agent \
    fleetlab-agent --events events.jsonl

  # An AppConfig device of application 'fleet', environment 'field', profile 'settings':
  fleetlab-agent --endpoint http://127.0.0.1:4710 --thing device-01 --dir /var/lib/fleetlab-agent \
    --appconfig-application fleet --appconfig-environment field --appconfig-profile settings \
    --apply-hook /usr/local/bin/reload-config

  # On a board of a lab rig, over its console (the rig's bridge on the lab host calls the service):
  fleetlab-agent --serial /dev/ttyS0 --baud 115200 --thing arm-07 --dir /var/lib/fleetlab-agent

The robot must exist in the service: create it and register it with a fleet (RoboMaker CreateRobot and
RegisterRobot, with the same name and the architecture as RoboMaker names it: amd64 is X86_64, arm64 ARM64,
arm ARMHF), then create a deployment job for the fleet.

Exit codes: 0 stopped cleanly; 1 forced by a second signal; 2 bad usage; 3 the device directory cannot be
used or the state cannot be kept.
`

// config is what the flags and the environment say.
type config struct {
	endpoint, thing, dir, arch, events string
	serial                             string // the console line to speak the device API over, instead of HTTP
	baud                               int
	accessKey, secretKey               string
	appconfig                          appConfigFlags
	seed                               uint64
	opts                               agent.Options
	level                              slog.Level
}

// usageError is a mistake in how the agent was called; it carries a hint of what to do.
type usageError struct{ msg, hint string }

func (e *usageError) Error() string { return e.msg }

// parseArgs reads the flags, falling back to the environment, and checks them together.
// --help prints the usage to stdout; a bad flag is a usageError.
func parseArgs(args []string, getenv func(string) string, stdout io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("fleetlab-agent", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported once, with a hint, by run
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&c.endpoint, "endpoint", env("FLEETLAB_ENDPOINT", ""), "the service's device API base URL, e.g. http://127.0.0.1:4710 [FLEETLAB_ENDPOINT]")
	fs.StringVar(&c.thing, "thing", env("FLEETLAB_THING", ""), "this robot's name: its RoboMaker robot name and thing name [FLEETLAB_THING]")
	fs.StringVar(&c.dir, "dir", env("FLEETLAB_DIR", ""), "the device directory, created if missing [FLEETLAB_DIR]")
	fs.StringVar(&c.arch, "arch", env("FLEETLAB_ARCH", runtime.GOARCH), "this device's architecture, as GOARCH names it: amd64, arm64 or arm [FLEETLAB_ARCH]")
	fs.StringVar(&c.events, "events", env("FLEETLAB_EVENTS", ""), "write every agent event as a JSON line to this file, or - for stdout [FLEETLAB_EVENTS]")
	fs.StringVar(&c.serial, "serial", env("FLEETLAB_SERIAL", ""), "speak the device API as frames on this serial device (a board's console, e.g. /dev/ttyS0) instead of HTTP; the lab's bridge forwards them, and --endpoint is not needed [FLEETLAB_SERIAL]")
	fs.IntVar(&c.baud, "baud", 115200, "line speed of --serial, in bits a second (8N1); the frames are paced to it")
	fs.StringVar(&c.accessKey, "access-key", env("FLEETLAB_DEVICE_ACCESS_KEY", ""), "sign every request with this access key id, for a service run with --auth sigv4: the robots' key it prints [FLEETLAB_DEVICE_ACCESS_KEY]")
	fs.StringVar(&c.secretKey, "secret-key", env("FLEETLAB_DEVICE_SECRET_KEY", ""), "the secret key of --access-key [FLEETLAB_DEVICE_SECRET_KEY]")
	fs.Uint64Var(&c.seed, "seed", 0, "seed of the retry and poll jitter, mixed with the thing name [FLEETLAB_SEED]")
	fs.DurationVar(&c.opts.PollMin, "poll-min", 0, "first poll interval while the notify channel is down (default 5s)")
	fs.DurationVar(&c.opts.PollMax, "poll-max", 0, "longest poll interval; also the safety poll while connected (default 5m)")
	fs.DurationVar(&c.opts.RetryBase, "retry-base", 0, "first delay before a failed step is retried (default 1s)")
	fs.DurationVar(&c.opts.RetryMax, "retry-max", 0, "longest delay between retries (default 1m)")
	fs.DurationVar(&c.opts.RequestTimeout, "request-timeout", 0, "bound of each device API call (default 30s)")
	fs.DurationVar(&c.opts.ScriptTimeout, "script-timeout", 0, "bound of each script (default 5m)")
	fs.DurationVar(&c.opts.StopGrace, "stop-grace", 0, "time a stopping application gets before it is killed (default 10s)")
	c.appconfig.register(fs, env)
	logLevel := fs.String("log-level", env("FLEETLAB_LOG_LEVEL", "info"), "what the agent logs to stderr: debug, info (every step, connection and retry), warn (retries and failures) or error [FLEETLAB_LOG_LEVEL]")
	quiet := fs.Bool("quiet", false, "log errors only: --log-level error")
	fs.Usage = func() {}
	err := fs.Parse(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usageText)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			fmt.Fprint(stdout, examplesText)
			return c, err
		}
		return c, &usageError{msg: err.Error(), hint: "run 'fleetlab-agent --help' for the flags"}
	}
	if fs.NArg() > 0 {
		return c, &usageError{msg: fmt.Sprintf("unexpected arguments: %q", fs.Args()),
			hint: "every setting is a flag; run 'fleetlab-agent --help'"}
	}
	if c.level, err = parseLevel(*logLevel); err != nil {
		return c, &usageError{msg: err.Error(), hint: "--log-level info logs every step; --quiet only errors"}
	}
	if *quiet {
		c.level = slog.LevelError
	}
	if v := getenv("FLEETLAB_SEED"); v != "" && !flagSet(fs, "seed") {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return c, &usageError{msg: fmt.Sprintf("FLEETLAB_SEED %q is not a number", v)}
		}
		c.seed = n
	}
	if c.serial != "" {
		if c.endpoint != "" {
			return c, &usageError{msg: "give --serial or --endpoint, not both",
				hint: "with --serial the agent speaks to the lab's bridge over the console, and the bridge calls the service; unset --endpoint (and FLEETLAB_ENDPOINT)"}
		}
		if _, _, err := serial.Parse(c.serial); err != nil {
			return c, &usageError{msg: "--serial: " + err.Error(), hint: "e.g. --serial /dev/ttyS0, the board's console UART"}
		}
		if c.baud <= 0 {
			return c, &usageError{msg: fmt.Sprintf("--baud %d is not a line speed", c.baud), hint: "e.g. --baud 115200, the console's speed"}
		}
		c.endpoint = bridge.Endpoint
	} else if flagSet(fs, "baud") {
		return c, &usageError{msg: "--baud is for --serial", hint: "give --serial DEVICE too, or leave --baud out"}
	}
	switch {
	case c.endpoint == "":
		return c, &usageError{msg: "no endpoint", hint: "give --endpoint (or FLEETLAB_ENDPOINT): the URL 'fleetlab serve' prints for the device API"}
	case c.thing == "":
		return c, &usageError{msg: "no thing name", hint: "give --thing (or FLEETLAB_THING): the robot's name in the service"}
	case c.dir == "":
		return c, &usageError{msg: "no device directory", hint: "give --dir (or FLEETLAB_DIR): a directory the agent owns, e.g. /var/lib/fleetlab-agent"}
	}
	if err := c.appconfig.check(c.serial, func(name string) bool { return flagSet(fs, name) }); err != nil {
		return c, err
	}
	if (c.accessKey == "") != (c.secretKey == "") {
		return c, &usageError{msg: "an access key without a secret key, or a secret key without an access key",
			hint: "give both --access-key and --secret-key (the robots' key pair 'fleetlab serve --auth sigv4' prints), or neither"}
	}
	if c.serial != "" && c.accessKey != "" {
		// A signature covers the host it was made for; over the console the lab's bridge makes the HTTP request.
		return c, &usageError{msg: "--serial cannot sign requests with --access-key: the lab's bridge calls the service, not the board",
			hint: "leave the keys out; a rig's bridges call a service run without --auth (they listen on loopback)"}
	}
	if u, err := url.Parse(c.endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, &usageError{msg: fmt.Sprintf("endpoint %q is not an http(s) URL", c.endpoint), hint: "e.g. --endpoint http://127.0.0.1:4710"}
	}
	if !validThing.MatchString(c.thing) {
		return c, &usageError{msg: fmt.Sprintf("thing name %q: want 1 to 128 of [a-zA-Z0-9_-]", c.thing),
			hint: "it is also the RoboMaker robot name, which allows letters, digits, '_' and '-'"}
	}
	if err := kinds.CheckArchitecture(c.arch); err != nil {
		return c, &usageError{msg: err.Error(), hint: "give a GOARCH name (RoboMaker's X86_64 is amd64, ARM64 arm64, " +
			"ARMHF arm); this binary's own is " + runtime.GOARCH}
	}
	return c, nil
}

// validThing is a name that serves as both a thing name ([a-zA-Z0-9:_-]{1,128}) and a RoboMaker robot name
// ([a-zA-Z0-9_-]{1,255}). The binary checks it itself: package fleet would link the service's SDK into the agent.
var validThing = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,128}$`)

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// run is the agent program: it returns the exit code. The first value on stop stops the agent cleanly; a second
// one exits at once.
func run(args []string, getenv func(string) string, stdout, stderr io.Writer, stop <-chan os.Signal) int {
	c, err := parseArgs(args, getenv, stdout)
	var ue *usageError
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "fleetlab-agent: %s\n", ue.msg)
		if ue.hint != "" {
			fmt.Fprintf(stderr, "hint: %s\n", ue.hint)
		}
		return exitUsage
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		fmt.Fprintf(stderr, "fleetlab-agent: device directory: %v\n", err)
		return exitDevice
	}
	log := newLogger(stderr, c.level, c.thing)
	opts := c.opts
	opts.Thing, opts.Architecture, opts.Endpoint, opts.Dir, opts.Seed = c.thing, c.arch, c.endpoint, c.dir, c.seed
	opts.Kinds = kinds.All()
	var events *eventlog.Writer
	switch c.events {
	case "":
	case "-":
		events = eventlog.NewWriter(stdout)
	default:
		f, err := os.OpenFile(c.events, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintf(stderr, "fleetlab-agent: events file: %v\n", err)
			return exitDevice
		}
		defer f.Close()
		events = eventlog.NewWriter(f)
	}
	opts.OnEvent = func(e agent.Event) {
		logEvent(log, e)
		if events != nil {
			events.Write(e)
		}
	}
	if c.appconfig.application != "" {
		var write func(agent.Event)
		if events != nil {
			write = events.Write
		}
		return runAppConfig(c, log, write, stop)
	}
	if c.serial != "" {
		port, err := serial.Open(c.serial, serial.Options{Baud: c.baud})
		if err != nil {
			fmt.Fprintf(stderr, "fleetlab-agent: %v\n", err)
			return exitDevice
		}
		link := bridge.NewClient(port, bridge.ClientOptions{Thing: c.thing, Seed: c.seed,
			Session: frame.Options{Baud: c.baud}})
		defer link.Close()
		if opts.Executors.Transport, err = link.Transport(c.thing); err != nil {
			fmt.Fprintf(stderr, "fleetlab-agent: %v\n", err)
			return exitDevice
		}
		c.endpoint = c.serial + " (frames)"
		write := opts.OnEvent
		opts.OnEvent = func(e agent.Event) {
			link.Event(e)
			if write != nil {
				write(e)
			}
		}
	} else if c.accessKey != "" {
		// A transport of its own, signing with the robot's keys.
		ht, err := agent.NewHTTPTransport(c.endpoint, c.thing, nil)
		if err != nil {
			fmt.Fprintf(stderr, "fleetlab-agent: %v\n", err)
			return exitUsage
		}
		ht.SignWith(agent.Credentials{AccessKey: c.accessKey, SecretKey: c.secretKey})
		defer ht.CloseIdleConnections()
		opts.Executors.Transport = ht
	}
	a, err := agent.New(opts)
	if err != nil {
		fmt.Fprintf(stderr, "fleetlab-agent: %v\n", err)
		return exitDevice
	}
	log.Info("started", "arch", c.arch, "endpoint", c.endpoint, "dir", c.dir)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var runErr error
	select {
	case runErr = <-done:
	case s := <-stop:
		log.Info("stopping (signal again to force)", "signal", s.String())
		cancel()
		select {
		case runErr = <-done:
		case <-stop:
			log.Warn("forced to stop")
			return exitForced
		}
	}
	stopped := make(chan error, 1)
	go func() { stopped <- a.Close() }() // stops the application, within the stop grace
	var closeErr error
	select {
	case closeErr = <-stopped:
	case <-stop:
		log.Warn("forced to stop")
		return exitForced
	}
	if events != nil && events.Err() != nil {
		log.Error("events file", "err", events.Err())
	}
	if runErr != nil {
		log.Error("the device cannot keep its state", "err", runErr)
		return exitDevice
	}
	if closeErr != nil {
		log.Error("stop", "err", closeErr)
		return exitDevice
	}
	log.Info("stopped")
	return exitOK
}
