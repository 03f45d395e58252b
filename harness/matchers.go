package harness

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/onsi/gomega/format"
	"github.com/onsi/gomega/types"

	"github.com/fleetlab/fleetlab/sim/event"
)

// The matchers take a Job or a Robot (or pointers to them) — what Env.Job and Env.Robot return, so they work
// with Eventually as well as Expect — and ContainEvents also takes a []event.Event or a *Stream. Their failure
// messages show what was found and the job's or robot's timeline.

// HaveStatus matches a job or a robot in status (RoboMaker's names: "Succeeded", "InSync", "NoResponse", …).
func HaveStatus(status string) types.GomegaMatcher {
	return &fieldMatcher{what: "status", want: status, get: func(a any) (string, error) {
		switch v := a.(type) {
		case Job:
			return v.Status, nil
		case Robot:
			return v.Status, nil
		}
		return "", errType(a, "a Job or a Robot")
	}}
}

// HaveFailureCode matches a job or a robot whose failure code is code ("" for none).
func HaveFailureCode(code string) types.GomegaMatcher {
	return &fieldMatcher{what: "failure code", want: code, get: func(a any) (string, error) {
		switch v := a.(type) {
		case Job:
			return v.FailureCode, nil
		case Robot:
			return v.FailureCode, nil
		}
		return "", errType(a, "a Job or a Robot")
	}}
}

// HaveStep matches a robot whose last step reached is step.
func HaveStep(step string) types.GomegaMatcher {
	return &fieldMatcher{what: "step reached", want: step, get: func(a any) (string, error) {
		if r, ok := a.(Robot); ok {
			return r.Step, nil
		}
		return "", errType(a, "a Robot")
	}}
}

// HaveRobotCounts matches a job whose robots are in exactly these numbers by status; statuses not named must
// have none.
func HaveRobotCounts(counts map[string]int) types.GomegaMatcher {
	want := map[string]int{}
	for k, v := range counts {
		if v != 0 {
			want[k] = v
		}
	}
	return &fieldMatcher{what: "robots by status", want: countsString(want), get: func(a any) (string, error) {
		if j, ok := a.(Job); ok {
			return countsString(j.Counts()), nil
		}
		return "", errType(a, "a Job")
	}}
}

