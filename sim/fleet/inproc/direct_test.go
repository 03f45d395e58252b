package inproc_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness/robomaker/robomakertest"
	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	"github.com/fleetlab/fleetlab/sim/fleet"
	"github.com/fleetlab/fleetlab/sim/fleet/inproc"
	"github.com/fleetlab/fleetlab/sim/service"
)

// thingRequests counts the device-API requests each thing sent to the service's listener, by the path's thing.
type thingRequests struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *thingRequests) wrap(listener string, h http.Handler) http.Handler {
	if listener != service.ListenerAPI {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rest, ok := strings.CutPrefix(r.URL.Path, "/things/"); ok {
			thing, _, _ := strings.Cut(rest, "/")
			c.mu.Lock()
			if c.n == nil {
				c.n = map[string]int{}
			}
			c.n[thing]++
			c.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
}

func (c *thingRequests) of(thing string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[thing]
}

// directFleet starts n in-memory robots on the direct HTTP path against w's service.
func directFleet(t *testing.T, w *robomakertest.World, n int) *inproc.Fleet {
	t.Helper()
	f, err := inproc.New(inproc.Options{Endpoint: w.Svc.Endpoint(), DirectHTTP: true, Count: n, Seed: 7, Agent: quick})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	})
	return f
}

// TestDirectHTTPFleetCompletesJob: robots on the direct path (no link proxy, HTTP clients shared by the fleet)
// carry out a RoboMaker job over real HTTP: each speaks to the service's own listener — its requests arrive
// there under its thing name, its notify channel is connected — and the job succeeds with every robot InSync
// running the new version.
func TestDirectHTTPFleetCompletesJob(t *testing.T) {
	agenttest.LeakTest(t)
	var seen thingRequests
	w := robomakertest.Start(t, service.Options{InMemoryStore: true, Wrap: seen.wrap})
	const n = 40 // more than one shared transport's worth of robots
	f := directFleet(t, w, n)
	if !f.Direct() {
		t.Fatal("a DirectHTTP fleet says it is not direct")
	}
	for _, d := range f.Robots() {
		if d.Endpoint() != w.Svc.Endpoint() || d.Link() != nil {
			t.Fatalf("%s speaks to %s (link %v), want the service's %s and no link", d.Name(), d.Endpoint(), d.Link(), w.Svc.Endpoint())
		}
	}
	if !robomakertest.Eventually(20*time.Second, func() bool {
		for _, d := range f.Robots() {
			if w.Svc.Devices.Connected(d.Name()) != 1 {
				return false
			}
		}
		return true
	}) {
		t.Fatal("not every robot's notify channel connected to the service")
	}
	app, version := w.App("hello", bundles.MustBuild(bundles.Hello))
	job := w.Deploy(register(t, w, "lab", f.Devices()), app, version,
		&types.DeploymentConfig{ConcurrentDeploymentPercentage: aws.Int32(100)})
	out := w.WaitJob(job, 60*time.Second)
	if out.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("job %s %s: %v", out.Status, out.FailureCode, robomakertest.Summary(out))
	}
	sum := robomakertest.Summary(out)
	id := robomakertest.JobID(job)
	for _, d := range f.Robots() {
		if s := sum[d.Name()]; s != string(types.RobotStatusInSync) {
			t.Errorf("%s is %s, want InSync", d.Name(), s)
		}
		if d.App() != id {
			t.Errorf("%s runs %q, want %s", d.Name(), d.App(), id)
		}
		// StartNext and the seven step reports at least, each over HTTP at the service's listener.
		if got := seen.of(d.Name()); got < 8 {
			t.Errorf("%s sent %d device-API requests to the service's listener, want at least 8", d.Name(), got)
		}
	}
}

// TestDirectHTTPRefusesLinkShaping: a robot of the direct path has no link, so every shape but a healthy link
// is refused with an error naming the option — through ShapeLink and CanShapeLink, and through fleet.Linker's
// SetLink, which has no error to return, by a panic — and the robot keeps working; a healthy link is accepted.
func TestDirectHTTPRefusesLinkShaping(t *testing.T) {
	agenttest.LeakTest(t)
	w := robomakertest.Start(t, service.Options{InMemoryStore: true})
	f := directFleet(t, w, 2)
	d, _ := f.Robot("robot-0001")
	shapes := []fleet.Link{{Partition: true}, {Latency: time.Millisecond}, {DropRate: 0.5, Seed: 3},
		{BytesPerSecond: 1024}}
	for _, l := range shapes {
		err := d.ShapeLink(l)
		if !errors.Is(err, inproc.ErrNoLink) || !strings.Contains(err.Error(), "DirectHTTP") ||
			!strings.Contains(err.Error(), "robot-0001") {
			t.Errorf("ShapeLink(%+v) = %v, want ErrNoLink naming DirectHTTP and the robot", l, err)
		}
		if msg := panicOf(func() { d.SetLink(l) }); !strings.Contains(msg, "DirectHTTP") {
			t.Errorf("SetLink(%+v) did not refuse: panic %q", l, msg)
		}
	}
	if err := d.CanShapeLink(); !errors.Is(err, inproc.ErrNoLink) {
		t.Errorf("CanShapeLink = %v, want ErrNoLink", err)
	}
	for _, l := range []fleet.Link{{}, {Seed: 9}} {
		if err := d.ShapeLink(l); err != nil {
			t.Errorf("ShapeLink(healthy %+v) = %v", l, err)
		}
		if msg := panicOf(func() { d.SetLink(l) }); msg != "" {
			t.Errorf("SetLink(healthy %+v) panicked: %s", l, msg)
		}
	}
	// Refused shapes changed nothing: the robot deploys.
	app, version := w.App("hello", bundles.MustBuild(bundles.Hello))
	job := w.Deploy(register(t, w, "lab", f.Devices()), app, version, nil)
	if out := w.WaitJob(job, 30*time.Second); out.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("job %s after refused link shapes: %v", out.Status, robomakertest.Summary(out))
	}

	// A proxied fleet's robot can be shaped, as before.
	p, err := inproc.New(inproc.Options{Endpoint: w.Svc.Endpoint(), Names: []string{"shaped"}, Agent: quick})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	s, _ := p.Robot("shaped")
	if err := s.CanShapeLink(); err != nil || s.ShapeLink(fleet.Link{Latency: time.Millisecond}) != nil || s.Link().Link().Latency != time.Millisecond {
		t.Errorf("a proxied robot's link: CanShapeLink %v, link %+v", err, s.Link().Link())
	}
}

