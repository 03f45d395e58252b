package greengrassv2

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	gg "github.com/aws/aws-sdk-go-v2/service/greengrassv2"
	ggtypes "github.com/aws/aws-sdk-go-v2/service/greengrassv2/types"
	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/fleetlab/fleetlab/harness/dialect"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// A Greengrass V2 field record: the deployment as GetDeployment gives it (components, policies, the IoT job's
// rollout, abort and timeout), and for each core device its effective deployments as ListEffectiveDeployments
// gives them (status, reason, the nucleus's errorStack and errorTypes).
const (
	recordDeployment = "get-deployment.json"
	recordEffective  = "list-effective-deployments" // a directory: <thing>.json per core device
	recordJob        = "iot-describe-job.json"
	recordExecutions = "iot-list-job-executions-for-job.json"
)

var _ dialect.Replayer = Driver{}

// RecordFiles implements dialect.Replayer.
func (Driver) RecordFiles() []dialect.RecordFile {
	return []dialect.RecordFile{
		{Name: recordDeployment, Command: "aws greengrassv2 get-deployment --deployment-id ID --output json"},
		{Name: recordEffective + "/<thing>.json", Command: "aws greengrassv2 list-effective-deployments --core-device-thing-name THING --output json"},
		{Name: recordJob, Command: "aws iot describe-job --job-id IOT_JOB_ID --output json", Optional: true},
		{Name: recordExecutions, Command: "aws iot list-job-executions-for-job --job-id IOT_JOB_ID --output json", Optional: true},
	}
}

// recordedDeployment is what fleetlab reads of GetDeployment's output.
type recordedDeployment struct {
	TargetArn        string `json:"targetArn"`
	RevisionID       string `json:"revisionId"`
	DeploymentID     string `json:"deploymentId"`
	DeploymentName   string `json:"deploymentName"`
	DeploymentStatus string `json:"deploymentStatus"`
	IotJobID         string `json:"iotJobId"`
	IotJobArn        string `json:"iotJobArn"`
	Components       map[string]struct {
		ComponentVersion    string `json:"componentVersion"`
		ConfigurationUpdate *struct {
			Merge string   `json:"merge"`
			Reset []string `json:"reset"`
		} `json:"configurationUpdate"`
		RunWith map[string]any `json:"runWith"`
	} `json:"components"`
	DeploymentPolicies *struct {
		FailureHandlingPolicy         string         `json:"failureHandlingPolicy"`
		ComponentUpdatePolicy         map[string]any `json:"componentUpdatePolicy"`
		ConfigurationValidationPolicy map[string]any `json:"configurationValidationPolicy"`
	} `json:"deploymentPolicies"`
	IotJobConfiguration *struct {
		JobExecutionsRolloutConfig *struct {
			ExponentialRate *struct {
				BaseRatePerMinute    int32   `json:"baseRatePerMinute"`
				IncrementFactor      float64 `json:"incrementFactor"`
				RateIncreaseCriteria *struct {
					NumberOfNotifiedThings  int32 `json:"numberOfNotifiedThings"`
					NumberOfSucceededThings int32 `json:"numberOfSucceededThings"`
				} `json:"rateIncreaseCriteria"`
			} `json:"exponentialRate"`
			MaximumPerMinute int32 `json:"maximumPerMinute"`
		} `json:"jobExecutionsRolloutConfig"`
		AbortConfig *struct {
			CriteriaList []struct {
				FailureType               string  `json:"failureType"`
				Action                    string  `json:"action"`
				ThresholdPercentage       float64 `json:"thresholdPercentage"`
				MinNumberOfExecutedThings int32   `json:"minNumberOfExecutedThings"`
			} `json:"criteriaList"`
		} `json:"abortConfig"`
		TimeoutConfig *struct {
			InProgressTimeoutInMinutes int64 `json:"inProgressTimeoutInMinutes"`
		} `json:"timeoutConfig"`
	} `json:"iotJobConfiguration"`
	CreationTimestamp dialect.Time   `json:"creationTimestamp"`
	IsLatestForTarget bool           `json:"isLatestForTarget"`
	ParentTargetArn   string         `json:"parentTargetArn"`
	Tags              map[string]any `json:"tags"`
}

