package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
)

// The agent logs to stderr, one line per thing that happened, at the level a reader of a robot's log expects:
//
//	info   every step entered, the notify channel coming up, a resume at start, an adopted application
//	warn   a retry (with the error and the delay), the notify channel lost, a deployment failed or rolled back
//	error  what went wrong outside a step: the service unreachable, a thing name the service does not know
//
// --log-level picks the least level written (default info); --quiet is --log-level error.

// parseLevel reads a --log-level value.
func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log level %q: want debug, info, warn or error", s)
}

// newLogger returns the agent's log on w from level on, each line naming the robot.
func newLogger(w io.Writer, level slog.Level, thing string) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})).With("robot", thing)
}

// logEvent writes e to l.
func logEvent(l *slog.Logger, e agent.Event) {
	job := func(attrs ...any) []any {
		if e.JobID != "" {
			return append([]any{"job", e.JobID}, attrs...)
		}
		return attrs
	}
	switch e.Kind {
	case agent.EventState:
		switch e.State {
		case agent.StateFailed, agent.StateRejected, agent.StateRollingBack:
			l.Warn(e.State, job("code", e.Code, "reason", e.Reason)...)
		default:
			l.Info(e.State, job()...)
		}
	case agent.EventRetry:
		l.Warn("retry", job("state", e.State, "in", e.Delay, "err", errText(e.Err))...)
	case agent.EventResume:
		l.Info("resume", job("step", e.State)...)
	case agent.EventAdopted:
		l.Info("adopted the application left running", "version", e.State)
	case agent.EventConnected:
		l.Info("notify channel connected")
	case agent.EventDisconnected:
		l.Warn("notify channel lost; polling until it is back")
	case agent.EventError:
		if unknownThing(e) {
			l.Error("the service does not know this robot", "err", errText(e.Err),
				"hint", "create the robot with this name (RoboMaker CreateRobot) and register it in a fleet, or fix --thing")
			return
		}
		l.Error("error", job("err", errText(e.Err))...)
	default:
		l.Debug(string(e.Kind), job("state", e.State, "err", errText(e.Err))...)
	}
}

// unknownThing reports whether e is the service saying, outside any job, that it has no such thing.
func unknownThing(e agent.Event) bool {
	var ae *agent.APIError
	return e.JobID == "" && errors.As(e.Err, &ae) && ae.Status == http.StatusNotFound && ae.Code == wire.ErrResourceNotFound
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