// DirectHTTP is an option of the HTTP transport alone.
func TestDirectHTTPNeedsTheHTTPTransport(t *testing.T) {
	w := robomakertest.Start(t, service.Options{InMemoryStore: true})
	for _, kind := range []inproc.TransportKind{inproc.TransportMemory, inproc.TransportInProcess} {
		f, err := inproc.New(inproc.Options{Transport: kind, DirectHTTP: true, Endpoint: w.Svc.Endpoint(),
			HTTP: http.DefaultTransport, Devices: w.Svc.Devices, Objects: w.Svc.Artifacts, Count: 1, Agent: quick})
		if err == nil {
			f.Close()
			t.Errorf("transport %d: DirectHTTP accepted", kind)
		} else if !strings.Contains(err.Error(), "DirectHTTP") {
			t.Errorf("transport %d: %v, want an error naming DirectHTTP", kind, err)
		}
	}
}

// panicOf returns what f panics with, "" when it returns.
func panicOf(f func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
		}
	}()
	f()
	return ""
}

// TestDirectHTTPFleetBoundsItsConnections: 64 robots on the direct path download a 1 MiB bundle all at once,
// each reporting its progress while its download's connection is open. The job succeeds — robots holding
// every download connection of their pool still get connections for their reports — and the service sees no
// more connections than the pools allow: 2 pools of 32 robots, at most 2 connections for calls and 2 for
// downloads each, where one a robot would be 64 of each.
func TestDirectHTTPFleetBoundsItsConnections(t *testing.T) {
	agenttest.LeakTest(t)
	var conns remoteAddrs
	w := robomakertest.Start(t, service.Options{InMemoryStore: true, Wrap: conns.wrap})
	const n = 64
	f := directFleet(t, w, n)
	files, err := bundles.Files(bundles.Hello)
	if err != nil {
		t.Fatal(err)
	}
	pad := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{7}).Read(pad) // incompressible: the download is really 1 MiB
	files[path.Join(bundles.Package, "payload.bin")] = string(pad)
	bundle, err := bundles.Pack(files)
	if err != nil {
		t.Fatal(err)
	}
	app, version := w.App("big", bundle)
	job := w.Deploy(register(t, w, "lab", f.Devices()), app, version,
		&types.DeploymentConfig{ConcurrentDeploymentPercentage: aws.Int32(100)})
	out := w.WaitJob(job, 120*time.Second)
	if out.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("job %s %s: %v", out.Status, out.FailureCode, robomakertest.Summary(out))
	}
	calls, downloads := conns.count()
	const pools, perPool = (n + 31) / 32, 2
	if calls > pools*perPool || downloads > pools*perPool {
		t.Errorf("the service saw %d connections for calls and %d for downloads, want at most %d each", calls,
			downloads, pools*perPool)
	}
	if calls == 0 || downloads == 0 {
		t.Errorf("no connections counted (%d calls, %d downloads)", calls, downloads)
	}
}

// remoteAddrs counts the connections the device API's requests came on, by their remote address: data-plane
// calls and downloads apart, the notify channels' upgrades left out.
type remoteAddrs struct {
	mu               sync.Mutex
	calls, downloads map[string]bool
}

func (c *remoteAddrs) wrap(listener string, h http.Handler) http.Handler {
	if listener != service.ListenerAPI {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		if c.calls == nil {
			c.calls, c.downloads = map[string]bool{}, map[string]bool{}
		}
		switch {
		case strings.HasPrefix(r.URL.Path, "/artifacts/"):
			c.downloads[r.RemoteAddr] = true
		case strings.HasPrefix(r.URL.Path, "/things/") && !strings.HasSuffix(r.URL.Path, "/notify"):
			c.calls[r.RemoteAddr] = true
		}
		c.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (c *remoteAddrs) count() (calls, downloads int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.calls), len(c.downloads)
}
