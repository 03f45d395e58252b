package robomaker

import (
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
)

// validatingState checks the job document against the robot. The architecture check is here, before
// anything is downloaded: a robot with no bundle for its architecture fails at once. With refuse set, the
// document could not be read: the state reports the step, then rejects the execution.
type validatingState struct {
	j      *job
	refuse error
}

func (validatingState) Name() string { return rmwire.StepValidating }

func (s validatingState) Handle(x *agent.Execution) (agent.State, error) {
	if err := x.Step(rmwire.StepValidating, nil); err != nil {
		return nil, err
	}
	if s.refuse != nil {
		return nil, agent.Reject(s.refuse)
	}
	if err := agent.CheckJobID(x.JobID()); err != nil {
		return nil, agent.Reject(err)
	}
	l := s.j.doc.Launch
	if err := checkLaunchPath("packageName", l.PackageName); err != nil {
		return nil, err
	}
	if err := checkLaunchPath("launchFile", l.LaunchFile); err != nil {
		return nil, err
	}
	for _, p := range []struct{ what, v string }{{"preLaunchFile", l.PreLaunchFile}, {"postLaunchFile", l.PostLaunchFile}} {
		if p.v == "" {
			continue
		}
		if err := checkLaunchPath(p.what, p.v); err != nil {
			return nil, err
		}
	}
	if _, ok := s.j.source(x.Device()); !ok {
		var have []string
		for _, s := range s.j.doc.Sources {
			have = append(have, s.Architecture)
		}
		return nil, agent.Failf(rmwire.CodeMissingRobotApplicationArchitecture, "no source for architecture %s (sources: %s)",
			architectureName(x.Device().Architecture), strings.Join(have, ", "))
	}
	if x.InSync() {
		return agent.Finished(rmwire.StepFinished), nil
	}
	return downloadingState{s.j}, nil
}

// downloadingState downloads the bundle (resuming a partial download), checks its ETag, unpacks it into
// its own version and checks it holds what the launch config names. Nothing the robot runs changes.
type downloadingState struct{ j *job }

func (downloadingState) Name() string { return rmwire.StepDownloadingExtracting }

func (s downloadingState) Handle(x *agent.Execution) (agent.State, error) {
	ex := x.Executors()
	v, openErr := ex.Versions.Open(x.VersionID())
	pct := "0.0"
	if openErr == nil {
		pct = "100.0" // unpacked before a restart
	}
	if err := x.Step(rmwire.StepDownloadingExtracting, map[string]string{wire.DetailPercentDone: pct}); err != nil {
		return nil, err
	}
	if openErr != nil {
		src, _ := s.j.source(x.Device())
		name := x.Staged(stagedBundle)
		blob, err := ex.Downloader.Download(x.Context(), ex.Transport, agent.Request{Bucket: src.Bucket, Key: src.Key, ETag: src.ETag, Name: name},
			x.Progress(rmwire.StepDownloadingExtracting))
		if err != nil {
			return nil, artifactErr(x, "bundle "+src.Bucket+"/"+src.Key, err)
		}
		v, err = ex.Versions.Extract(x.Context(), x.VersionID(), blob)
		if err != nil {
			if x.Context().Err() != nil {
				return nil, err
			}
			return nil, agent.Fail(rmwire.CodeExtractingBundleFailure, fmt.Errorf("bundle %s/%s: %w", src.Bucket, src.Key, err))
		}
		if err := ex.Downloader.Discard(name); err != nil {
			x.Warn(rmwire.StepDownloadingExtracting, err)
		}
	}
	if err := checkResources(v, s.j.doc.Launch); err != nil {
		return nil, err
	}
	return conditionState{s.j}, nil
}

// conditionState fetches the download condition file, checks its ETag and runs it; a non-zero exit stops
// the deployment. RoboMaker describes the file as run before downloading, but its step order puts
// ExecutingDownloadCondition after DownloadingExtracting; the agent follows the step order the service
// reports (steps only move forward), and since the bundle is only staged so far, a failed condition
// leaves the robot exactly as it was.
type conditionState struct{ j *job }

func (conditionState) Name() string { return rmwire.StepExecutingDownloadCondition }

