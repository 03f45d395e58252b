package reports

import (
	"encoding/xml"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/fleetlab/fleetlab/sim/event"
)

// JUnit is the sink that writes a JUnit XML file at Stop, in the de-facto schema the CI viewers read (Jenkins'
// junit and xunit plugins, GitLab, GitHub test reporters): a <testsuite> per scenario, with the seed, the
// dialects and the backend as its <properties> (the schema allows properties on suites, not on test cases),
// holding one <testcase> named after the scenario; a failed scenario's <failure> (an errored one's <error>)
// carries what went wrong as its message and an excerpt of the timeline as its text.
type JUnit struct {
	w    io.Writer
	path string // written through a temporary file and renamed, so a half-written file is never read

	mu      sync.Mutex
	summary *Summary
}

var _ Sink = (*JUnit)(nil)

// NewJUnit returns a sink that writes the JUnit XML to w at Stop.
func NewJUnit(w io.Writer) *JUnit { return &JUnit{w: w, summary: NewSummary()} }

// CreateJUnit returns a sink that writes the JUnit XML file at path at Stop.
func CreateJUnit(path string) *JUnit { return &JUnit{path: path, summary: NewSummary()} }

// Start implements Sink.
func (j *JUnit) Start(RunInfo) error { return nil }

// Add implements Sink.
func (j *JUnit) Add(records []Record) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, r := range records {
		j.summary.Add(r)
	}
}

// Stop implements Sink: it writes the file.
func (j *JUnit) Stop() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.path == "" {
		return WriteJUnit(j.w, j.summary)
	}
	return writeFileAtomic(j.path, func(w io.Writer) error { return WriteJUnit(w, j.summary) })
}

// The JUnit XML elements, as the de-facto schema names them.
type (
	junitSuites struct {
		XMLName  xml.Name     `xml:"testsuites"`
		Name     string       `xml:"name,attr"`
		Tests    int          `xml:"tests,attr"`
		Failures int          `xml:"failures,attr"`
		Errors   int          `xml:"errors,attr"`
		Time     string       `xml:"time,attr"`
		Suites   []junitSuite `xml:"testsuite"`
	}
	junitSuite struct {
		Name       string          `xml:"name,attr"`
		Tests      int             `xml:"tests,attr"`
		Failures   int             `xml:"failures,attr"`
		Errors     int             `xml:"errors,attr"`
		Skipped    int             `xml:"skipped,attr"`
		Time       string          `xml:"time,attr"`
		Timestamp  string          `xml:"timestamp,attr,omitempty"`
		ID         int             `xml:"id,attr"`
		Package    string          `xml:"package,attr,omitempty"`
		Properties []junitProperty `xml:"properties>property"`
		Cases      []junitCase     `xml:"testcase"`
	}
	junitProperty struct {
		Name  string `xml:"name,attr"`
		Value string `xml:"value,attr"`
	}
	junitCase struct {
		Name      string        `xml:"name,attr"`
		Classname string        `xml:"classname,attr"`
		Time      string        `xml:"time,attr"`
		Failure   *junitProblem `xml:"failure,omitempty"`
		Error     *junitProblem `xml:"error,omitempty"`
		SystemOut *junitText    `xml:"system-out,omitempty"`
	}
	junitProblem struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr"`
		Text    string `xml:",cdata"`
	}
	junitText struct {
		Text string `xml:",cdata"`
	}
)

