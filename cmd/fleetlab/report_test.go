package main

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/harness/robomaker"
	"github.com/fleetlab/fleetlab/reports"
	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
)

// browserScenario is a real harness scenario for the browser: 24 in-process robots, a quarter at a time; the
// pre-launch scripts of robot-0002 and robot-0005 exit 3, and robot-0009 is held in Launching until release is
// closed, so the rollout stays in progress while the page is looked at.
func browserScenario(release <-chan struct{}) harness.Spec {
	return harness.Spec{
		Name:        "live-view",
		Description: "24 robots, 25% at a time; two pre-launch scripts exit 3; robot-0009 is held in Launching",
		Fleet:       harness.FleetSpec{Robots: 24},
		Faults: []faults.Spec{{Fault: "script-exit", Params: json.RawMessage(`{"script":"pre-launch","code":3}`),
			Target: faults.Selector{Devices: []string{"robot-0002", "robot-0005"}}}},
		Run: func(env *harness.Env, _ harness.Spec) string {
			held := env.Inject(faults.Spec{Fault: "slow-step", Params: json.RawMessage(`{"delay":"100h"}`),
				Target: faults.Selector{Devices: []string{"robot-0009"}, Step: rmwire.StepLaunching}})
			job := env.Deploy(bundles.Hello, robomaker.Deployment{Concurrency: 25})
			select {
			case <-release:
			case <-env.Context().Done():
			}
			env.Recover(held)
			return job
		},
		Expect: harness.Expect{
			Status: robomaker.JobFailed,
			Robots: map[string]harness.RobotExpect{
				"robot-0002": {Status: robomaker.RobotFailed, FailureCode: "PreLaunchFileFailure"},
				"robot-0005": {Status: robomaker.RobotFailed, FailureCode: "PreLaunchFileFailure"},
			},
			Others: &harness.RobotExpect{Status: robomaker.RobotInSync},
		},
	}
}