func countsString(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

// HaveRobot matches a job with a robot named name that m matches.
func HaveRobot(name string, m types.GomegaMatcher) types.GomegaMatcher {
	return &robotMatcher{name: name, m: m}
}

// ContainEvents matches events that contain the patterns as an ordered subsequence. A pattern is an event
// whose non-zero fields must all be equal (Reason matches as a substring); Seq and Time are ignored. It takes
// a []event.Event, a *Stream, or the timeline of a Job or a Robot.
func ContainEvents(patterns ...event.Event) types.GomegaMatcher {
	return &eventsMatcher{patterns: patterns}
}

// Matches reports whether e has every non-zero field of pattern (Reason as a substring; Seq and Time ignored).
func Matches(e, pattern event.Event) bool {
	eq := func(got, want string) bool { return want == "" || got == want }
	return eq(string(e.Kind), string(pattern.Kind)) && eq(e.Deployment, pattern.Deployment) &&
		eq(e.Device, pattern.Device) && eq(e.From, pattern.From) && eq(e.To, pattern.To) &&
		eq(e.Step, pattern.Step) && eq(e.Code, pattern.Code) && eq(e.Fault, pattern.Fault) &&
		eq(e.Scenario, pattern.Scenario) && strings.Contains(e.Reason, pattern.Reason)
}

// deref turns pointers to the matchable types into values.
func deref(a any) any {
	switch v := a.(type) {
	case *Job:
		if v != nil {
			return *v
		}
	case *Robot:
		if v != nil {
			return *v
		}
	}
	return a
}

func errType(a any, want string) error {
	return fmt.Errorf("expected %s, got %T", want, a)
}

// timelineOf returns the timeline to show in a failure message.
func timelineOf(a any) string {
	switch v := deref(a).(type) {
	case Job:
		return fmt.Sprintf("%s\ntimeline:\n%s", v, Timeline(v.Timeline))
	case Robot:
		return fmt.Sprintf("%s\ntimeline:\n%s", v, Timeline(v.Timeline))
	case []event.Event:
		return "events:\n" + Timeline(v)
	case *Stream:
		return "events:\n" + Timeline(v.Events())
	}
	return format.Object(a, 1)
}

// fieldMatcher compares one string field of its actual.
type fieldMatcher struct {
	what, want string
	get        func(any) (string, error)
	got        string
}

func (m *fieldMatcher) Match(actual any) (bool, error) {
	got, err := m.get(deref(actual))
	if err != nil {
		return false, err
	}
	m.got = got
	return got == m.want, nil
}

func (m *fieldMatcher) FailureMessage(actual any) string {
	return fmt.Sprintf("expected %s %q, got %q\n%s", m.what, m.want, m.got, timelineOf(actual))
}

func (m *fieldMatcher) NegatedFailureMessage(actual any) string {
	return fmt.Sprintf("expected %s not to be %q\n%s", m.what, m.want, timelineOf(actual))
}

// robotMatcher applies a matcher to one robot of a job.
type robotMatcher struct {
	name  string
	m     types.GomegaMatcher
	robot Robot
	found bool
}

func (m *robotMatcher) Match(actual any) (bool, error) {
	j, ok := deref(actual).(Job)
	if !ok {
		return false, errType(actual, "a Job")
	}
	m.robot, m.found = j.Robot(m.name)
	if !m.found {
		return false, nil
	}
	return m.m.Match(m.robot)
}

func (m *robotMatcher) FailureMessage(actual any) string {
	if !m.found {
		return fmt.Sprintf("expected robot %s in the job\n%s", m.name, timelineOf(actual))
	}
	return fmt.Sprintf("robot %s: %s", m.name, m.m.FailureMessage(m.robot))
}

func (m *robotMatcher) NegatedFailureMessage(actual any) string {
	if !m.found {
		return fmt.Sprintf("robot %s is not in the job\n%s", m.name, timelineOf(actual))
	}
	return fmt.Sprintf("robot %s: %s", m.name, m.m.NegatedFailureMessage(m.robot))
}

// eventsMatcher finds an ordered subsequence.
type eventsMatcher struct {
	patterns []event.Event
	matched  int // how many patterns matched, in order
}

func (m *eventsMatcher) Match(actual any) (bool, error) {
	var evs []event.Event
	switch v := deref(actual).(type) {
	case []event.Event:
		evs = v
	case *Stream:
		evs = v.Events()
	case Job:
		evs = v.Timeline
	case Robot:
		evs = v.Timeline
	default:
		return false, errType(actual, "events, a *Stream, a Job or a Robot")
	}
	m.matched = 0
	for _, e := range evs {
		if m.matched < len(m.patterns) && Matches(e, m.patterns[m.matched]) {
			m.matched++
		}
	}
	return m.matched == len(m.patterns), nil
}

func (m *eventsMatcher) FailureMessage(actual any) string {
	return fmt.Sprintf("expected the events in order; found the first %d, then no event matching %s\n%s",
		m.matched, patternString(m.patterns[m.matched]), timelineOf(actual))
}

func (m *eventsMatcher) NegatedFailureMessage(actual any) string {
	return fmt.Sprintf("expected the events not to contain, in order, %d patterns\n%s", len(m.patterns), timelineOf(actual))
}

// patternString renders a pattern's set fields.
func patternString(p event.Event) string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("kind", string(p.Kind))
	add("deployment", p.Deployment)
	add("device", p.Device)
	add("from", p.From)
	add("to", p.To)
	add("step", p.Step)
	add("code", p.Code)
	add("fault", p.Fault)
	add("reason~", p.Reason)
	return "{" + strings.Join(parts, " ") + "}"
}
