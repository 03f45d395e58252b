package bridge_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fleetlab/fleetlab/rigs/bridge"
	"github.com/fleetlab/fleetlab/rigs/serial/serialtest"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
)

// deviceAPI is a stand-in device API: pending jobs, an artifact with ranges, a notify websocket that sends one
// message, and a record of every path asked for.
type deviceAPI struct {
	mu    sync.Mutex
	paths []string
	blob  []byte
}

func (d *deviceAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	d.paths = append(d.paths, r.Method+" "+r.URL.RequestURI())
	d.mu.Unlock()
	switch {
	case r.URL.Path == "/things/robot-0001/notify":
		c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		c.WriteJSON(wire.Notify{})
		c.ReadMessage() // until the client goes
	case r.URL.Path == "/things/robot-0001/jobs":
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"queuedJobs":[{"jobId":"job-1"}]}`)
	case r.URL.Path == "/artifacts/bundles/big.tar.gz":
		w.Header().Set("ETag", `"abc"`)
		http.ServeContent(w, r, "big.tar.gz", time.Time{}, bytes.NewReader(d.blob))
	default:
		w.Header().Set("X-Amzn-ErrorType", "ResourceNotFoundException")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"message":"no such thing"}`)
	}
}

func start(t *testing.T) (*bridge.Client, *bridge.Bridge, *deviceAPI) {
	api := &deviceAPI{blob: bytes.Repeat([]byte("0123456789abcdef"), 300<<10/16)}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	boardEnd, labEnd := serialtest.Pair()
	var events []agent.Event
	var mu sync.Mutex
	b, err := bridge.New(labEnd, bridge.Options{Thing: "robot-0001", Endpoint: srv.URL, OnEvent: func(e agent.Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	c := bridge.NewClient(boardEnd, bridge.ClientOptions{Thing: "robot-0001"})
	t.Cleanup(func() { c.Close() })
	return c, b, api
}

func TestDeviceAPIOverTheLine(t *testing.T) {
	c, _, api := start(t)
	tr, err := c.Transport("robot-0001")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pending, err := tr.Pending(ctx)
	if err != nil || len(pending.QueuedJobs) != 1 || pending.QueuedJobs[0].JobID != "job-1" {
		t.Fatalf("pending: %+v, %v", pending, err)
	}
	// A download streams in chunks, and resumes from an offset with a range.
	obj, err := tr.Fetch(ctx, "bundles", "big.tar.gz", 1000)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(obj.Body)
	obj.Body.Close()
	if err != nil || !bytes.Equal(got, api.blob[1000:]) || obj.Offset != 1000 || obj.Size != int64(len(api.blob)) || obj.ETag != `"abc"` {
		t.Fatalf("fetch: %d bytes (want %d), offset %d, size %d, etag %s, %v", len(got), len(api.blob)-1000, obj.Offset, obj.Size, obj.ETag, err)
	}
	if sha256.Sum256(got) != sha256.Sum256(api.blob[1000:]) {
		t.Fatal("download changed on the way")
	}
	// An error answer keeps its code.
	_, err = tr.Describe(ctx, "job-9")
	var ae *agent.APIError
	if !errors.As(err, &ae) || ae.Code != "ResourceNotFoundException" || ae.Status != 404 {
		t.Fatalf("describe: %v", err)
	}
	// The notify channel is a stream of messages.
	sub, err := tr.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Next(ctx); err != nil {
		t.Fatalf("no notify message: %v", err)
	}
	sub.Close()
}

func TestBoardReachesOnlyItsOwnDeviceAPI(t *testing.T) {
	c, _, api := start(t)
	hc := c.HTTPClient()
	for _, p := range []string{"/things/robot-0002/jobs", "/createDeploymentJob", "/things/robot-0001/../robot-0002/jobs",
		"/things/robot-0001/%2e%2e/robot-0002/jobs", "/tags/arn"} {
		resp, err := hc.Get(bridge.Endpoint + p)
		if err != nil {
			t.Fatalf("GET %s: %v", p, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "AccessDeniedException") {
			t.Errorf("GET %s: %d %s, want 403 AccessDeniedException", p, resp.StatusCode, b)
		}
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	if len(api.paths) != 0 {
		t.Errorf("the service was asked for %q", api.paths)
	}
}

func TestCancelledDownloadStopsTheStream(t *testing.T) {
	c, b, _ := start(t)
	tr, _ := c.Transport("robot-0001")
	ctx, cancel := context.WithCancel(context.Background())
	obj, err := tr.Fetch(ctx, "bundles", "big.tar.gz", 0)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(obj.Body, buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	obj.Body.Close()
	sent := func() uint64 { return b.Session().Stats().PayloadSent }
	// Once cancelled, the lab stops within what was already queued.
	deadline := time.Now().Add(10 * time.Second)
	last := sent()
	for time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		if now := sent(); now == last {
			break
		} else {
			last = now
		}
	}
	if last > 200<<10 {
		t.Errorf("the lab sent %d bytes of a 300 KiB download that was cancelled after 10", last)
	}
}
