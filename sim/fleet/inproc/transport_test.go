package inproc_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/robomaker"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"

	"github.com/fleetlab/fleetlab/harness/robomaker/robomakertest"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/clock/clocktest"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	"github.com/fleetlab/fleetlab/sim/fleet"
	"github.com/fleetlab/fleetlab/sim/fleet/inproc"
	"github.com/fleetlab/fleetlab/sim/fleet/link"
	"github.com/fleetlab/fleetlab/sim/service"
)

func memoryTransport(t *testing.T, c clock.Clock) (*robomakertest.World, *inproc.MemoryTransport, *link.Shaper) {
	t.Helper()
	w := robomakertest.Start(t, service.Options{InMemoryStore: true})
	// The service knows the thing: a robot has its name.
	if _, err := w.RM.CreateRobot(context.Background(), &robomaker.CreateRobotInput{Name: aws.String("robot-1"),
		Architecture: types.ArchitectureX8664, GreengrassGroupId: aws.String("g")}); err != nil {
		t.Fatal(err)
	}
	s := link.NewShaper(c)
	return w, inproc.NewMemoryTransport("robot-1", w.Svc.Devices, w.Svc.Artifacts, s), s
}

func apiError(err error) (agent.APIError, bool) {
	var ae *agent.APIError
	if errors.As(err, &ae) {
		return *ae, true
	}
	return agent.APIError{}, false
}

// TestMemoryTransportAnswersAsHTTP: the service's error answers reach the agent with the status and code the
// HTTP API sends, and artifacts are fetched with S3's range semantics.
func TestMemoryTransportAnswersAsHTTP(t *testing.T) {
	agenttest.LeakTest(t)
	w, tr, _ := memoryTransport(t, nil)
	ctx := context.Background()
	if p, err := tr.Pending(ctx); err != nil || len(p.QueuedJobs)+len(p.InProgressJobs) != 0 {
		t.Fatalf("pending %+v, %v", p, err)
	}
	if je, err := tr.StartNext(ctx, wire.StartNextPendingJobExecutionRequest{}); err != nil || je != nil {
		t.Fatalf("start next with nothing pending: %+v, %v", je, err)
	}
	if _, err := tr.Describe(ctx, "no-such-job"); err == nil {
		t.Fatal("described a job that does not exist")
	} else if ae, ok := apiError(err); !ok || ae.Status != 404 || ae.Code != wire.ErrResourceNotFound {
		t.Fatalf("describe: %v, want 404 %s", err, wire.ErrResourceNotFound)
	}
	_, err := tr.Update(ctx, "job-1", wire.UpdateJobExecutionRequest{Status: "DONE"})
	if ae, ok := apiError(err); !ok || ae.Status != 400 || ae.Code != wire.ErrInvalidRequest {
		t.Fatalf("update with a bad status: %v, want 400 %s", err, wire.ErrInvalidRequest)
	}

	body := []byte(strings.Repeat("abcdefghij", 30))
	w.Put("obj", body)
	head, _ := w.Svc.Artifacts.Head(robomakertest.Bucket, "obj")
	o, err := tr.Fetch(ctx, robomakertest.Bucket, "obj", 100)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(o.Body)
	o.Body.Close()
	if err != nil || !bytes.Equal(got, body[100:]) || o.Offset != 100 || o.Size != 300 || o.ETag != head.ETag {
		t.Fatalf("fetch from 100: %d bytes, offset %d, size %d, etag %s (%v)", len(got), o.Offset, o.Size, o.ETag, err)
	}
	for _, tc := range []struct {
		key    string
		offset int64
		status int
		code   string
	}{{"missing", 0, 404, "NoSuchKey"}, {"obj", 300, 416, "InvalidRange"}} {
		_, err := tr.Fetch(ctx, robomakertest.Bucket, tc.key, tc.offset)
		if ae, ok := apiError(err); !ok || ae.Status != tc.status || ae.Code != tc.code {
			t.Errorf("fetch %s from %d: %v, want %d %s", tc.key, tc.offset, err, tc.status, tc.code)
		}
	}
	if _, err := tr.Fetch(ctx, "nobucket", "obj", 0); err == nil {
		t.Error("fetched from a bucket that does not exist")
	}
}

