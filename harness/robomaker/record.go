package robomaker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/robomaker"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness/dialect"
	"github.com/fleetlab/fleetlab/harness/faults"
	agentrm "github.com/fleetlab/fleetlab/sim/agent/robomaker"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// A RoboMaker field record: the deployment job as DescribeDeploymentJob gives it (its config and every robot's
// summary), and the fleet as DescribeFleet does (the robots' architectures).
const (
	recordJob   = "describe-deployment-job.json"
	recordFleet = "describe-fleet.json"
)

var _ dialect.Replayer = Driver{}

// RecordFiles implements dialect.Replayer.
func (Driver) RecordFiles() []dialect.RecordFile {
	return []dialect.RecordFile{
		{Name: recordJob, Command: "aws robomaker describe-deployment-job --job JOB --output json"},
		{Name: recordFleet, Command: "aws robomaker describe-fleet --fleet FLEET --output json", Optional: true},
	}
}

// recordedJob is what fleetlab reads of DescribeDeploymentJob's output.
type recordedJob struct {
	Arn              string `json:"arn"`
	Fleet            string `json:"fleet"`
	Status           string `json:"status"`
	DeploymentConfig *struct {
		ConcurrentDeploymentPercentage  int32          `json:"concurrentDeploymentPercentage"`
		FailureThresholdPercentage      int32          `json:"failureThresholdPercentage"`
		RobotDeploymentTimeoutInSeconds int64          `json:"robotDeploymentTimeoutInSeconds"`
		DownloadConditionFile           map[string]any `json:"downloadConditionFile"`
	} `json:"deploymentConfig"`
	DeploymentApplicationConfigs []struct {
		Application        string         `json:"application"`
		ApplicationVersion string         `json:"applicationVersion"`
		LaunchConfig       map[string]any `json:"launchConfig"`
	} `json:"deploymentApplicationConfigs"`
	FailureReason          string         `json:"failureReason"`
	FailureCode            string         `json:"failureCode"`
	CreatedAt              dialect.Time   `json:"createdAt"`
	Tags                   map[string]any `json:"tags"`
	RobotDeploymentSummary []struct {
		Arn                  string       `json:"arn"`
		DeploymentStartTime  dialect.Time `json:"deploymentStartTime"`
		DeploymentFinishTime dialect.Time `json:"deploymentFinishTime"`
		Status               string       `json:"status"`
		ProgressDetail       *struct {
			CurrentProgress               string  `json:"currentProgress"`
			PercentDone                   float64 `json:"percentDone"`
			EstimatedTimeRemainingSeconds int64   `json:"estimatedTimeRemainingSeconds"`
			TargetResource                string  `json:"targetResource"`
		} `json:"progressDetail"`
		FailureReason string `json:"failureReason"`
		FailureCode   string `json:"failureCode"`
	} `json:"robotDeploymentSummary"`
}

// recordedFleet is what fleetlab reads of DescribeFleet's output.
type recordedFleet struct {
	Name   string `json:"name"`
	Arn    string `json:"arn"`
	Robots []struct {
		Arn                string       `json:"arn"`
		Name               string       `json:"name"`
		FleetArn           string       `json:"fleetArn"`
		Status             string       `json:"status"`
		GreenGrassGroupID  string       `json:"greenGrassGroupId"`
		CreatedAt          dialect.Time `json:"createdAt"`
		Architecture       string       `json:"architecture"`
		LastDeploymentJob  string       `json:"lastDeploymentJob"`
		LastDeploymentTime dialect.Time `json:"lastDeploymentTime"`
	} `json:"robots"`
	CreatedAt            dialect.Time   `json:"createdAt"`
	LastDeploymentStatus string         `json:"lastDeploymentStatus"`
	LastDeploymentJob    string         `json:"lastDeploymentJob"`
	LastDeploymentTime   dialect.Time   `json:"lastDeploymentTime"`
	Tags                 map[string]any `json:"tags"`
}

// enumOf reports whether v is one of the SDK enum's values.
func enumOf[E ~string](v string, values []E) bool {
	return slices.Contains(values, E(v))
}

// exitCode finds the exit status in a failure reason ("pre-launch file exited 3", "exit code 3").
var exitCode = regexp.MustCompile(`(?i)exit(?:ed)?(?: with)?(?: code| status)?\s+(\d{1,3})\b`)

