package process_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"

	"github.com/fleetlab/fleetlab/harness/robomaker/robomakertest"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
	"github.com/fleetlab/fleetlab/sim/fleet/process"
	"github.com/fleetlab/fleetlab/sim/service"
)

// holder holds one request of the device API in the service, as the first request matching its rule arrives: it
// never answers it (or answers only the first partial bytes), so the agent that sent it waits in the step it is
// in until it is killed. It also records the Range of every artifact download.
type holder struct {
	mu      sync.Mutex
	rule    func(r *http.Request, body []byte) bool
	partial int
	fired   bool
	held    chan struct{}
	ranges  []string
}

func (h *holder) arm(partial int, rule func(r *http.Request, body []byte) bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rule, h.partial, h.held = rule, partial, make(chan struct{})
}

func (h *holder) wrap(listener string, next http.Handler) http.Handler {
	if listener != service.ListenerAPI {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		if r.Method == http.MethodPost {
			body, _ = io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		h.mu.Lock()
		if strings.HasPrefix(r.URL.Path, "/artifacts/") {
			h.ranges = append(h.ranges, r.URL.Path+" "+r.Header.Get("Range"))
		}
		match := !h.fired && h.rule != nil && h.rule(r, body)
		h.fired = h.fired || match
		partial, held := h.partial, h.held
		h.mu.Unlock()
		if !match {
			next.ServeHTTP(w, r)
			return
		}
		close(held)
		if partial > 0 {
			next.ServeHTTP(&cutWriter{ResponseWriter: w, left: partial, ctx: r.Context()}, r)
			return
		}
		<-r.Context().Done() // the agent died waiting
	})
}

func (h *holder) rangesOf(path string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.ranges {
		if p, rng, _ := strings.Cut(r, " "); p == path {
			out = append(out, rng)
		}
	}
	return out
}

// cutWriter lets the first left bytes of an answer through, flushed, and then holds it until the request ends.
type cutWriter struct {
	http.ResponseWriter
	left int
	ctx  context.Context
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if c.left == 0 {
		<-c.ctx.Done()
		return 0, c.ctx.Err()
	}
	n := min(len(p), c.left)
	c.ResponseWriter.Write(p[:n])
	c.ResponseWriter.(http.Flusher).Flush()
	c.left -= n
	return n, nil
}

// report matches an UpdateJobExecution of a job other than old with status, at step (any step when empty).
func report(old, status, step string) func(*http.Request, []byte) bool {
	return func(r *http.Request, body []byte) bool {
		if r.Method != http.MethodPost || !strings.Contains(r.URL.Path, "/jobs/") || strings.HasSuffix(r.URL.Path, "/jobs/"+old) {
			return false
		}
		var u wire.UpdateJobExecutionRequest
		return json.Unmarshal(body, &u) == nil && u.Status == status && (step == "" || u.StatusDetails[wire.DetailStep] == step)
	}
}

// holdOnce is a script body that, the first time, marks $ROBOT_DATA_DIR/<name> and runs until killed; later runs
// pass at once.
func holdOnce(name string) string {
	return `m="$ROBOT_DATA_DIR/` + name + `"
if [ ! -e "$m" ]; then
	echo $$ >"$m.tmp" && mv "$m.tmp" "$m"
	while :; do sleep 0.05; done
fi
exit 0`
}

// crashCase is one point of the chain at which the agent is killed.
type crashCase struct {
	name string
	// state is the state the agent has saved when it is killed.
	state string
	// pre and post are the new version's pre- and post-launch bodies; condition, when set, is a download
	// condition script.
	pre, post, condition string
	// arm sets the hold for the job after old (the old version's job id) and returns the file whose existence
	// says the agent is held, or "" when the holder's held channel says it.
	arm func(h *holder, old string) (marker string)
	// wantCurrent is the version the current link points at right after the kill: "old" or "new".
	wantCurrent string
	// wantRobot is the robot's status in the job at the end; the device then runs the new version if it is
	// InSync, the old one otherwise.
	wantRobot string
}

func TestCrashAtEveryStep(t *testing.T) {
	cases := []crashCase{
		{name: "Validating", state: rmwire.StepValidating, wantCurrent: "old", wantRobot: "InSync",
			arm: func(h *holder, old string) string {
				h.arm(0, report(old, wire.StatusInProgress, rmwire.StepValidating))
				return ""
			}},
		{name: "DownloadingExtracting", state: rmwire.StepDownloadingExtracting, wantCurrent: "old", wantRobot: "InSync",
			arm: func(h *holder, old string) string {
				// 100 bytes of the bundle arrive, then the download stalls: the agent is killed mid-body and
				// resumes from byte 100.
				h.arm(100, func(r *http.Request, _ []byte) bool { return r.URL.Path == "/artifacts/bundles/new.tar.gz" })
				return ""
			}},
		{name: "ExecutingDownloadCondition", state: rmwire.StepExecutingDownloadCondition, wantCurrent: "old",
			wantRobot: "InSync", condition: holdOnce("held-condition"),
			arm: func(*holder, string) string { return "held-condition" }},
		{name: "ExecutingPreLaunch", state: rmwire.StepExecutingPreLaunch, wantCurrent: "old", wantRobot: "InSync",
			pre: holdOnce("held-pre"), arm: func(*holder, string) string { return "held-pre" }},
		{name: "Launching", state: rmwire.StepLaunching, wantCurrent: "old", wantRobot: "InSync",
			arm: func(h *holder, old string) string {
				h.arm(0, report(old, wire.StatusInProgress, rmwire.StepLaunching))
				return ""
			}},
		{name: "ExecutingPostLaunch", state: rmwire.StepExecutingPostLaunch, wantCurrent: "new", wantRobot: "InSync",
			post: holdOnce("held-post"), arm: func(*holder, string) string { return "held-post" }},
		{name: "Finished", state: rmwire.StepFinished, wantCurrent: "new", wantRobot: "InSync",
			arm: func(h *holder, old string) string {
				h.arm(0, report(old, wire.StatusSucceeded, ""))
				return ""
			}},
		{name: "FailedAfterRollback", state: agent.StateFailed, wantCurrent: "old", wantRobot: "Failed/PostLaunchFileFailure",
			post: "exit 4", arm: func(h *holder, old string) string {
				h.arm(0, report(old, wire.StatusFailed, ""))
				return ""
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			crashAt(t, tc)
		})
	}
}

