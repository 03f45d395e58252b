package greengrass_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
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
	gg "github.com/fleetlab/fleetlab/sim/agent/greengrass"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	ggwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/greengrass"
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

const thing = "core-1"

// core is a Greengrass V1 core under test: an agent of the OS family over the fake device API, and a log its
// functions append to.
type core struct {
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
}

func newCore(t *testing.T) *core {
	t.Helper()
	svc := agenttest.New(nil)
	srv := httptest.NewServer(svc.Handler())
	c := &core{t: t, svc: svc, srv: srv, dir: t.TempDir(), log: filepath.Join(t.TempDir(), "log"),
		states: map[string][]string{}}
	t.Cleanup(func() {
		c.stop()
		svc.Close()
		srv.Close()
	})
	c.start()
	return c
}

func (c *core) start() {
	c.t.Helper()
	a, err := agent.New(agent.Options{
		Thing: thing, Kinds: []agent.Kind{gg.Kind{}}, Architecture: "amd64", Seed: 7, Dir: c.dir, Endpoint: c.srv.URL,
		RetryBase: 2 * time.Millisecond, RetryMax: 20 * time.Millisecond,
		PollMin: 20 * time.Millisecond, PollMax: 500 * time.Millisecond,
		RequestTimeout: 5 * time.Second, ScriptTimeout: 20 * time.Second, StopGrace: 5 * time.Second,
		OnEvent: func(e agent.Event) {
			if e.Kind == agent.EventRetry || e.Kind == agent.EventError {
				c.t.Logf("%s %s %s: %v", e.Kind, e.JobID, e.State, e.Err)
			}
			if e.Kind != agent.EventState {
				return
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			s := e.State
			if e.Code != "" {
				s += "(" + e.Code + ")"
			}
			c.states[e.JobID] = append(c.states[e.JobID], s)
		},
	})
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.a, c.cancel, c.done = a, cancel, make(chan error, 1)
	go func() { c.done <- a.Run(ctx) }()
}

func (c *core) stop() {
	c.t.Helper()
	if c.a == nil {
		return
	}
	c.cancel()
	if err := <-c.done; err != nil {
		c.t.Errorf("Run: %v", err)
	}
	if err := c.a.Close(); err != nil {
		c.t.Errorf("Close: %v", err)
	}
	c.a = nil
}

func (c *core) chain(job string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.states[job]...)
}

func (c *core) deploy(job string, doc ggwire.Document) wire.JobExecution {
	c.t.Helper()
	doc.DeploymentID = "dep-" + job
	if doc.GroupID == "" {
		doc.GroupID = "group-1"
	}
	if doc.DeploymentType == "" {
		doc.DeploymentType = ggwire.TypeNew
	}
	if doc.GroupVersionID == "" && doc.DeploymentType != ggwire.TypeReset {
		doc.GroupVersionID = "v-" + job
	}
	if doc.Core.ThingArn == "" {
		doc.Core = ggwire.Core{ID: "core", ThingArn: "arn:aws:iot:us-east-1:123456789012:thing/" + thing,
			CertificateArn: "arn:aws:iot:us-east-1:123456789012:cert/x"}
	}
	c.svc.Enqueue(thing, job, agenttest.Doc(ggwire.Kind, doc))
	return c.waitEnded(job)
}

func (c *core) waitEnded(job string) wire.JobExecution {
	c.t.Helper()
	var e wire.JobExecution
	if !agenttest.Eventually(30*time.Second, func() bool {
		var found bool
		e, found = c.svc.Execution(thing, job)
		if !found || e.Status == wire.StatusQueued || e.Status == wire.StatusInProgress {
			return false
		}
		st, err := c.a.Executors().State.Load()
		return err == nil && (st.InFlight == nil || st.InFlight.JobID != job)
	}) {
		c.t.Fatalf("job %s did not end: %+v, chain %q", job, e, c.chain(job))
	}
	return e
}

