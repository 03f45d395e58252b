package robomaker_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	"github.com/fleetlab/fleetlab/sim/agent/robomaker"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
)

// TestMain fails the run when any test left an agent, notify, HTTP or process goroutine behind.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := agenttest.CheckGoroutines(10 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// The two families the chain tests run: the OS executors over the HTTP transport, and the in-memory
// executors over the in-memory transport.
var families = []string{"os", "memory"}

// testbed is a fake device API served over HTTP and in memory.
type testbed struct {
	svc *agenttest.Service
	srv *httptest.Server
}

func newTestbed(t *testing.T) *testbed {
	t.Helper()
	svc := agenttest.New(nil)
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(func() {
		svc.Close()
		srv.Close()
	})
	return &testbed{svc: svc, srv: srv}
}

// deploy describes a deployment job for the testbed to enqueue.
type deploy struct {
	job, version  string
	bundle        string // fixture name
	condition     string // fixture script name, "" for none
	conditionETag string // the ETag the document asks of the condition file; "" for the object's
	bundleETag    string // the ETag the document asks of the bundle; "" for the object's
	arch          string // the source's architecture; "" for X86_64
	kind          string // the document's kind; "" for robomaker
	noObject      bool   // the bundle is not in the artifact store
}

const bucket = "fleet-bundles"

func (tb *testbed) enqueue(t *testing.T, thing string, d deploy) {
	t.Helper()
	key := d.job + "/" + d.bundle + ".tar.gz"
	etag := d.bundleETag
	if !d.noObject {
		if got := tb.svc.PutObject(bucket, key, bundles.MustBuild(d.bundle)); etag == "" {
			etag = got
		}
	}
	arch := d.arch
	if arch == "" {
		arch = "X86_64"
	}
	doc := rmwire.Document{
		Job:         "arn:aws:robomaker:us-east-1:111111111111:deployment-job/" + d.job,
		Fleet:       "arn:aws:robomaker:us-east-1:111111111111:deployment-fleet/lab/1",
		Application: "arn:aws:robomaker:us-east-1:111111111111:robot-application/hello/1",
		Name:        "hello",
		Version:     d.version,
		Sources:     []rmwire.Source{{Architecture: arch, Bucket: bucket, Key: key, ETag: etag}},
		Launch: rmwire.Launch{
			PackageName: bundles.Package, LaunchFile: bundles.LaunchFile,
			PreLaunchFile: bundles.PreLaunchFile, PostLaunchFile: bundles.PostLaunchFile,
			EnvironmentVariables: map[string]string{"GREETING": "hi"},
		},
		TimeoutSeconds: 18000,
	}
	if d.condition != "" {
		script, err := bundles.Script(d.condition)
		if err != nil {
			t.Fatal(err)
		}
		ckey := d.job + "/" + d.condition
		cetag := tb.svc.PutObject(bucket, ckey, script)
		if d.conditionETag != "" {
			cetag = d.conditionETag
		}
		doc.DownloadCondition = &rmwire.Object{Bucket: bucket, Key: ckey, ETag: cetag}
	}
	raw := agenttest.Doc(rmwire.Kind, doc)
	if d.kind != "" {
		raw = []byte(strings.Replace(string(raw), `"kind":"robomaker"`, `"kind":"`+d.kind+`"`, 1))
	}
	tb.svc.Enqueue(thing, d.job, raw)
}

// recorder keeps the agent's events.
type recorder struct {
	mu     sync.Mutex
	events []agent.Event
	hook   func(agent.Event) // called for each event, in the agent's goroutine
}

func (r *recorder) add(e agent.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	hook := r.hook
	r.mu.Unlock()
	if hook != nil {
		hook(e)
	}
}

func (r *recorder) setHook(h func(agent.Event)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hook = h
}

// chain returns the states job entered, a failure written Failed(Code).
func (r *recorder) chain(job string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if e.Kind != agent.EventState || e.JobID != job {
			continue
		}
		s := e.State
		if s == agent.StateFailed {
			s += "(" + e.Code + ")"
		}
		out = append(out, s)
	}
	return out
}

// errs returns the errors of the events of kind.
func (r *recorder) errs(kind agent.EventKind) []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []error
	for _, e := range r.events {
		if e.Kind == kind && e.Err != nil {
			out = append(out, e.Err)
		}
	}
	return out
}

func (r *recorder) count(kind agent.EventKind, job string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Kind == kind && (job == "" || e.JobID == job) {
			n++
		}
	}
	return n
}

// robot is one device under test: an agent of a family, with storage that survives its restarts.
type robot struct {
	t      *testing.T
	family string
	tb     *testbed
	thing  string
	dir    string // OS family: the device directory
	// In-memory family: the device's storage, kept across restarts; the running application is not.
	state      *agent.MemoryState
	versions   *agent.MemoryVersions
	downloader agent.Downloader

	rec    *recorder
	a      *agent.Agent
	cancel context.CancelFunc
	done   chan error
}

