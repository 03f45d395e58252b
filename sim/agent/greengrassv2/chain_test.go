package greengrassv2_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
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

// TestMain fails the run when any test left an agent, notify, HTTP or process goroutine behind.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := agenttest.CheckGoroutines(10 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

const (
	R   = gg.StepResolving
	D   = gg.StepDownloading
	I   = gg.StepInstalling
	S   = gg.StepStarting
	Fin = gg.StepFinished
	RB  = agent.StateRollingBack
)

func failed(code string) string { return agent.StateFailed + "(" + code + ")" }

var cleanChain = []string{R, D, I, S, Fin}

const bucket = "components"

// libData is the artifact of Lib 1.1.0; its startup step appends it to the log.
var libData = []byte("lib-data")

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// core is one core device under test: an agent of the OS family over the fake device API, with a device
// directory that survives its restarts, and a log every component script appends a line to.
type core struct {
	t     *testing.T
	svc   *agenttest.Service
	srv   *httptest.Server
	cat   *gg.Catalog
	dir   string
	log   string
	rec   *recorder
	wrap  func(agent.Executors) agent.Executors // the agent's Options.Wrap
	kinds []agent.Kind                          // the agent's Options.Kinds (nil: the kind over cat)
	// transport is the agent's transport (nil: HTTP to srv).
	transport agent.Transport
	a         *agent.Agent
	cancel    context.CancelFunc
	done      chan error
}

func newCore(t *testing.T) *core {
	t.Helper()
	svc := agenttest.New(nil)
	srv := httptest.NewServer(svc.Handler())
	c := &core{t: t, svc: svc, srv: srv, cat: &gg.Catalog{}, dir: t.TempDir(), rec: &recorder{}}
	c.log = filepath.Join(t.TempDir(), "log")
	t.Cleanup(func() {
		c.stop()
		svc.Close()
		srv.Close()
	})
	c.addRecipes()
	return c
}

// step is a lifecycle step that appends "<component> <step>" and then what extra prints to the log.
func (c *core) step(component, step, extra string) map[string]any {
	script := fmt.Sprintf(`echo "%s %s%s" >> "$LOG"`, component, step, extra)
	return map[string]any{"Script": script, "Setenv": map[string]any{"LOG": c.log}}
}

func (c *core) recipe(name, version string, deps map[string]string, defaults map[string]any,
	lifecycle map[string]any, arts ...ggwire.Artifact) *ggwire.Recipe {
	r := &ggwire.Recipe{RecipeFormatVersion: ggwire.RecipeFormatVersion, ComponentName: name, ComponentVersion: version,
		Manifests: []ggwire.Manifest{{Platform: ggwire.Platform{"os": "linux"}, Lifecycle: lifecycle, Artifacts: arts}}}
	if len(deps) > 0 {
		r.ComponentDependencies = map[string]ggwire.Dependency{}
		for d, req := range deps {
			r.ComponentDependencies[d] = ggwire.Dependency{VersionRequirement: req}
		}
	}
	if defaults != nil {
		r.ComponentConfiguration = &ggwire.Configuration{DefaultConfiguration: defaults}
	}
	return r
}

