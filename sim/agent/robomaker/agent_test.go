package robomaker_test

import (
	"context"
	"errors"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	"github.com/fleetlab/fleetlab/sim/clock/clocktest"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
)

// blockingScripts runs scripts normally, except script name of job, which blocks until its context ends.
type blockingScripts struct {
	agent.ScriptRunner
	name, job string
	started   chan struct{}
	once      sync.Once
}

func (b *blockingScripts) Run(ctx context.Context, s agent.Script) error {
	if s.Name != b.name || !slices.Contains(s.Env, "DEPLOYMENT_JOB_ID="+b.job) {
		return b.ScriptRunner.Run(ctx, s)
	}
	b.once.Do(func() { close(b.started) })
	<-ctx.Done()
	return ctx.Err()
}

// TestServiceCancels: the service cancels the execution during the pre-launch file; the notify channel
// tells the agent, which abandons it without reporting, and the robot keeps the previous version.
func TestServiceCancels(t *testing.T) {
	for _, family := range families {
		t.Run(family, func(t *testing.T) {
			tb := newTestbed(t)
			r := newRobot(t, family, tb, "robot-1")
			block := &blockingScripts{name: bundles.PreLaunchFile, job: "job-2", started: make(chan struct{})}
			r.start(func(o *agent.Options) {
				o.PollMin, o.PollMax = time.Hour, time.Hour // only the notify channel can tell
				o.Wrap = func(ex agent.Executors) agent.Executors {
					block.ScriptRunner = ex.Scripts
					ex.Scripts = block
					return ex
				}
			})
			if !agenttest.Eventually(10*time.Second, func() bool { return tb.svc.Subscribers(r.thing) == 1 }) {
				t.Fatal("the agent did not open the notify channel")
			}
			tb.enqueue(t, r.thing, deploy{job: "job-1", version: "1", bundle: bundles.Hello})
			r.waitEnded("job-1")
			tb.enqueue(t, r.thing, deploy{job: "job-2", version: "2", bundle: bundles.Hello})
			<-block.started
			tb.svc.End(r.thing, "job-2", wire.StatusCanceled)
			r.waitIdle()
			want := []string{V, DE, EDC, EPL, agent.StateAbandoned}
			if got := r.rec.chain("job-2"); !reflect.DeepEqual(got, want) {
				t.Fatalf("chain %q, want %q", got, want)
			}
			for _, u := range tb.svc.Updates(r.thing, "job-2") {
				if u.Status != wire.StatusInProgress {
					t.Errorf("reported %s after the cancel", u.Status)
				}
			}
			r.checkRunning("job-1", "1")
			if _, err := r.a.Executors().Versions.Open("job-2"); err == nil {
				t.Error("the canceled version is still on the device")
			}
		})
	}
}

// blackhole is a Transport whose Update stops answering while armed: calls block until their context ends.
type blackhole struct {
	agent.Transport
	swallow atomic.Int32 // calls left to swallow
}

func (b *blackhole) Update(ctx context.Context, jobID string, req wire.UpdateJobExecutionRequest) (wire.UpdateJobExecutionResponse, error) {
	if b.swallow.Add(-1) >= 0 {
		<-ctx.Done()
		return wire.UpdateJobExecutionResponse{}, ctx.Err()
	}
	return b.Transport.Update(ctx, jobID, req)
}

// TestStopAnswering: the service stops answering reports; the request timeout turns each silence into a
// retry, and the execution goes on once the service answers again.
func TestStopAnswering(t *testing.T) {
	for _, family := range families {
		t.Run(family, func(t *testing.T) {
			tb := newTestbed(t)
			r := newRobot(t, family, tb, "robot-1")
			bh := &blackhole{}
			bh.swallow.Store(3)
			r.start(func(o *agent.Options) {
				o.RequestTimeout = 30 * time.Millisecond
				o.Wrap = func(ex agent.Executors) agent.Executors {
					bh.Transport = ex.Transport
					ex.Transport = bh
					return ex
				}
			})
			tb.enqueue(t, r.thing, deploy{job: "job-1", version: "1", bundle: bundles.Hello})
			if e := r.waitEnded("job-1"); e.Status != wire.StatusSucceeded {
				t.Fatalf("job-1 ended %s", e.Status)
			}
			if got := r.rec.chain("job-1"); !reflect.DeepEqual(got, cleanChain) {
				t.Errorf("chain %q, want %q", got, cleanChain)
			}
			timeouts := 0
			for _, err := range r.rec.errs(agent.EventRetry) {
				if strings.Contains(err.Error(), "request timed out") {
					timeouts++
				}
			}
			// A slow machine may time out an answered call too; the three swallowed ones always do.
			if timeouts < 3 || bh.swallow.Load() >= 0 {
				t.Errorf("%d timed-out reports retried, %d calls left to swallow; want the 3 swallowed retried", timeouts, bh.swallow.Load()+1)
			}
		})
	}
}