// TestMemoryTransportLink: the link's latency and bandwidth hold on the device's clock, drops repeat with the
// seed and are transient, and a partition refuses calls and ends the notify channel.
func TestMemoryTransportLink(t *testing.T) {
	agenttest.LeakTest(t)
	c := clocktest.New(time.Time{})
	w, tr, s := memoryTransport(t, c)
	ctx := context.Background()

	s.Set(fleet.Link{Latency: 5 * time.Second})
	done := make(chan error, 1)
	go func() {
		_, err := tr.Pending(ctx)
		done <- err
	}()
	<-c.BlockUntil(1)
	c.Advance(5*time.Second - time.Nanosecond)
	select {
	case err := <-done:
		t.Fatalf("answered before the latency: %v", err)
	default:
	}
	c.Advance(time.Nanosecond)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	w.Put("big", bytes.Repeat([]byte{7}, 5000))
	s.Set(fleet.Link{BytesPerSecond: 1000})
	o, err := tr.Fetch(ctx, robomakertest.Bucket, "big", 0)
	if err != nil {
		t.Fatal(err)
	}
	start := c.Now()
	n, err := readAdvancing(c, o.Body)
	o.Body.Close()
	if took := c.Now().Sub(start); err != nil || n != 5000 || took < 5*time.Second || took > 5*time.Second+100*time.Millisecond {
		t.Fatalf("5000 bytes at 1000 B/s: %d bytes in %v of device time (%v)", n, took, err)
	}

	pattern := func() string {
		var b strings.Builder
		for range 100 {
			_, err := tr.Pending(ctx)
			switch {
			case err == nil:
				b.WriteByte('.')
			case agent.IsTransient(err) && errors.Is(err, link.ErrDropped):
				b.WriteByte('x')
			default:
				t.Fatalf("pending: %v", err)
			}
		}
		return b.String()
	}
	s.Set(fleet.Link{DropRate: 0.5, Seed: 11})
	first := pattern()
	s.Set(fleet.Link{DropRate: 0.5, Seed: 11})
	if again := pattern(); again != first || !strings.Contains(first, "x") {
		t.Fatalf("seed 11 dropped\n%s\n%s", first, again)
	}

	s.Set(fleet.Link{})
	sub, err := tr.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := sub.Next(ctx); err != nil || n.Kind != wire.NotifyHello {
		t.Fatalf("first notify %+v %v, want hello", n, err)
	}
	s.Set(fleet.Link{Partition: true})
	if _, err := sub.Next(ctx); err == nil {
		t.Fatal("the stream went on over a cut link")
	}
	sub.Close()
	if _, err := tr.Pending(ctx); !agent.IsTransient(err) || !errors.Is(err, link.ErrPartitioned) {
		t.Fatalf("pending over a cut link: %v", err)
	}
	if _, err := tr.Subscribe(ctx); !agent.IsTransient(err) {
		t.Fatalf("subscribe over a cut link: %v", err)
	}
	s.Set(fleet.Link{})
	sctx, cancel := context.WithCancel(ctx)
	sub, err = tr.Subscribe(sctx)
	if err != nil {
		t.Fatal(err)
	}
	sub.Next(sctx)
	cancel()
	if _, err := sub.Next(sctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("the stream after its context ended: %v", err)
	}
	sub.Close()
}

// readAdvancing reads r to its end while advancing c whenever the reader waits on it, and returns the bytes read.
func readAdvancing(c *clocktest.Fake, r io.Reader) (int, error) {
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(r)
		done <- result{len(b), err}
	}()
	waiting := c.BlockUntil(1)
	for {
		select {
		case res := <-done:
			tm := c.NewTimer(time.Hour) // lets the last BlockUntil return, so its goroutine ends
			<-waiting
			tm.Stop()
			return res.n, res.err
		case <-waiting:
			c.Advance(50 * time.Millisecond)
			waiting = c.BlockUntil(1)
		}
	}
}