// recordedEffective is what fleetlab reads of ListEffectiveDeployments' output.
type recordedEffective struct {
	EffectiveDeployments []struct {
		DeploymentID              string       `json:"deploymentId"`
		DeploymentName            string       `json:"deploymentName"`
		IotJobID                  string       `json:"iotJobId"`
		IotJobArn                 string       `json:"iotJobArn"`
		Description               string       `json:"description"`
		TargetArn                 string       `json:"targetArn"`
		CoreDeviceExecutionStatus string       `json:"coreDeviceExecutionStatus"`
		Reason                    string       `json:"reason"`
		CreationTimestamp         dialect.Time `json:"creationTimestamp"`
		ModifiedTimestamp         dialect.Time `json:"modifiedTimestamp"`
		StatusDetails             *struct {
			ErrorStack []string `json:"errorStack"`
			ErrorTypes []string `json:"errorTypes"`
		} `json:"statusDetails"`
	} `json:"effectiveDeployments"`
	NextToken string `json:"nextToken"`
}

// ReadRecord implements dialect.Replayer. The deployment's components keep their names and versions (a fixture
// bundle stands in for their artifacts), its configuration updates, failure handling, rollout, abort criteria
// and in-progress timeout are the replay's. Each core device's failure cause — the last entry of its errorStack
// — becomes a fault at the device:
//
//	DISK_SPACE_CRITICAL                          disk-full while downloading
//	COMPONENT_BROKEN                             the component's install (startup, run, shutdown: as the
//	                                             reason names it) exits 1
//	TIMED_OUT (status)                           no-response while installing; the job's timeout ends it
//
// and what every device that got the deployment shares becomes the deployment's: ARTIFACT_CHECKSUM_MISMATCH
// the artifact served with other bytes, S3_RESOURCE_NOT_FOUND a missing artifact. Anything else is named in
// Unmapped.
func (d Driver) ReadRecord(dir fs.FS) (dialect.FieldRecord, bool, error) {
	var dep recordedDeployment
	unknown, err := dialect.ReadJSON(dir, recordDeployment, &dep)
	if errors.Is(err, fs.ErrNotExist) {
		return dialect.FieldRecord{}, false, nil
	}
	if err != nil {
		return dialect.FieldRecord{}, true, err
	}
	if dep.DeploymentID == "" && dep.IotJobID == "" && dep.TargetArn == "" {
		return dialect.FieldRecord{}, false, nil // another dialect's get-deployment (AppConfig's)
	}
	rec := dialect.FieldRecord{Dialect: Name, Status: dep.DeploymentStatus, Unmapped: unknown}
	bad := func(file, field, format string, args ...any) error {
		return &dialect.RecordError{File: file, Field: field, Err: fmt.Errorf(format, args...)}
	}
	note := func(format string, args ...any) { rec.Unmapped = append(rec.Unmapped, fmt.Sprintf(format, args...)) }
	if !slices.Contains(ggtypes.DeploymentStatus("").Values(), ggtypes.DeploymentStatus(dep.DeploymentStatus)) {
		return rec, true, bad(recordDeployment, "deploymentStatus", "%q is not a Greengrass V2 deployment status", dep.DeploymentStatus)
	}
	if err := dep.CreationTimestamp.Check(recordDeployment, "creationTimestamp"); err != nil {
		return rec, true, err
	}
	if strings.Contains(dep.TargetArn, ":thing/") {
		note("%s: targetArn: a deployment to one core device; replayed as one to the devices' thing group", recordDeployment)
	}
	opts, err := deploymentOptions(dep, note)
	if err != nil {
		return rec, true, err
	}

	// The core devices, one file each.
	entries, err := fs.ReadDir(dir, recordEffective)
	if err != nil {
		return rec, true, bad(recordEffective, "", "want a %s/<thing>.json per core device (%v)", recordEffective, err)
	}
	for _, e := range entries {
		thing, ok := strings.CutSuffix(e.Name(), ".json")
		file := path.Join(recordEffective, e.Name())
		if e.IsDir() || !ok {
			note("%s: not a <thing>.json; not read", file)
			continue
		}
		if err := fleet.CheckName(thing); err != nil {
			return rec, true, bad(file, "", "the file's name is the core device's thing name: %v", err)
		}
		var eff recordedEffective
		unknown, err := dialect.ReadJSON(dir, file, &eff)
		if err != nil {
			return rec, true, err
		}
		rec.Unmapped = append(rec.Unmapped, unknown...)
		at := -1
		for i, x := range eff.EffectiveDeployments {
			if x.DeploymentID == dep.DeploymentID || dep.DeploymentID == "" && x.IotJobID == dep.IotJobID {
				at = i
			}
		}
		if at < 0 {
			note("%s: no effective deployment of %s: the device never got it; kept in the fleet, not compared", file, dep.DeploymentID)
			rec.Devices = append(rec.Devices, dialect.FieldDevice{Name: thing, Architecture: fleet.ArchAMD64})
			continue
		}
		x := eff.EffectiveDeployments[at]
		field := fmt.Sprintf("effectiveDeployments[%d]", at)
		if !slices.Contains(ggtypes.EffectiveDeploymentExecutionStatus("").Values(), ggtypes.EffectiveDeploymentExecutionStatus(x.CoreDeviceExecutionStatus)) {
			return rec, true, bad(file, field+".coreDeviceExecutionStatus", "%q is not a core device execution status", x.CoreDeviceExecutionStatus)
		}
		for _, t := range []struct {
			name string
			t    dialect.Time
		}{{"creationTimestamp", x.CreationTimestamp}, {"modifiedTimestamp", x.ModifiedTimestamp}} {
			if err := t.t.Check(file, field+"."+t.name); err != nil {
				return rec, true, err
			}
		}
		dev := dialect.FieldDevice{Name: thing, Architecture: fleet.ArchAMD64, Status: x.CoreDeviceExecutionStatus,
			FailureReason: x.Reason, Stopped: x.CoreDeviceExecutionStatus == RobotCanceled}
		if sd := x.StatusDetails; sd != nil && len(sd.ErrorStack) > 0 {
			dev.FailureCode = sd.ErrorStack[len(sd.ErrorStack)-1]
		}
		rec.Devices = append(rec.Devices, dev)
	}
	if len(rec.Devices) == 0 {
		return rec, true, bad(recordEffective, "", "no core devices: a record needs %s/<thing>.json for each", recordEffective)
	}
	for _, f := range []string{recordJob, recordExecutions} {
		if _, err := fs.Stat(dir, f); err == nil {
			note("%s: read for nothing yet (the release order comes from the rollout)", f)
		}
	}
	mapFailures(&rec, &opts, note)
	raw, _ := json.Marshal(opts)
	rec.Job.Options = raw
	return rec, true, nil
}