// ReadRecord implements dialect.Replayer. What a robot's failure code means on the robot becomes a fault of
// fleetlab's catalog at the step the robot reached:
//
//	PreLaunchFileFailure, PostLaunchFileFailure  script-exit of that script (the exit status from the reason, else 1)
//	DownloadConditionFailed                      script-exit of the download condition
//	RobotDeploymentNoResponse                    no-response at the robot's step (Validating when it gives none)
//	EnvironmentSetupError while downloading      disk-full during the download
//
// and what every robot that got as far shares becomes the job's: EtagMismatch is the etag-mismatch cloud
// fault, ExtractingBundleFailure the corrupt bundle, MissingRobotDeploymentResource the bundle without its
// launch file, MissingRobotApplicationArchitecture an application without the robot's architecture.
// RobotDeploymentAborted needs no fault: the policy decides it. Anything else is named in Unmapped.
func (d Driver) ReadRecord(dir fs.FS) (dialect.FieldRecord, bool, error) {
	var job recordedJob
	unknown, err := dialect.ReadJSON(dir, recordJob, &job)
	if errors.Is(err, fs.ErrNotExist) {
		return dialect.FieldRecord{}, false, nil
	}
	if err != nil {
		return dialect.FieldRecord{}, true, err
	}
	rec := dialect.FieldRecord{Dialect: Name, Status: job.Status, FailureCode: job.FailureCode, Unmapped: unknown}
	bad := func(field string, format string, args ...any) error {
		return &dialect.RecordError{File: recordJob, Field: field, Err: fmt.Errorf(format, args...)}
	}
	if !enumOf(job.Status, types.DeploymentStatus("").Values()) {
		return rec, true, bad("status", "%q is not a RoboMaker deployment status (%s)", job.Status, enumList(types.DeploymentStatus("").Values()))
	}
	if job.FailureCode != "" && !enumOf(job.FailureCode, types.DeploymentJobErrorCode("").Values()) {
		return rec, true, bad("failureCode", "%q is not a RoboMaker failure code", job.FailureCode)
	}
	if len(job.RobotDeploymentSummary) == 0 {
		return rec, true, bad("robotDeploymentSummary", "no robots: a record needs the job's robots (describe-deployment-job lists them)")
	}
	if err := job.CreatedAt.Check(recordJob, "createdAt"); err != nil {
		return rec, true, err
	}
	if c := job.DeploymentConfig; c != nil {
		for _, p := range []struct {
			name string
			v    int32
		}{{"concurrentDeploymentPercentage", c.ConcurrentDeploymentPercentage}, {"failureThresholdPercentage", c.FailureThresholdPercentage}} {
			if p.v < 0 || p.v > 100 {
				return rec, true, bad("deploymentConfig."+p.name, "%d: want 1 to 100", p.v)
			}
		}
		rec.Job.Concurrency, rec.Job.FailureThreshold = c.ConcurrentDeploymentPercentage, c.FailureThresholdPercentage
		if t := c.RobotDeploymentTimeoutInSeconds; t != 0 {
			if t < 60 || t > 7*24*3600 {
				return rec, true, bad("deploymentConfig.robotDeploymentTimeoutInSeconds", "%d: want 60 to 604800", t)
			}
			rec.Job.Timeout = faults.Duration(time.Duration(t) * time.Second)
		}
		if c.DownloadConditionFile != nil {
			rec.Job.DownloadCondition = bundles.ConditionOK
			rec.Unmapped = append(rec.Unmapped, recordJob+": deploymentConfig.downloadConditionFile: replayed by a condition that passes; the robots that failed it get a script-exit")
		}
	}
	if len(job.DeploymentApplicationConfigs) > 0 {
		rec.Unmapped = append(rec.Unmapped, recordJob+": deploymentApplicationConfigs: the field's application is replayed by the fixture bundle hello, laid out for fleetlab's launch config")
	}

	archs := map[string]string{}
	if err := readFleet(dir, archs, &rec); err != nil {
		return rec, true, err
	}
	seen := map[string]bool{}
	for i, rd := range job.RobotDeploymentSummary {
		at := fmt.Sprintf("robotDeploymentSummary[%d]", i)
		name, err := robotName(rd.Arn)
		if err != nil {
			return rec, true, bad(at+".arn", "%v", err)
		}
		if seen[name] {
			return rec, true, bad(at+".arn", "robot %s is listed twice", name)
		}
		seen[name] = true
		if !enumOf(rd.Status, types.RobotStatus("").Values()) {
			return rec, true, bad(at+".status", "%q is not a RoboMaker robot status (%s)", rd.Status, enumList(types.RobotStatus("").Values()))
		}
		if rd.FailureCode != "" && !enumOf(rd.FailureCode, types.DeploymentJobErrorCode("").Values()) {
			return rec, true, bad(at+".failureCode", "%q is not a RoboMaker failure code", rd.FailureCode)
		}
		for _, t := range []struct {
			field string
			t     dialect.Time
		}{{"deploymentStartTime", rd.DeploymentStartTime}, {"deploymentFinishTime", rd.DeploymentFinishTime}} {
			if err := t.t.Check(recordJob, at+"."+t.field); err != nil {
				return rec, true, err
			}
		}
		dev := dialect.FieldDevice{Name: name, Architecture: archs[name], Status: rd.Status, FailureCode: rd.FailureCode,
			FailureReason: rd.FailureReason, Started: rd.DeploymentStartTime.Time, Finished: rd.DeploymentFinishTime.Time}
		if dev.Architecture == "" {
			dev.Architecture = fleet.ArchAMD64
		}
		dev.Stopped = rd.FailureCode == string(types.DeploymentJobErrorCodeRobotDeploymentAborted)
		if p := rd.ProgressDetail; p != nil && p.CurrentProgress != "" {
			if !enumOf(p.CurrentProgress, types.RobotDeploymentStep("").Values()) {
				return rec, true, bad(at+".progressDetail.currentProgress", "%q is not a RoboMaker deployment step", p.CurrentProgress)
			}
			dev.Step = p.CurrentProgress
		}
		rec.Devices = append(rec.Devices, dev)
	}
	// The release order: by start time, robots that never started last, as listed.
	slices.SortStableFunc(rec.Devices, func(a, b dialect.FieldDevice) int {
		switch {
		case a.Started.IsZero() != b.Started.IsZero():
			if a.Started.IsZero() {
				return 1
			}
			return -1
		}
		return a.Started.Compare(b.Started)
	})
	mapFailures(&rec)
	rec.Ordered = rec.FailureCode == string(types.DeploymentJobErrorCodeFailureThresholdBreached)
	return rec, true, nil
}