// addRecipes fills the catalog:
//
//	Base 1.0.0    defaults port 1000, host localhost; prints its configuration, copies its config file
//	App 1.0.0     depends on Lib ^1.0.0
//	Lib 1.0.0, 1.1.0  1.1.0 has an artifact its startup prints
//	Bad 1.0.0     install exits 2
//	Flaky 1.0.0   install fails twice, then succeeds
//	Corrupt 1.0.0 an artifact whose digest is another content's
//	Gone 1.0.0    an artifact the store does not have
//	Svc 1.0.0     run exits 1
//	Daemon 1.0.0  depends on Svc; run exits 0
//	Orphan 1.0.0  depends on Missing, which has no version
//	Needy 1.0.0   depends on Lib ^2.0.0
func (c *core) addRecipes() {
	cfg := " {configuration:/port} {configuration:/host}"
	base := map[string]any{
		"install": map[string]any{"Script": `echo "Base install` + cfg + `" >> "$LOG" && cp "$GG_COMPONENT_CONFIG" "$LOG.Base.json"`,
			"Setenv": map[string]any{"LOG": c.log}, "Timeout": 30},
		"startup":  c.step("Base", "startup", cfg),
		"shutdown": c.step("Base", "shutdown", ""),
	}
	c.svc.PutObject(bucket, "lib/1.1.0/lib.txt", libData)
	c.svc.PutObject(bucket, "corrupt/data.bin", []byte("what the store holds"))
	flaky := `n=$(cat "$LOG.flaky" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$LOG.flaky"; echo "Flaky install $n" >> "$LOG"; [ $n -ge 3 ]`
	recipes := []*ggwire.Recipe{
		c.recipe("Base", "1.0.0", nil, map[string]any{"port": 1000, "host": "localhost"}, base),
		c.recipe("App", "1.0.0", map[string]string{"Lib": "^1.0.0"}, nil,
			map[string]any{"install": c.step("App", "install", ""), "startup": c.step("App", "startup", "")}),
		c.recipe("Lib", "1.0.0", nil, nil, map[string]any{"install": c.step("Lib", "install", " old")}),
		c.recipe("Lib", "1.1.0", nil, nil, map[string]any{
			"install": c.step("Lib", "install", ""),
			"startup": map[string]any{"Script": `cat {artifacts:path}/lib.txt >> "$LOG" && echo >> "$LOG"`, "Setenv": map[string]any{"LOG": c.log}},
		}, ggwire.Artifact{URI: "s3://" + bucket + "/lib/1.1.0/lib.txt", Digest: digest(libData), Algorithm: "SHA-256"}),
		c.recipe("Bad", "1.0.0", nil, nil, map[string]any{"install": map[string]any{
			"Script": `echo "Bad install" >> "$LOG"; exit 2`, "Setenv": map[string]any{"LOG": c.log}}}),
		c.recipe("Flaky", "1.0.0", nil, nil, map[string]any{"install": map[string]any{
			"Script": flaky, "Setenv": map[string]any{"LOG": c.log}}}),
		c.recipe("Corrupt", "1.0.0", nil, nil, map[string]any{"install": c.step("Corrupt", "install", "")},
			ggwire.Artifact{URI: "s3://" + bucket + "/corrupt/data.bin", Digest: digest([]byte("what the recipe was made with"))}),
		c.recipe("Gone", "1.0.0", nil, nil, map[string]any{"install": c.step("Gone", "install", "")},
			ggwire.Artifact{URI: "s3://" + bucket + "/gone/data.bin"}),
		c.recipe("Svc", "1.0.0", nil, nil, map[string]any{"run": map[string]any{
			"Script": `echo "Svc run" >> "$LOG"; exit 1`, "Setenv": map[string]any{"LOG": c.log}}}),
		c.recipe("Daemon", "1.0.0", map[string]string{"Svc": "1.0.0"}, nil, map[string]any{"run": c.step("Daemon", "run", "")}),
		c.recipe("Orphan", "1.0.0", map[string]string{"Missing": "^1.0.0"}, nil, nil),
		c.recipe("Needy", "1.0.0", map[string]string{"Lib": "^2.0.0"}, nil, nil),
	}
	if err := c.cat.Add(recipes...); err != nil {
		c.t.Fatal(err)
	}
}

// start starts the agent: with the kinds (default: the kind over the catalog) and transport (default: HTTP to
// the fake) of the core.
func (c *core) start() {
	c.t.Helper()
	ks := c.kinds
	if ks == nil {
		ks = []agent.Kind{gg.Kind{Resolver: c.cat}}
	}
	a, err := agent.New(agent.Options{
		Thing: "core-1", Kinds: ks, Architecture: "amd64", Seed: 7,
		Dir: c.dir, Endpoint: c.srv.URL, Executors: agent.Executors{Transport: c.transport},
		RetryBase: 2 * time.Millisecond, RetryMax: 20 * time.Millisecond,
		PollMin: 20 * time.Millisecond, PollMax: 500 * time.Millisecond,
		RequestTimeout: 5 * time.Second, ScriptTimeout: 20 * time.Second, StopGrace: 5 * time.Second,
		OnEvent: c.rec.add, Wrap: c.wrap,
	})
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.a, c.cancel, c.done = a, cancel, make(chan error, 1)
	go func() { c.done <- a.Run(ctx) }()
}

