package greengrassv2

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/fleetlab/fleetlab/sim/agent"
	ggwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/greengrassv2"
)

// setFile is the file of a component set's version naming its components in start order.
const setFile = "components.json"

// componentSet is setFile's content.
type componentSet struct {
	// Order is the components in start order.
	Order []string `json:"order"`
	// Roots are the deployment's own components (the others are dependencies); absent in sets staged before
	// it was kept, whose components are all taken for roots.
	Roots []string `json:"roots,omitempty"`
}

// resolvingState reports the step, then resolves the deployment's components. With refuse set, the document
// could not be read: the state rejects the execution. A set already staged (before a restart) goes on.
type resolvingState struct {
	j      *job
	refuse error
}

func (resolvingState) Name() string { return StepResolving }

func (s resolvingState) Handle(x *agent.Execution) (agent.State, error) {
	if err := x.Step(StepResolving, nil); err != nil {
		return nil, err
	}
	if s.refuse != nil {
		return nil, agent.Reject(s.refuse)
	}
	if err := agent.CheckJobID(x.JobID()); err != nil {
		return nil, agent.Reject(err)
	}
	if x.InSync() {
		return agent.Finished(StepFinished), nil
	}
	return downloadingState{s.j}, nil
}

// downloadingState resolves the component set, downloads every artifact, checks its digest, computes each
// component's configuration and stages the whole set as the execution's version. Nothing the device runs
// changes. Resolution is here, beside the download, because the staged version is the only record of it
// that survives a restart: resumed before the version exists, the state resolves again.
type downloadingState struct{ j *job }

func (downloadingState) Name() string { return StepDownloading }

func (s downloadingState) Handle(x *agent.Execution) (agent.State, error) {
	if err := x.Step(StepDownloading, nil); err != nil {
		return nil, err
	}
	ex := x.Executors()
	if _, err := ex.Versions.Open(x.VersionID()); err == nil {
		return installingState{s.j}, nil // staged before a restart
	}
	platform := Platform(x.Device())
	caller, _ := x.APICaller()
	recipes, order, err := s.j.resolve(x.Context(), platform, caller)
	if err != nil {
		return nil, err
	}
	running, err := runningSet(x)
	if err != nil {
		return nil, err
	}
	var b agent.Bundle // the set's version, as one tar.gz
	b.File(setFile, mustJSON(componentSet{Order: order, Roots: sortedKeys(s.j.doc.Components)}), 0o644)
	var staged, runs []string
	defer func() {
		for _, n := range staged {
			if err := ex.Downloader.Discard(n); err != nil {
				x.Warn(StepDownloading, err)
			}
		}
	}()
	for _, name := range order {
		r := recipes[name]
		m, _ := r.Manifest(platform)
		dir := "components/" + name
		b.File(dir+"/recipe.json", mustJSON(r), 0o644)
		for i, a := range m.Artifacts {
			obj, isS3, err := a.S3()
			if err != nil {
				return nil, agent.Fail(CodeRecipeError, fmt.Errorf("component %s: %w", name, err))
			}
			if !isS3 {
				return nil, agent.Failf(CodeRecipeError, "component %s: artifact %s: only s3:// artifacts are served", name, a.URI)
			}
			staging := x.Staged(fmt.Sprintf("%s.%d", safeName(name), i))
			staged = append(staged, staging)
			blob, err := ex.Downloader.Download(x.Context(), ex.Transport,
				agent.Request{Bucket: obj.Bucket, Key: obj.Key, Name: staging}, nil)
			if err != nil {
				return nil, artifactErr(x, name, a.URI, err)
			}
			body, err := readBlob(blob)
			if err != nil {
				return nil, err
			}
			if a.Digest != "" {
				sum := sha256.Sum256(body)
				if got := base64.StdEncoding.EncodeToString(sum[:]); got != a.Digest {
					if err := ex.Downloader.Discard(staging); err != nil {
						x.Warn(StepDownloading, err)
					}
					return nil, agent.Failf(CodeArtifactChecksumMismatch, "component %s: artifact %s: SHA-256 %s, recipe says %s",
						name, a.URI, got, a.Digest)
				}
			}
			b.File(dir+"/artifacts/"+a.Name(), body, 0o755)
		}
		var update ggwire.ConfigurationUpdate
		if c, ok := s.j.doc.Components[name]; ok && c.ConfigurationUpdate != nil {
			update = *c.ConfigurationUpdate
		}
		config, skipped, err := ggwire.Configure(running[name], r.Defaults(), update)
		if err != nil {
			return nil, agent.Fail(CodeRecipeError, fmt.Errorf("component %s: %w", name, err))
		}
		for _, sk := range skipped {
			x.Warn(StepDownloading, fmt.Errorf("component %s: reset %q skipped: %s", name, sk.Pointer, sk.Reason))
		}
		b.File(dir+"/config.json", ggwire.ConfigJSON(config), 0o644)
		steps, err := m.Steps()
		if err != nil {
			return nil, agent.Fail(CodeRecipeError, fmt.Errorf("component %s: %w", name, err))
		}
		for step, st := range steps {
			script := "#!/bin/sh\n" + interpolate(st.Script, x.Device(), config) + "\n"
			if step == ggwire.StepRun {
				script = "#!/bin/sh\n" + exports(st.Setenv) + interpolate(st.Script, x.Device(), config) + "\n"
				runs = append(runs, name)
			}
			b.File(dir+"/"+step+".sh", []byte(script), 0o755)
			b.File(dir+"/"+step+".json", mustJSON(st), 0o644)
		}
	}
	if len(runs) > 0 {
		b.File(superviseFile, supervisor(runs), 0o755)
	}
	blob, err := b.Blob()
	if err != nil {
		return nil, err
	}
	if _, err := ex.Versions.Extract(x.Context(), x.VersionID(), blob); err != nil {
		return nil, err
	}
	return installingState{s.j}, nil
}