// TestLiveViewInBrowser drives chromium through the live view during a real scenario run as fleetlab run
// starts it: the page shows the lanes and the counts as they change, reconnects after the server drops its
// socket and resumes without losing a record, and ends with exactly the records the run produced. Then it
// opens the HTML report the run wrote, from disk, offline.
func TestLiveViewInBrowser(t *testing.T) {
	p := newPage(t)
	dir := t.TempDir()
	report, err := startReport("fleetlab run", reportFlags{dir: dir, addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer report.stop()
	p.run(chromedp.Navigate(report.liveURL()))
	p.waitView("the live connection", func(v view) bool { return v.Conn == "live" && v.Mode == "live" })

	release := make(chan struct{})
	spec := browserScenario(release)
	spec.Options = append(spec.Options, harness.WithSink(report.run))
	done := make(chan error, 1)
	var res *harness.Result
	go func() {
		var err error
		res, err = harness.Execute(spec, io.Discard, "")
		done <- err
	}()
	finished := false
	defer func() { // a test that stops early lets the scenario end too
		if !finished {
			close(release)
			<-done
		}
	}()

	// The rollout reaches its held robot: 23 of 24 done, lanes for all 24.
	first := p.waitView("the rollout under way", func(v view) bool { return atoi(v.Counts["devices-done"]) > 0 })
	mid := p.waitView("23 of 24 robots done, robot-0009 held", func(v view) bool {
		return v.Counts["devices"] == "24" && v.Counts["devices-done"] == "23" && v.Statuses["FAILED"] == "2" &&
			len(v.Lanes) == 1 && v.Lanes[0].Rows == "24"
	})
	if atoi(first.Counts["events"]) >= atoi(mid.Counts["events"]) {
		t.Errorf("the event count did not grow: %s then %s", first.Counts["events"], mid.Counts["events"])
	}
	if mid.Scenario != "running" || mid.Counts["running"] != "1" {
		t.Errorf("mid-run the scenario shows %q (%s running), want running", mid.Scenario, mid.Counts["running"])
	}
	if mid.Lanes[0].Drawn == "0" {
		t.Error("no lane drawn")
	}

	// The server drops the socket; the page reconnects and resumes.
	report.hub.Disconnect()
	p.waitView("a reconnect", func(v view) bool {
		return v.Reconnects >= 1 && v.Conn == "live" && v.ConnShown == "live" && atoi(v.Counts["events"]) == v.Records
	})
	p.screenshot("live-view.png")

	close(release)
	finished = true
	if err := <-done; err != nil {
		t.Fatalf("the scenario: %v", err)
	}
	if !res.OK() {
		t.Fatalf("the scenario did not end as expected: %v", res.Failures)
	}
	report.run.Finish(spec.Name, false)
	if err := report.finish(io.Discard); err != nil {
		t.Fatal(err)
	}
	// The page draws on its next frame what its model already holds: wait for the drawing of the end, not only
	// the connection's state.
	end := p.waitView("the run's end", func(v view) bool {
		return v.Conn == "ended" && v.ConnShown == "ended" && v.Counts["devices-done"] == "24" && v.Counts["running"] == "0"
	})
	if end.Pos != report.hub.Len() || end.Records != report.hub.Len() {
		t.Errorf("the page holds %d records (position %d), the run produced %d: a record lost or repeated across the reconnect",
			end.Records, end.Pos, report.hub.Len())
	}
	if end.Statuses["SUCCEEDED"] != "22" || end.Statuses["FAILED"] != "2" || end.Counts["passed"] != "1" {
		t.Errorf("at the end the page shows %v, %v: want 22 SUCCEEDED, 2 FAILED, the scenario passed", end.Statuses, end.Counts)
	}
	p.check(strings.TrimSuffix(report.liveURL(), "/"), "ws://")

	// The HTML report the run wrote, opened from disk.
	file := newPage(t)
	file.run(chromedp.Navigate("file://" + filepath.Join(dir, fileHTML)))
	v := file.waitView("the report", func(v view) bool { return v.Conn == "report" })
	if v.Records != end.Records || v.Counts["devices-done"] != "24" || v.Statuses["FAILED"] != "2" ||
		len(v.Lanes) != 1 || v.Lanes[0].Rows != "24" || v.Counts["passed"] != "1" {
		t.Errorf("the HTML report shows %+v; want the live view's end: %d records, 24 lanes, 24 done, 2 failed, passed", v, end.Records)
	}
	file.screenshot("report.png")
	file.check("file://")
}

// TestReportServeInBrowser serves a 10,000-device events.jsonl being written with fleetlab report serve: the
// page follows the file, groups the lanes (200 groups), draws only the rows in view, opens a group on click,
// and shows the run's end once the file has it.
func TestReportServeInBrowser(t *testing.T) {
	p := newPage(t)
	path := filepath.Join(t.TempDir(), "events.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	records := bigRun(10000)
	half := len(records) / 2
	writeRecords(t, f, records[:half])

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan *reports.Server, 1)
	served := make(chan error, 1)
	go func() {
		served <- serveReport(ctx, path, "127.0.0.1:0", "", io.Discard, func(s *reports.Server) { ready <- s })
	}()
	var srv *reports.Server
	select {
	case srv = <-ready:
	case err := <-served:
		t.Fatalf("report serve: %v", err)
	}
	p.run(chromedp.Navigate(srv.URL()))
	p.waitView("the first half", func(v view) bool { return v.Records == half })
	writeRecords(t, f, records[half:])
	v := p.waitView("every record and the end", func(v view) bool {
		return v.Records == len(records) && v.Conn == "ended" && atoi(v.Counts["events"]) == v.Records
	})
	if v.Counts["devices"] != "10000" || v.Counts["devices-done"] != "10000" || len(v.Lanes) != 1 {
		t.Fatalf("the page shows %+v, want 10,000 devices done", v)
	}
	if l := v.Lanes[0]; l.Mode != "groups" || l.Rows != "200" || atoi(l.Drawn) > 30 {
		t.Errorf("lanes %+v: want 200 groups of 50, only those in view drawn", l)
	}
	p.screenshot("report-serve-10k.png")
	type consoleView struct {
		Shown bool   `json:"shown"`
		Tabs  string `json:"tabs"`
		Text  string `json:"text"`
		KV    string `json:"kv"`
	}
	console, err := chromedp.Run(p.ctx, chromedp.Evaluate[consoleView](`({shown: !document.getElementById("console-card").hidden,
	  tabs: document.querySelector("#console-card .tabs").textContent, text: document.querySelector("#console-card pre").textContent,
	  kv: document.querySelector("#scenario-card .kv").textContent})`))
	if err != nil {
		t.Fatal(err)
	}
	if !console.Shown || console.Tabs != "board-1" || !strings.Contains(console.Text, "U-Boot 2024.01 <line 2>") {
		t.Errorf("console panel %+v: want board-1's three lines", console)
	}
	if !strings.Contains(console.KV, "devices_per_second 312.5") {
		t.Errorf("scenario facts %q: want the metric", console.KV)
	}
	// Open the first group: its 50 devices, one lane each, the rows in view drawn.
	p.run(chromedp.Click(chromedp.CSS(".deployment .lanes canvas")))
	v = p.waitView("a group opened", func(v view) bool { return len(v.Lanes) == 1 && v.Lanes[0].Mode == "devices" })
	if l := v.Lanes[0]; l.Rows != "50" || atoi(l.Drawn) > 30 || atoi(l.Drawn) == 0 {
		t.Errorf("an opened group's lanes %+v: want 50 rows, those in view drawn", l)
	}
	p.check(strings.TrimSuffix(srv.URL(), "/"), "ws://")
	cancel()
	if err := <-served; err != nil {
		t.Errorf("report serve: %v", err)
	}
}

// bigRun is the records of a run of one scenario deploying to n devices: each is released, goes through two
// steps and succeeds, one in a hundred fails.
func bigRun(n int) []reports.Record {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var out []reports.Record
	add := func(r reports.Record) {
		r.V, r.Run, r.Seq = reports.Version, "big", uint64(len(out)+1)
		if r.Wall.IsZero() {
			r.Wall = r.Time
		}
		out = append(out, r)
	}
	add(reports.Record{Kind: reports.RunStarted, Time: t0, Detail: "fleetlab run"})
	add(reports.Record{Kind: "scenario.started", Time: t0, Scenario: "ten-thousand", Attrs: map[string]string{"seed": "1"}})
	add(reports.Record{Kind: "deployment.created", Time: t0, Scenario: "ten-thousand", Dialect: "robomaker", Deployment: "job-10k", To: "Pending"})
	for i := range n {
		dev := fmt.Sprintf("robot-%05d", i+1)
		at := t0.Add(time.Duration(i) * 3 * time.Millisecond)
		x := func(kind string, d time.Duration, r reports.Record) {
			r.Kind, r.Time, r.Scenario, r.Dialect, r.Deployment, r.Device = reports.Kind(kind), at.Add(d), "ten-thousand", "robomaker", "job-10k", dev
			add(r)
		}
		x("execution.released", 0, reports.Record{To: "QUEUED"})
		x("execution.state", time.Millisecond, reports.Record{From: "QUEUED", To: "IN_PROGRESS", Step: "Validating"})
		x("execution.step", 500*time.Millisecond, reports.Record{Step: "Launching"})
		if i%100 == 42 {
			x("execution.state", 900*time.Millisecond, reports.Record{From: "IN_PROGRESS", To: "FAILED", Code: "PreLaunchFileFailure"})
		} else {
			x("execution.state", time.Second, reports.Record{From: "IN_PROGRESS", To: "SUCCEEDED"})
		}
	}
	for i := range 3 {
		add(reports.Record{Kind: "console.line", Time: t0.Add(time.Duration(i) * time.Millisecond), Scenario: "ten-thousand",
			Device: "board-1", Detail: fmt.Sprintf("U-Boot 2024.01 <line %d>", i)})
	}
	end := t0.Add(time.Duration(n)*3*time.Millisecond + 2*time.Second)
	add(reports.Record{Kind: "metric", Time: end, Scenario: "ten-thousand", Metric: "devices_per_second", Value: float64(n) / 32})
	add(reports.Record{Kind: "deployment.state", Time: end, Scenario: "ten-thousand", Dialect: "robomaker", Deployment: "job-10k", From: "InProgress", To: "Failed"})
	add(reports.Record{Kind: "scenario.ended", Time: end, Scenario: "ten-thousand", Code: "failed", Detail: "100 robots failed"})
	add(reports.Record{Kind: reports.RunEnded, Time: end, Code: "failed"})
	return out
}

func writeRecords(t *testing.T, w io.Writer, recs []reports.Record) {
	t.Helper()
	enc := json.NewEncoder(w)
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRunReportFiles runs a scenario file with --report and reads what it wrote: a JUnit file with the
// scenario and its seed, the events, and the HTML report; and bad report flags are usage errors.
func TestRunReportFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	var out, errOut strings.Builder
	if code := run([]string{"run", "--no-live", "--report", dir, "../../fixtures/scenarios/no-response.json"}, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	if strings.Contains(out.String(), "live view") {
		t.Error("--no-live still started the live view")
	}
	if !strings.Contains(out.String(), "report: "+filepath.Join(dir, fileHTML)) {
		t.Errorf("the output does not say where the report is:\n%s", out.String())
	}
	b, err := os.ReadFile(filepath.Join(dir, fileJUnit))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests  int `xml:"tests,attr"`
		Suites []struct {
			Name  string `xml:"name,attr"`
			Props []struct {
				Name  string `xml:"name,attr"`
				Value string `xml:"value,attr"`
			} `xml:"properties>property"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Tests != 1 || len(doc.Suites) != 1 || doc.Suites[0].Name != "no-response" {
		t.Fatalf("junit: %+v, want the one scenario", doc)
	}
	if !strings.Contains(string(b), `<property name="seed" value="20260101">`) || !strings.Contains(string(b), `<property name="dialect" value="robomaker">`) {
		t.Errorf("junit lacks the seed or the dialect:\n%s", b)
	}
	ef, err := os.Open(filepath.Join(dir, fileEvents))
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	recs, err := reports.ReadAll(ef)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 20 || recs[len(recs)-1].Kind != reports.RunEnded || recs[len(recs)-1].Code != "passed" {
		t.Errorf("%d records, last %+v: want the run's records ending in run.ended/passed", len(recs), recs[len(recs)-1])
	}
	if _, err := os.Stat(filepath.Join(dir, fileHTML)); err != nil {
		t.Error(err)
	}

	for _, args := range [][]string{
		{"run", "--live-addr", "4712", "../../fixtures/scenarios/no-response.json"},
		{"report", "serve", filepath.Join(t.TempDir(), "missing.jsonl")},
		{"report", "serve", "--addr", "nowhere", filepath.Join(dir, fileEvents)},
		{"report", "frobnicate"},
		{"report"},
	} {
		errOut.Reset()
		if code := run(args, io.Discard, &errOut); code != exitUsage || !strings.Contains(errOut.String(), "hint:") {
			t.Errorf("%v: exit %d, %q: want 2 with a hint", args, code, errOut.String())
		}
	}
}

// TestReportServeToken serves a finished events file beyond loopback: the printed URL carries a token and the
// view refuses requests without it.
func TestReportServeToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	f, _ := os.Create(path)
	writeRecords(t, f, bigRun(3))
	f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan *reports.Server, 1)
	var out strings.Builder
	served := make(chan error, 1)
	go func() {
		served <- serveReport(ctx, path, "0.0.0.0:0", "", &out, func(s *reports.Server) { ready <- s })
	}()
	srv := <-ready
	if srv.Token() == "" {
		t.Fatal("served on every interface without a token")
	}
	resp, err := http.Get(strings.Split(srv.URL(), "?")[0] + "events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without the token: %d, want 401", resp.StatusCode)
	}
	u := strings.Replace(srv.URL(), "/?", "/events.jsonl?", 1)
	var recs []reports.Record
	var rerr error
	if !agenttest.Eventually(20*time.Second, func() bool {
		r, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		recs, rerr = reports.ReadAll(r.Body)
		r.Body.Close()
		return rerr == nil && len(recs) == len(bigRun(3))
	}) {
		t.Fatalf("GET %s: %d records (%v), want all %d", u, len(recs), rerr, len(bigRun(3)))
	}
	cancel()
	<-served
	if !strings.Contains(out.String(), "?token="+srv.Token()) {
		t.Errorf("the printed URL does not carry the token:\n%s", out.String())
	}
}