// stop ends the agent like a power cut.
func (c *core) stop() {
	c.t.Helper()
	if c.a == nil {
		return
	}
	c.cancel()
	if err := <-c.done; err != nil {
		c.t.Errorf("Run: %v", err)
	}
	if err := c.a.Close(); err != nil {
		c.t.Errorf("Close: %v", err)
	}
	c.a = nil
}

func (c *core) restart() {
	c.t.Helper()
	c.stop()
	c.rec = &recorder{}
	c.start()
}

// deployment is a job-2 (or job-1) document: root components with their configuration updates.
type deployment struct {
	roots  map[string]string
	update map[string]*ggwire.ConfigurationUpdate
	policy string
}

func (c *core) enqueue(job string, d deployment) {
	doc := ggwire.Document{DeploymentID: "dep-" + job, TargetARN: "arn:aws:iot:us-east-1:123456789012:thing/core-1",
		Components: map[string]ggwire.Component{}, FailureHandlingPolicy: d.policy}
	for name, v := range d.roots {
		doc.Components[name] = ggwire.Component{Version: v, ConfigurationUpdate: d.update[name]}
	}
	c.svc.Enqueue("core-1", job, agenttest.Doc(ggwire.Kind, doc))
}

func (c *core) waitEnded(job string) wire.JobExecution {
	c.t.Helper()
	var e wire.JobExecution
	if !agenttest.Eventually(30*time.Second, func() bool {
		var found bool
		e, found = c.svc.Execution("core-1", job)
		if !found || e.Status == wire.StatusQueued || e.Status == wire.StatusInProgress {
			return false
		}
		st, err := c.a.Executors().State.Load()
		return err == nil && (st.InFlight == nil || st.InFlight.JobID != job)
	}) {
		c.t.Fatalf("job %s did not end: %+v, chain %q", job, e, c.rec.chain(job))
	}
	return e
}