// installingState runs the shutdown steps of the running set (reverse start order), stops its run steps,
// switches the device to the new set and runs each component's install step in start order.
type installingState struct{ j *job }

func (installingState) Name() string { return StepInstalling }

func (s installingState) Handle(x *agent.Execution) (agent.State, error) {
	if err := x.Step(StepInstalling, nil); err != nil {
		return nil, err
	}
	ex := x.Executors()
	active, err := ex.Versions.Active()
	if err != nil {
		return nil, err
	}
	if active != "" && active != x.VersionID() {
		if v, err := ex.Versions.Open(active); err == nil {
			order, err := setOrder(v)
			if err != nil {
				return nil, err
			}
			for i := len(order) - 1; i >= 0; i-- {
				if err := runStep(x, v, order[i], ggwire.StepShutdown); err != nil {
					x.Warn(StepInstalling, err) // the nucleus stops a component whose shutdown fails all the same
				}
			}
		}
	}
	// The switch: the running set's run steps stop and the new set becomes the active version. Its run steps
	// start once it is installed and started (Starting).
	if active != x.VersionID() {
		if err := ex.Launcher.Stop(x.Context()); err != nil {
			return nil, err
		}
		if err := clearLifecycle(x.Device()); err != nil {
			return nil, err
		}
		if err := ex.Versions.Activate(x.VersionID()); err != nil {
			return nil, err
		}
	}
	if err := s.j.runAll(x, ggwire.StepInstall); err != nil {
		return nil, err
	}
	return startingState{s.j}, nil
}

// startingState runs each component's startup step in start order, then starts the set's run steps
// (Kind.App).
type startingState struct{ j *job }

func (startingState) Name() string { return StepStarting }

func (s startingState) Handle(x *agent.Execution) (agent.State, error) {
	if err := x.Step(StepStarting, nil); err != nil {
		return nil, err
	}
	if err := s.j.runAll(x, ggwire.StepStartup); err != nil {
		return nil, err
	}
	if err := s.j.simulateRuns(x); err != nil {
		return nil, err
	}
	if err := x.Launch(); err != nil {
		return nil, err
	}
	return agent.Finished(StepFinished), nil
}

// simulateRuns, in the in-memory family (a version without a directory, whose launcher runs nothing), runs each
// component's run step through the script runner before the set is launched, as the supervisor would start
// it: a run that exits 0 is FINISHED; one that fails is ERRORED and runs again, and after MaxStepErrors errors
// the component is BROKEN and the deployment fails with CodeComponentBroken, as the nucleus fails a
// deployment whose component breaks before it reaches RUNNING; a run the runner cannot interpret (a process
// that keeps running) is RUNNING. In the OS family the supervisor runs them (Kind.App).
func (j *job) simulateRuns(x *agent.Execution) error {
	v, err := x.Executors().Versions.Open(x.VersionID())
	if err != nil || v.Dir != "" {
		return err
	}
	order, err := setOrder(v)
	if err != nil {
		return err
	}
	for _, name := range order {
		if err := runStep(x, v, name, ggwire.StepRun); err != nil {
			return err
		}
	}
	return nil
}