// TestNotifyReconnectsAfterServiceRestart: the service goes down and comes back on the same address; the
// agent reconnects the notify channel and picks up what was released meanwhile, with polling out of play.
func TestNotifyReconnectsAfterServiceRestart(t *testing.T) {
	tb := newTestbed(t)
	r := newRobot(t, "os", tb, "robot-1")
	r.start(func(o *agent.Options) { o.PollMin, o.PollMax = time.Hour, time.Hour })
	if !agenttest.Eventually(10*time.Second, func() bool { return tb.svc.Subscribers(r.thing) == 1 }) {
		t.Fatal("the agent did not open the notify channel")
	}
	tb.enqueue(t, r.thing, deploy{job: "job-1", version: "1", bundle: bundles.Hello})
	r.waitEnded("job-1")

	addr := tb.srv.Listener.Addr().String()
	tb.svc.DropSubscribers()
	tb.srv.Close()
	tb.enqueue(t, r.thing, deploy{job: "job-2", version: "2", bundle: bundles.Hello})
	if !agenttest.Eventually(10*time.Second, func() bool { return r.rec.count(agent.EventDisconnected, "") == 1 }) {
		t.Fatal("the agent did not notice the service going away")
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	srv := httptest.NewUnstartedServer(tb.svc.Handler())
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)

	if e := r.waitEnded("job-2"); e.Status != wire.StatusSucceeded {
		t.Fatalf("job-2 ended %s", e.Status)
	}
	if n := r.rec.count(agent.EventConnected, ""); n != 2 {
		t.Errorf("connected %d times, want 2", n)
	}
	r.checkRunning("job-2", "2")
	r.stop() // before the new server closes
}

// pollRecorder is a Transport without a notify channel that records when the agent polls.
type pollRecorder struct {
	agent.Transport
	clk   *clocktest.Fake
	mu    sync.Mutex
	polls []time.Time
}

func (p *pollRecorder) Subscribe(context.Context) (agent.Notifications, error) {
	return nil, agent.ErrNoNotify
}

func (p *pollRecorder) Pending(ctx context.Context) (wire.GetPendingJobExecutionsResponse, error) {
	p.mu.Lock()
	p.polls = append(p.polls, p.clk.Now())
	p.mu.Unlock()
	return p.Transport.Pending(ctx)
}

func (p *pollRecorder) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.polls)
}

// pollIntervals runs an in-memory agent on a fake clock with polling only, and returns the intervals
// between its polls while idle, then checks a released job is picked up by the next poll.
func pollIntervals(t *testing.T, seed uint64) []time.Duration {
	tb := newTestbed(t)
	clk := clocktest.New(time.Time{})
	r := newRobot(t, "memory", tb, "robot-1")
	pr := &pollRecorder{clk: clk}
	r.start(func(o *agent.Options) {
		o.Clock, o.Seed, o.RequestTimeout = clk, seed, -1
		o.PollMin, o.PollMax = time.Second, 8*time.Second
		o.Wrap = func(ex agent.Executors) agent.Executors {
			pr.Transport = ex.Transport
			ex.Transport = pr
			return ex
		}
	})
	// advance moves the clock in 100ms steps until the poll timer fires, and waits for the next one; polls
	// is how many polls that must take.
	advance := func(polls int) {
		t.Helper()
		n := pr.count()
		// Stop as soon as the timer fired: the agent may poll and arm the next one before we look again.
		for pr.count() == n && clk.Timers() > 0 {
			clk.Advance(100 * time.Millisecond)
		}
		<-clk.BlockUntil(1)
		if pr.count() != n+polls {
			t.Fatalf("%d polls after the timer fired, want %d", pr.count(), n+polls)
		}
	}
	<-clk.BlockUntil(1)
	for i := 0; i < 6; i++ {
		advance(1)
	}
	tb.enqueue(t, r.thing, deploy{job: "job-1", version: "1", bundle: bundles.Hello})
	advance(2) // the poll that finds the job, and the one right after it ran
	if e, _ := tb.svc.Execution(r.thing, "job-1"); e.Status != wire.StatusSucceeded {
		t.Fatalf("job-1 is %s after the poll, want SUCCEEDED", e.Status)
	}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	var out []time.Duration
	for i := 1; i < 7; i++ {
		out = append(out, pr.polls[i].Sub(pr.polls[i-1]))
	}
	return out
}

