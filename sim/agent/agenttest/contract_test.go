package agenttest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	"github.com/fleetlab/fleetlab/sim/artifacts"
	"github.com/fleetlab/fleetlab/sim/deviceapi"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/store"
)

// backend is a device API the agent can talk to, with the service-side moves the contract needs.
type backend struct {
	transport func(thing string) agent.Transport
	enqueue   func(thing, job string, doc []byte)
	cancel    func(thing, job string) // the job is canceled: its queued executions end CANCELED
	remove    func(thing, job string) // the thing's execution of the job ends REMOVED, whatever its status
	put       func(bucket, key string, body []byte)
}

// fake is agenttest.Service, over HTTP (the agent's HTTP transport) or its in-memory transport.
func fake(t *testing.T, overHTTP bool) backend {
	svc := agenttest.New(nil)
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(func() {
		svc.Close()
		srv.Close()
	})
	b := backend{
		enqueue: func(thing, job string, doc []byte) { svc.Enqueue(thing, job, doc) },
		cancel:  func(thing, job string) { svc.End(thing, job, wire.StatusCanceled) },
		remove:  func(thing, job string) { svc.End(thing, job, wire.StatusRemoved) },
		put:     func(bucket, key string, body []byte) { svc.PutObject(bucket, key, body) },
	}
	b.transport = func(thing string) agent.Transport { return svc.Transport(thing) }
	if overHTTP {
		b.transport = func(thing string) agent.Transport { return httpTransport(t, srv.URL, thing) }
	}
	return b
}