func (c *core) logLines() []string {
	b, err := os.ReadFile(c.log)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		c.t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// active returns the job of the component set the device runs and the set's version.
func (c *core) active() (string, agent.Version) {
	c.t.Helper()
	ex := c.a.Executors()
	id, err := ex.Versions.Active()
	if err != nil {
		c.t.Fatal(err)
	}
	v, err := ex.Versions.Open(id)
	if err != nil {
		c.t.Fatalf("active version %q: %v", id, err)
	}
	return agent.VersionJob(id), v
}

func (c *core) config(v agent.Version, name string) map[string]any {
	c.t.Helper()
	cfg, err := gg.Configuration(v, name)
	if err != nil {
		c.t.Fatal(err)
	}
	return cfg
}

// job1 is the deployment every chain test starts from: Base with port 8080.
var job1 = deployment{roots: map[string]string{"Base": "1.0.0"},
	update: map[string]*ggwire.ConfigurationUpdate{"Base": {Merge: `{"port":8080}`}}}

// deployed runs job-1 on a fresh core and returns the core with its log so far.
func deployed(t *testing.T) (*core, int) {
	c := newCore(t)
	c.start()
	c.enqueue("job-1", job1)
	if e := c.waitEnded("job-1"); e.Status != wire.StatusSucceeded {
		t.Fatalf("job-1 ended %s %v, chain %q", e.Status, e.StatusDetails, c.rec.chain("job-1"))
	}
	if got, want := c.logLines(), []string{"Base install 8080 localhost", "Base startup 8080 localhost"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("job-1 log %q, want %q", got, want)
	}
	return c, len(c.logLines())
}

// TestChains runs job-2 through the whole state machine after job-1 for the clean path and every failure.
func TestChains(t *testing.T) {
	base9090 := map[string]*ggwire.ConfigurationUpdate{"Base": {Merge: `{"port":9090}`}}
	brokenStack := "DEPLOYMENT_FAILURE,COMPONENT_UPDATE_ERROR,COMPONENT_BROKEN"
	tests := []struct {
		name   string
		d      deployment
		want   []string
		log    []string // lines job-2 appended
		active string   // the job whose set the device runs at the end
		// set is the active set's components in start order, config Base's configuration in it (nil: none).
		set    []string
		config map[string]any
		status string // detailed-deployment-status
		stack  string
	}{
		{name: "two components with a dependency", d: deployment{roots: map[string]string{"App": "1.0.0"}},
			want: cleanChain, log: []string{"Base shutdown", "Lib install", "App install", "lib-data", "App startup"},
			active: "job-2", set: []string{"Lib", "App"}, status: gg.StatusSuccessful},
		{name: "configuration reset and merge", d: deployment{roots: map[string]string{"Base": "1.0.0"},
			update: map[string]*ggwire.ConfigurationUpdate{"Base": {Reset: []string{"/port"}, Merge: `{"host":"edge"}`}}},
			want: cleanChain, log: []string{"Base shutdown", "Base install 1000 edge", "Base startup 1000 edge"},
			active: "job-2", set: []string{"Base"}, config: map[string]any{"port": json.Number("1000"), "host": "edge"},
			status: gg.StatusSuccessful},
		{name: "merge keeps what it does not name", d: deployment{roots: map[string]string{"Base": "1.0.0"},
			update: map[string]*ggwire.ConfigurationUpdate{"Base": {Merge: `{"host":"edge"}`}}},
			want: cleanChain, log: []string{"Base shutdown", "Base install 8080 edge", "Base startup 8080 edge"},
			active: "job-2", set: []string{"Base"}, config: map[string]any{"port": json.Number("8080"), "host": "edge"},
			status: gg.StatusSuccessful},
		{name: "install exits 2, ROLLBACK", d: deployment{roots: map[string]string{"Base": "1.0.0", "Bad": "1.0.0"}, update: base9090},
			want:   []string{R, D, I, RB, failed(gg.CodeComponentBroken)},
			log:    []string{"Base shutdown", "Bad install", "Bad install", "Bad install"},
			active: "job-1", set: []string{"Base"}, config: map[string]any{"port": json.Number("8080"), "host": "localhost"},
			status: gg.StatusFailedRollbackComplete, stack: brokenStack},
		{name: "install exits 2, DO_NOTHING", d: deployment{roots: map[string]string{"Base": "1.0.0", "Bad": "1.0.0"}, update: base9090,
			policy: ggwire.FailureDoNothing},
			want:   []string{R, D, I, failed(gg.CodeComponentBroken)},
			log:    []string{"Base shutdown", "Bad install", "Bad install", "Bad install"},
			active: "job-2", set: []string{"Bad", "Base"}, config: map[string]any{"port": json.Number("9090"), "host": "localhost"},
			status: gg.StatusFailedRollbackNotRequested, stack: brokenStack},
		{name: "install fails twice, then succeeds", d: deployment{roots: map[string]string{"Flaky": "1.0.0"}},
			want: cleanChain, log: []string{"Base shutdown", "Flaky install 1", "Flaky install 2", "Flaky install 3"},
			active: "job-2", set: []string{"Flaky"}, status: gg.StatusSuccessful},
		{name: "artifact digest mismatch", d: deployment{roots: map[string]string{"Corrupt": "1.0.0"}},
			want: []string{R, D, failed(gg.CodeArtifactChecksumMismatch)}, active: "job-1", set: []string{"Base"},
			status: gg.StatusFailedNoStateChange, stack: "DEPLOYMENT_FAILURE,ARTIFACT_DOWNLOAD_ERROR,ARTIFACT_CHECKSUM_MISMATCH"},
		{name: "artifact missing from the store", d: deployment{roots: map[string]string{"Gone": "1.0.0"}},
			want: []string{R, D, failed(gg.CodeArtifactNotFound)}, active: "job-1", set: []string{"Base"},
			status: gg.StatusFailedNoStateChange, stack: "DEPLOYMENT_FAILURE,ARTIFACT_DOWNLOAD_ERROR,S3_RESOURCE_NOT_FOUND"},
		{name: "dependency with no version", d: deployment{roots: map[string]string{"Orphan": "1.0.0"}},
			want: []string{R, D, failed(gg.CodeNoAvailableComponentVersion)}, active: "job-1", set: []string{"Base"},
			status: gg.StatusFailedNoStateChange, stack: "DEPLOYMENT_FAILURE,NO_AVAILABLE_COMPONENT_VERSION"},
		{name: "dependency requirement no version meets", d: deployment{roots: map[string]string{"Needy": "1.0.0"}},
			want: []string{R, D, failed(gg.CodeVersionRequirementsNotMet)}, active: "job-1", set: []string{"Base"},
			status: gg.StatusFailedNoStateChange, stack: "DEPLOYMENT_FAILURE,COMPONENT_VERSION_REQUIREMENTS_NOT_MET"},
		{name: "root version that does not exist", d: deployment{roots: map[string]string{"Base": "9.0.0"}},
			want: []string{R, D, failed(gg.CodeVersionRequirementsNotMet)}, active: "job-1", set: []string{"Base"},
			status: gg.StatusFailedNoStateChange, stack: "DEPLOYMENT_FAILURE,COMPONENT_VERSION_REQUIREMENTS_NOT_MET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, before := deployed(t)
			c.enqueue("job-2", tt.d)
			e := c.waitEnded("job-2")
			if got := c.rec.chain("job-2"); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("chain %q\nwant  %q", got, tt.want)
			}
			if got := c.logLines()[before:]; !reflect.DeepEqual(got, tt.log) && !(len(got) == 0 && len(tt.log) == 0) {
				t.Errorf("log %q\nwant %q", got, tt.log)
			}
			last := tt.want[len(tt.want)-1]
			wantStatus := wire.StatusSucceeded
			if last != Fin {
				wantStatus = wire.StatusFailed
				code := strings.TrimSuffix(strings.TrimPrefix(last, agent.StateFailed+"("), ")")
				if e.StatusDetails[wire.DetailFailureCode] != code || e.StatusDetails[gg.DetailFailureCause] != code ||
					e.StatusDetails[wire.DetailReason] == "" {
					t.Errorf("details %v, want failureCode and cause %s and a reason", e.StatusDetails, code)
				}
				if got := e.StatusDetails[gg.DetailErrorStack]; got != tt.stack {
					t.Errorf("error stack %q, want %q", got, tt.stack)
				}
				if e.StatusDetails[gg.DetailErrorTypes] == "" {
					t.Errorf("no error types in %v", e.StatusDetails)
				}
			}
			if e.Status != wantStatus || e.StatusDetails[gg.DetailDeploymentStatus] != tt.status {
				t.Errorf("ended %s %v, want %s with %s %s", e.Status, e.StatusDetails, wantStatus, gg.DetailDeploymentStatus, tt.status)
			}
			job, v := c.active()
			if job != tt.active {
				t.Fatalf("the device runs the set of %s, want %s", job, tt.active)
			}
			set, err := gg.Components(v)
			if err != nil || !reflect.DeepEqual(set, tt.set) {
				t.Errorf("active set %q (%v), want %q", set, err, tt.set)
			}
			if tt.config != nil {
				if got := c.config(v, "Base"); !reflect.DeepEqual(got, tt.config) {
					t.Errorf("Base configuration %v, want %v", got, tt.config)
				}
			}
			if tt.config != nil && last == Fin {
				// What Base's install saw is what the device keeps.
				b, err := os.ReadFile(c.log + ".Base.json")
				if err != nil {
					t.Fatal(err)
				}
				var seen map[string]any
				dec := json.NewDecoder(strings.NewReader(string(b)))
				dec.UseNumber()
				if err := dec.Decode(&seen); err != nil || !reflect.DeepEqual(seen, tt.config) {
					t.Errorf("Base's process saw %s (%v), want %v", b, err, tt.config)
				}
			}
		})
	}
}