// TestPollingBackoff: without a notify channel the agent polls with backoff doubling from PollMin to
// PollMax, each delay jittered within [d/2, d] by the seeded source: the same seed gives the same delays.
func TestPollingBackoff(t *testing.T) {
	got := pollIntervals(t, 11)
	caps := []time.Duration{1, 2, 4, 8, 8, 8}
	for i, c := range caps {
		lo, hi := c*time.Second/2, c*time.Second+100*time.Millisecond
		if got[i] < lo || got[i] > hi {
			t.Errorf("idle poll %d after %v, want in [%v, %v]", i+1, got[i], lo, hi)
		}
	}
	if again := pollIntervals(t, 11); !reflect.DeepEqual(again, got) {
		t.Errorf("same seed, intervals %v then %v", got, again)
	}
	if other := pollIntervals(t, 12); reflect.DeepEqual(other, got) {
		t.Errorf("seeds 11 and 12 gave the same intervals %v", got)
	}
}

// TestCloseStopsTheApplication: after Close the application's processes are gone and its heartbeat stops.
func TestCloseStopsTheApplication(t *testing.T) {
	tb := newTestbed(t)
	r := newRobot(t, "os", tb, "robot-1")
	r.start(nil)
	tb.enqueue(t, r.thing, deploy{job: "job-1", version: "1", bundle: bundles.Hello})
	r.waitEnded("job-1")
	r.checkRunning("job-1", "1")
	b, err := os.ReadFile(filepath.Join(r.dir, "data", "heartbeat"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, _ := strings.Cut(string(b), "pid=")
	pid, err := strconv.Atoi(strings.Fields(after)[0])
	if err != nil {
		t.Fatalf("heartbeat %q: %v", b, err)
	}
	if pl := r.a.Executors().Launcher.(*agent.ProcessLauncher); pl.Pid() != pid {
		t.Fatalf("launcher pid %d, heartbeat pid %d", pl.Pid(), pid)
	}
	r.stop()
	if !groupGone(pid) {
		t.Fatalf("process group %d alive after Close", pid)
	}
	log, err := os.ReadFile(filepath.Join(r.dir, "device.log"))
	if err != nil || !strings.Contains(string(log), "hello_robot 1: stopping") {
		t.Errorf("device log %q: want the application's graceful stop", log)
	}
}

// TestHTTPTransportWire checks the HTTP transport's requests and its decoding of error answers.
func TestHTTPTransportWire(t *testing.T) {
	type seen struct{ method, path, rng, body string }
	var (
		mu     sync.Mutex
		got    []seen
		answer func(w http.ResponseWriter, r *http.Request)
	)
	answerWith := func(f func(w http.ResponseWriter, r *http.Request)) {
		mu.Lock()
		defer mu.Unlock()
		answer = f
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{r.Method, r.URL.EscapedPath() + "?" + r.URL.RawQuery, r.Header.Get("Range"), string(b)})
		f := answer
		mu.Unlock()
		if f != nil {
			f(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	tr, err := agent.NewHTTPTransport(srv.URL, "robot 1/a", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	ctx := context.Background()

	answerWith(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"execution":{"jobId":"j/1","status":"IN_PROGRESS","jobDocument":"{}"}}`))
	})
	je, err := tr.Describe(ctx, "j/1")
	if err != nil || je.JobID != "j/1" || je.JobDocument != "{}" {
		t.Fatalf("Describe = %+v, %v", je, err)
	}
	if _, err := tr.Update(ctx, "j/1", wire.UpdateJobExecutionRequest{Status: wire.StatusInProgress, StatusDetails: map[string]string{"step": "Validating"}}); err != nil {
		t.Fatal(err)
	}
	answerWith(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"abc"`)
		w.Header().Set("Content-Range", "bytes 5-9/10")
		w.WriteHeader(http.StatusPartialContent)
		w.Write([]byte("56789"))
	})
	obj, err := tr.Fetch(ctx, "my bucket", "dir/x y.tar.gz", 5)
	if err != nil {
		t.Fatal(err)
	}
	obj.Body.Close()
	if obj.Offset != 5 || obj.Size != 10 || obj.ETag != `"abc"` {
		t.Errorf("Fetch = %+v", obj)
	}
	want := []seen{
		{"GET", "/things/robot%201%2Fa/jobs/j%2F1?includeJobDocument=true", "", ""},
		{"POST", "/things/robot%201%2Fa/jobs/j%2F1?", "", `{"status":"IN_PROGRESS","statusDetails":{"step":"Validating"}}`},
		{"GET", "/artifacts/my%20bucket/dir/x%20y.tar.gz?", "bytes=5-", ""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("requests\n%q\nwant\n%q", got, want)
	}

	cases := []struct {
		name      string
		status    int
		header    string
		body      string
		code, msg string
		transient bool
	}{
		{"header wins", 409, "InvalidStateTransitionException:http://internal.amazon.com/", `{"__type":"Other","message":"m"}`, wire.ErrInvalidStateTransition, "m", false},
		{"body __type with namespace", 429, "", `{"__type":"com.amazonaws.iot#ThrottlingException","message":"slow down"}`, wire.ErrThrottling, "slow down", true},
		{"body code, Message", 404, "", `{"code":"ResourceNotFoundException","Message":"gone"}`, wire.ErrResourceNotFound, "gone", false},
		{"5xx without a body", 502, "", ``, "Bad Gateway", "", true},
		{"service unavailable", 503, "ServiceUnavailableException", `{}`, wire.ErrServiceUnavailable, "", true},
	}
	for _, tt := range cases {
		answerWith(func(w http.ResponseWriter, r *http.Request) {
			if tt.header != "" {
				w.Header().Set("X-Amzn-ErrorType", tt.header)
			}
			w.WriteHeader(tt.status)
			w.Write([]byte(tt.body))
		})
		_, err := tr.Pending(ctx)
		var ae *agent.APIError
		if !errors.As(err, &ae) || ae.Status != tt.status || ae.Code != tt.code || ae.Message != tt.msg {
			t.Errorf("%s: err = %#v, want %d %s %q", tt.name, err, tt.status, tt.code, tt.msg)
		}
		if agent.IsTransient(err) != tt.transient {
			t.Errorf("%s: IsTransient = %v, want %v", tt.name, !tt.transient, tt.transient)
		}
	}

	// A link that drops is transient.
	srv.Close()
	if _, err := tr.Pending(ctx); !agent.IsTransient(err) {
		t.Errorf("connection refused: err = %v, want transient", err)
	}
}

// noDocument is a Transport whose StartNext answers without the job document.
type noDocument struct{ agent.Transport }

func (t noDocument) StartNext(ctx context.Context, req wire.StartNextPendingJobExecutionRequest) (*wire.JobExecution, error) {
	je, err := t.Transport.StartNext(ctx, req)
	if je != nil {
		je.JobDocument = ""
	}
	return je, err
}

// TestStartNextWithoutDocument: when the started execution comes without its document, the agent reads it
// from the execution's description.
func TestStartNextWithoutDocument(t *testing.T) {
	tb := newTestbed(t)
	r := newRobot(t, "memory", tb, "robot-1")
	r.start(func(o *agent.Options) {
		o.Wrap = func(ex agent.Executors) agent.Executors {
			ex.Transport = noDocument{ex.Transport}
			return ex
		}
	})
	tb.enqueue(t, r.thing, deploy{job: "job-1", version: "1", bundle: bundles.Hello})
	if e := r.waitEnded("job-1"); e.Status != wire.StatusSucceeded {
		t.Fatalf("job-1 ended %s %v", e.Status, e.StatusDetails)
	}
}

// refuseOutcome is a Transport on which the service refuses the first n final reports with a 400.
type refuseOutcome struct {
	agent.Transport
	n atomic.Int32
}

func (t *refuseOutcome) Update(ctx context.Context, jobID string, req wire.UpdateJobExecutionRequest) (wire.UpdateJobExecutionResponse, error) {
	if req.Status != wire.StatusInProgress && t.n.Add(-1) >= 0 {
		return wire.UpdateJobExecutionResponse{}, &agent.APIError{Status: 400, Code: wire.ErrInvalidRequest, Message: "refused"}
	}
	return t.Transport.Update(ctx, jobID, req)
}

// TestRefusedOutcomeIsRetriedLater: a final report the service refuses leaves the execution in flight; the
// agent resumes it at its next checks until the outcome is accepted.
func TestRefusedOutcomeIsRetriedLater(t *testing.T) {
	tb := newTestbed(t)
	r := newRobot(t, "memory", tb, "robot-1")
	ro := &refuseOutcome{}
	ro.n.Store(2)
	r.start(func(o *agent.Options) {
		o.Wrap = func(ex agent.Executors) agent.Executors {
			ro.Transport = ex.Transport
			ex.Transport = ro
			return ex
		}
	})
	tb.enqueue(t, r.thing, deploy{job: "job-1", version: "1", bundle: bundles.Hello})
	if e := r.waitEnded("job-1"); e.Status != wire.StatusSucceeded {
		t.Fatalf("job-1 ended %s", e.Status)
	}
	want := append(append([]string(nil), cleanChain...), Fin, Fin)
	if got := r.rec.chain("job-1"); !reflect.DeepEqual(got, want) {
		t.Errorf("chain %q, want %q", got, want)
	}
	if n := r.rec.count(agent.EventResume, "job-1"); n != 2 {
		t.Errorf("%d resumes, want 2", n)
	}
	if n := len(r.rec.errs(agent.EventError)); n != 2 {
		t.Errorf("%d errors, want the 2 refusals", n)
	}
}

// TestScriptEnvironment: scripts run with the launch config's variables and the agent's own, from the
// version's directory, with their output in the device log.
func TestScriptEnvironment(t *testing.T) {
	tb := newTestbed(t)
	r := newRobot(t, "os", tb, "robot-7")
	r.start(nil)
	// A bundle like hello whose pre-launch file records its environment and working directory.
	b := rebundle(t, bundles.Hello, map[string]string{bundles.PreLaunchFile: "#!/bin/sh\nenv | sort > \"$ROBOT_DATA_DIR/env.txt\"\npwd > \"$ROBOT_DATA_DIR/pwd.txt\"\necho pre-launch for $ROBOT_NAME\n"})
	etag := tb.svc.PutObject(bucket, "env.tar.gz", b)
	tb.svc.Enqueue(r.thing, "job-env", agenttest.Doc(rmwire.Kind, rmwire.Document{
		Job: "arn:job/job-env", Name: "hello", Version: "7",
		Sources: []rmwire.Source{{Architecture: "X86_64", Bucket: bucket, Key: "env.tar.gz", ETag: etag}},
		Launch: rmwire.Launch{PackageName: bundles.Package, LaunchFile: bundles.LaunchFile, PreLaunchFile: bundles.PreLaunchFile,
			EnvironmentVariables: map[string]string{"GREETING": "hi", "ROBOT_NAME": "spoofed"}},
	}))
	if e := r.waitEnded("job-env"); e.Status != wire.StatusSucceeded {
		t.Fatalf("job ended %s %v", e.Status, e.StatusDetails)
	}
	env, err := os.ReadFile(filepath.Join(r.dir, "data", "env.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"GREETING=hi", "ROBOT_NAME=robot-7", "ROBOT_ARCHITECTURE=X86_64", "APPLICATION_NAME=hello",
		"APPLICATION_VERSION=7", "DEPLOYMENT_JOB=arn:job/job-env", "DEPLOYMENT_JOB_ID=job-env", "ROBOT_DATA_DIR=" + filepath.Join(r.dir, "data")} {
		if !slices.Contains(strings.Split(string(env), "\n"), want) {
			t.Errorf("script environment lacks %s:\n%s", want, env)
		}
	}
	st := loadState(t, r)
	if pwd, err := os.ReadFile(filepath.Join(r.dir, "data", "pwd.txt")); err != nil || st.Current == nil ||
		strings.TrimSpace(string(pwd)) != filepath.Join(r.dir, "versions", st.Current.VersionID()) {
		t.Errorf("working directory %q (%v), want the version's", pwd, err)
	}
	log, err := os.ReadFile(filepath.Join(r.dir, "device.log"))
	if err != nil || !strings.Contains(string(log), "pre-launch for robot-7") || !strings.Contains(string(log), "hello_robot 7: started") {
		t.Errorf("device log %q: want the script's and the application's output", log)
	}
}

// rebundle returns the fixture bundle base with the files in files replaced or added.
func rebundle(t *testing.T, base string, files map[string]string) []byte {
	t.Helper()
	contents, err := bundles.Files(base)
	if err != nil {
		t.Fatal(err)
	}
	maps.Copy(contents, files)
	b, err := bundles.Pack(contents)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDownloadProgress: a large bundle's download is reported every ten points of percentDone, with the
// time left estimated, from 0.0 to 100.0.
func TestDownloadProgress(t *testing.T) {
	for _, family := range families {
		t.Run(family, func(t *testing.T) {
			tb := newTestbed(t)
			r := newRobot(t, family, tb, "robot-1")
			r.start(nil)
			noise := make([]byte, 400<<10) // incompressible, so the bundle stays large
			rnd := rand.New(rand.NewPCG(1, 2))
			for i := range noise {
				noise[i] = byte(rnd.Uint32())
			}
			b := rebundle(t, bundles.Hello, map[string]string{"hello_robot/map.bin": string(noise)})
			etag := tb.svc.PutObject(bucket, "big.tar.gz", b)
			tb.svc.Enqueue(r.thing, "job-big", agenttest.Doc(rmwire.Kind, rmwire.Document{
				Name: "hello", Version: "1",
				Sources: []rmwire.Source{{Architecture: "X86_64", Bucket: bucket, Key: "big.tar.gz", ETag: etag}},
				Launch:  rmwire.Launch{PackageName: bundles.Package, LaunchFile: bundles.LaunchFile},
			}))
			if e := r.waitEnded("job-big"); e.Status != wire.StatusSucceeded {
				t.Fatalf("job ended %s %v", e.Status, e.StatusDetails)
			}
			var pcts []float64
			for _, u := range tb.svc.Updates(r.thing, "job-big") {
				p, ok := u.StatusDetails[wire.DetailPercentDone]
				if !ok {
					continue
				}
				v, err := strconv.ParseFloat(p, 64)
				if err != nil {
					t.Fatalf("percentDone %q: %v", p, err)
				}
				if eta, ok := u.StatusDetails[wire.DetailETA]; len(pcts) > 0 && !ok {
					t.Errorf("percentDone %s without %s", p, wire.DetailETA)
				} else if ok {
					if _, err := strconv.ParseInt(eta, 10, 64); err != nil {
						t.Errorf("%s %q: %v", wire.DetailETA, eta, err)
					}
				}
				pcts = append(pcts, v)
			}
			// The agent reports once ten points have passed since its last report. How many bytes one read brings
			// depends on how fast the bytes arrive (up to the 32 KiB buffer, 8 points of this bundle), so the count
			// of reports is not fixed; what is: 0 first, 100 last, and every gap at least ten points but the last,
			// and under twenty (ten points, plus at most one read).
			if len(pcts) < 3 || pcts[0] != 0 || pcts[len(pcts)-1] != 100 {
				t.Fatalf("percentDone reported %v: want 0 to 100 in steps of ten points", pcts)
			}
			for i := 1; i < len(pcts); i++ {
				gap := pcts[i] - pcts[i-1]
				if (gap < 10 && i < len(pcts)-1) || gap <= 0 || gap >= 20 {
					t.Errorf("percentDone %v: %v then %v, not ten to twenty points apart", pcts, pcts[i-1], pcts[i])
				}
			}
		})
	}
}

// TestRelativeDeviceDir: a device directory given as a relative path works: scripts and the application run from
// their version's directory with absolute paths.
func TestRelativeDeviceDir(t *testing.T) {
	tb := newTestbed(t)
	r := newRobot(t, "os", tb, "robot-1")
	t.Chdir(filepath.Dir(r.dir))
	r.start(func(o *agent.Options) { o.Dir = filepath.Base(r.dir) })
	tb.enqueue(t, r.thing, deploy{job: "job-1", version: "1", bundle: bundles.Hello})
	if e := r.waitEnded("job-1"); e.Status != wire.StatusSucceeded {
		t.Fatalf("job-1 on a relative device directory ended %s %v", e.Status, e.StatusDetails)
	}
	r.checkRunning("job-1", "1")
}
