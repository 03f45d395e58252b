package artifacts

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/fleetlab/fleetlab/sim/clock/clocktest"
)

// faults is an Intercept that applies one Fault to one key and records every call.
type faults struct {
	mu    sync.Mutex
	key   string
	fault *Fault
	calls []string
}

func (f *faults) intercept(op Op, bucket, key string) *Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, string(op)+" "+bucket+"/"+key)
	if key == f.key || (f.key == "" && key == "") {
		return f.fault
	}
	return nil
}

func (f *faults) set(key string, fault *Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.key, f.fault = key, fault
}

func faultStore(t *testing.T, clk *clocktest.Fake) (*Store, *faults, []byte) {
	t.Helper()
	f := &faults{}
	opts := Options{Intercept: f.intercept}
	if clk != nil {
		opts.Clock = clk
	}
	s := openStore(t, opts)
	if err := s.CreateBucket("bundles"); err != nil {
		t.Fatal(err)
	}
	body := randomBytes(21, 3000)
	for _, k := range []string{"app.tar", "other.tar"} {
		if _, err := s.Put("bundles", k, bytes.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
	return s, f, body
}

func TestFaultStatus(t *testing.T) {
	s, f, body := faultStore(t, nil)
	c := sdkClient(serve(t, s.Handler(), false))
	ctx := context.Background()
	get := func(key string) error {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bundles"), Key: aws.String(key)})
		if err == nil {
			out.Body.Close()
		}
		return err
	}
	for _, tc := range []struct {
		fault  Fault
		code   string
		status int
	}{
		{Fault{Status: 503}, "SlowDown", 503},
		{Fault{Status: 500}, "InternalError", 500},
		{Fault{Status: 503, Code: "ServiceUnavailable"}, "ServiceUnavailable", 503},
	} {
		f.set("app.tar", &tc.fault)
		wantCode(t, get("app.tar"), tc.code, tc.status)
		if err := get("other.tar"); err != nil {
			t.Fatalf("a fault on one key reached another: %v", err)
		}
	}
	// Recovered: the same request succeeds again.
	f.set("", nil)
	if err := get("app.tar"); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	// A fault on a write does not write.
	f.set("new.tar", &Fault{Status: 503})
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bundles"), Key: aws.String("new.tar"), Body: bytes.NewReader(body)})
	wantCode(t, err, "SlowDown", 503)
	if _, err := s.Head("bundles", "new.tar"); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("faulted PUT stored the object: %v", err)
	}
}

func TestFaultMissing(t *testing.T) {
	s, f, _ := faultStore(t, nil)
	c := sdkClient(serve(t, s.Handler(), false))
	ctx := context.Background()
	f.set("app.tar", &Fault{Missing: true})
	_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bundles"), Key: aws.String("app.tar")})
	if !errors.As(err, new(*types.NoSuchKey)) {
		t.Fatalf("GetObject: %v, want NoSuchKey", err)
	}
	_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bundles"), Key: aws.String("app.tar")})
	if !errors.As(err, new(*types.NotFound)) {
		t.Fatalf("HeadObject: %v, want NotFound", err)
	}
	f.set("", &Fault{Missing: true}) // bucket operations have no key
	_, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("bundles")})
	if !errors.As(err, new(*types.NoSuchBucket)) {
		t.Fatalf("ListObjectsV2: %v, want NoSuchBucket", err)
	}
	if _, err := s.Head("bundles", "app.tar"); err != nil {
		t.Fatalf("the Go API is not intercepted: %v", err)
	}
}

func TestFaultBody(t *testing.T) {
	s, f, body := faultStore(t, nil)
	c := sdkClient(serve(t, s.Handler(), false))
	ctx := context.Background()
	other := []byte("a different bundle")
	f.set("app.tar", &Fault{Body: other})
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bundles"), Key: aws.String("app.tar")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(got, other) || aws.ToString(out.ETag) != etagOf(other) || aws.ToString(out.ETag) == etagOf(body) {
		t.Fatalf("GetObject: %q with ETag %s", got, aws.ToString(out.ETag))
	}
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bundles"), Key: aws.String("app.tar")})
	if err != nil || aws.ToInt64(head.ContentLength) != int64(len(other)) || aws.ToString(head.ETag) != etagOf(other) {
		t.Fatalf("HeadObject: %+v, %v", head, err)
	}
	out, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bundles"), Key: aws.String("app.tar"), Range: aws.String("bytes=2-8")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(out.Body)
	out.Body.Close()
	if string(got) != string(other[2:9]) {
		t.Fatalf("range of replaced body: %q", got)
	}
	if e, _ := s.ETag("bundles", "app.tar"); e != etagOf(body) {
		t.Fatal("the stored object changed")
	}
}