// TestResume cuts the power when job-2 enters each step and starts the agent again: the deployment ends as
// it would have, and the device never reports a half-applied set.
func TestResume(t *testing.T) {
	good := deployment{roots: map[string]string{"App": "1.0.0"}}
	bad := deployment{roots: map[string]string{"Base": "1.0.0", "Bad": "1.0.0"},
		update: map[string]*ggwire.ConfigurationUpdate{"Base": {Merge: `{"port":9090}`}}}
	broken := failed(gg.CodeComponentBroken)
	tests := []struct {
		name   string
		d      deployment
		killAt string
		want   []string // chain after the restart
		status string
		active string
	}{
		{name: "resolving", d: good, killAt: R, want: cleanChain, status: wire.StatusSucceeded, active: "job-2"},
		{name: "downloading", d: good, killAt: D, want: []string{D, I, S, Fin}, status: wire.StatusSucceeded, active: "job-2"},
		{name: "installing", d: good, killAt: I, want: []string{I, S, Fin}, status: wire.StatusSucceeded, active: "job-2"},
		{name: "starting", d: good, killAt: S, want: []string{S, Fin}, status: wire.StatusSucceeded, active: "job-2"},
		{name: "installing a set that fails", d: bad, killAt: I, want: []string{I, RB, broken}, status: wire.StatusFailed, active: "job-1"},
		{name: "rolling back", d: bad, killAt: RB, want: []string{RB, broken}, status: wire.StatusFailed, active: "job-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := deployed(t)
			hit := c.rec.killAt(c, "job-2", tt.killAt)
			c.enqueue("job-2", tt.d)
			if !agenttest.Eventually(30*time.Second, func() bool {
				select {
				case <-hit:
					return true
				default:
					return false
				}
			}) {
				t.Fatalf("job-2 never reached %s: chain %q", tt.killAt, c.rec.chain("job-2"))
			}
			c.restart()
			e := c.waitEnded("job-2")
			if got := c.rec.chain("job-2"); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("chain after restart %q\nwant %q", got, tt.want)
			}
			if e.Status != tt.status {
				t.Errorf("ended %s %v, want %s", e.Status, e.StatusDetails, tt.status)
			}
			if job, v := c.active(); job != tt.active {
				t.Errorf("the device runs the set of %s, want %s", job, tt.active)
			} else if job == "job-1" {
				if got := c.config(v, "Base")["port"]; got != json.Number("8080") {
					t.Errorf("Base port %v after the rollback, want 8080", got)
				}
			}
			st, err := c.a.Executors().State.Load()
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]string{true: "job-2", false: "job-1"}[tt.status == wire.StatusSucceeded]; st.Current == nil || st.Current.JobID != want {
				t.Errorf("committed %+v, want %s", st.Current, want)
			}
		})
	}
}

