package opsworks_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	ow "github.com/fleetlab/fleetlab/sim/agent/opsworks"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	owwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/opsworks"
)

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

const host = "board-1"

// instance is an OpsWorks instance under test: an agent of the OS family over the fake device API, and a log
// every script appends a line to.
type instance struct {
	t      *testing.T
	svc    *agenttest.Service
	srv    *httptest.Server
	dir    string
	log    string
	mu     sync.Mutex
	states map[string][]string
	a      *agent.Agent
	cancel context.CancelFunc
	done   chan error
	n      int
}

func newInstance(t *testing.T) *instance {
	t.Helper()
	svc := agenttest.New(nil)
	srv := httptest.NewServer(svc.Handler())
	i := &instance{t: t, svc: svc, srv: srv, dir: t.TempDir(), log: filepath.Join(t.TempDir(), "log"), states: map[string][]string{}}
	t.Cleanup(func() {
		i.stop()
		svc.Close()
		srv.Close()
	})
	i.start()
	return i
}

func (i *instance) start() {
	a, err := agent.New(agent.Options{Thing: host, Kinds: []agent.Kind{ow.Kind{}}, Architecture: "amd64", Seed: 3,
		Dir: i.dir, Endpoint: i.srv.URL, RetryBase: 2 * time.Millisecond, RetryMax: 20 * time.Millisecond,
		PollMin: 20 * time.Millisecond, PollMax: 500 * time.Millisecond, RequestTimeout: 5 * time.Second,
		ScriptTimeout: 20 * time.Second, StopGrace: 5 * time.Second,
		OnEvent: func(e agent.Event) {
			if e.Kind != agent.EventState {
				return
			}
			i.mu.Lock()
			defer i.mu.Unlock()
			s := e.State
			if e.Code != "" {
				s += "(" + e.Code + ")"
			}
			i.states[e.JobID] = append(i.states[e.JobID], s)
		}})
	if err != nil {
		i.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	i.a, i.cancel, i.done = a, cancel, make(chan error, 1)
	go func() { i.done <- a.Run(ctx) }()
}

func (i *instance) stop() {
	if i.a == nil {
		return
	}
	i.cancel()
	if err := <-i.done; err != nil {
		i.t.Errorf("Run: %v", err)
	}
	if err := i.a.Close(); err != nil {
		i.t.Errorf("Close: %v", err)
	}
	i.a = nil
}

// script is a script that appends line to the log, then exits with code.
func (i *instance) script(line string, code int) string {
	return fmt.Sprintf("#!/bin/sh\necho \"%s $OPSWORKS_COMMAND $GREETING\" >> %s\nexit %d\n", line, i.log, code)
}

func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

// release stores an app release whose hooks and launch file log their version.
func (i *instance) release(version string, migrateExit int) owwire.Object {
	key := "releases/" + version + ".tar.gz"
	etag := i.svc.PutObject("apps", key, tarGz(i.t, map[string]string{
		"deploy/before_migrate.sh": i.script(version+" before_migrate", 0),
		"deploy/migrate.sh":        i.script(version+" migrate", migrateExit),
		"deploy/after_restart.sh":  i.script(version+" after_restart", 0),
		"web/launch.sh":            fmt.Sprintf("#!/bin/sh\necho %s > %s.running\nexec sleep 3600\n", version, i.log),
	}))
	return owwire.Object{Bucket: "apps", Key: key, ETag: etag}
}

func (i *instance) cookbooks() *owwire.Object {
	etag := i.svc.PutObject("cookbooks", "cb.tar.gz", tarGz(i.t, map[string]string{
		"app/recipes/deploy.sh":           i.script("recipe app::deploy", 0),
		"base/recipes/setup.sh":           i.script("recipe base::setup", 0),
		"base/recipes/fail.sh":            i.script("recipe base::fail", 4),
		"base/recipes/hello.sh":           i.script("recipe base::hello", 0),
		"dependencies/recipes/install.sh": i.script("recipe dependencies::install", 0),
	}))
	return &owwire.Object{Bucket: "cookbooks", Key: "cb.tar.gz", ETag: etag}
}

// run sends a command and waits for its end.
func (i *instance) run(doc owwire.Document) (wire.JobExecution, string) {
	i.t.Helper()
	i.n++
	job := fmt.Sprintf("job-%d", i.n)
	doc.DeploymentID = "dep-" + job
	doc.StackID = "stack-1"
	if doc.Layers == nil {
		doc.Layers = map[string]owwire.Recipes{"l1": {Setup: []string{"base::setup"}, Deploy: []string{"app::deploy"}}}
		doc.Instances = map[string][]string{host: {"l1"}}
	}
	i.svc.Enqueue(host, job, agenttest.Doc(owwire.Kind, doc))
	var e wire.JobExecution
	if !agenttest.Eventually(30*time.Second, func() bool {
		var found bool
		e, found = i.svc.Execution(host, job)
		if !found || e.Status == wire.StatusQueued || e.Status == wire.StatusInProgress {
			return false
		}
		st, err := i.a.Executors().State.Load()
		return err == nil && (st.InFlight == nil || st.InFlight.JobID != job)
	}) {
		i.t.Fatalf("%s did not end: %+v", job, e)
	}
	return e, job
}

func (i *instance) lines() []string {
	b, _ := os.ReadFile(i.log)
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	out := strings.Split(s, "\n")
	os.WriteFile(i.log, nil, 0o644)
	return out
}

func (i *instance) running() string {
	var v string
	agenttest.Eventually(30*time.Second, func() bool {
		b, _ := os.ReadFile(i.log + ".running")
		v = strings.TrimSpace(string(b))
		return v != ""
	})
	return v
}

func decodeLog(e wire.JobExecution) string {
	b, _ := base64.StdEncoding.DecodeString(e.StatusDetails[owwire.DetailLog])
	return string(b)
}

func app(releases ...owwire.Release) *owwire.App {
	return &owwire.App{ID: "app-1", Shortname: "hello", Type: "other", DocumentRoot: "web",
		Environment: map[string]string{"GREETING": "hi"}, Releases: releases}
}

// TestCommands runs an instance through every kind of command: deploys with migrate, the layers' recipes, a
// failing recipe with its exit code and log, stop and start, rollbacks to the end of the kept releases.
func TestCommands(t *testing.T) {
	i := newInstance(t)
	cb := i.cookbooks()
	v1 := owwire.Release{DeploymentID: "d1", Source: i.release("v1", 0)}
	v2 := owwire.Release{DeploymentID: "d2", Source: i.release("v2", 0)}

	e, job := i.run(owwire.Document{Command: owwire.Deploy, Args: map[string][]string{"migrate": {"true"}}, App: app(v1), Cookbooks: cb})
	if e.Status != wire.StatusSucceeded || e.StatusDetails[owwire.DetailExitCode] != "0" {
		t.Fatalf("deploy v1 %s %v", e.Status, e.StatusDetails)
	}
	if got, want := i.lines(), []string{"v1 before_migrate deploy hi", "v1 migrate deploy hi", "recipe app::deploy deploy hi",
		"v1 after_restart deploy hi"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("deploy v1 ran %q, want %q", got, want)
	}
	if !strings.Contains(decodeLog(e), "running deploy hook migrate") || !strings.Contains(decodeLog(e), "exit status 0") {
		t.Errorf("log %q", decodeLog(e))
	}
	if i.running() != "v1" {
		t.Fatal("v1 is not running")
	}
	if got, want := i.states[job], []string{ow.StepPreparing, ow.StepRunning, ow.StepFinished}; !reflect.DeepEqual(got, want) {
		t.Errorf("states %q", got)
	}

	os.Remove(i.log + ".running")
	e, _ = i.run(owwire.Document{Command: owwire.Deploy, App: app(v2, v1), Cookbooks: cb})
	if e.Status != wire.StatusSucceeded || i.running() != "v2" {
		t.Fatalf("deploy v2 %s %v", e.Status, e.StatusDetails)
	}
	if got := i.lines(); len(got) != 3 || got[0] != "v2 before_migrate deploy hi" {
		t.Fatalf("deploy v2 without migrate ran %q", got)
	}

	e, _ = i.run(owwire.Document{Command: owwire.ExecuteRecipes, Args: map[string][]string{"recipes": {"base::hello", "base::fail", "base::setup"}}, Cookbooks: cb})
	if e.Status != wire.StatusFailed || e.StatusDetails[owwire.DetailExitCode] != "4" || e.StatusDetails[wire.DetailFailureCode] != owwire.CodeScriptFailed {
		t.Fatalf("execute_recipes %s %v", e.Status, e.StatusDetails)
	}
	if got := i.lines(); !reflect.DeepEqual(got, []string{"recipe base::hello execute_recipes hi", "recipe base::fail execute_recipes hi"}) {
		t.Fatalf("execute_recipes ran %q", got)
	}
	if log := decodeLog(e); !strings.Contains(log, "recipe base::fail exited 4") || !strings.Contains(log, "exit status 4") {
		t.Fatalf("log %q", log)
	}

	e, _ = i.run(owwire.Document{Command: owwire.Setup, Cookbooks: cb})
	if e.Status != wire.StatusSucceeded || !reflect.DeepEqual(i.lines(), []string{"recipe base::setup setup hi"}) {
		t.Fatalf("setup %s %v", e.Status, e.StatusDetails)
	}
	e, _ = i.run(owwire.Document{Command: owwire.InstallDependencies, Cookbooks: cb})
	if e.Status != wire.StatusSucceeded || !reflect.DeepEqual(i.lines(), []string{"recipe dependencies::install install_dependencies hi"}) {
		t.Fatalf("install_dependencies %s %v", e.Status, e.StatusDetails)
	}
	e, _ = i.run(owwire.Document{Command: owwire.ExecuteRecipes, Args: map[string][]string{"recipes": {"base::nope"}}, Cookbooks: cb})
	if e.Status != wire.StatusFailed || e.StatusDetails[wire.DetailFailureCode] != owwire.CodeRecipeNotFound {
		t.Fatalf("missing recipe %s %v", e.Status, e.StatusDetails)
	}

	e, _ = i.run(owwire.Document{Command: owwire.Stop, App: app(v2, v1)})
	if e.Status != wire.StatusSucceeded || i.a.Executors().Launcher.Running() != "" {
		t.Fatalf("stop %s %v, running %q", e.Status, e.StatusDetails, i.a.Executors().Launcher.Running())
	}
	os.Remove(i.log + ".running")
	e, _ = i.run(owwire.Document{Command: owwire.Start, App: app(v2, v1)})
	if e.Status != wire.StatusSucceeded || i.running() != "v2" {
		t.Fatalf("start %s %v", e.Status, e.StatusDetails)
	}

	os.Remove(i.log + ".running")
	e, _ = i.run(owwire.Document{Command: owwire.Rollback, App: app(v2, v1), Cookbooks: cb})
	if e.Status != wire.StatusSucceeded || i.running() != "v1" {
		t.Fatalf("rollback %s %v", e.Status, e.StatusDetails)
	}
	i.lines()
	e, _ = i.run(owwire.Document{Command: owwire.Rollback, App: app(v2, v1), Cookbooks: cb})
	if e.Status != wire.StatusFailed || e.StatusDetails[wire.DetailFailureCode] != owwire.CodeNoRelease {
		t.Fatalf("rollback past the oldest %s %v", e.Status, e.StatusDetails)
	}

	e, _ = i.run(owwire.Document{Command: owwire.Undeploy, App: app(v2, v1)})
	if e.Status != wire.StatusSucceeded || i.a.Executors().Launcher.Running() != "" {
		t.Fatalf("undeploy %s %v", e.Status, e.StatusDetails)
	}
	e, _ = i.run(owwire.Document{Command: owwire.Start, App: app(v2, v1)})
	if e.Status != wire.StatusFailed || e.StatusDetails[wire.DetailFailureCode] != owwire.CodeNoRelease {
		t.Fatalf("start after undeploy %s %v", e.Status, e.StatusDetails)
	}
}

// none is a document's layers when the instance has no recipes.
var none = map[string]owwire.Recipes{}

// TestFailedMigrate: a migrate that exits 3 fails the deploy before the switch; the old release keeps running.
func TestFailedMigrate(t *testing.T) {
	i := newInstance(t)
	v1 := owwire.Release{DeploymentID: "d1", Source: i.release("v1", 0)}
	bad := owwire.Release{DeploymentID: "d2", Source: i.release("bad", 3)}
	if e, _ := i.run(owwire.Document{Command: owwire.Deploy, App: app(v1), Layers: none}); e.Status != wire.StatusSucceeded {
		t.Fatalf("deploy v1 %v", e.StatusDetails)
	}
	i.running()
	e, _ := i.run(owwire.Document{Command: owwire.Deploy, Args: map[string][]string{"migrate": {"true"}}, App: app(bad, v1), Layers: none})
	if e.Status != wire.StatusFailed || e.StatusDetails[owwire.DetailExitCode] != "3" {
		t.Fatalf("deploy bad %s %v", e.Status, e.StatusDetails)
	}
	b, _ := os.ReadFile(i.log + ".running")
	if strings.TrimSpace(string(b)) != "v1" || !strings.HasPrefix(agent.VersionJob(i.a.Executors().Launcher.Running()), "job-1") {
		t.Fatalf("after the failed migrate the instance runs %q (%s)", b, i.a.Executors().Launcher.Running())
	}
	// A source the store does not have fails as SOURCE_UNAVAILABLE.
	gone := owwire.Release{DeploymentID: "d3", Source: owwire.Object{Bucket: "apps", Key: "gone.tar.gz"}}
	e, _ = i.run(owwire.Document{Command: owwire.Deploy, App: app(gone, v1), Layers: none})
	if e.Status != wire.StatusFailed || e.StatusDetails[wire.DetailFailureCode] != owwire.CodeSourceFailed {
		t.Fatalf("deploy gone %s %v", e.Status, e.StatusDetails)
	}
}