// deploymentOptions are the driver's options of the recorded deployment.
func deploymentOptions(dep recordedDeployment, note func(string, ...any)) (Deployment, error) {
	var d Deployment
	names := make([]string, 0, len(dep.Components))
	for n := range dep.Components {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		c := dep.Components[n]
		comp := Component{Name: n, Version: c.ComponentVersion}
		if u := c.ConfigurationUpdate; u != nil {
			comp.Merge, comp.Reset = u.Merge, u.Reset
		}
		if len(c.RunWith) > 0 {
			note("%s: components.%s.runWith: not reproduced (fleetlab's components run as the agent's user)", recordDeployment, n)
		}
		if strings.HasPrefix(n, "aws.greengrass.") {
			note("%s: components.%s: an AWS-provided component, replayed as a fixture component of that name", recordDeployment, n)
		}
		d.Components = append(d.Components, comp)
	}
	if p := dep.DeploymentPolicies; p != nil {
		d.FailureHandling = p.FailureHandlingPolicy
		if len(p.ComponentUpdatePolicy) > 0 || len(p.ConfigurationValidationPolicy) > 0 {
			note("%s: deploymentPolicies: componentUpdatePolicy and configurationValidationPolicy read, not reproduced", recordDeployment)
		}
	}
	if j := dep.IotJobConfiguration; j != nil {
		if r := j.JobExecutionsRolloutConfig; r != nil {
			d.Rollout = &Rollout{MaximumPerMinute: r.MaximumPerMinute}
			if e := r.ExponentialRate; e != nil {
				d.Rollout.BaseRatePerMinute, d.Rollout.IncrementFactor = e.BaseRatePerMinute, e.IncrementFactor
				if c := e.RateIncreaseCriteria; c != nil {
					d.Rollout.NotifiedThings, d.Rollout.SucceededThings = c.NumberOfNotifiedThings, c.NumberOfSucceededThings
				}
			}
		}
		if a := j.AbortConfig; a != nil {
			for i, c := range a.CriteriaList {
				if c.Action != "" && c.Action != "CANCEL" {
					return d, &dialect.RecordError{File: recordDeployment, Field: fmt.Sprintf("iotJobConfiguration.abortConfig.criteriaList[%d].action", i),
						Err: fmt.Errorf("%q: the only abort action is CANCEL", c.Action)}
				}
				d.Abort = append(d.Abort, Abort{FailureType: c.FailureType, Threshold: c.ThresholdPercentage, MinExecuted: c.MinNumberOfExecutedThings})
			}
		}
		if t := j.TimeoutConfig; t != nil && t.InProgressTimeoutInMinutes > 0 {
			d.InProgressTimeout = faults.Duration(time.Duration(t.InProgressTimeoutInMinutes) * time.Minute)
		}
	}
	return d, nil
}