// real is the service's device API over its engine and artifact store.
func real(t *testing.T) backend {
	eng, err := engine.New(engine.Options{Store: store.NewMemory()})
	if err != nil {
		t.Fatal(err)
	}
	objects, err := artifacts.Open(t.TempDir(), artifacts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	api, err := deviceapi.New(deviceapi.Options{Engine: eng, Artifacts: objects.DeviceHandler()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		api.Close()
		srv.Close()
	})
	return backend{
		transport: func(thing string) agent.Transport { return httpTransport(t, srv.URL, thing) },
		enqueue: func(thing, job string, doc []byte) {
			if _, err := eng.Create(engine.Spec{ID: job, Targets: []string{thing}, Document: doc,
				Timeouts: engine.Timeouts{Execution: time.Hour}}); err != nil {
				t.Fatal(err)
			}
		},
		cancel: func(thing, job string) {
			if _, err := eng.Cancel(job, "operator"); err != nil {
				t.Fatal(err)
			}
		},
		remove: func(thing, job string) {
			if err := eng.RemoveTarget(job, thing); err != nil {
				t.Fatal(err)
			}
		},
		put: func(bucket, key string, body []byte) {
			if err := objects.CreateBucket(bucket); err != nil && !errors.Is(err, artifacts.ErrBucketExists) {
				t.Fatal(err)
			}
			if _, err := objects.Put(bucket, key, bytes.NewReader(body)); err != nil {
				t.Fatal(err)
			}
		},
	}
}

func httpTransport(t *testing.T, url, thing string) agent.Transport {
	tr, err := agent.NewHTTPTransport(url, thing, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// TestContract runs the same device-API conversation against the fake the agent's tests use and against the
// service's device API: whatever the agent relies on — the data plane's answers and errors, the notify
// channel, artifact downloads with ranges and ETags — the fake must answer as the service does.
func TestContract(t *testing.T) {
	for name, newBackend := range map[string]func(t *testing.T) backend{
		"fake over HTTP":      func(t *testing.T) backend { return fake(t, true) },
		"fake in memory":      func(t *testing.T) backend { return fake(t, false) },
		"deviceapi over HTTP": real,
	} {
		t.Run(name, func(t *testing.T) { converse(t, newBackend(t)) })
	}
}

func converse(t *testing.T, b backend) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr := b.transport("robot-1")
	doc := []byte(`{"kind":"lamp","payload":{"color":"red"}}`)

	// Nothing pending.
	if p, err := tr.Pending(ctx); err != nil || len(p.QueuedJobs)+len(p.InProgressJobs) != 0 {
		t.Fatalf("pending of an idle thing: %+v, %v", p, err)
	}
	if x, err := tr.StartNext(ctx, wire.StartNextPendingJobExecutionRequest{}); err != nil || x != nil {
		t.Fatalf("start next of an idle thing: %+v, %v; want no execution", x, err)
	}

	// The notify channel says hello, then that a job is pending.
	n, err := tr.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	next := func(want wire.Notify) {
		t.Helper()
		got, err := n.Next(ctx)
		if err != nil || got != want {
			t.Fatalf("notify %+v, %v; want %+v", got, err, want)
		}
	}
	next(wire.Notify{Kind: wire.NotifyHello})
	b.enqueue("robot-1", "job-1", doc)
	next(wire.Notify{Kind: wire.NotifyPending, JobID: "job-1"})
	if p, err := tr.Pending(ctx); err != nil || len(p.QueuedJobs) != 1 || p.QueuedJobs[0].JobID != "job-1" || len(p.InProgressJobs) != 0 {
		t.Fatalf("pending %+v, %v; want job-1 queued", p, err)
	}

	// Starting it hands over the document; starting again returns the execution in progress.
	x, err := tr.StartNext(ctx, wire.StartNextPendingJobExecutionRequest{StatusDetails: map[string]string{wire.DetailStep: "Checking"}})
	if err != nil || x == nil || x.JobID != "job-1" || x.Status != wire.StatusInProgress || x.JobDocument != string(doc) || x.ExecutionNumber < 1 {
		t.Fatalf("started %+v, %v; want job-1 IN_PROGRESS with its document", x, err)
	}
	if again, err := tr.StartNext(ctx, wire.StartNextPendingJobExecutionRequest{}); err != nil || again == nil || again.JobID != "job-1" || again.Status != wire.StatusInProgress {
		t.Fatalf("start next with job-1 in progress: %+v, %v", again, err)
	}
	if p, err := tr.Pending(ctx); err != nil || len(p.InProgressJobs) != 1 || p.InProgressJobs[0].JobID != "job-1" || len(p.QueuedJobs) != 0 {
		t.Fatalf("pending %+v, %v; want job-1 in progress", p, err)
	}
	describe := func(job, status, step string) {
		t.Helper()
		d, err := tr.Describe(ctx, job)
		if err != nil || d == nil || d.Status != status || d.StatusDetails[wire.DetailStep] != step || d.JobDocument != string(doc) {
			t.Fatalf("describe %s: %+v, %v; want %s at step %q with its document", job, d, err, status, step)
		}
	}
	describe("job-1", wire.StatusInProgress, "Checking")

	// Updates move it on; a terminal execution refuses more; an unknown one is not found.
	num := x.ExecutionNumber
	update := func(job, status, step string) error {
		_, err := tr.Update(ctx, job, wire.UpdateJobExecutionRequest{Status: status, ExecutionNumber: &num,
			StatusDetails: map[string]string{wire.DetailStep: step}})
		return err
	}
	if err := update("job-1", wire.StatusInProgress, "Switching"); err != nil {
		t.Fatal(err)
	}
	describe("job-1", wire.StatusInProgress, "Switching")
	if err := update("job-1", wire.StatusSucceeded, "Lit"); err != nil {
		t.Fatal(err)
	}
	describe("job-1", wire.StatusSucceeded, "Lit")
	refused := func(what string, err error, status int, code string) {
		t.Helper()
		var ae *agent.APIError
		if !errors.As(err, &ae) || ae.Status != status || ae.Code != code {
			t.Fatalf("%s: %v; want %d %s", what, err, status, code)
		}
	}
	refused("update after success", update("job-1", wire.StatusFailed, "Lit"), 410, wire.ErrTerminalState)
	refused("update of an unknown job", update("job-9", wire.StatusSucceeded, "Lit"), 404, wire.ErrResourceNotFound)
	_, err = tr.Describe(ctx, "job-9")
	refused("describe of an unknown job", err, 404, wire.ErrResourceNotFound)

	// An execution removed in progress: the thing is told, the execution says so, and an update is refused.
	b.enqueue("robot-1", "job-2", doc)
	next(wire.Notify{Kind: wire.NotifyPending, JobID: "job-2"})
	x2, err := tr.StartNext(ctx, wire.StartNextPendingJobExecutionRequest{})
	if err != nil || x2 == nil || x2.JobID != "job-2" {
		t.Fatalf("started %+v, %v; want job-2", x2, err)
	}
	b.remove("robot-1", "job-2")
	next(wire.Notify{Kind: wire.NotifyCanceled, JobID: "job-2"})
	if d, err := tr.Describe(ctx, "job-2"); err != nil || d.Status != wire.StatusRemoved {
		t.Fatalf("describe of removed job-2: %+v, %v", d, err)
	}
	num = x2.ExecutionNumber
	refused("update after a removal", update("job-2", wire.StatusInProgress, "Checking"), 410, wire.ErrTerminalState)

	// A job canceled while its execution is queued: the thing is told, and nothing is left to start.
	b.enqueue("robot-1", "job-3", doc)
	next(wire.Notify{Kind: wire.NotifyPending, JobID: "job-3"})
	b.cancel("robot-1", "job-3")
	next(wire.Notify{Kind: wire.NotifyCanceled, JobID: "job-3"})
	if d, err := tr.Describe(ctx, "job-3"); err != nil || d.Status != wire.StatusCanceled {
		t.Fatalf("describe of canceled job-3: %+v, %v", d, err)
	}
	if x, err := tr.StartNext(ctx, wire.StartNextPendingJobExecutionRequest{}); err != nil || x != nil {
		t.Fatalf("start next after the cancel: %+v, %v; want no execution", x, err)
	}

	// Artifacts: the whole object with its ETag, a range, and the answers for what is not there.
	body := []byte("a bundle's bytes")
	b.put("fleet-bundles", "job-1/hello.tar.gz", body)
	fetch := func(offset int64) (*agent.Object, []byte, error) {
		o, err := tr.Fetch(ctx, "fleet-bundles", "job-1/hello.tar.gz", offset)
		if err != nil {
			return nil, nil, err
		}
		defer o.Body.Close()
		got, err := io.ReadAll(o.Body)
		return o, got, err
	}
	o, got, err := fetch(0)
	if err != nil || !bytes.Equal(got, body) || o.ETag != agenttest.ETag(body) || o.Offset != 0 || o.Size != int64(len(body)) {
		t.Fatalf("fetch: %+v %q, %v; want the object with ETag %s", o, got, err, agenttest.ETag(body))
	}
	if o, got, err = fetch(2); err != nil || !bytes.Equal(got, body[o.Offset:]) || o.Size != int64(len(body)) || o.ETag != agenttest.ETag(body) {
		t.Fatalf("fetch from 2: %+v %q, %v", o, got, err)
	}
	_, _, err = fetch(int64(len(body)))
	refused(fmt.Sprintf("fetch from %d, the end", len(body)), err, 416, apiCode(err))
	_, err = tr.Fetch(ctx, "fleet-bundles", "job-1/missing.tar.gz", 0)
	refused("fetch of a missing object", err, 404, apiCode(err))
}

// apiCode is the error code of an API error: artifact answers are S3's, whose codes the agent does not read.
func apiCode(err error) string {
	var ae *agent.APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}
