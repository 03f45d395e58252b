package appconfig

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
)

func readSpec(t *testing.T, name string) Spec {
	t.Helper()
	specs, err := ReadSpecs(os.DirFS("../../fixtures/scenarios/appconfig"), ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no scenario %s", name)
	return Spec{}
}

// TestSameSeedSameRun: a scenario run twice with one seed gives one digest; the lab leaves no goroutine behind.
func TestSameSeedSameRun(t *testing.T) {
	agenttest.LeakTest(t)
	s := readSpec(t, "appconfig-alarm-during-deploy")
	var digests []string
	for range 2 {
		t.Run("run", func(t *testing.T) { digests = append(digests, Run(t, s, 7).Digest) })
	}
	if digests[0] != digests[1] {
		t.Errorf("digests %v differ", digests)
	}
}

// failing records failures instead of failing the test, for runs that must fail.
type failing struct {
	testing.TB
	errors []string
}

func (f *failing) Errorf(format string, args ...any) {
	f.errors = append(f.errors, strings.TrimSpace(sprintf(format, args...)))
}

// TestWrongExpectationsFail: a scenario whose expectations do not hold fails, naming what differs — a device
// that holds the previous configuration is never reported as holding the new one.
func TestWrongExpectationsFail(t *testing.T) {
	s := readSpec(t, "appconfig-alarm-during-deploy")
	s.Expect.State = "COMPLETE"
	s.Expect.Devices = "new"
	f := &failing{TB: t}
	Run(f, s, 7)
	joined := strings.Join(f.errors, "\n")
	if !strings.Contains(joined, "deployment ROLLED_BACK, want COMPLETE") ||
		!strings.Contains(joined, `device-0001 holds "v1"`) {
		t.Errorf("failures:\n%s", joined)
	}
}

func TestSpecValidate(t *testing.T) {
	good := Spec{Name: "n", Devices: 1, Content: "{}", Strategy: StrategySpec{Predefined: "AppConfig.AllAtOnce"},
		Expect: Expect{State: "COMPLETE", Devices: "new"}}
	if err := good.Validate(); err != nil {
		t.Fatalf("a good spec: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Spec)
		want string
	}{
		{"no name", func(s *Spec) { s.Name = "" }, "name"},
		{"no devices", func(s *Spec) { s.Devices = 0 }, "devices"},
		{"no strategy", func(s *Spec) { s.Strategy = StrategySpec{} }, "strategy"},
		{"unknown fault", func(s *Spec) { s.Faults = []Fault{{Fault: "power-cut", Devices: []string{"d"}, Code: 1}} }, "faults[0]"},
		{"unknown step", func(s *Spec) { s.Steps = []Step{{Do: "dance"}} }, "steps[0].do"},
		{"steps out of order", func(s *Spec) {
			s.Steps = []Step{{At: Duration(time.Minute), Do: "stop"}, {Do: "stop"}}
		}, "steps[1].at"},
		{"unknown devices expectation", func(s *Spec) { s.Expect.Devices = "some" }, "expect.devices"},
		{"unknown device expectation", func(s *Spec) { s.Expect.Except = map[string]string{"device-0001": "old"} }, "expect.except[device-0001]"},
		{"another dialect", func(s *Spec) { s.Dialect = "robomaker" }, "dialect"},
		{"nothing expected", func(s *Spec) { s.Expect.State = "" }, "expect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := good
			tc.edit(&s)
			if err := s.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one about %s", err, tc.want)
			}
		})
	}
}

func FuzzReadSpecs(f *testing.F) {
	data, err := os.ReadFile("../../fixtures/scenarios/appconfig/stop.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(`{"name":"x","devices":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fsys := mapFS{"s.json": b}
		specs, err := ReadSpecs(fsys, ".")
		if err == nil {
			for _, s := range specs {
				if verr := s.Validate(); verr != nil {
					t.Fatalf("ReadSpecs returned a spec that does not validate: %v", verr)
				}
			}
		}
	})
}

// TestFaultsAreWhatShows runs the scenarios of each fault without it: what the fault showed is gone, so it is the
// fault, not the scenario, that made the devices keep their configuration or the deployment roll back when it did.
func TestFaultsAreWhatShows(t *testing.T) {
	for _, tc := range []struct {
		scenario string
		noFault  func(*Spec)
	}{
		{"appconfig-apply-hook-exits", func(s *Spec) { s.Faults, s.Expect.Except = nil, nil }},
		{"appconfig-device-stops-polling", func(s *Spec) { s.Steps, s.Expect.Except = nil, nil }},
		{"appconfig-metric-delay", func(s *Spec) {
			s.MetricDelay = 0
			s.Expect.EndedAfter, s.Expect.EndedBefore = Duration(4*time.Minute), Duration(5*time.Minute)
		}},
		{"appconfig-alarm-during-deploy", func(s *Spec) {
			s.Steps = s.Steps[:1]
			s.Expect = Expect{State: "COMPLETE", Environment: "READY_FOR_DEPLOYMENT", Devices: "new"}
		}},
		{"appconfig-bad-config-alarm-rolls-back", func(s *Spec) {
			s.Faults = nil
			s.Expect = Expect{State: "COMPLETE", Devices: "new"}
		}},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			s := readSpec(t, tc.scenario)
			tc.noFault(&s)
			if err := s.Validate(); err != nil {
				t.Fatal(err)
			}
			Run(t, s, 7)
		})
	}
}

// TestReadSpecDialect: a scenario file says it is AppConfig's; one that does not, or names another dialect, is
// refused, saying so; every fixture says it.
func TestReadSpecDialect(t *testing.T) {
	const body = `"name":"n","devices":1,"content":"{}","strategy":{"predefined":"AppConfig.AllAtOnce"},` +
		`"expect":{"state":"COMPLETE","devices":"new"}}`
	if s, err := ReadSpec(strings.NewReader(`{"dialect":"appconfig",` + body)); err != nil || s.Dialect != Dialect {
		t.Fatalf("a file that says appconfig: %+v, %v", s, err)
	}
	for _, head := range []string{`{`, `{"dialect":"robomaker",`, `{"dialect":"AppConfig",`} {
		if _, err := ReadSpec(strings.NewReader(head + body)); err == nil || !strings.Contains(err.Error(), "dialect") {
			t.Errorf("%s…: %v, want an error about the dialect", head, err)
		}
	}
	if _, err := ReadSpec(strings.NewReader(`{"dialect":"appconfig",` + body + ` {}`)); err == nil {
		t.Error("data after the scenario was read")
	}
	specs, err := ReadSpecs(os.DirFS("../../fixtures/scenarios/appconfig"), ".")
	if err != nil || len(specs) < 12 {
		t.Fatalf("fixtures: %d, %v", len(specs), err)
	}
}