// lifecycleWords find the lifecycle step a reason names, as a word.
var lifecycleWords = []struct {
	word   *regexp.Regexp
	script string
}{
	{regexp.MustCompile(`\bshutdown\b`), ScriptShutdown}, {regexp.MustCompile(`\bstartup\b`), ScriptStartup},
	{regexp.MustCompile(`\brun\b`), ScriptRun}, {regexp.MustCompile(`\binstall\b`), ScriptInstall},
}

// mapFailures turns each device's failure cause into the faults, or the deployment's, that reproduce it.
func mapFailures(rec *dialect.FieldRecord, d *Deployment, note func(string, ...any)) {
	shared := func(code string) (all, some bool) {
		got, failed := 0, 0
		for _, dev := range rec.Devices {
			if dev.Status == "" || dev.Stopped {
				continue
			}
			got++
			if dev.FailureCode == code {
				failed++
			}
		}
		return failed > 0 && failed == got, failed > 0
	}
	key := "hello.tar.gz"
	jobWide := map[string]faults.Spec{
		"ARTIFACT_CHECKSUM_MISMATCH": {Fault: "etag-mismatch", Params: json.RawMessage(fmt.Sprintf(`{"bucket":"fleetlab-bundles","key":%q}`, key))},
		"S3_RESOURCE_NOT_FOUND":      {Fault: "missing-object", Params: json.RawMessage(fmt.Sprintf(`{"bucket":"fleetlab-bundles","key":%q}`, key))},
	}
	for _, code := range []string{"ARTIFACT_CHECKSUM_MISMATCH", "S3_RESOURCE_NOT_FOUND"} {
		if all, some := shared(code); all {
			rec.Faults = append(rec.Faults, jobWide[code])
		} else if some {
			note("%s on some devices only: fleetlab serves the artifact alike to every device; not reproduced", code)
		}
	}
	first := DefaultComponent
	if len(d.Components) > 0 {
		first = d.Components[0].Name
	}
	for i := range rec.Devices {
		dev := &rec.Devices[i]
		switch {
		case dev.Status == RobotTimedOut:
			dev.Faults = append(dev.Faults, faults.Spec{Fault: "no-response", Target: faults.Selector{Step: "Installing"}})
			if d.InProgressTimeout == 0 {
				note("device %s: TIMED_OUT but the deployment has no in-progress timeout; not reproduced", dev.Name)
			}
		case dev.FailureCode == "" || dev.Stopped:
		case dev.FailureCode == "DISK_SPACE_CRITICAL":
			dev.Faults = append(dev.Faults, faults.Spec{Fault: "disk-full", Params: json.RawMessage(`{"during":"download"}`)})
		case dev.FailureCode == "COMPONENT_BROKEN":
			comp := first
			for _, c := range d.Components {
				if strings.Contains(dev.FailureReason, c.Name) {
					comp = c.Name
				}
			}
			script := ScriptInstall
			reason := strings.ToLower(dev.FailureReason)
			for _, w := range lifecycleWords {
				if w.word.MatchString(reason) {
					script = w.script
					break
				}
			}
			if script == ScriptRun || script == ScriptStartup {
				for j := range d.Components { // the step must exist in the component's lifecycle to fail
					if d.Components[j].Name == comp {
						setScript(&d.Components[j], script)
					}
				}
			}
			dev.Faults = append(dev.Faults, faults.Spec{Fault: "script-exit",
				Params: json.RawMessage(fmt.Sprintf(`{"script":%q,"code":1,"component":%q}`, script, comp))})
		case jobWide[dev.FailureCode].Fault != "":
		default:
			note("device %s: failure cause %s: no fault of fleetlab's reproduces it; not reproduced", dev.Name, dev.FailureCode)
		}
	}
}