// runAll runs step of every component of the execution's set, in start order.
func (j *job) runAll(x *agent.Execution, step string) error {
	v, err := x.Executors().Versions.Open(x.VersionID())
	if err != nil {
		return err
	}
	order, err := setOrder(v)
	if err != nil {
		return err
	}
	for _, name := range order {
		if err := runStep(x, v, name, step); err != nil {
			return err
		}
	}
	return nil
}

// runStep runs a lifecycle step of component name of set v, when its recipe has one, with the step's
// timeout; a step that fails MaxStepErrors times in a row makes the component BROKEN. Shutdown's errors
// are the caller's to weigh.
func runStep(x *agent.Execution, v agent.Version, name, step string) error {
	dir := "components/" + name
	raw, err := v.Files.ReadFile(dir + "/" + step + ".json")
	if err != nil {
		return nil // no such step
	}
	var st ggwire.Step
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("component %s %s step: %w", name, step, err)
	}
	own := map[string]string{"AWS_IOT_THING_NAME": x.Device().Thing}
	if v.Dir != "" {
		own["GG_COMPONENT_CONFIG"] = filepath.Join(v.Dir, filepath.FromSlash(dir+"/config.json"))
	}
	sc := agent.VersionScript(v, dir+"/"+step+".sh", agent.Environ(st.Setenv, own))
	sc.Name = name + " " + step
	if st.Timeout > 0 {
		sc.Timeout = time.Duration(st.Timeout) * time.Second
	}
	for attempt := 1; attempt <= MaxStepErrors; attempt++ {
		err = x.Executors().Scripts.Run(x.Context(), sc)
		switch {
		case err == nil:
			return nil
		case x.Decides(err):
			return err
		case errors.Is(err, agent.ErrNotSimulable) && step == ggwire.StepRun:
			return nil // a run that keeps running: RUNNING
		case errors.Is(err, agent.ErrNotSimulable):
			return agent.Fail(CodeDeviceError, fmt.Errorf("component %s %s: %w", name, step, err))
		}
		x.Warn(stateOf(step), fmt.Errorf("component %s ERRORED (%d of %d): %s: %w", name, attempt, MaxStepErrors, step, err))
	}
	return agent.Fail(CodeComponentBroken, fmt.Errorf("component %s is BROKEN after %d errors: %s: %w", name, MaxStepErrors, step, err))
}

// stateOf names the state a lifecycle step runs in.
func stateOf(step string) string {
	if step == ggwire.StepStartup || step == ggwire.StepRun {
		return StepStarting
	}
	return StepInstalling
}

// MaxStepErrors is how many times in a row a component's lifecycle step may fail (the component ERRORED, and
// the nucleus runs the step again) before the component is BROKEN.
const MaxStepErrors = 3

// runningSet returns the configuration of every component of the set the device runs (none on a first
// deployment).
func runningSet(x *agent.Execution) (map[string]map[string]any, error) {
	ex := x.Executors()
	active, err := ex.Versions.Active()
	if err != nil || active == "" {
		return nil, err
	}
	v, err := ex.Versions.Open(active)
	if err != nil {
		return nil, nil // the device runs no version it still has
	}
	order, err := setOrder(v)
	if err != nil {
		return nil, nil // another kind's version
	}
	out := map[string]map[string]any{}
	for _, name := range order {
		c, err := Configuration(v, name)
		if err != nil {
			return nil, err
		}
		out[name] = c
	}
	return out, nil
}