// crashAt installs the old version on a process robot, deploys the new one, kills the agent (SIGKILL to its
// session) while it is held in tc's step, checks the device still has a whole version active, restarts it, and
// checks the execution ends as reported and the device runs the version that outcome says.
func crashAt(t *testing.T, tc crashCase) {
	var h holder
	w := robomakertest.Start(t, service.Options{InMemoryStore: true, Wrap: h.wrap})
	var rec agenttest.Events
	f := newFleet(t, w, process.Options{Count: 1, OnEvent: rec.On})
	d, _ := f.Robot("robot-0001")
	fleetARN := register(t, w, f.Devices())
	oldApp, oldVersion := w.App("old", appBundle("", ""))
	oldJob := w.Deploy(fleetARN, oldApp, oldVersion, nil)
	if out := w.WaitJob(oldJob, 30*time.Second); out.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("old version: %s %v", out.Status, robomakertest.Summary(out))
	}
	oldID := robomakertest.JobID(oldJob)
	oldBeat := robomakertest.WaitRunning(t, d.Dir(), oldID, 0, 10*time.Second)

	newApp, newVersion := w.App("new", appBundle(tc.pre, tc.post))
	var cfg *types.DeploymentConfig
	if tc.condition != "" {
		w.Put("condition.sh", []byte("#!/bin/sh\n"+tc.condition+"\n"))
		cfg = &types.DeploymentConfig{DownloadConditionFile: &types.S3Object{Bucket: aws.String(robomakertest.Bucket),
			Key: aws.String("condition.sh")}}
	}
	marker := tc.arm(&h, oldID) // before the job exists, so the agent cannot get past the point first
	newJob := w.Deploy(fleetARN, newApp, newVersion, cfg)
	newID := robomakertest.JobID(newJob)
	if marker != "" {
		waitFile(t, filepath.Join(d.Dir(), "data", marker))
	} else {
		select {
		case <-h.held:
		case <-clock.Real{}.NewTimer(30 * time.Second).C():
			t.Fatal("the agent never reached the held request")
		}
	}
	st, err := d.State()
	if err != nil || st.InFlight == nil || st.InFlight.JobID != newID || st.InFlight.Step != tc.state {
		t.Fatalf("saved state before the kill: %+v (%v), want %s in flight at %s", st.InFlight, err, newID, tc.state)
	}
	if tc.name == "DownloadingExtracting" {
		part := filepath.Join(d.Dir(), "downloads", agent.VersionID(newID, agent.DocumentDigest(st.InFlight.Document))+".bundle.part")
		if !robomakertest.Eventually(10*time.Second, func() bool {
			fi, err := os.Stat(part)
			return err == nil && fi.Size() == 100
		}) {
			t.Fatalf("%s does not hold the 100 bytes that arrived", part)
		}
	}

	if err := d.Crash(); err != nil {
		t.Fatal(err)
	}
	if alive(oldBeat.Pid) {
		t.Fatalf("the application %d survived the power cut", oldBeat.Pid)
	}
	wantCurrent := map[string]string{"old": oldID, "new": newID}[tc.wantCurrent]
	if cur, err := robomakertest.Current(d.Dir()); err != nil || cur != wantCurrent {
		t.Fatalf("after the kill current is %q (%v), want the %s version %s", cur, err, tc.wantCurrent, wantCurrent)
	}

	if err := d.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := w.WaitJob(newJob, 30*time.Second)
	if got := robomakertest.Summary(out)["robot-0001"]; got != tc.wantRobot {
		t.Fatalf("robot-0001 is %s after the restart, want %s (states %v)", got, tc.wantRobot, rec.States("robot-0001", newID))
	}
	runs := newID
	if tc.wantRobot != "InSync" {
		runs = oldID
	}
	robomakertest.WaitRunning(t, d.Dir(), runs, oldBeat.Pid, 10*time.Second)
	st, err = d.State()
	if err != nil || st.InFlight != nil || st.Current == nil || st.Current.JobID != runs {
		t.Fatalf("state at the end: current %+v, in flight %+v (%v)", st.Current, st.InFlight, err)
	}
	if s := rec.States("robot-0001", newID); !slices.Contains(s, "resume:"+tc.state) {
		t.Fatalf("the restarted agent did not resume at %s: %v", tc.state, s)
	}
	if tc.name == "DownloadingExtracting" {
		if got := h.rangesOf("/artifacts/bundles/new.tar.gz"); len(got) != 2 || got[0] != "" || got[1] != "bytes=100-" {
			t.Fatalf("bundle requests with ranges %q, want the whole object and then bytes=100-", got)
		}
	}
}