// readFleet reads describe-fleet.json, when the record has it, for the robots' architectures.
func readFleet(dir fs.FS, archs map[string]string, rec *dialect.FieldRecord) error {
	var f recordedFleet
	unknown, err := dialect.ReadJSON(dir, recordFleet, &f)
	if errors.Is(err, fs.ErrNotExist) {
		rec.Unmapped = append(rec.Unmapped, recordFleet+": absent: every robot is taken to be X86_64")
		return nil
	}
	if err != nil {
		return err
	}
	rec.Unmapped = append(rec.Unmapped, unknown...)
	for i, r := range f.Robots {
		if r.Architecture == "" {
			continue
		}
		a, err := agentrm.GOARCH(r.Architecture)
		if err != nil {
			return &dialect.RecordError{File: recordFleet, Field: fmt.Sprintf("robots[%d].architecture", i), Err: err}
		}
		name := r.Name
		if name == "" {
			if name, err = robotName(r.Arn); err != nil {
				return &dialect.RecordError{File: recordFleet, Field: fmt.Sprintf("robots[%d].arn", i), Err: err}
			}
		}
		archs[name] = a
	}
	return nil
}

// robotName is the robot's name in its ARN (…:robot/NAME/1540834232469).
func robotName(arn string) (string, error) {
	_, rest, ok := strings.Cut(arn, ":robot/")
	name, _, _ := strings.Cut(rest, "/")
	if !ok || name == "" {
		return "", fmt.Errorf("%q is not a robot ARN (arn:aws:robomaker:REGION:ACCOUNT:robot/NAME/CREATED)", arn)
	}
	if err := fleet.CheckName(name); err != nil {
		return "", err
	}
	return name, nil
}