func newRobot(t *testing.T, family string, tb *testbed, thing string) *robot {
	t.Helper()
	r := &robot{t: t, family: family, tb: tb, thing: thing, rec: &recorder{}}
	if family == "os" {
		r.dir = t.TempDir()
	} else {
		r.state, r.versions, r.downloader = agent.NewMemoryState(), agent.NewMemoryVersions(0), agent.NewMemoryDownloader()
	}
	t.Cleanup(r.stop)
	return r
}

// options returns the agent options for the robot's family, tuned for fast tests on the real clock.
func (r *robot) options() agent.Options {
	o := agent.Options{
		Thing: r.thing, Kinds: []agent.Kind{robomaker.Kind{}}, Architecture: "amd64", Seed: 7,
		RetryBase: 2 * time.Millisecond, RetryMax: 20 * time.Millisecond,
		PollMin: 20 * time.Millisecond, PollMax: 500 * time.Millisecond,
		RequestTimeout: 5 * time.Second, ScriptTimeout: 20 * time.Second, StopGrace: 5 * time.Second,
		OnEvent: r.rec.add,
	}
	if r.family == "os" {
		o.Dir, o.Endpoint = r.dir, r.tb.srv.URL
	} else {
		o.Executors = agent.Executors{
			Transport: r.tb.svc.Transport(r.thing), State: r.state, Versions: r.versions,
			Downloader: r.downloader, Launcher: agent.NewSimLauncher(),
		}
	}
	return o
}

// start creates the agent (with opts changed by mod) and runs it.
func (r *robot) start(mod func(*agent.Options)) {
	r.t.Helper()
	o := r.options()
	if mod != nil {
		mod(&o)
	}
	a, err := agent.New(o)
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.a, r.cancel, r.done = a, cancel, make(chan error, 1)
	go func() { r.done <- a.Run(ctx) }()
}

// stop ends the agent like a power cut: Run stops where it is, Close stops the application. It checks
// that no process of the application is left.
func (r *robot) stop() {
	r.t.Helper()
	if r.a == nil {
		return
	}
	r.cancel()
	if err := <-r.done; err != nil {
		r.t.Errorf("Run: %v", err)
	}
	pid := 0
	if pl, ok := r.a.Executors().Launcher.(*agent.ProcessLauncher); ok {
		pid = pl.Pid()
	}
	if err := r.a.Close(); err != nil {
		r.t.Errorf("Close: %v", err)
	}
	if pid != 0 && !agenttest.Eventually(10*time.Second, func() bool { return groupGone(pid) }) {
		r.t.Errorf("application process group %d still alive after Close", pid)
	}
	r.a = nil
}

// waitEnded waits until job's execution is terminal on the service and the agent has closed it.
func (r *robot) waitEnded(job string) wire.JobExecution {
	r.t.Helper()
	var e wire.JobExecution
	ok := agenttest.Eventually(30*time.Second, func() bool {
		var found bool
		e, found = r.tb.svc.Execution(r.thing, job)
		if !found || e.Status == wire.StatusQueued || e.Status == wire.StatusInProgress {
			return false
		}
		st, err := r.a.Executors().State.Load()
		return err == nil && (st.InFlight == nil || st.InFlight.JobID != job)
	})
	if !ok {
		r.t.Fatalf("job %s did not end: execution %+v, chain %q", job, e, r.rec.chain(job))
	}
	return e
}

// waitIdle waits until the agent holds no execution in flight.
func (r *robot) waitIdle() {
	r.t.Helper()
	if !agenttest.Eventually(30*time.Second, func() bool {
		st, err := r.a.Executors().State.Load()
		return err == nil && st.InFlight == nil
	}) {
		r.t.Fatal("the agent did not become idle")
	}
}

// checkRunning checks the robot runs job's version (none for "") and, in the OS family, that the
// application is alive and is that version: its heartbeat names the version and keeps beating.
func (r *robot) checkRunning(job, version string) {
	r.t.Helper()
	if got := r.a.Executors().Launcher.Running(); agent.VersionJob(got) != job {
		r.t.Fatalf("running %q, want a version of %q", got, job)
	}
	active, err := r.a.Executors().Versions.Active()
	if err != nil || agent.VersionJob(active) != job {
		r.t.Fatalf("active version %q (%v), want a version of %q", active, err, job)
	}
	if r.family != "os" || job == "" {
		return
	}
	hb := filepath.Join(r.dir, "data", "heartbeat")
	var first string
	ok := agenttest.Eventually(10*time.Second, func() bool {
		b, err := os.ReadFile(hb)
		line := string(b)
		if err != nil || !strings.HasPrefix(line, "version="+version+" ") {
			return false
		}
		if first == "" {
			first = line
			return false
		}
		return line != first
	})
	if !ok {
		b, _ := os.ReadFile(hb)
		r.t.Fatalf("heartbeat %q: want version %s beating", b, version)
	}
}

// groupGone reports whether no process of the process group pgid is alive (zombies count as gone).
func groupGone(pgid int) bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:]) // state ppid pgrp ...
		if len(f) < 3 || f[0] == "Z" {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g == pgid || pid == pgid {
			return false
		}
	}
	return true
}

// installedVersion returns the robot application version an installed version records.
func installedVersion(t *testing.T, inst agent.Installed) string {
	t.Helper()
	v, err := robomaker.InstalledVersion(inst)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
