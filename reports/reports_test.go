package reports_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/reports"
	"github.com/fleetlab/fleetlab/sim/event"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// goldenRun writes a fixed run of two scenarios — one passes, one fails with a fault, a hung device and a
// console — to the sinks, with a fixed run id and wall clock.
func goldenRun(t *testing.T, sinks ...reports.Sink) *reports.Run {
	t.Helper()
	wall := &fakeWall{t: t0}
	run, err := reports.New(reports.Options{ID: "run-golden", Name: "go test ./scenarios", Sinks: sinks, Now: wall.Now,
		Attrs: map[string]string{"go": "test"}})
	if err != nil {
		t.Fatal(err)
	}
	good := synthRun{scenario: "clean-rollout", deployment: "job-good", devices: 3, hung: -1, start: t0}
	bad := synthRun{scenario: "pre-launch-fails", deployment: "job-bad", devices: 4, fail: map[int]bool{1: true},
		hung: 3, start: t0.Add(time.Minute)}
	for _, e := range good.events() {
		run.Emit(e)
	}
	run.Finish(good.scenario, false)
	for _, e := range bad.events() {
		run.Emit(e)
	}
	run.Finish(bad.scenario, true)
	// A scenario whose environment failed: it started and never ended.
	run.Emit(event.Event{Kind: event.ScenarioStarted, Scenario: "environment-breaks", Time: t0.Add(2 * time.Minute),
		Attrs: map[string]string{"seed": "7"}})
	run.Emit(event.Event{Kind: event.Log, Scenario: "environment-breaks", Time: t0.Add(2 * time.Minute), Reason: "start service: address in use"})
	run.Finish("environment-breaks", true)
	return run
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./reports -run %s -update to write it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./reports -run %s -update rewrites it after a deliberate change)\n--- got\n%s",
			name, t.Name(), got)
	}
}

func TestGoldenEvents(t *testing.T) {
	var b bytes.Buffer
	run := goldenRun(t, reports.NewJSONLines(&b))
	if err := run.Close(); err != nil {
		t.Fatal(err)
	}
	golden(t, "events.golden.jsonl", b.Bytes())

	recs, err := reports.ReadAll(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) || r.V != reports.Version || r.Run != "run-golden" || r.Wall.IsZero() {
			t.Fatalf("record %d: seq %d v %d run %q wall %v: want seq %d, v %d, the run, a wall time", i, r.Seq, r.V, r.Run, r.Wall, i+1, reports.Version)
		}
	}
	if first, last := recs[0], recs[len(recs)-1]; first.Kind != reports.RunStarted || last.Kind != reports.RunEnded || last.Code != event.OutcomeError {
		t.Errorf("first %s, last %s/%s: want run.started … run.ended/error (the worst scenario's)", first.Kind, last.Kind, last.Code)
	}
}