// setScript gives a component a lifecycle step script that succeeds, for a fault to make it fail.
func setScript(c *Component, script string) {
	switch script {
	case ScriptRun:
		if c.Run == "" {
			c.Run = "echo running\nexit 0"
		}
	case ScriptStartup:
		if c.Startup == "" {
			c.Startup = "echo starting\nexit 0"
		}
	}
}

// Collect implements dialect.Replayer: GetDeployment of the job's deployment, ListEffectiveDeployments of every
// thing the IoT job has an execution for, and the IoT job and its executions. job is the deployment's id or
// its IoT job's ARN.
func (Driver) Collect(ctx context.Context, endpoint string, rt http.RoundTripper, job, dir string) error {
	rt, last := dialect.CaptureAnswers(rt)
	c, ic := ggClient(endpoint, rt), iotClient(endpoint, rt)
	id := job
	if strings.Contains(job, ":job/") {
		jobID := job[strings.LastIndexByte(job, '/')+1:]
		out, err := ic.DescribeJob(ctx, &iot.DescribeJobInput{JobId: aws.String(jobID)})
		if err != nil {
			return fmt.Errorf("describe-job: %w", err)
		}
		id = ""
		pages := gg.NewListDeploymentsPaginator(c, &gg.ListDeploymentsInput{HistoryFilter: ggtypes.DeploymentHistoryFilterAll})
		for pages.HasMorePages() && id == "" {
			page, err := pages.NextPage(ctx)
			if err != nil {
				return fmt.Errorf("list-deployments: %w", err)
			}
			for _, dep := range page.Deployments {
				if full, err := c.GetDeployment(ctx, &gg.GetDeploymentInput{DeploymentId: dep.DeploymentId}); err == nil &&
					aws.ToString(full.IotJobId) == aws.ToString(out.Job.JobId) {
					id = aws.ToString(dep.DeploymentId)
				}
			}
		}
		if id == "" {
			return fmt.Errorf("no deployment has the IoT job %s", jobID)
		}
	}
	dep, err := c.GetDeployment(ctx, &gg.GetDeploymentInput{DeploymentId: aws.String(id)})
	if err != nil {
		return fmt.Errorf("get-deployment: %w", err)
	}
	if err := dialect.WriteAnswer(filepath.Join(dir, recordDeployment), last()); err != nil {
		return err
	}
	jobID := aws.ToString(dep.IotJobId)
	if _, err := ic.DescribeJob(ctx, &iot.DescribeJobInput{JobId: aws.String(jobID)}); err != nil {
		return fmt.Errorf("describe-job: %w", err)
	}
	if err := dialect.WriteAnswer(filepath.Join(dir, recordJob), last()); err != nil {
		return err
	}
	// Every page, merged into one answer as the CLI prints a paginated command's.
	var things []string
	var summaries []any
	pages := iot.NewListJobExecutionsForJobPaginator(ic, &iot.ListJobExecutionsForJobInput{JobId: aws.String(jobID)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list-job-executions-for-job: %w", err)
		}
		var raw struct {
			ExecutionSummaries []any `json:"executionSummaries"`
		}
		if err := json.Unmarshal(last(), &raw); err != nil {
			return fmt.Errorf("list-job-executions-for-job: %w", err)
		}
		summaries = append(summaries, raw.ExecutionSummaries...)
		for _, x := range page.ExecutionSummaries {
			arn := aws.ToString(x.ThingArn)
			things = append(things, arn[strings.LastIndexByte(arn, '/')+1:])
		}
	}
	merged, _ := json.Marshal(map[string]any{"executionSummaries": summaries})
	if err := dialect.WriteAnswer(filepath.Join(dir, recordExecutions), merged); err != nil {
		return err
	}
	for _, thing := range things {
		if _, err := c.ListEffectiveDeployments(ctx, &gg.ListEffectiveDeploymentsInput{CoreDeviceThingName: aws.String(thing)}); err != nil {
			return fmt.Errorf("list-effective-deployments %s: %w", thing, err)
		}
		if err := dialect.WriteAnswer(filepath.Join(dir, recordEffective, thing+".json"), last()); err != nil {
			return err
		}
	}
	return nil
}
