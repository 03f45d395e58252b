package bench

import (
	"context"
	"io"
	"sync"

	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
)

// The devices' side of the concurrency. The loopback limit is measured with as many clients as the devices had
// requests outstanding at once: each loopback client always has one request outstanding, so that is the same
// concurrency. Counted at the service's handler, an outstanding request is seen only while a handler runs it —
// on two cores a handler that does not block is one of two at a time, so 100 robots each waiting for an answer
// looked like 2 clients. Where the agents run in this process (harness.InProc) they are counted where they
// call: a wrap of every agent's transport, beneath the fleet's own layer.

// countCalls returns b with every agent's transport counted by c (its calls from the call to the answer; a
// download until its body ends or is closed; the notify channel, which stays open, not at all).
func countCalls(b harness.InProc, c *counter) harness.InProc {
	inner := b.Agent.Wrap
	b.Agent.Wrap = func(ex agent.Executors) agent.Executors {
		if inner != nil {
			ex = inner(ex)
		}
		ct := countingTransport{Transport: ex.Transport, c: c}
		if caller, ok := ex.Transport.(agent.APICaller); ok {
			ex.Transport = countingCaller{ct, caller}
		} else {
			ex.Transport = ct
		}
		return ex
	}
	return b
}

// countingTransport counts an agent's calls as outstanding requests of the devices.
type countingTransport struct {
	agent.Transport
	c *counter
}

var _ agent.Transport = countingTransport{}

func (t countingTransport) Pending(ctx context.Context) (wire.GetPendingJobExecutionsResponse, error) {
	t.c.begin()
	defer t.c.end()
	return t.Transport.Pending(ctx)
}

func (t countingTransport) StartNext(ctx context.Context, req wire.StartNextPendingJobExecutionRequest) (*wire.JobExecution, error) {
	t.c.begin()
	defer t.c.end()
	return t.Transport.StartNext(ctx, req)
}

func (t countingTransport) Describe(ctx context.Context, jobID string) (*wire.JobExecution, error) {
	t.c.begin()
	defer t.c.end()
	return t.Transport.Describe(ctx, jobID)
}

func (t countingTransport) Update(ctx context.Context, jobID string, req wire.UpdateJobExecutionRequest) (wire.UpdateJobExecutionResponse, error) {
	t.c.begin()
	defer t.c.end()
	return t.Transport.Update(ctx, jobID, req)
}

func (t countingTransport) Fetch(ctx context.Context, bucket, key string, offset int64) (*agent.Object, error) {
	t.c.begin()
	obj, err := t.Transport.Fetch(ctx, bucket, key, offset)
	if err != nil {
		t.c.end()
		return nil, err
	}
	obj.Body = &countedBody{ReadCloser: obj.Body, c: t.c}
	return obj, nil
}

// countedBody ends a download's count at the end of its body or when it is closed, whichever comes first.
type countedBody struct {
	io.ReadCloser
	c    *counter
	once sync.Once
}

func (b *countedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.finish()
	}
	return n, err
}

func (b *countedBody) Close() error {
	b.finish()
	return b.ReadCloser.Close()
}

func (b *countedBody) finish() { b.once.Do(b.c.end) }

// countingCaller is countingTransport over a transport that also calls the cloud's other APIs.
type countingCaller struct {
	countingTransport
	caller agent.APICaller
}

var _ agent.APICaller = countingCaller{}

func (t countingCaller) CallAPI(ctx context.Context, signingName, method, path string, in, out any) error {
	t.c.begin()
	defer t.c.end()
	return t.caller.CallAPI(ctx, signingName, method, path, in, out)
}
