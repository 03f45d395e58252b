package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
)

// APIError is an error answer of the device API: the HTTP status, the error code (X-Amzn-ErrorType or the
// body's __type) and the message. Transports to the device API return it for every answer outside 2xx so the
// agent can tell a retryable answer from a final one.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%s (%d)", e.Code, e.Status)
	}
	return fmt.Sprintf("%s (%d): %s", e.Code, e.Status, e.Message)
}

// Transient marks err as worth retrying: a dropped connection, a stalled link, a service that is restarting.
// Transports and faults wrap their link-level errors with it; the agent retries the step with backoff.
// Transient(nil) is nil.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &transientError{err}
}

type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// IsTransient reports whether err is worth retrying: marked by Transient, an API answer of 5xx or throttling,
// or a network error (connection refused or reset, unexpected EOF, timeout).
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	var te *transientError
	if errors.As(err, &te) {
		return true
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status >= 500 || ae.Status == 429 || ae.Code == wire.ErrThrottling || ae.Code == wire.ErrServiceUnavailable
	}
	// A bare errno is not a network error, though syscall.Errno has net.Error's methods: a full disk (ENOSPC)
	// or a refused permission (EACCES) is final, not worth retrying forever.
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ECONNRESET, syscall.ECONNREFUSED, syscall.ECONNABORTED, syscall.EPIPE, syscall.ETIMEDOUT,
			syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ENETDOWN:
			return true
		}
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF)
}

// endedByService reports whether err says the service no longer holds the execution open: it was canceled,
// timed out or removed (404 ResourceNotFound, 409 InvalidStateTransition, 410 TerminalState on a data-plane
// call). The agent stops the execution without reporting.
func endedByService(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.Code {
	case wire.ErrResourceNotFound, wire.ErrInvalidStateTransition, wire.ErrTerminalState:
		return true
	}
	return ae.Status == 404 || ae.Status == 409 || ae.Status == 410
}

// StepError is a fatal error of a step: it ends the execution with Status (FAILED, or REJECTED when the
// device refuses the job document) and the dialect's failure Code. The reason reported is Err's text.
type StepError struct {
	Status string
	Code   string
	Err    error
}

func (e *StepError) Error() string {
	if e.Code == "" {
		return e.Err.Error()
	}
	return e.Code + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *StepError) Unwrap() error { return e.Err }

// Fail returns a StepError failing the execution with code.
func Fail(code string, err error) error {
	return &StepError{Status: wire.StatusFailed, Code: code, Err: err}
}

// Failf is Fail with a formatted reason.
func Failf(code, format string, args ...any) error {
	return Fail(code, fmt.Errorf(format, args...))
}

// Reject returns a StepError rejecting the execution: the device cannot carry out this job document.
func Reject(err error) error {
	return &StepError{Status: wire.StatusRejected, Err: err}
}

// ExitError is a script or application that ran and exited with a non-zero status.
type ExitError struct {
	// Code is the exit status, or -1 when a signal ended the process.
	Code int
}

func (e *ExitError) Error() string {
	if e.Code < 0 {
		return "killed by a signal"
	}
	return fmt.Sprintf("exit status %d", e.Code)
}

// Sentinel errors callers can test for with errors.Is.
var (
	// ErrNotSimulable is returned by the in-memory script runner for a script it cannot interpret: anything
	// but a trivial #!/bin/sh script ending in `exit N`. Such a bundle needs the OS executors.
	ErrNotSimulable = errors.New("not a trivial #!/bin/sh script ending in `exit N`; the in-memory runner cannot run it, use the OS executors")
	// ErrScriptTimeout is returned when a script runs longer than its timeout and is killed.
	ErrScriptTimeout = errors.New("script timed out")
	// ErrNoNotify is returned by Transport.Subscribe when the transport has no notify channel; the agent then
	// relies on polling alone.
	ErrNoNotify = errors.New("no notify channel")
	// ErrUnsafePath is returned for a bundle entry or link that would land outside the version directory.
	ErrUnsafePath = errors.New("path escapes the bundle")
	// ErrActiveVersion is returned when removing or replacing the version the device runs.
	ErrActiveVersion = errors.New("version is active")
	// errRequestTimeout ends a device API call that took longer than Options.RequestTimeout.
	errRequestTimeout = errors.New("request timed out")
	// errCanceledByService is the cause of an execution's context when the notify channel says the service
	// canceled it.
	errCanceledByService = errors.New("execution canceled by the service")
)

// isCtxErr reports whether err comes from ctx having ended.
func isCtxErr(ctx context.Context, err error) bool {
	return ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ctx.Err()))
}
