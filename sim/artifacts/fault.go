package artifacts

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/fleetlab/fleetlab/sim/clock"
)

// Op names an S3 operation as Options.Intercept sees it.
type Op string

// The operations the handlers serve. DeviceHandler serves only GetObject and HeadObject.
const (
	OpListBuckets             Op = "ListBuckets"
	OpCreateBucket            Op = "CreateBucket"
	OpHeadBucket              Op = "HeadBucket"
	OpDeleteBucket            Op = "DeleteBucket"
	OpGetBucketLocation       Op = "GetBucketLocation"
	OpListObjects             Op = "ListObjects"
	OpListObjectsV2           Op = "ListObjectsV2"
	OpPutObject               Op = "PutObject"
	OpCopyObject              Op = "CopyObject"
	OpGetObject               Op = "GetObject"
	OpHeadObject              Op = "HeadObject"
	OpDeleteObject            Op = "DeleteObject"
	OpCreateMultipartUpload   Op = "CreateMultipartUpload"
	OpUploadPart              Op = "UploadPart"
	OpCompleteMultipartUpload Op = "CompleteMultipartUpload"
	OpAbortMultipartUpload    Op = "AbortMultipartUpload"
)

// Fault changes how the handlers answer one request; Options.Intercept chooses it. The zero Fault changes
// nothing. The first of these that is set applies: Status, then Missing, then Body and BytesPerSecond together.
type Fault struct {
	// Status answers with this HTTP status and an S3 error instead of doing the operation, as S3 does when it
	// fails or throttles: 503 with Code SlowDown is S3's throttling answer.
	Status int
	// Code is the S3 error code sent with Status; empty means SlowDown for 503 and InternalError otherwise.
	Code string
	// Missing answers as if the object did not exist (NoSuchKey) for an object operation, or the bucket
	// (NoSuchBucket) for any other.
	Missing bool
	// Body, for GetObject and HeadObject, answers as if the object had been overwritten with these bytes: the
	// body, length and ETag are Body's, so a device expecting the stored object's ETag sees a mismatch.
	Body []byte
	// BytesPerSecond, for GetObject, limits the rate at which the body is sent, timed by the store's Clock.
	BytesPerSecond int64
}

func (f *Fault) err() *apiError {
	code := f.Code
	if code == "" {
		code = "InternalError"
		if f.Status == http.StatusServiceUnavailable {
			code = "SlowDown"
		}
	}
	msg := "We encountered an internal error. Please try again."
	if code == "SlowDown" {
		msg = "Please reduce your request rate."
	}
	return &apiError{status: f.Status, code: code, message: msg}
}

// throttledCopy copies n bytes from src to w at rate bytes per second of clk's time: the bytes up to any point
// are written no sooner than their due time (start + bytes/rate). Each chunk is flushed so the pace holds on
// the wire. It stops early when ctx is done.
func throttledCopy(ctx context.Context, clk clock.Clock, w io.Writer, src io.Reader, n, rate int64) error {
	chunk := min(max(rate/4, 1), copyBufferSize)
	buf := make([]byte, chunk)
	flush := func() {}
	if f, ok := w.(http.Flusher); ok {
		flush = f.Flush
	}
	start := clk.Now()
	for sent := int64(0); sent < n; {
		m, err := io.ReadFull(src, buf[:min(chunk, n-sent)])
		if err != nil {
			return err
		}
		due := start.Add(time.Duration(float64(sent+int64(m)) / float64(rate) * float64(time.Second)))
		if !clock.Sleep(clk, due.Sub(clk.Now()), ctx.Done()) {
			return ctx.Err()
		}
		if _, err := w.Write(buf[:m]); err != nil {
			return err
		}
		flush()
		sent += int64(m)
	}
	return nil
}
