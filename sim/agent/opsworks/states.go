package opsworks

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/fleetlab/fleetlab/sim/agent"
	owwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/opsworks"
)

// preparingState decides the state the command makes and stages it as the execution's version.
type preparingState struct {
	j      *job
	refuse error
}

func (preparingState) Name() string { return StepPreparing }

func (s preparingState) Handle(x *agent.Execution) (agent.State, error) {
	if err := x.Step(StepPreparing, nil); err != nil {
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
	plan, err := s.j.decide(x)
	if err != nil {
		return nil, err
	}
	ex := x.Executors()
	if _, err := ex.Versions.Open(x.VersionID()); err == nil {
		return runningState{s.j}, nil // staged before a restart
	}
	var b agent.Bundle
	b.File("opsworks.json", mustJSON(s.j.doc), 0o644)
	var total int64
	stage := func(name, dir string, obj owwire.Object) error {
		blob, err := ex.Downloader.Download(x.Context(), ex.Transport,
			agent.Request{Bucket: obj.Bucket, Key: obj.Key, ETag: obj.ETag, Name: x.Staged(name)}, x.Progress(StepPreparing))
		if err != nil {
			var ee *agent.ETagError
			var ae *agent.APIError
			if x.Decides(err) || !(errors.As(err, &ee) || errors.As(err, &ae)) {
				return err
			}
			return agent.Fail(owwire.CodeSourceFailed, fmt.Errorf("%s s3://%s/%s: %w", name, obj.Bucket, obj.Key, err))
		}
		n, err := b.Unpack(dir, blob, MaxSourceBytes-total)
		if err != nil {
			return agent.Fail(owwire.CodeSourceFailed, fmt.Errorf("%s s3://%s/%s: %w", name, obj.Bucket, obj.Key, err))
		}
		total += n
		s.j.logf("downloaded %s s3://%s/%s", name, obj.Bucket, obj.Key)
		return nil
	}
	if c := s.j.doc.Cookbooks; c != nil {
		if err := stage("cookbooks", "cookbooks", *c); err != nil {
			return nil, err
		}
	}
	if plan.Release != nil {
		if err := stage("release", "app", plan.Release.Source); err != nil {
			return nil, err
		}
	}
	blob, err := b.Blob()
	if err != nil {
		return nil, err
	}
	if _, err := ex.Versions.Extract(x.Context(), x.VersionID(), blob); err != nil {
		return nil, err
	}
	return runningState{s.j}, nil
}

// current returns the record of the state the instance is in (nil: none of this kind).
func current(x *agent.Execution) (*record, error) {
	st, err := x.Executors().State.Load()
	if err != nil {
		return nil, err
	}
	if st.Current == nil || st.Current.Kind != owwire.Kind {
		return nil, nil
	}
	var rec record
	if err := json.Unmarshal(st.Current.Record, &rec); err != nil {
		return nil, nil
	}
	return &rec, nil
}

// decide returns the state the command makes from the instance's current one.
func (j *job) decide(x *agent.Execution) (*record, error) {
	if j.plan != nil {
		return j.plan, nil
	}
	cur, err := current(x)
	if err != nil {
		return nil, err
	}
	d := j.doc
	plan := &record{Deployment: d.DeploymentID, Command: d.Command}
	same := cur != nil && cur.App != nil && d.App != nil && cur.App.ID == d.App.ID && cur.Release != nil
	switch d.Command {
	case owwire.Deploy:
		plan.App, plan.Release, plan.Running = d.App, &d.App.Releases[0], true
	case owwire.Rollback:
		if !same {
			return nil, agent.Failf(owwire.CodeNoRelease, "app %s has no release on this instance to roll back from", d.App.Shortname)
		}
		at := -1
		for i, r := range d.App.Releases {
			if r.DeploymentID == cur.Release.DeploymentID {
				at = i
			}
		}
		if at < 0 || at+1 >= len(d.App.Releases) {
			return nil, agent.Failf(owwire.CodeNoRelease, "app %s has no release before %s among the %d kept", d.App.Shortname,
				cur.Release.DeploymentID, len(d.App.Releases))
		}
		plan.App, plan.Release, plan.Running = d.App, &d.App.Releases[at+1], true
	case owwire.Start, owwire.Restart:
		if !same {
			return nil, agent.Failf(owwire.CodeNoRelease, "app %s is not deployed on this instance", d.App.Shortname)
		}
		plan.App, plan.Release, plan.Running = d.App, cur.Release, true
	case owwire.Stop:
		plan.App = d.App
		if same {
			plan.Release = cur.Release
		}
	case owwire.Undeploy:
	default:
		if cur != nil {
			plan.App, plan.Release, plan.Running = cur.App, cur.Release, cur.Running
		}
	}
	j.plan = plan
	return plan, nil
}

// runningState runs the command's scripts and switches the instance to its new state.
type runningState struct{ j *job }

func (runningState) Name() string { return StepRunning }

func (s runningState) Handle(x *agent.Execution) (agent.State, error) {
	if err := x.Step(StepRunning, nil); err != nil {
		return nil, err
	}
	j := s.j
	if _, err := j.decide(x); err != nil {
		return nil, err
	}
	v, err := x.Executors().Versions.Open(x.VersionID())
	if err != nil {
		return nil, err
	}
	r := runner{j: j, x: x, v: v}
	d := j.doc
	host := x.Device().Thing
	switch d.Command {
	case owwire.Deploy, owwire.Rollback:
		if err := r.hook("before_migrate"); err != nil {
			return nil, err
		}
		if d.Command == owwire.Deploy && len(d.Args["migrate"]) == 1 && d.Args["migrate"][0] == "true" {
			if err := r.hook("migrate"); err != nil {
				return nil, err
			}
		}
		if err := r.hook("before_symlink"); err != nil {
			return nil, err
		}
		if err := r.recipes(d.RecipesFor(host, owwire.Deploy)); err != nil {
			return nil, err
		}
		if err := r.hook("before_restart"); err != nil {
			return nil, err
		}
		if err := r.launch(); err != nil {
			return nil, err
		}
		if err := r.hook("after_restart"); err != nil {
			return nil, err
		}
	case owwire.Undeploy:
		if err := r.recipes(d.RecipesFor(host, owwire.Undeploy)); err != nil {
			return nil, err
		}
		if err := r.launch(); err != nil {
			return nil, err
		}
	case owwire.ExecuteRecipes:
		if err := r.recipes(d.Args["recipes"]); err != nil {
			return nil, err
		}
		if err := r.launch(); err != nil {
			return nil, err
		}
	case owwire.Setup, owwire.Configure:
		if err := r.recipes(d.RecipesFor(host, d.Command)); err != nil {
			return nil, err
		}
		if err := r.launch(); err != nil {
			return nil, err
		}
	case owwire.InstallDependencies, owwire.UpdateDependencies:
		name := "dependencies::install"
		if d.Command == owwire.UpdateDependencies {
			name = "dependencies::update"
		}
		if _, err := v.Files.Stat(recipeFile(name)); err == nil {
			if err := r.recipes([]string{name}); err != nil {
				return nil, err
			}
		} else {
			j.logf("no recipe %s in the cookbooks: nothing to install", name)
		}
		if err := r.launch(); err != nil {
			return nil, err
		}
	default: // start, stop, restart, update_custom_cookbooks
		if err := r.launch(); err != nil {
			return nil, err
		}
	}
	return agent.Finished(StepFinished), nil
}

// runner runs the scripts of one command from its version.
type runner struct {
	j *job
	x *agent.Execution
	v agent.Version
}

func (r runner) env(extra map[string]string) []string {
	own := map[string]string{"OPSWORKS_COMMAND": r.j.doc.Command, "OPSWORKS_DEPLOYMENT_ID": r.j.doc.DeploymentID,
		"OPSWORKS_HOSTNAME": r.x.Device().Thing}
	for k, v := range extra {
		own[k] = v
	}
	var app map[string]string
	if r.j.plan != nil && r.j.plan.App != nil {
		app = r.j.plan.App.Environment
	}
	return agent.Environ(app, own)
}

// hook runs the release's deploy hook name when it has one.
func (r runner) hook(name string) error {
	file := "app/deploy/" + name + ".sh"
	if _, err := r.v.Files.Stat(file); err != nil {
		return nil
	}
	return r.run(file, "deploy hook "+name, nil)
}

func recipeFile(recipe string) string {
	cb, name, found := strings.Cut(recipe, "::")
	if !found || name == "" {
		name = "default"
	}
	return "cookbooks/" + cb + "/recipes/" + name + ".sh"
}

// recipes runs each recipe's script, in order.
func (r runner) recipes(names []string) error {
	for _, n := range names {
		file := recipeFile(n)
		if _, err := r.v.Files.Stat(file); err != nil {
			r.j.logf("recipe %s: no %s in the cookbooks", n, file)
			return agent.Failf(owwire.CodeRecipeNotFound, "recipe %s: the cookbooks have no %s", n, file)
		}
		if err := r.run(file, "recipe "+n, map[string]string{"OPSWORKS_RECIPE": n}); err != nil {
			return err
		}
	}
	return nil
}

// run runs one script of the version: a non-zero exit fails the command with its status.
func (r runner) run(file, name string, extra map[string]string) error {
	r.j.logf("running %s (%s)", name, file)
	sc := agent.VersionScript(r.v, file, r.env(extra))
	sc.Name = name
	err := r.x.Executors().Scripts.Run(r.x.Context(), sc)
	var ee *agent.ExitError
	switch {
	case err == nil:
		r.j.logf("%s exited 0", name)
		return nil
	case r.x.Decides(err):
		return err
	case errors.As(err, &ee):
		r.j.exit, r.j.exits = ee.Code, true
		r.j.logf("%s exited %d", name, ee.Code)
		return agent.Failf(owwire.CodeScriptFailed, "%s exited with status %d", name, ee.Code)
	case errors.Is(err, agent.ErrScriptTimeout):
		r.j.logf("%s timed out", name)
		return agent.Fail(owwire.CodeScriptFailed, fmt.Errorf("%s: %w", name, err))
	case errors.Is(err, agent.ErrNotSimulable):
		return agent.Fail(owwire.CodeDeviceError, fmt.Errorf("%s: %w", name, err))
	}
	return err
}

// launch switches the instance to the command's state: the app started anew from it, or stopped.
func (r runner) launch() error {
	if r.j.plan.Running {
		r.j.logf("starting app %s", r.j.plan.App.Shortname)
	}
	return r.x.Launch()
}

func (j *job) logf(format string, args ...any) { j.log = append(j.log, fmt.Sprintf(format, args...)) }

// encodeLog is the log as statusDetails carry it: base64 of its text, its last lines when it is long.
func encodeLog(lines []string) string {
	const max = 760 // 1016 characters of base64, within a detail's 1024
	text := strings.Join(lines, "\n") + "\n"
	for len(text) > max && len(lines) > 1 {
		lines = lines[1:]
		text = "...\n" + strings.Join(lines, "\n") + "\n"
	}
	if len(text) > max {
		text = text[len(text)-max:]
	}
	return base64.StdEncoding.EncodeToString([]byte(text))
}

func mustJSON(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("encode %T: %v", v, err))
	}
	return b
}