// TestRunSteps: the set's run steps run under the supervisor once the deployment has started the set; one
// that exits 0 is FINISHED, one that fails three times BROKEN, and the next deployment stops them.
func TestRunSteps(t *testing.T) {
	c, before := deployed(t)
	c.enqueue("job-2", deployment{roots: map[string]string{"Daemon": "1.0.0"}})
	if e := c.waitEnded("job-2"); e.Status != wire.StatusSucceeded {
		t.Fatalf("job-2 ended %s %v, chain %q", e.Status, e.StatusDetails, c.rec.chain("job-2"))
	}
	dev := agent.Device{DataDir: filepath.Join(c.dir, "data")}
	state := func(name string) string {
		l, _, _ := gg.ReadLifecycle(dev, name)
		return l.State
	}
	if !agenttest.Eventually(20*time.Second, func() bool { return state("Svc") == "BROKEN" && state("Daemon") == "FINISHED" }) {
		t.Fatalf("Svc %q, Daemon %q; want BROKEN and FINISHED", state("Svc"), state("Daemon"))
	}
	count := map[string]int{}
	for _, l := range c.logLines()[before:] {
		count[l]++
	}
	if want := map[string]int{"Base shutdown": 1, "Svc run": 3, "Daemon run": 1}; !reflect.DeepEqual(count, want) {
		t.Errorf("log %v, want %v", count, want)
	}
	if got := c.a.Executors().Launcher.Running(); agent.VersionJob(got) != "job-2" {
		t.Errorf("the launcher runs %q, want job-2's supervisor", got)
	}
	c.enqueue("job-3", job1)
	if e := c.waitEnded("job-3"); e.Status != wire.StatusSucceeded {
		t.Fatalf("job-3 ended %s %v", e.Status, e.StatusDetails)
	}
	if got := c.a.Executors().Launcher.Running(); got != "" {
		t.Errorf("the launcher runs %q after a set without run steps, want nothing", got)
	}
}

