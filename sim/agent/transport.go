package agent

import (
	"context"
	"io"

	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
)

// Transport is the agent's link to the device API for one thing: the IoT Jobs data plane, artifact downloads
// and the notify channel. It is bound to the thing at construction.
//
// Errors: an answer outside 2xx is an *APIError; a link failure (refused, reset, cut mid-body) is wrapped
// with Transient so the agent retries. Implementations are safe for concurrent use: the agent listens on the
// notify channel while it runs an execution.
//
// A fault wraps a Transport to drop, delay or refuse calls; a wrapper that blocks until ctx ends models a
// service that stops answering, which the agent's request timeout turns into a retry.
type Transport interface {
	Fetcher
	// Pending is GetPendingJobExecutions (GET /things/{thing}/jobs).
	Pending(ctx context.Context) (wire.GetPendingJobExecutionsResponse, error)
	// StartNext is StartNextPendingJobExecution (PUT /things/{thing}/jobs/$next): it moves the next QUEUED
	// execution to IN_PROGRESS, or returns the one already IN_PROGRESS, with its job document. It returns a
	// nil execution when nothing is pending.
	StartNext(ctx context.Context, req wire.StartNextPendingJobExecutionRequest) (*wire.JobExecution, error)
	// Describe is DescribeJobExecution (GET /things/{thing}/jobs/{jobId}), with the job document.
	Describe(ctx context.Context, jobID string) (*wire.JobExecution, error)
	// Update is UpdateJobExecution (POST /things/{thing}/jobs/{jobId}).
	Update(ctx context.Context, jobID string, req wire.UpdateJobExecutionRequest) (wire.UpdateJobExecutionResponse, error)
	// Subscribe opens the notify channel (GET /things/{thing}/notify). Messages arrive on the returned
	// stream until the connection ends (the service restarted, the link dropped) or ctx ends. A transport
	// without a notify channel returns ErrNoNotify.
	Subscribe(ctx context.Context) (Notifications, error)
}

// Notifications is an open notify channel.
type Notifications interface {
	// Next waits for the next message. It fails once the connection has ended, or with ctx's error.
	Next(ctx context.Context) (wire.Notify, error)
	// Close ends the connection and releases what it holds.
	Close()
}

// Fetcher reads artifacts from the artifact store (GET {endpoint}/artifacts/{bucket}/{key}).
type Fetcher interface {
	// Fetch returns the object from byte offset on (an HTTP Range of "bytes=offset-"). A server that ignores
	// the range answers from 0: the returned Object's Offset says where its Body starts. The caller closes
	// Body. An offset at or past the end is an *APIError with Status 416.
	Fetch(ctx context.Context, bucket, key string, offset int64) (*Object, error)
}

// Object is a fetched artifact, or the tail of one.
type Object struct {
	// Body is the object's bytes from Offset on.
	Body io.ReadCloser
	// Offset is the position of Body's first byte within the object.
	Offset int64
	// Size is the whole object's size in bytes, or -1 when the service did not say.
	Size int64
	// ETag is the object's ETag, quoted as S3 sends it ("\"hex md5\"" for a single-part object).
	ETag string
}
