package greengrassv2_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	gg "github.com/fleetlab/fleetlab/sim/agent/greengrassv2"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	ggwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/greengrassv2"
)

// statusSink records the fleet status messages a core publishes, in front of the fake device API.
type statusSink struct {
	mu   sync.Mutex
	msgs []ggwire.FleetStatus
	bad  []string
}

func (s *statusSink) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/topics/") {
			next.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		defer s.mu.Unlock()
		thing, ok := ggwire.FleetStatusThing(strings.TrimPrefix(r.URL.Path, "/topics/"))
		fs, err := ggwire.ParseFleetStatus(thing, body)
		if !ok || err != nil || r.Method != http.MethodPost {
			s.bad = append(s.bad, r.Method+" "+r.URL.Path+": "+string(body))
			http.Error(w, "bad publish", http.StatusBadRequest)
			return
		}
		s.msgs = append(s.msgs, fs)
		w.Write([]byte("{}"))
	})
}

func (s *statusSink) all() []ggwire.FleetStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ggwire.FleetStatus(nil), s.msgs...)
}

func (s *statusSink) last() (ggwire.FleetStatus, bool) {
	all := s.all()
	if len(all) == 0 {
		return ggwire.FleetStatus{}, false
	}
	return all[len(all)-1], true
}

func component(fs ggwire.FleetStatus, name string) (ggwire.ComponentStatus, bool) {
	for _, c := range fs.Components {
		if c.ComponentName == name {
			return c, true
		}
	}
	return ggwire.ComponentStatus{}, false
}

// TestFleetStatus: between executions the core publishes its components' lifecycle states — on start, then on
// each change: a run step that fails after its deployment SUCCEEDED is reported ERRORED, then BROKEN after
// three errors with the device UNHEALTHY; job-2's set is not published before job-2 ended; a restarted
// agent publishes again (NUCLEUS_LAUNCH).
func TestFleetStatus(t *testing.T) {
	c := newCore(t)
	sink := &statusSink{}
	c.srv.Close()
	c.srv = httptest.NewServer(sink.wrap(c.svc.Handler()))
	t.Cleanup(c.srv.Close)
	c.kinds = []agent.Kind{gg.Kind{Resolver: c.cat, StatusInterval: 20 * time.Millisecond}}
	c.start()
	c.enqueue("job-1", job1)
	if e := c.waitEnded("job-1"); e.Status != wire.StatusSucceeded {
		t.Fatalf("job-1 ended %s", e.Status)
	}
	if !agenttest.Eventually(20*time.Second, func() bool { _, ok := sink.last(); return ok }) {
		t.Fatal("no fleet status after job-1")
	}
	first := sink.all()[0]
	base, ok := component(first, "Base")
	if first.Trigger != ggwire.TriggerNucleusLaunch || first.SequenceNumber != 1 || first.JobID != "job-1" ||
		first.DeploymentID != "dep-job-1" || first.OverallDeviceStatus != ggwire.DeviceHealthy || first.Thing != "core-1" ||
		first.Architecture != "amd64" || !ok || base.Status != ggwire.LifecycleRunning || base.Version != "1.0.0" || !base.IsRoot {
		t.Fatalf("first fleet status %+v", first)
	}
	n := len(sink.all())

	// job-2 runs Daemon, whose dependency Svc's run step exits 1 every time, after the deployment SUCCEEDED.
	c.enqueue("job-2", deployment{roots: map[string]string{"Daemon": "1.0.0"}})
	if e := c.waitEnded("job-2"); e.Status != wire.StatusSucceeded {
		t.Fatalf("job-2 ended %s %v", e.Status, e.StatusDetails)
	}
	if !agenttest.Eventually(20*time.Second, func() bool {
		fs, _ := sink.last()
		svc, _ := component(fs, "Svc")
		return fs.JobID == "job-2" && svc.Status == ggwire.LifecycleBroken
	}) {
		t.Fatalf("no BROKEN status for Svc: %+v", sink.all()[n:])
	}
	fs, _ := sink.last()
	svc, _ := component(fs, "Svc")
	daemon, _ := component(fs, "Daemon")
	if fs.OverallDeviceStatus != ggwire.DeviceUnhealthy || fs.Trigger != ggwire.TriggerComponentStatusChange ||
		svc.Errors != gg.MaxStepErrors || svc.IsRoot || !strings.Contains(svc.StatusDetails, "exited 1") ||
		len(svc.StatusCodes) != 1 || svc.StatusCodes[0] != gg.CodeComponentBroken || svc.LastStatusChangeTime == 0 ||
		!daemon.IsRoot || fs.DeploymentID != "dep-job-2" {
		t.Errorf("BROKEN status %+v", fs)
	}
	if l, ok, err := gg.ReadLifecycle(agent.Device{DataDir: c.dir + "/data"}, "Svc"); err != nil || !ok ||
		l.State != ggwire.LifecycleBroken || l.Errors != 3 || l.LastExit != 1 {
		t.Errorf("Svc's recorded lifecycle %+v %v %v", l, ok, err)
	}
	for i, m := range sink.all() {
		if i > 0 && m.SequenceNumber <= sink.all()[i-1].SequenceNumber {
			t.Errorf("message %d: sequence %d after %d", i, m.SequenceNumber, sink.all()[i-1].SequenceNumber)
		}
		// Job-2's set is never reported before job-2 ended: nothing is sent while an execution is in flight.
		if m.JobID == "job-1" {
			if _, ok := component(m, "Svc"); ok {
				t.Errorf("message %d names job-1 with Svc: %+v", i, m)
			}
		}
	}
	settled := len(sink.all())

	c.restart()
	if !agenttest.Eventually(20*time.Second, func() bool {
		for _, m := range sink.all()[settled:] {
			if m.Trigger == ggwire.TriggerNucleusLaunch && m.SequenceNumber == 1 {
				return true
			}
		}
		return false
	}) {
		t.Errorf("no NUCLEUS_LAUNCH status after the restart: %+v", sink.all()[settled:])
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.bad) > 0 {
		t.Errorf("refused publishes: %q", sink.bad)
	}
}