// Configuration returns the effective configuration of component name in a component set's version.
func Configuration(v agent.Version, name string) (map[string]any, error) {
	raw, err := v.Files.ReadFile("components/" + name + "/config.json")
	if err != nil {
		return nil, fmt.Errorf("component %s: configuration: %w", name, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var c map[string]any
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("component %s: configuration: %w", name, err)
	}
	return c, nil
}

// Components returns the components of a component set's version in start order.
func Components(v agent.Version) ([]string, error) { return setOrder(v) }

func setOrder(v agent.Version) ([]string, error) {
	raw, err := v.Files.ReadFile(setFile)
	if err != nil {
		return nil, fmt.Errorf("version %s is no component set: %w", v.ID, err)
	}
	var cs componentSet
	if err := json.Unmarshal(raw, &cs); err != nil {
		return nil, fmt.Errorf("version %s: %s: %w", v.ID, setFile, err)
	}
	return cs.Order, nil
}

// artifactErr classifies a download error: a full disk fails with CodeDiskSpaceCritical, a final answer of the
// artifact store with CodeArtifactNotFound; link errors and aborts pass through to the loop.
func artifactErr(x *agent.Execution, component, uri string, err error) error {
	var ae *agent.APIError
	switch {
	case x.Decides(err):
		return err
	case errors.Is(err, syscall.ENOSPC):
		return agent.Fail(CodeDiskSpaceCritical, fmt.Errorf("component %s: artifact %s: %w", component, uri, err))
	case errors.As(err, &ae):
		return agent.Fail(CodeArtifactNotFound, fmt.Errorf("component %s: artifact %s: %w", component, uri, err))
	}
	return fmt.Errorf("component %s: artifact %s: %w", component, uri, err)
}

var placeholder = regexp.MustCompile(`\{(artifacts:path|iot:thingName|configuration:(/[^}]*))\}`)

// interpolate replaces the recipe variables the agent knows in a lifecycle script: {artifacts:path} (the
// component's artifacts directory, relative to the version's directory scripts run from), {iot:thingName},
// and {configuration:/pointer} (a scalar of the component's configuration, "" when absent; an object or
// array as JSON).
func interpolate(script string, d agent.Device, config map[string]any) string {
	return placeholder.ReplaceAllStringFunc(script, func(m string) string {
		sub := placeholder.FindStringSubmatch(m)
		switch {
		case sub[1] == "artifacts:path":
			return "\"$(dirname \"$0\")/artifacts\""
		case sub[1] == "iot:thingName":
			return d.Thing
		}
		return pointerValue(config, sub[2])
	})
}

// pointerValue returns the value a JSON pointer names in config, keys compared case-insensitively.
func pointerValue(config map[string]any, pointer string) string {
	var v any = config
	for _, tok := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		obj, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		found := false
		for k, val := range obj {
			if strings.EqualFold(k, tok) {
				v, found = val, true
				break
			}
		}
		if !found {
			return ""
		}
	}
	switch t := v.(type) {
	case string:
		return t
	case nil:
		return ""
	case json.Number:
		return t.String()
	case bool:
		return fmt.Sprint(t)
	}
	return string(mustJSON(v))
}

// superviseFile is the application of a component set whose components have run steps: it runs them.
const superviseFile = "nucleus/supervise.sh"

// supervisor returns the script that runs the run step of each component of names (in start order) as the
// nucleus does: a run that exits 0 is FINISHED; one that fails is ERRORED and runs again, and BROKEN after
// MaxStepErrors errors in a row. Each component's lifecycle state is the file $GG_STATE_DIR/<name>, replaced
// whole at each change (ReadLifecycle reads it): every component is STARTING before any run starts. The script
// itself never exits, so the launcher does not start the finished runs again.
func supervisor(names []string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `#!/bin/sh
state="${GG_STATE_DIR:?}"
mkdir -p "$state" || exit 1
record() {
	printf '%%s %%d %%d\n' "$2" "$3" "$4" > "$state/.$1.tmp" && mv -f "$state/.$1.tmp" "$state/$1"
}
supervise() {
	errors=0
	while :; do
		record "$1" RUNNING $errors 0
		"components/$1/run.sh"
		code=$?
		if [ $code -eq 0 ]; then record "$1" FINISHED $errors 0; return; fi
		errors=$((errors+1))
		if [ $errors -ge %d ]; then record "$1" BROKEN $errors $code; return; fi
		record "$1" ERRORED $errors $code
	done
}
`, MaxStepErrors)
	for _, n := range names {
		fmt.Fprintf(&b, "record %s STARTING 0 0\n", shellQuote(n))
	}
	for _, n := range names {
		fmt.Fprintf(&b, "supervise %s &\n", shellQuote(n))
	}
	b.WriteString("wait\nwhile :; do sleep 3600; done\n")
	return []byte(b.String())
}

// exports returns shell lines exporting env, sorted.
func exports(env map[string]string) string {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(env[k]))
	}
	return b.String()
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// safeName makes a component name usable in a staging name (letters, digits, '-', '_', '.').
func safeName(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, name)
}

func readBlob(b agent.Blob) ([]byte, error) {
	rc, err := b.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encode %T: %v", v, err)) // only values of this package's making
	}
	return b
}
