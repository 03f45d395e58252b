package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"time"

	"github.com/fleetlab/fleetlab/sim/agent"
	acagent "github.com/fleetlab/fleetlab/sim/agent/appconfig"
)

// appConfigFlags are the flags that make the agent an AppConfig device.
type appConfigFlags struct {
	application, environment, profile, hook string
	poll                                    time.Duration
}

// register adds the flags to fs, with their environment variables.
func (f *appConfigFlags) register(fs *flag.FlagSet, env func(name, def string) string) {
	fs.StringVar(&f.application, "appconfig-application", env("FLEETLAB_APPCONFIG_APPLICATION", ""), "run as an AppConfig device of this application (id or name), taking its configuration from AppConfigData instead of carrying out jobs; needs --appconfig-environment and --appconfig-profile [FLEETLAB_APPCONFIG_APPLICATION]")
	fs.StringVar(&f.environment, "appconfig-environment", env("FLEETLAB_APPCONFIG_ENVIRONMENT", ""), "the AppConfig environment (id or name) of --appconfig-application [FLEETLAB_APPCONFIG_ENVIRONMENT]")
	fs.StringVar(&f.profile, "appconfig-profile", env("FLEETLAB_APPCONFIG_PROFILE", ""), "the AppConfig configuration profile (id or name) of --appconfig-application [FLEETLAB_APPCONFIG_PROFILE]")
	fs.StringVar(&f.hook, "apply-hook", env("FLEETLAB_APPLY_HOOK", ""), "with --appconfig-application: a script (run with sh) that applies a new configuration, given its file as $1 and CONFIG_FILE and its version as CONFIG_VERSION; exiting non-zero refuses it and the last good one stays (default: none, every configuration is taken) [FLEETLAB_APPLY_HOOK]")
	fs.DurationVar(&f.poll, "appconfig-poll", 0, "with --appconfig-application: the poll interval asked of AppConfigData (default and least 15s)")
}

// check reports flags that do not go together, as a usage error; set says which flags were given.
func (f *appConfigFlags) check(serialLine string, set func(string) bool) error {
	if f.application == "" && f.environment == "" && f.profile == "" {
		for _, name := range []string{"apply-hook", "appconfig-poll"} {
			if set(name) || (name == "apply-hook" && f.hook != "") {
				return &usageError{msg: "--" + name + " is for an AppConfig device",
					hint: "give --appconfig-application, --appconfig-environment and --appconfig-profile too, or leave --" + name + " out"}
			}
		}
		return nil
	}
	if f.application == "" || f.environment == "" || f.profile == "" {
		return &usageError{msg: "an AppConfig device needs --appconfig-application, --appconfig-environment and --appconfig-profile",
			hint: "give all three: the application, environment and configuration profile the device takes its configuration from"}
	}
	if serialLine != "" {
		return &usageError{msg: "an AppConfig device speaks AppConfigData over HTTP, not over --serial",
			hint: "give --endpoint instead of --serial"}
	}
	if f.poll != 0 && f.poll < 15*time.Second {
		return &usageError{msg: "--appconfig-poll " + f.poll.String() + " is below AppConfigData's least interval of 15s",
			hint: "e.g. --appconfig-poll 30s"}
	}
	return nil
}

// runAppConfig runs the AppConfig device until stop, returning the exit code: the device polls AppConfigData,
// applies each new configuration through the hook, keeps the last good one in its directory and puts its health
// in CloudWatch. onEvent is told of every state it enters (the --events file).
func runAppConfig(c config, log *slog.Logger, onEvent func(agent.Event), stop <-chan os.Signal) int {
	opts := acagent.Options{Thing: c.thing, Endpoint: c.endpoint, Application: c.appconfig.application,
		Environment: c.appconfig.environment, Profile: c.appconfig.profile, PollInterval: c.appconfig.poll,
		Dir: c.dir, Hook: c.appconfig.hook,
		OnEvent: func(e acagent.Event) {
			logAppConfigEvent(log, e)
			if onEvent != nil {
				ev := agent.Event{Time: e.Time, Kind: agent.EventState, Thing: e.Thing, State: e.State, Reason: e.Version,
					Err: e.Err}
				if e.Err != nil && e.State != acagent.StateApplyFailed {
					ev.Kind = agent.EventError
				}
				onEvent(ev)
			}
		}}
	if c.accessKey != "" {
		opts.Credentials = &agent.Credentials{AccessKey: c.accessKey, SecretKey: c.secretKey}
	}
	d, err := acagent.New(opts)
	if err != nil {
		log.Error("start", "err", err)
		return exitDevice
	}
	log.Info("started as an AppConfig device", "endpoint", c.endpoint, "dir", c.dir,
		"application", opts.Application, "environment", opts.Environment, "profile", opts.Profile,
		"holds", d.Applied())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	select {
	case err = <-done:
	case s := <-stop:
		log.Info("stopping (signal again to force)", "signal", s.String())
		cancel()
		select {
		case err = <-done:
		case <-stop:
			log.Warn("forced to stop")
			return exitForced
		}
	}
	if err != nil {
		log.Error("the device stopped", "err", err)
		return exitDevice
	}
	log.Info("stopped", "holds", d.Applied())
	return exitOK
}

// logAppConfigEvent writes an AppConfig device's event to l: every configuration taken or refused, every error;
// its polls only at debug level.
func logAppConfigEvent(l *slog.Logger, e acagent.Event) {
	switch {
	case e.State == acagent.StateApplyFailed:
		l.Warn("configuration refused; the last good one stays", "version", e.Version, "err", errText(e.Err))
	case e.Err != nil:
		l.Error("error", "state", e.State, "err", errText(e.Err))
	case e.State == acagent.StatePolling:
		l.Debug(e.State)
	case e.Version != "":
		l.Info(e.State, "version", e.Version)
	default:
		l.Info(e.State)
	}
}