func TestGoldenJUnit(t *testing.T) {
	var b bytes.Buffer
	run := goldenRun(t, reports.NewJUnit(&b))
	if err := run.Close(); err != nil {
		t.Fatal(err)
	}
	golden(t, "junit.golden.xml", b.Bytes())
	checkJUnitSchema(t, b.Bytes())

	var doc struct {
		Suites []struct {
			Name  string `xml:"name,attr"`
			Props []struct {
				Name  string `xml:"name,attr"`
				Value string `xml:"value,attr"`
			} `xml:"properties>property"`
			Case struct {
				Failure *struct {
					Message string `xml:"message,attr"`
					Text    string `xml:",chardata"`
				} `xml:"failure"`
				Error *struct {
					Message string `xml:"message,attr"`
				} `xml:"error"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Suites) != 3 {
		t.Fatalf("%d suites, want one per scenario (3)", len(doc.Suites))
	}
	good, bad, broken := doc.Suites[0], doc.Suites[1], doc.Suites[2]
	if good.Case.Failure != nil || good.Case.Error != nil {
		t.Errorf("clean-rollout: a failure or error on a passing scenario")
	}
	props := map[string]string{}
	for _, p := range bad.Props {
		props[p.Name] = p.Value
	}
	if props["seed"] != "42" || props["dialect"] != "robomaker" {
		t.Errorf("pre-launch-fails properties %v: want seed 42, dialect robomaker", props)
	}
	f := bad.Case.Failure
	if f == nil {
		t.Fatal("pre-launch-fails: no failure")
	}
	for _, want := range []string{"job job-bad is Failed", "robot-0002 IN_PROGRESS→FAILED", "code=PreLaunchFileFailure",
		"fault.injected", "robot-0004 IN_PROGRESS→TIMED_OUT", "seed 42"} {
		if !strings.Contains(f.Text, want) {
			t.Errorf("failure text lacks %q:\n%s", want, f.Text)
		}
	}
	if broken.Case.Error == nil || !strings.Contains(broken.Case.Error.Message, "stopped before its outcome was checked") {
		t.Errorf("environment-breaks: %+v, want an error saying it never finished", broken.Case)
	}
}

// checkJUnitSchema checks doc against the de-facto JUnit schema the CI viewers accept (Jenkins' junit-10.xsd,
// which GitLab's and GitHub's reporters read too): testsuites of testsuite elements with the required name,
// tests, failures and errors attributes and decimal times; testcase with a name; only the elements the schema
// allows where it allows them.
func checkJUnitSchema(t *testing.T, doc []byte) {
	t.Helper()
	allowed := map[string][]string{
		"testsuites": {"testsuite"},
		"testsuite":  {"testsuite", "properties", "testcase", "system-out", "system-err"},
		"properties": {"property"},
		"testcase":   {"skipped", "error", "failure", "system-out", "system-err"},
	}
	required := map[string][]string{
		"testsuite": {"name", "tests", "failures", "errors"},
		"testcase":  {"name"},
		"property":  {"name", "value"},
	}
	timeRe := regexp.MustCompile(`^(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]*)?$`)
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var stack []string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("junit: not well-formed XML: %v", err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			name := el.Name.Local
			if len(stack) == 0 && name != "testsuites" {
				t.Fatalf("junit: root %s, want testsuites", name)
			}
			if len(stack) > 0 {
				parent := stack[len(stack)-1]
				ok := false
				for _, c := range allowed[parent] {
					ok = ok || c == name
				}
				if !ok {
					t.Errorf("junit: <%s> inside <%s> is not in the schema", name, parent)
				}
			}
			attrs := map[string]string{}
			for _, a := range el.Attr {
				attrs[a.Name.Local] = a.Value
			}
			for _, a := range required[name] {
				if _, ok := attrs[a]; !ok {
					t.Errorf("junit: <%s> without its required %s attribute", name, a)
				}
			}
			if v, ok := attrs["time"]; ok && !timeRe.MatchString(v) && name != "testcase" {
				t.Errorf("junit: <%s time=%q> is not a schema time", name, v)
			}
			stack = append(stack, name)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		}
	}
}

func TestFinishNeverPasses(t *testing.T) {
	cases := []struct {
		name   string
		events []event.Event
		failed bool
		want   string
	}{
		{"passed and test passed", []event.Event{{Kind: event.ScenarioEnded, Code: event.OutcomePassed}}, false, event.OutcomePassed},
		{"passed but test failed after", []event.Event{{Kind: event.ScenarioEnded, Code: event.OutcomePassed}}, true, event.OutcomeFailed},
		{"failed and test failed", []event.Event{{Kind: event.ScenarioEnded, Code: event.OutcomeFailed}}, true, event.OutcomeFailed},
		{"stopped early", []event.Event{{Kind: event.ScenarioStarted}}, true, event.OutcomeError},
		{"unknown outcome code", []event.Event{{Kind: event.ScenarioEnded, Code: "fine"}}, false, event.OutcomeError},
		{"no harness outcome, test passed", []event.Event{{Kind: event.Log}}, false, event.OutcomePassed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := reports.NewSummary()
			run, err := reports.New(reports.Options{ID: "r", Sinks: []reports.Sink{sinkFunc(s.Add)}})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range c.events {
				e.Scenario = "s"
				run.Emit(e)
			}
			run.Finish("s", c.failed)
			if err := run.Close(); err != nil {
				t.Fatal(err)
			}
			if got := s.Runs[0].Scenarios[0].Outcome; got != c.want {
				t.Errorf("outcome %q, want %q", got, c.want)
			}
			if got := s.Runs[0].Outcome; got != c.want {
				t.Errorf("run outcome %q, want %q", got, c.want)
			}
		})
	}
	t.Run("never finished", func(t *testing.T) {
		s := reports.NewSummary()
		run, _ := reports.New(reports.Options{ID: "r", Sinks: []reports.Sink{sinkFunc(s.Add)}})
		run.Emit(event.Event{Kind: event.ScenarioStarted, Scenario: "s"})
		run.Close()
		if got := s.Runs[0].Scenarios[0].Outcome; got != event.OutcomeError {
			t.Errorf("a scenario the run closed on: %q, want error", got)
		}
	})
}

// sinkFunc adapts a function to a Sink.
type sinkFunc func(reports.Record)

func (f sinkFunc) Start(reports.RunInfo) error { return nil }
func (f sinkFunc) Stop() error                 { return nil }
func (f sinkFunc) Add(rs []reports.Record) {
	for _, r := range rs {
		f(r)
	}
}

func TestReaderErrors(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{"v":1,"seq":1,"run":"r","kind":"log"}` + "\n\n" + `{"v":1,"seq":2,"run":"r","kind":"log"}`, ""},
		{`not json`, "line 1: not a record"},
		{`{"v":1,"seq":1,"run":"r","kind":"log"}` + "\n" + `{"seq":2,"run":"r","kind":"log"}`, "line 2: record without a schema version"},
		{`{"v":2,"seq":1,"run":"r","kind":"log"}`, "schema version 2"},
		{`{"v":1,"run":"r","kind":"log"}`, "without a sequence number"},
		{`{"v":1,"seq":1,"run":"r"}`, "without a kind"},
		{`{"v":1,"seq":1,"kind":"log"}`, "without a run"},
		{`{"v":1,"seq":1,"run":"r","kind":"log"} {"v":1}`, "more than one JSON value"},
		{`{"v":1,"seq":1,"run":"r","kind":"log","time":"yesterday"}`, "not a record"},
		{strings.Repeat("x", reports.MaxLine+1), "longer than"},
	}
	for _, c := range cases {
		_, err := reports.ReadAll(strings.NewReader(c.in))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%.40q: %v, want no error", c.in, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%.40q: %v, want an error with %q", c.in, err, c.want)
		}
	}
}

