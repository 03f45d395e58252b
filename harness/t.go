package harness

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
)

// T is what the harness needs of a test: the subset of testing.TB it uses, so that `fleetlab run` can drive
// scenarios outside go test with a Recorder. *testing.T and *testing.B satisfy it, and it satisfies gomega's
// GomegaTestingT.
type T interface {
	Helper()
	Name() string
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Failed() bool
	Cleanup(func())
	TempDir() string
}

// InfraError is a failure of the environment the scenario runs in — the service, the fleet, a port, the
// harness's own setup calls — as opposed to a product failure, an outcome other than the one expected.
type InfraError struct{ Err error }

func (e *InfraError) Error() string { return "infrastructure: " + e.Err.Error() }

// Unwrap returns the cause.
func (e *InfraError) Unwrap() error { return e.Err }

// infraReporter is a T that classifies failures (the Recorder).
type infraReporter interface{ infraFailure(err error) }

// infraFatal fails t with an infrastructure failure and stops the test.
func infraFatal(t T, format string, args ...any) {
	t.Helper()
	t.Fatalf("%s", infraMessage(t, format, args...))
}

// infraErrorf fails t with an infrastructure failure, from any goroutine, and lets the test go on.
func infraErrorf(t T, format string, args ...any) {
	t.Helper()
	t.Errorf("%s", infraMessage(t, format, args...))
}

func infraMessage(t T, format string, args ...any) string {
	err := &InfraError{Err: fmt.Errorf(format, args...)}
	for u := t; u != nil; {
		if r, ok := u.(infraReporter); ok {
			r.infraFailure(err)
			break
		}
		w, ok := u.(interface{ Unwrap() T })
		if !ok {
			break
		}
		u = w.Unwrap()
	}
	return fmt.Sprintf("%v (the environment failed, not the product under test)", err)
}

// Recorder is a T for running scenarios outside go test. Fatalf stops the goroutine running the scenario, as
// testing.T's does; Run then runs the cleanups, last registered first, and says how the scenario ended.
type Recorder struct {
	name  string
	log   io.Writer
	rerun string

	mu       sync.Mutex
	failed   bool
	infra    error
	messages []string
	cleanups []func()
	dirs     []string // TempDir's directories, removed after every cleanup
}

var _ T = (*Recorder)(nil)

// NewRecorder returns a recorder named name that writes its log lines to log (nil: discarded).
func NewRecorder(name string, log io.Writer) *Recorder {
	if log == nil {
		log = io.Discard
	}
	return &Recorder{name: name, log: log}
}

// SetRerun sets the command a failed run prints to run it again.
func (r *Recorder) SetRerun(cmd string) { r.rerun = cmd }

// Run runs fn with the recorder as its T on a goroutine of its own, waits for it to return or to call Fatalf,
// runs the cleanups, and returns nil when nothing failed, an *InfraError when the environment failed, or an
// error listing the failures otherwise. A panic in fn is an infrastructure failure.
func (r *Recorder) Run(fn func(t T)) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if p := recover(); p != nil {
				r.infraFailure(&InfraError{Err: fmt.Errorf("panic: %v", p)})
				r.fail(fmt.Sprintf("panic: %v", p))
			}
		}()
		fn(r)
	}()
	<-done
	r.mu.Lock()
	cleanups := r.cleanups
	r.cleanups = nil
	r.mu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		r.runCleanup(cleanups[i])
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, dir := range r.dirs {
		os.RemoveAll(dir)
	}
	r.dirs = nil
	switch {
	case r.infra != nil:
		return r.infra
	case r.failed:
		return errors.New(strings.Join(r.messages, "\n"))
	}
	return nil
}

// runCleanup runs one cleanup; a Fatalf inside it ends only that cleanup.
func (r *Recorder) runCleanup(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
}

func (r *Recorder) fail(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = true
	r.messages = append(r.messages, msg)
}

func (r *Recorder) infraFailure(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.infra == nil {
		r.infra = err
	}
}

// Helper implements T.
func (r *Recorder) Helper() {}

// Name implements T.
func (r *Recorder) Name() string { return r.name }

// Logf implements T.
func (r *Recorder) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.log, format+"\n", args...)
}

// Errorf implements T.
func (r *Recorder) Errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.Logf("%s", msg)
	r.fail(msg)
}

// Fatalf implements T: it records the failure and stops the calling goroutine.
func (r *Recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

// Failed implements T.
func (r *Recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// Cleanup implements T.
func (r *Recorder) Cleanup(fn func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, fn)
}

// TempDir implements T: a new directory, removed once every cleanup has run — as testing.T does, so a cleanup
// registered before the directory was made (stopping the robots that write into it) still finds it there.
func (r *Recorder) TempDir() string {
	dir, err := os.MkdirTemp("", "fleetlab-run-")
	if err != nil {
		infraFatal(r, "temp dir: %v", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dirs = append(r.dirs, dir)
	return dir
}

// InfraFatalf fails t (or the T it wraps: a T that wraps another says so with an Unwrap() T method) with a
// failure of the environment — an *InfraError under a Recorder, which `fleetlab run`
// reports as such (exit 3) — and stops the test. It is for environments outside this package (the AppConfig lab).
func InfraFatalf(t T, format string, args ...any) {
	t.Helper()
	infraFatal(t, format, args...)
}

// InfraErrorf is InfraFatalf that lets the test go on; it may be called from any goroutine.
func InfraErrorf(t T, format string, args ...any) {
	t.Helper()
	infraErrorf(t, format, args...)
}