func TestFaultInterceptSeesOperations(t *testing.T) {
	s, f, body := faultStore(t, nil)
	c := sdkClient(serve(t, s.Handler(), false))
	ctx := context.Background()
	c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bundles"), Key: aws.String("a/b c"), Body: bytes.NewReader(body)})
	c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bundles"), Key: aws.String("a/b c")})
	c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("bundles")})
	c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("bundles"), Key: aws.String("a/b c")})
	c.ListBuckets(ctx, &s3.ListBucketsInput{})
	want := []string{"PutObject bundles/a/b c", "HeadObject bundles/a/b c", "ListObjectsV2 bundles/",
		"DeleteObject bundles/a/b c", "ListBuckets /"}
	if strings.Join(f.calls, "\n") != strings.Join(want, "\n") {
		t.Fatalf("Intercept saw\n%s\nwant\n%s", strings.Join(f.calls, "\n"), strings.Join(want, "\n"))
	}
}

// TestThrottledCopy checks the pacing itself on a fake clock: 3000 bytes at 1000 B/s go out as twelve chunks of
// 250 bytes, each written when the clock reaches its due time, the last at three seconds.
func TestThrottledCopy(t *testing.T) {
	clk := clocktest.New(time.Time{})
	w := &timedWriter{clk: clk}
	data := randomBytes(4, 3000)
	done := make(chan error, 1)
	go func() { done <- throttledCopy(context.Background(), clk, w, bytes.NewReader(data), 3000, 1000) }()
	for i := range 12 {
		waitTimer(t, clk)
		if n := w.total(); n != i*250 {
			t.Fatalf("before tick %d, %d bytes written", i+1, n)
		}
		clk.Advance(250 * time.Millisecond)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w.buf.Bytes(), data) || w.flushes != 12 {
		t.Fatalf("bytes differ or %d flushes, want one per chunk", w.flushes)
	}
	for i, at := range w.at {
		if want := clocktest.Epoch.Add(time.Duration(i+1) * 250 * time.Millisecond); !at.Equal(want) {
			t.Fatalf("chunk %d written at %v, want %v", i, at, want)
		}
	}

	// A request that goes away stops the copy while it waits.
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- throttledCopy(ctx, clk, io.Discard, bytes.NewReader(data), 3000, 1000) }()
	waitTimer(t, clk)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("after cancel: %v", err)
	}
}

// TestFaultBandwidth throttles a device's download through DeviceHandler, its pace set by a fake clock: the
// body is complete only once the clock has advanced the full three seconds.
func TestFaultBandwidth(t *testing.T) {
	clk := clocktest.New(time.Time{})
	s, f, body := faultStore(t, clk)
	f.set("app.tar", &Fault{BytesPerSecond: 1000})
	srv := serve(t, s.DeviceHandler(), false)
	var got []byte
	done := make(chan error, 1)
	go func() {
		resp, err := srv.Client().Get(srv.URL + "/bundles/app.tar")
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		got, err = io.ReadAll(resp.Body)
		done <- err
	}()
	start := clk.Now()
	for i := range 12 {
		waitTimer(t, clk)
		select {
		case err := <-done:
			t.Fatalf("download finished after %d of 12 ticks: %v", i, err)
		default:
		}
		clk.Advance(250 * time.Millisecond)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("download did not finish")
	}
	if !bytes.Equal(got, body) || clk.Now().Sub(start) != 3*time.Second {
		t.Fatalf("%d bytes after %v", len(got), clk.Now().Sub(start))
	}

	// Other keys are not throttled: the download completes without the clock moving.
	resp, err := srv.Client().Get(srv.URL + "/bundles/other.tar")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(b, body) {
		t.Fatal("unthrottled download differs")
	}
}

// waitTimer waits, with a deadline, until code under test waits on clk.
func waitTimer(t *testing.T, clk *clocktest.Fake) {
	t.Helper()
	select {
	case <-clk.BlockUntil(1):
	case <-time.After(10 * time.Second):
		t.Fatal("nothing waited on the clock")
	}
}

// timedWriter records when each write happens and how often it is flushed.
type timedWriter struct {
	clk     *clocktest.Fake
	mu      sync.Mutex
	buf     bytes.Buffer
	at      []time.Time
	flushes int
}

func (w *timedWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushes++
}

func (w *timedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.at = append(w.at, w.clk.Now())
	return w.buf.Write(p)
}

func (w *timedWriter) total() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Len()
}