func (s conditionState) Handle(x *agent.Execution) (agent.State, error) {
	if err := x.Step(rmwire.StepExecutingDownloadCondition, nil); err != nil {
		return nil, err
	}
	c := s.j.doc.DownloadCondition
	if c == nil {
		return preLaunchState{s.j}, nil
	}
	ex := x.Executors()
	what := "download condition " + c.Bucket + "/" + c.Key
	name := x.Staged(stagedCondition)
	blob, err := ex.Downloader.Download(x.Context(), ex.Transport, agent.Request{Bucket: c.Bucket, Key: c.Key, ETag: c.ETag, Name: name}, nil)
	if err != nil {
		return nil, artifactErr(x, what, err)
	}
	sc := agent.Script{Name: path.Base(c.Key), Path: blob.Path(), Env: env(x.Device(), x.JobID(), s.j.record()), Read: func() ([]byte, error) {
		rc, err := blob.Open()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(rc)
	}}
	if sc.Path != "" {
		sc.Dir = filepath.Dir(sc.Path)
	}
	err = ex.Scripts.Run(x.Context(), sc)
	if err != nil && x.Context().Err() != nil {
		return nil, err
	}
	if derr := ex.Downloader.Discard(name); derr != nil {
		x.Warn(rmwire.StepExecutingDownloadCondition, derr)
	}
	if err != nil {
		return nil, scriptErr(x, rmwire.CodeDownloadConditionFailed, what, err)
	}
	return preLaunchState{s.j}, nil
}

// preLaunchState runs the pre-launch file from the new version while the old application still runs.
type preLaunchState struct{ j *job }

func (preLaunchState) Name() string { return rmwire.StepExecutingPreLaunch }

func (s preLaunchState) Handle(x *agent.Execution) (agent.State, error) {
	if err := x.Step(rmwire.StepExecutingPreLaunch, nil); err != nil {
		return nil, err
	}
	if err := s.j.runScript(x, s.j.doc.Launch.PreLaunchFile, "pre-launch file ", rmwire.CodePreLaunchFileFailure); err != nil {
		return nil, err
	}
	return launchingState{s.j}, nil
}

// launchingState switches the robot to the new version: it stops the old application (graceful signal,
// then kill), atomically points current at the new version and starts its launch file.
type launchingState struct{ j *job }

func (launchingState) Name() string { return rmwire.StepLaunching }

func (s launchingState) Handle(x *agent.Execution) (agent.State, error) {
	if err := x.Step(rmwire.StepLaunching, nil); err != nil {
		return nil, err
	}
	if err := x.Launch(); err != nil {
		return nil, err
	}
	return postLaunchState{s.j}, nil
}

// postLaunchState runs the post-launch file with the new application running.
type postLaunchState struct{ j *job }

func (postLaunchState) Name() string { return rmwire.StepExecutingPostLaunch }

func (s postLaunchState) Handle(x *agent.Execution) (agent.State, error) {
	if err := x.Step(rmwire.StepExecutingPostLaunch, nil); err != nil {
		return nil, err
	}
	if err := s.j.runScript(x, s.j.doc.Launch.PostLaunchFile, "post-launch file ", rmwire.CodePostLaunchFileFailure); err != nil {
		return nil, err
	}
	return agent.Finished(rmwire.StepFinished), nil
}

// runScript runs file f of the new version, when the launch config names one, failing with code.
func (j *job) runScript(x *agent.Execution, f, what, code string) error {
	if f == "" {
		return nil
	}
	ex := x.Executors()
	v, err := ex.Versions.Open(x.VersionID())
	if err != nil {
		return err
	}
	if err := ex.Scripts.Run(x.Context(), agent.VersionScript(v, f, env(x.Device(), x.JobID(), j.record()))); err != nil {
		return scriptErr(x, code, what+f, err)
	}
	return nil
}

// artifactErr classifies a download error: ETag errors fail with EtagMismatch, a final answer of the
// artifact store (404, 403) with ResourceNotFound; link errors and aborts pass through to the loop.
func artifactErr(x *agent.Execution, what string, err error) error {
	var ee *agent.ETagError
	var ae *agent.APIError
	switch {
	case x.Decides(err):
		return err
	case errors.As(err, &ee):
		return agent.Fail(rmwire.CodeEtagMismatch, fmt.Errorf("%s: %w", what, err))
	case errors.As(err, &ae):
		return agent.Fail(rmwire.CodeResourceNotFound, fmt.Errorf("%s: %w", what, err))
	}
	return fmt.Errorf("%s: %w", what, err)
}

// scriptErr classifies a script's error: a script that ran and failed, timed out or could not start fails
// with code; one the in-memory runner cannot interpret fails with EnvironmentSetupError.
func scriptErr(x *agent.Execution, code, what string, err error) error {
	switch {
	case x.Decides(err):
		return err
	case errors.Is(err, agent.ErrNotSimulable):
		return agent.Fail(rmwire.CodeEnvironmentSetupError, fmt.Errorf("%s: %w", what, err))
	}
	return agent.Fail(code, fmt.Errorf("%s: %w", what, err))
}