// WriteJUnit writes the summary's scenarios as JUnit XML.
func WriteJUnit(w io.Writer, s *Summary) error {
	doc := junitSuites{Name: "fleetlab"}
	var total float64
	for _, run := range s.Runs {
		if run.Name != "" && len(s.Runs) == 1 {
			doc.Name = run.Name
		}
		for _, sc := range run.Scenarios {
			secs := sc.Duration().Seconds()
			total += secs
			suite := junitSuite{Name: sc.Name, Tests: 1, Time: junitTime(secs), ID: len(doc.Suites),
				Package: "fleetlab"}
			if !sc.First.IsZero() {
				suite.Timestamp = sc.First.UTC().Format("2006-01-02T15:04:05")
			}
			props := map[string]string{"run": run.ID}
			maps.Copy(props, sc.Attrs)
			if ds := sc.Dialects(); len(ds) > 0 {
				props["dialect"] = strings.Join(ds, ",")
			}
			for _, k := range slices.Sorted(maps.Keys(props)) {
				suite.Properties = append(suite.Properties, junitProperty{Name: k, Value: props[k]})
			}
			c := junitCase{Name: sc.Name, Classname: classname(sc), Time: junitTime(secs), SystemOut: &junitText{xmlText(systemOut(sc))}}
			switch sc.Outcome {
			case event.OutcomePassed:
			case event.OutcomeFailed:
				c.Failure = &junitProblem{Message: firstLine(sc.Detail, "the scenario failed"), Type: "product failure",
					Text: xmlText(problemText(sc))}
				suite.Failures, doc.Failures = 1, doc.Failures+1
			default: // error, or a scenario that never ended: never a pass
				c.Error = &junitProblem{Message: firstLine(sc.Detail, "the scenario did not finish"),
					Type: "infrastructure", Text: xmlText(problemText(sc))}
				suite.Errors, doc.Errors = 1, doc.Errors+1
			}
			suite.Cases = []junitCase{c}
			doc.Tests++
			doc.Suites = append(doc.Suites, suite)
		}
	}
	doc.Time = junitTime(total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	return nil
}

// xmlText replaces what XML 1.0 cannot hold even in CDATA (most control characters, invalid UTF-8: a console
// line may carry anything) with U+FFFD.
func xmlText(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return r
		case r < 0x20, r == 0xFFFE, r == 0xFFFF, r >= 0xD800 && r <= 0xDFFF:
			return '\uFFFD'
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

// classname groups test cases in the viewers by dialect: "fleetlab.robomaker".
func classname(sc *ScenarioSummary) string {
	if ds := sc.Dialects(); len(ds) > 0 {
		return "fleetlab." + strings.Join(ds, "+")
	}
	return "fleetlab"
}

// junitTime formats seconds as the schema's time: digits, a point, three decimals.
func junitTime(secs float64) string { return fmt.Sprintf("%.3f", max(secs, 0)) }

func firstLine(s, fallback string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if s == "" {
		return fallback
	}
	return s
}

// problemText is a failure's text: every finding, the seed to rerun with, and the timeline excerpt.
func problemText(sc *ScenarioSummary) string {
	var b strings.Builder
	if sc.Detail != "" {
		b.WriteString(sc.Detail)
		b.WriteString("\n")
	}
	if seed := sc.Attrs["seed"]; seed != "" {
		fmt.Fprintf(&b, "seed %s\n", seed)
	}
	b.WriteString("\ntimeline (service clock):\n")
	b.WriteString(TimelineText(sc.Excerpt, sc.TimeFirst))
	if sc.Omitted > 0 {
		fmt.Fprintf(&b, "… %d more notable events, and every event in events.jsonl\n", sc.Omitted)
	}
	return b.String()
}

// systemOut is a test case's output: each deployment and how its devices ended.
func systemOut(sc *ScenarioSummary) string {
	var b strings.Builder
	if sc.Description != "" {
		fmt.Fprintf(&b, "%s\n", sc.Description)
	}
	for _, d := range sc.Deployments {
		fmt.Fprintf(&b, "deployment %s", d.ID)
		if d.Dialect != "" {
			fmt.Fprintf(&b, " (%s)", d.Dialect)
		}
		fmt.Fprintf(&b, ": %s; devices: %s\n", dash(d.Status), dash(d.CountsString()))
	}
	fmt.Fprintf(&b, "%d events\n", sc.Records)
	return b.String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// atomicFile is a file written under a temporary name in its directory and renamed into place once complete,
// so that a reader never sees it half written.
type atomicFile struct {
	*os.File
	path string
}

func createAtomic(path string) (*atomicFile, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", filepath.Base(path), err)
	}
	return &atomicFile{File: f, path: path}, nil
}

// commit closes the file and puts it in place.
func (f *atomicFile) commit() error {
	err := f.Close()
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), f.path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", filepath.Base(f.path), err)
	}
	return nil
}

// abort closes and removes the file.
func (f *atomicFile) abort() {
	f.Close()
	os.Remove(f.Name())
}

// writeFileAtomic writes the file at path through an atomicFile.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	f, err := createAtomic(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.abort()
		return err
	}
	return f.commit()
}