// mapFailures turns each robot's failure into the faults, or the job's bundle and architectures, that make a
// robot fail so, and names what it cannot.
func mapFailures(rec *dialect.FieldRecord) {
	note := func(format string, args ...any) {
		rec.Unmapped = append(rec.Unmapped, recordJob+": "+fmt.Sprintf(format, args...))
	}
	// Job-wide causes: every robot that got to the step must have failed with the code.
	shared := func(code string) (all, some bool) {
		reached := 0
		failed := 0
		for _, d := range rec.Devices {
			if d.FailureCode == string(types.DeploymentJobErrorCodeRobotDeploymentAborted) || d.Status == RobotPending {
				continue
			}
			reached++
			if d.FailureCode == code {
				failed++
			}
		}
		return failed > 0 && failed == reached, failed > 0
	}
	jobWide := map[string]func(){
		string(types.DeploymentJobErrorCodeEtagMismatch): func() {
			rec.Faults = append(rec.Faults, faults.Spec{Fault: "etag-mismatch",
				Params: json.RawMessage(fmt.Sprintf(`{"bucket":%q,"key":%q}`, bundleBucket, bundles.Hello+".tar.gz"))})
		},
		string(types.DeploymentJobErrorCodeExtractingBundleFailure):        func() { rec.Job.Bundle = bundles.Corrupt },
		string(types.DeploymentJobErrorCodeMissingRobotDeploymentResource): func() { rec.Job.Bundle = bundles.MissingLaunchFile },
	}
	for _, code := range slices.Sorted(maps.Keys(jobWide)) {
		if all, some := shared(code); all {
			jobWide[code]()
		} else if some {
			note("%s on some robots only: fleetlab reproduces it on every robot of a job or on none; not reproduced", code)
		}
	}
	// The application has a bundle for every architecture of the robots that did not miss theirs.
	missingArch := string(types.DeploymentJobErrorCodeMissingRobotApplicationArchitecture)
	var appArchs []string
	for _, d := range rec.Devices {
		if d.FailureCode != missingArch && !slices.Contains(appArchs, d.Architecture) {
			appArchs = append(appArchs, d.Architecture)
		}
	}
	slices.Sort(appArchs)
	if len(appArchs) == 0 {
		note("%s on every robot: fleetlab's application has a bundle for at least one architecture; not reproduced", missingArch)
	}
	rec.Job.Architectures = appArchs
	for i := range rec.Devices {
		d := &rec.Devices[i]
		step := func(s types.RobotDeploymentStep) faults.Selector { return faults.Selector{Step: string(s)} }
		switch d.FailureCode {
		case "", string(types.DeploymentJobErrorCodeRobotDeploymentAborted), missingArch:
		case string(types.DeploymentJobErrorCodePreLaunchFileFailure):
			d.Faults = append(d.Faults, scriptExit(faults.ScriptPreLaunch, d.FailureReason))
		case string(types.DeploymentJobErrorCodePostLaunchFileFailure):
			d.Faults = append(d.Faults, scriptExit(faults.ScriptPostLaunch, d.FailureReason))
		case string(types.DeploymentJobErrorCodeDownloadConditionFailed):
			d.Faults = append(d.Faults, scriptExit(faults.ScriptDownloadCondition, d.FailureReason))
			if rec.Job.DownloadCondition == "" {
				rec.Job.DownloadCondition = bundles.ConditionOK
			}
		case string(types.DeploymentJobErrorCodeRobotDeploymentNoResponse):
			at := types.RobotDeploymentStepValidatingStep
			if d.Step != "" {
				at = types.RobotDeploymentStep(d.Step)
			}
			d.Faults = append(d.Faults, faults.Spec{Fault: "no-response", Target: step(at)})
		case string(types.DeploymentJobErrorCodeEnvironmentSetupError):
			if d.Step != "" && d.Step != string(types.RobotDeploymentStepDownloadingExtractingStep) {
				note("robot %s: EnvironmentSetupError at %s: fleetlab reproduces it while downloading only; not reproduced", d.Name, d.Step)
				continue
			}
			d.Faults = append(d.Faults, faults.Spec{Fault: "disk-full", Params: json.RawMessage(`{"during":"download"}`)})
		default:
			if _, ok := jobWide[d.FailureCode]; !ok {
				note("robot %s: failure code %s: no fault of fleetlab's reproduces it; not reproduced", d.Name, d.FailureCode)
			}
		}
	}
	if rec.Status == JobCanceled {
		note("status Canceled: the job was canceled from outside; a replay does not cancel it")
	}
}

func scriptExit(script, reason string) faults.Spec {
	code := 1
	if m := exitCode.FindStringSubmatch(reason); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil && n >= 1 && n <= 255 {
			code = n
		}
	}
	return faults.Spec{Fault: "script-exit", Params: json.RawMessage(fmt.Sprintf(`{"script":%q,"code":%d}`, script, code))}
}

func enumList[E ~string](values []E) string {
	s := make([]string, len(values))
	for i, v := range values {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

// bundleBucket is the bucket the harness keeps bundles in (harness.BundleBucket; the harness imports this
// package, not the other way round).
const bundleBucket = "fleetlab-bundles"

// Collect implements dialect.Replayer: the job's DescribeDeploymentJob output and its fleet's DescribeFleet, as
// the service's own JSON, which is what the CLI prints (but for timestamps, which the CLI v2 prints as ISO 8601
// and a record reader takes either way).
func (Driver) Collect(ctx context.Context, endpoint string, rt http.RoundTripper, job, dir string) error {
	rt, last := dialect.CaptureAnswers(rt)
	c := client(endpoint, rt)
	out, err := c.DescribeDeploymentJob(ctx, &robomaker.DescribeDeploymentJobInput{Job: aws.String(job)})
	if err != nil {
		return fmt.Errorf("describe-deployment-job: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := dialect.WriteAnswer(filepath.Join(dir, recordJob), last()); err != nil {
		return err
	}
	if _, err := c.DescribeFleet(ctx, &robomaker.DescribeFleetInput{Fleet: out.Fleet}); err != nil {
		return fmt.Errorf("describe-fleet: %w", err)
	}
	return dialect.WriteAnswer(filepath.Join(dir, recordFleet), last())
}