// TestRejects: a document the kind cannot read, and one of a kind the core does not carry out, are REJECTED
// after Resolving, with the nucleus's REJECTED status, and change nothing.
func TestRejects(t *testing.T) {
	c, before := deployed(t)
	noTarget := ggwire.Document{DeploymentID: "dep-x", Components: map[string]ggwire.Component{"Base": {Version: "1.0.0"}}}
	c.svc.Enqueue("core-1", "job-2", agenttest.Doc(ggwire.Kind, noTarget))
	c.svc.Enqueue("core-1", "job-3", agenttest.Doc("robomaker", map[string]string{"application": "x"}))
	for _, job := range []string{"job-2", "job-3"} {
		e := c.waitEnded(job)
		if got, want := c.rec.chain(job), []string{R, agent.StateRejected}; !reflect.DeepEqual(got, want) {
			t.Errorf("%s: chain %q, want %q", job, got, want)
		}
		if e.Status != wire.StatusRejected || e.StatusDetails[gg.DetailDeploymentStatus] != gg.StatusRejected ||
			e.StatusDetails[wire.DetailReason] == "" {
			t.Errorf("%s: ended %s %v, want REJECTED with a reason", job, e.Status, e.StatusDetails)
		}
	}
	if job, _ := c.active(); job != "job-1" {
		t.Errorf("the device runs the set of %s, want job-1", job)
	}
	if got := c.logLines()[before:]; len(got) != 0 {
		t.Errorf("scripts ran: %q", got)
	}
}

// stuckVersions refuses to activate any version of job: the device cannot go back to it.
type stuckVersions struct {
	agent.Versions
	job string
}

func (v stuckVersions) Activate(id string) error {
	if agent.VersionJob(id) == v.job {
		return errors.New("activate " + id + ": read-only file system")
	}
	return v.Versions.Activate(id)
}

// TestUnableToRollback: the rollback of a failed install cannot restore job-1's set; the deployment fails
// with FAILED_UNABLE_TO_ROLLBACK, also when the agent restarts before reporting, and the device keeps the
// new set rather than none.
func TestUnableToRollback(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run(fmt.Sprintf("restart=%v", restart), func(t *testing.T) {
			c, _ := deployed(t)
			c.stop()
			c.wrap = func(ex agent.Executors) agent.Executors {
				ex.Versions = stuckVersions{Versions: ex.Versions, job: "job-1"}
				return ex
			}
			c.start()
			var hit <-chan struct{}
			if restart {
				hit = c.rec.killAt(c, "job-2", agent.StateFailed)
			}
			c.enqueue("job-2", deployment{roots: map[string]string{"Bad": "1.0.0"}})
			if restart {
				if !agenttest.Eventually(30*time.Second, func() bool {
					select {
					case <-hit:
						return true
					default:
						return false
					}
				}) {
					t.Fatalf("job-2 never failed: chain %q", c.rec.chain("job-2"))
				}
				c.restart()
			}
			e := c.waitEnded("job-2")
			if e.Status != wire.StatusFailed || e.StatusDetails[gg.DetailDeploymentStatus] != gg.StatusFailedUnableToRollback ||
				e.StatusDetails[wire.DetailFailureCode] != gg.CodeComponentBroken {
				t.Errorf("ended %s %v, want FAILED, %s, %s", e.Status, e.StatusDetails, gg.StatusFailedUnableToRollback, gg.CodeComponentBroken)
			}
			if !strings.Contains(e.StatusDetails[wire.DetailReason], "read-only file system") {
				t.Errorf("reason %q does not say why the rollback failed", e.StatusDetails[wire.DetailReason])
			}
			if job, _ := c.active(); job != "job-2" {
				t.Errorf("the device runs the set of %s, want job-2's (the rollback could not leave it)", job)
			}
		})
	}
}

// recorder records the agent's events.
type recorder struct {
	mu     sync.Mutex
	events []agent.Event
	hook   func(agent.Event)
}

func (r *recorder) add(e agent.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	hook := r.hook
	r.mu.Unlock()
	if hook != nil {
		hook(e)
	}
}

// killAt cuts the core's power when job enters state.
func (r *recorder) killAt(c *core, job, state string) <-chan struct{} {
	hit := make(chan struct{})
	fired := false
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hook = func(e agent.Event) {
		if !fired && e.Kind == agent.EventState && e.JobID == job && e.State == state {
			fired = true
			c.cancel()
			close(hit)
		}
	}
	return hit
}

// chain returns the states job entered, a failure written Failed(Code).
func (r *recorder) chain(job string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if e.Kind != agent.EventState || e.JobID != job {
			continue
		}
		s := e.State
		if s == agent.StateFailed {
			s += "(" + e.Code + ")"
		}
		out = append(out, s)
	}
	return out
}