func (c *core) logLines() []string {
	b, err := os.ReadFile(c.log)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		c.t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func (c *core) active() string {
	c.t.Helper()
	id, err := c.a.Executors().Versions.Active()
	if err != nil {
		c.t.Fatal(err)
	}
	return agent.VersionJob(id)
}

// fn is an on-demand function that appends a line to the log and then runs more.
func (c *core) fn(id, line, more string) ggwire.Function {
	return ggwire.Function{ID: id, FunctionArn: "arn:aws:lambda:us-east-1:123456789012:function:" + id + ":1",
		Executable:  fmt.Sprintf(`echo "%s $AWS_GREENGRASS_GROUP_ID $GG_FUNCTION_ID $MSG" >> %s %s`, line, c.log, more),
		Environment: map[string]string{"MSG": "hi"}}
}

func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		mode := int64(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

// TestGroupDeployment: resources are unpacked at their destination, on-demand functions run once with the
// group's environment and the resource in reach, pinned functions are kept running, subscriptions are the
// group's configuration.
func TestGroupDeployment(t *testing.T) {
	c := newCore(t)
	etag := c.svc.PutObject("models", "m.tar.gz", tarGz(t, map[string]string{"model/weights.txt": "w1",
		"model/run.sh": "#!/bin/sh\necho \"run $GG_FUNCTION_ID\" >> " + c.log + "\n"}))
	pinned := filepath.Join(t.TempDir(), "pinned")
	doc := ggwire.Document{
		Functions: []ggwire.Function{
			c.fn("reader", "read", `&& cat resources/ml/model/weights.txt >> `+c.log+` && echo >> `+c.log),
			{ID: "file", FunctionArn: "arn:aws:lambda:us-east-1:123456789012:function:file:1", Executable: "resources/ml/model/run.sh"},
			{ID: "daemon", FunctionArn: "arn:aws:lambda:us-east-1:123456789012:function:daemon:1",
				Executable: `echo up >> ` + pinned + `; sleep 3600`, Pinned: true},
		},
		Subscriptions: []ggwire.Subscription{{ID: "s1", Source: "cloud", Subject: "hello/#", Target: "arn:aws:lambda:us-east-1:123456789012:function:reader:1"}},
		Resources: []ggwire.Resource{{ID: "r1", Name: "model", S3: &ggwire.S3Resource{Bucket: "models", Key: "m.tar.gz",
			ETag: etag, DestinationPath: "/ml"}}},
	}
	e := c.deploy("job-1", doc)
	if e.Status != wire.StatusSucceeded || e.StatusDetails[gg.DetailStatus] != "Success" {
		t.Fatalf("job-1 %s %v chain %q", e.Status, e.StatusDetails, c.chain("job-1"))
	}
	if got, want := c.chain("job-1"), []string{gg.StepDownloading, gg.StepStarting, gg.StepFinished}; !reflect.DeepEqual(got, want) {
		t.Fatalf("chain %q, want %q", got, want)
	}
	if got, want := c.logLines(), []string{"read group-1 reader hi", "w1", "run file"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("log %q, want %q", got, want)
	}
	if !agenttest.Eventually(30*time.Second, func() bool {
		b, _ := os.ReadFile(pinned)
		return string(b) == "up\n"
	}) {
		t.Fatal("the pinned function did not start")
	}
	id, _ := c.a.Executors().Versions.Active()
	v, err := c.a.Executors().Versions.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gg.Group(v)
	if err != nil || len(g.Subscriptions) != 1 || g.Subscriptions[0].Subject != "hello/#" {
		t.Fatalf("group on the core %+v %v", g, err)
	}
	if b, err := v.Files.ReadFile("subscriptions.json"); err != nil || !strings.Contains(string(b), "hello/#") {
		t.Fatalf("subscriptions.json %q %v", b, err)
	}

	// A reset stops the pinned function and leaves the core running no group.
	e = c.deploy("job-2", ggwire.Document{DeploymentType: ggwire.TypeReset})
	if e.Status != wire.StatusSucceeded {
		t.Fatalf("reset %s %v", e.Status, e.StatusDetails)
	}
	if r := c.a.Executors().Launcher.Running(); r != "" {
		t.Fatalf("after the reset the core runs %s", r)
	}
}

// TestGroupFailures: every failure of a deployment on the core, its code, and the group the core runs after.
func TestGroupFailures(t *testing.T) {
	tests := []struct {
		name   string
		doc    func(c *core) ggwire.Document
		status string
		code   string
		chain  []string
	}{
		{"function exits 3", func(c *core) ggwire.Document {
			return ggwire.Document{Functions: []ggwire.Function{c.fn("bad", "bad", "; exit 3")}}
		}, wire.StatusFailed, ggwire.CodeFunctionFailed,
			[]string{gg.StepDownloading, gg.StepStarting, agent.StateRollingBack + "(" + ggwire.CodeFunctionFailed + ")", "Failed(" + ggwire.CodeFunctionFailed + ")"}},
		{"executable missing", func(c *core) ggwire.Document {
			return ggwire.Document{Functions: []ggwire.Function{{ID: "app", FunctionArn: "arn:aws:lambda:us-east-1:1:function:app:1",
				Executable: "resources/app/launch.sh", Pinned: true}}}
		}, wire.StatusFailed, ggwire.CodeFunctionFailed,
			[]string{gg.StepDownloading, gg.StepStarting, agent.StateRollingBack + "(" + ggwire.CodeFunctionFailed + ")", "Failed(" + ggwire.CodeFunctionFailed + ")"}},
		{"resource missing", func(c *core) ggwire.Document {
			return ggwire.Document{Resources: []ggwire.Resource{{ID: "r", Name: "gone", S3: &ggwire.S3Resource{Bucket: "models",
				Key: "gone.tar.gz", DestinationPath: "/gone"}}}}
		}, wire.StatusFailed, ggwire.CodeResourceDownload,
			[]string{gg.StepDownloading, "Failed(" + ggwire.CodeResourceDownload + ")"}},
		{"resource changed", func(c *core) ggwire.Document {
			c.svc.PutObject("models", "m.tar.gz", tarGz(t, map[string]string{"a": "b"}))
			return ggwire.Document{Resources: []ggwire.Resource{{ID: "r", Name: "m", S3: &ggwire.S3Resource{Bucket: "models",
				Key: "m.tar.gz", ETag: `"00000000000000000000000000000000"`, DestinationPath: "/m"}}}}
		}, wire.StatusFailed, ggwire.CodeResourceChecksum,
			[]string{gg.StepDownloading, "Failed(" + ggwire.CodeResourceChecksum + ")"}},
		{"resource not an archive", func(c *core) ggwire.Document {
			etag := c.svc.PutObject("models", "plain.txt", []byte("plain"))
			return ggwire.Document{Resources: []ggwire.Resource{{ID: "r", Name: "m", S3: &ggwire.S3Resource{Bucket: "models",
				Key: "plain.txt", ETag: etag, DestinationPath: "/m"}}}}
		}, wire.StatusFailed, ggwire.CodeResourceArchive,
			[]string{gg.StepDownloading, "Failed(" + ggwire.CodeResourceArchive + ")"}},
		{"another core's group", func(c *core) ggwire.Document {
			return ggwire.Document{Core: ggwire.Core{ID: "c", ThingArn: "arn:aws:iot:us-east-1:123456789012:thing/core-9"}}
		}, wire.StatusFailed, ggwire.CodeCoreMismatch,
			[]string{gg.StepDownloading, "Failed(" + ggwire.CodeCoreMismatch + ")"}},
		{"unreadable document", func(c *core) ggwire.Document {
			return ggwire.Document{DeploymentType: "Sideways"}
		}, wire.StatusRejected, "",
			[]string{gg.StepDownloading, agent.StateRejected}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCore(t)
			if e := c.deploy("job-1", ggwire.Document{Functions: []ggwire.Function{c.fn("ok", "ok", "")}}); e.Status != wire.StatusSucceeded {
				t.Fatalf("job-1 %s %v", e.Status, e.StatusDetails)
			}
			e := c.deploy("job-2", tt.doc(c))
			if e.Status != tt.status || e.StatusDetails[wire.DetailFailureCode] != tt.code {
				t.Fatalf("job-2 %s %v, want %s %s", e.Status, e.StatusDetails, tt.status, tt.code)
			}
			if tt.status == wire.StatusFailed && e.StatusDetails[gg.DetailStatus] != "Failure" {
				t.Errorf("details %v: no Failure status", e.StatusDetails)
			}
			if got := c.chain("job-2"); !reflect.DeepEqual(got, tt.chain) {
				t.Errorf("chain %q, want %q", got, tt.chain)
			}
			if got := c.active(); got != "job-1" {
				t.Errorf("the core runs %s after the failure, want job-1's group", got)
			}
		})
	}
}