func FuzzReader(f *testing.F) {
	golden, _ := os.ReadFile(filepath.Join("testdata", "events.golden.jsonl"))
	f.Add(golden)
	f.Add([]byte(`{"v":1,"seq":1,"run":"r","kind":"log","attrs":{"a":"b"},"percent":1e300}`))
	f.Add([]byte("{\"v\":1,\"seq\":1,\"run\":\"r\",\"kind\":\"log\"}\r\n\n{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := reports.ReadAll(bytes.NewReader(data))
		if err != nil {
			return
		}
		// What was read writes back and reads again as the same records.
		var b bytes.Buffer
		sink := reports.NewJSONLines(&b)
		sink.Start(reports.RunInfo{})
		sink.Add(recs)
		if err := sink.Stop(); err != nil {
			t.Fatalf("write back: %v", err)
		}
		again, err := reports.ReadAll(&b)
		if err != nil {
			t.Fatalf("read back: %v", err)
		}
		if len(again) != len(recs) {
			t.Fatalf("read back %d records, want %d", len(again), len(recs))
		}
		for i := range recs {
			if again[i].Seq != recs[i].Seq || again[i].Kind != recs[i].Kind || again[i].Detail != recs[i].Detail ||
				!again[i].Time.Equal(recs[i].Time) {
				t.Fatalf("record %d read back as %+v, want %+v", i, again[i], recs[i])
			}
		}
	})
}

func TestFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString(`{"v":1,"seq":1,"run":"r","kind":"run.started"}` + "\n" + `{"v":1,"seq":2,"run":"r","kind":"lo`)
	got := make(chan reports.Record, 10)
	done := make(chan error, 1)
	go func() {
		done <- reports.Follow(t.Context(), path, 5*time.Millisecond, func(r reports.Record) { got <- r })
	}()
	wait := func(seq uint64) {
		t.Helper()
		select {
		case r := <-got:
			if r.Seq != seq {
				t.Fatalf("record %d, want %d", r.Seq, seq)
			}
		case err := <-done:
			t.Fatalf("Follow returned %v before record %d", err, seq)
		case <-time.After(10 * time.Second):
			t.Fatalf("no record %d", seq)
		}
	}
	wait(1)
	select {
	case r := <-got:
		t.Fatalf("record %d delivered while its line is still being written", r.Seq)
	default:
	}
	f.WriteString(`g"}` + "\n")
	wait(2)
	f.WriteString(`{"v":1,"seq":3,"run":"r","kind":"run.ended"}` + "\n")
	wait(3)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Follow: %v, want nil once the run ended", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Follow goes on after the run ended")
	}
}

func TestHTMLSelfContained(t *testing.T) {
	var b bytes.Buffer
	run := goldenRun(t, reports.NewHTML(&b))
	run.Emit(event.Event{Kind: event.ConsoleLine, Scenario: "clean-rollout", Device: "robot-0001",
		Reason: `</script><script>alert(1)</script>`})
	if err := run.Close(); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if strings.Count(page, "</script>") != 2 {
		t.Errorf("the page has %d </script>, want 2 (the records' and the code's): a record closed its element", strings.Count(page, "</script>"))
	}
	for _, bad := range []string{`src="http`, `href="http`, `@import`, `url(http`, "fetch("} {
		if strings.Contains(page, bad) {
			t.Errorf("the report fetches from outside (%q)", bad)
		}
	}
	if !strings.Contains(page, "default-src 'none'") {
		t.Error("the report has no Content-Security-Policy forbidding fetches")
	}
	if !strings.Contains(page, `"scenario":"pre-launch-fails"`) || !strings.Contains(page, `data-mode="report"`) {
		t.Error("the report does not embed the records in report mode")
	}
}

func TestJUnitHostileText(t *testing.T) {
	var b bytes.Buffer
	run, _ := reports.New(reports.Options{ID: "r", Sinks: []reports.Sink{reports.NewJUnit(&b)}})
	run.Emit(event.Event{Kind: event.ScenarioEnded, Scenario: "s<&>\"", Code: event.OutcomeFailed,
		Reason: "]]> then \x00\x1b[31m red \xff and </failure>"})
	if err := run.Close(); err != nil {
		t.Fatal(err)
	}
	checkJUnitSchema(t, b.Bytes())
	var doc struct {
		Suite struct {
			Case struct {
				Failure struct {
					Text string `xml:",chardata"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, b.Bytes())
	}
	if !strings.Contains(doc.Suite.Case.Failure.Text, "]]> then") || !strings.Contains(doc.Suite.Case.Failure.Text, "</failure>") {
		t.Errorf("failure text %q lost the message", doc.Suite.Case.Failure.Text)
	}
}
