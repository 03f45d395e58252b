package opsworks

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
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ow "github.com/aws/aws-sdk-go-v2/service/opsworks"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness/dialect"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// An OpsWorks field record: the deployment as DescribeDeployments gives it, its commands (one per instance) as
// DescribeCommands gives them, and optionally the instances as DescribeInstances gives them (their hostnames).
const (
	recordDeployments = "describe-deployments.json"
	recordCommands    = "describe-commands.json"
	recordInstances   = "describe-instances.json"
	recordBucket      = "fleetlab-bundles"
)

var _ dialect.Replayer = Driver{}

// RecordFiles implements dialect.Replayer.
func (Driver) RecordFiles() []dialect.RecordFile {
	return []dialect.RecordFile{
		{Name: recordDeployments, Command: "aws opsworks describe-deployments --deployment-ids DEPLOYMENT_ID --output json"},
		{Name: recordCommands, Command: "aws opsworks describe-commands --deployment-id DEPLOYMENT_ID --output json"},
		{Name: recordInstances, Command: "aws opsworks describe-instances --stack-id STACK_ID --output json", Optional: true},
	}
}

// recordedDeployments is what fleetlab reads of DescribeDeployments' output.
type recordedDeployments struct {
	Deployments []struct {
		DeploymentID string       `json:"DeploymentId"`
		StackID      string       `json:"StackId"`
		AppID        string       `json:"AppId"`
		CreatedAt    dialect.Time `json:"CreatedAt"`
		CompletedAt  dialect.Time `json:"CompletedAt"`
		Duration     *int         `json:"Duration"`
		IamUserArn   string       `json:"IamUserArn"`
		Comment      string       `json:"Comment"`
		Command      struct {
			Name string              `json:"Name"`
			Args map[string][]string `json:"Args"`
		} `json:"Command"`
		Status      string   `json:"Status"`
		CustomJSON  string   `json:"CustomJson"`
		InstanceIDs []string `json:"InstanceIds"`
	} `json:"Deployments"`
}

// recordedCommands is what fleetlab reads of DescribeCommands' output.
type recordedCommands struct {
	Commands []struct {
		CommandID      string       `json:"CommandId"`
		InstanceID     string       `json:"InstanceId"`
		DeploymentID   string       `json:"DeploymentId"`
		CreatedAt      dialect.Time `json:"CreatedAt"`
		AcknowledgedAt dialect.Time `json:"AcknowledgedAt"`
		CompletedAt    dialect.Time `json:"CompletedAt"`
		Status         string       `json:"Status"`
		ExitCode       *int         `json:"ExitCode"`
		LogURL         string       `json:"LogUrl"`
		Type           string       `json:"Type"`
	} `json:"Commands"`
}

// recordedInstances is what fleetlab reads of DescribeInstances' output: the members that name an instance.
type recordedInstances struct {
	Instances []struct {
		InstanceID   string   `json:"InstanceId"`
		Hostname     string   `json:"Hostname"`
		StackID      string   `json:"StackId"`
		LayerIDs     []string `json:"LayerIds"`
		Status       string   `json:"Status"`
		Architecture string   `json:"Architecture"`
		Os           string   `json:"Os"`
		InstanceType string   `json:"InstanceType"`
		CreatedAt    string   `json:"CreatedAt"`
		AgentVersion string   `json:"AgentVersion"`
		Arn          string   `json:"Arn"`
	} `json:"Instances"`
}

// hookExit finds the deploy hook that failed, and its exit status, in a command's log.
var hookExit = regexp.MustCompile(`\b(before_migrate|after_restart)\b.*\bexited (?:with status )?(\d+)`)

// ReadRecord implements dialect.Replayer. The devices are the instances of the deployment's commands, named by
// their Hostname when describe-instances.json has them, else instance-<the first 8 characters of the
// InstanceId> (the whole id when two would share a name). A command's status is the device's, a failed one's
// code exit-<ExitCode>, as the driver reports it. A failed command becomes the fault that fails it so:
//
//	the log (a data: LogUrl, or logs/<device>.log) names the before_migrate or after_restart hook exiting N
//	                                          the pre- or post-launch file exits N (script-exit)
//	ExitCode N > 1 and no hook named          the pre-launch file (before_migrate) exits N, noted
//	ExitCode 1 and no hook named, on every instance
//	                                          the app's release missing from the store (missing-object), noted
//
// Anything else is named in Unmapped. The replay is a deploy of a fixture app to every instance.
func (Driver) ReadRecord(dir fs.FS) (dialect.FieldRecord, bool, error) {
	var deps recordedDeployments
	unknown, err := dialect.ReadJSON(dir, recordDeployments, &deps)
	if errors.Is(err, fs.ErrNotExist) {
		return dialect.FieldRecord{}, false, nil
	}
	if err != nil {
		return dialect.FieldRecord{}, true, err
	}
	rec := dialect.FieldRecord{Dialect: Name, Job: dialect.JobSpec{Bundle: bundles.Hello}, Unmapped: unknown}
	note := func(format string, args ...any) { rec.Unmapped = append(rec.Unmapped, fmt.Sprintf(format, args...)) }
	bad := func(file, field, format string, args ...any) error {
		return &dialect.RecordError{File: file, Field: field, Err: fmt.Errorf(format, args...)}
	}
	var cmds recordedCommands
	unknown, err = dialect.ReadJSON(dir, recordCommands, &cmds)
	if err != nil {
		return rec, true, err
	}
	rec.Unmapped = append(rec.Unmapped, unknown...)
	if len(deps.Deployments) == 0 {
		return rec, true, bad(recordDeployments, "Deployments", "none: the record needs the deployment")
	}
	at := 0
	if len(deps.Deployments) > 1 {
		at = -1
		for i, d := range deps.Deployments {
			if len(cmds.Commands) > 0 && d.DeploymentID == cmds.Commands[0].DeploymentID {
				at = i
			}
		}
		if at < 0 {
			return rec, true, bad(recordDeployments, "Deployments", "%d deployments, none the commands' (%s): collect one with --deployment-ids", len(deps.Deployments), recordCommands)
		}
		note("%s: Deployments: %d deployments; the commands' (%s) is replayed", recordDeployments, len(deps.Deployments), deps.Deployments[at].DeploymentID)
	}
	dep := deps.Deployments[at]
	field := fmt.Sprintf("Deployments[%d]", at)
	switch dep.Status {
	case JobSuccessful, JobFailed:
	case JobRunning:
		return rec, true, bad(recordDeployments, field+".Status", "running: the deployment had not ended; collect the record once it has")
	default:
		return rec, true, bad(recordDeployments, field+".Status", "%q: want successful, failed or running", dep.Status)
	}
	for _, t := range []struct {
		name string
		t    dialect.Time
	}{{"CreatedAt", dep.CreatedAt}, {"CompletedAt", dep.CompletedAt}} {
		if err := t.t.Check(recordDeployments, field+"."+t.name); err != nil {
			return rec, true, err
		}
	}
	rec.Status = dep.Status
	if dep.Command.Name != "" && dep.Command.Name != "deploy" {
		note("%s: %s.Command.Name: %s, replayed as a deploy of a fixture app", recordDeployments, field, dep.Command.Name)
	}
	if len(dep.Command.Args) > 0 {
		note("%s: %s.Command.Args: not reproduced", recordDeployments, field)
	}
	if dep.CustomJSON != "" {
		note("%s: %s.CustomJson: not reproduced", recordDeployments, field)
	}

	hostnames, err := readInstances(dir, &rec)
	if err != nil {
		return rec, true, err
	}
	names := deviceNames(cmds, dep.DeploymentID, hostnames)
	seen := map[string]bool{}
	for i, c := range cmds.Commands {
		cf := fmt.Sprintf("Commands[%d]", i)
		if c.DeploymentID != "" && c.DeploymentID != dep.DeploymentID {
			note("%s: %s: a command of deployment %s, not the record's; not read", recordCommands, cf, c.DeploymentID)
			continue
		}
		if c.InstanceID == "" {
			return rec, true, bad(recordCommands, cf+".InstanceId", "empty: a command runs on an instance")
		}
		if seen[c.InstanceID] {
			return rec, true, bad(recordCommands, cf+".InstanceId", "%s has two commands of the deployment", c.InstanceID)
		}
		seen[c.InstanceID] = true
		if !slices.Contains([]string{CommandPending, CommandSuccessful, CommandFailed, CommandSkipped}, c.Status) {
			return rec, true, bad(recordCommands, cf+".Status", "%q: want pending, successful, failed or skipped", c.Status)
		}
		for _, t := range []struct {
			name string
			t    dialect.Time
		}{{"CreatedAt", c.CreatedAt}, {"AcknowledgedAt", c.AcknowledgedAt}, {"CompletedAt", c.CompletedAt}} {
			if err := t.t.Check(recordCommands, cf+"."+t.name); err != nil {
				return rec, true, err
			}
		}
		name := names[c.InstanceID]
		if err := fleet.CheckName(name); err != nil {
			return rec, true, bad(recordCommands, cf+".InstanceId", "the instance makes no device name: %v", err)
		}
		dev := dialect.FieldDevice{Name: name, Architecture: fleet.ArchAMD64, Status: c.Status,
			Started: c.CreatedAt.Time, Finished: c.CompletedAt.Time}
		if c.Status == CommandFailed {
			code := 1
			if c.ExitCode != nil {
				code = *c.ExitCode
			} else {
				note("%s: %s.ExitCode: absent on a failed command; read as 1", recordCommands, cf)
			}
			dev.FailureCode = fmt.Sprintf("exit-%d", code)
			log := Log(c.LogURL)
			if b, err := fs.ReadFile(dir, path.Join("logs", name+".log")); err == nil {
				log += "\n" + string(b)
			} else if log == "" && c.LogURL != "" {
				note("%s: %s.LogUrl: not a data: URL; fleetlab reads no log from it (save it as logs/%s.log)", recordCommands, cf, name)
			}
			dev.FailureReason = log
		}
		if c.Status == CommandPending || c.Status == CommandSkipped {
			note("%s: %s.Status: %s on %s: not reproduced (every instance of the replay gets the command)", recordCommands, cf, c.Status, name)
		}
		rec.Devices = append(rec.Devices, dev)
	}
	for _, id := range dep.InstanceIDs {
		if !seen[id] {
			note("%s: %s.InstanceIds: %s has no command in %s; not in the fleet", recordDeployments, field, id, recordCommands)
		}
	}
	if len(rec.Devices) == 0 {
		return rec, true, bad(recordCommands, "Commands", "none of deployment %s: the record needs its commands", dep.DeploymentID)
	}
	mapFailures(&rec, note)
	for i := range rec.Devices { // the log is read; the reason compared is the driver's, its last line
		if r := strings.TrimSpace(rec.Devices[i].FailureReason); r != "" {
			lines := strings.Split(r, "\n")
			rec.Devices[i].FailureReason = lines[len(lines)-1]
		}
	}
	return rec, true, nil
}

// readInstances reads describe-instances.json, when the record has it: hostnames by instance id.
func readInstances(dir fs.FS, rec *dialect.FieldRecord) (map[string]string, error) {
	var ins recordedInstances
	unknown, err := dialect.ReadJSON(dir, recordInstances, &ins)
	if errors.Is(err, fs.ErrNotExist) {
		rec.Unmapped = append(rec.Unmapped, recordInstances+": absent: the instances are named after their ids")
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rec.Unmapped = append(rec.Unmapped, unknown...)
	out := map[string]string{}
	for i, in := range ins.Instances {
		if in.InstanceID == "" || in.Hostname == "" {
			continue
		}
		if err := fleet.CheckName(in.Hostname); err != nil {
			return nil, &dialect.RecordError{File: recordInstances, Field: fmt.Sprintf("Instances[%d].Hostname", i), Err: err}
		}
		out[in.InstanceID] = in.Hostname
	}
	return out, nil
}

// deviceNames names each instance of the deployment's commands: its hostname, else instance-<id's first 8>,
// else (two instances sharing that) instance-<id>.
func deviceNames(cmds recordedCommands, deployment string, hostnames map[string]string) map[string]string {
	short := func(id string) string {
		if len(id) > 8 {
			id = id[:8]
		}
		return "instance-" + id
	}
	count := map[string]int{}
	for _, c := range cmds.Commands {
		if c.DeploymentID == "" || c.DeploymentID == deployment {
			count[short(c.InstanceID)]++
		}
	}
	out := map[string]string{}
	for _, c := range cmds.Commands {
		switch id := c.InstanceID; {
		case hostnames[id] != "":
			out[id] = hostnames[id]
		case count[short(id)] > 1:
			out[id] = "instance-" + id
		default:
			out[id] = short(id)
		}
	}
	return out
}

// mapFailures turns each failed command into the fault that reproduces it.
func mapFailures(rec *dialect.FieldRecord, note func(string, ...any)) {
	var unexplained []int
	failed := 0
	for i := range rec.Devices {
		dev := &rec.Devices[i]
		if dev.Status != CommandFailed {
			continue
		}
		failed++
		code, _ := strconv.Atoi(strings.TrimPrefix(dev.FailureCode, "exit-"))
		var m []string
		for _, x := range hookExit.FindAllStringSubmatch(dev.FailureReason, -1) {
			if x[2] != "0" {
				m = x
			}
		}
		if m != nil {
			script := faults.ScriptPreLaunch
			if m[1] == "after_restart" {
				script = faults.ScriptPostLaunch
			}
			if n, _ := strconv.Atoi(m[2]); n >= 1 && n <= 255 {
				code = n
			}
			dev.FailureCode = fmt.Sprintf("exit-%d", code)
			dev.Faults = append(dev.Faults, faults.Spec{Fault: "script-exit", Params: json.RawMessage(fmt.Sprintf(`{"script":%q,"code":%d}`, script, code))})
			continue
		}
		if code > 1 && code <= 255 {
			note("instance %s: exit %d and no log that names the hook; replayed as the before_migrate hook exiting %d", dev.Name, code, code)
			dev.Faults = append(dev.Faults, faults.Spec{Fault: "script-exit", Params: json.RawMessage(fmt.Sprintf(`{"script":"pre-launch","code":%d}`, code))})
			continue
		}
		unexplained = append(unexplained, i)
	}
	if len(unexplained) == 0 {
		return
	}
	if len(unexplained) == len(rec.Devices) {
		note("every command failed with exit %d and no hook named: replayed as the app's release missing from the store", 1)
		rec.Faults = append(rec.Faults, faults.Spec{Fault: "missing-object",
			Params: json.RawMessage(fmt.Sprintf(`{"bucket":%q,"key":%q}`, recordBucket, "opsworks/"+bundles.Hello+".tar.gz"))})
		return
	}
	for _, i := range unexplained {
		note("instance %s: %s and no log that names why: no fault of fleetlab's reproduces it; not reproduced", rec.Devices[i].Name, rec.Devices[i].FailureCode)
	}
}

// Collect implements dialect.Replayer: DescribeDeployments of the deployment (job, its id), DescribeCommands of
// it, and DescribeInstances of its stack.
func (Driver) Collect(ctx context.Context, endpoint string, rt http.RoundTripper, job, dir string) error {
	rt, last := dialect.CaptureAnswers(rt)
	c := client(endpoint, rt)
	ds, err := c.DescribeDeployments(ctx, &ow.DescribeDeploymentsInput{DeploymentIds: []string{job}})
	if err != nil {
		return fmt.Errorf("describe-deployments: %w", err)
	}
	if err := dialect.WriteAnswer(filepath.Join(dir, recordDeployments), last()); err != nil {
		return err
	}
	if len(ds.Deployments) != 1 {
		return fmt.Errorf("describe-deployments %s: %d deployments", job, len(ds.Deployments))
	}
	if _, err := c.DescribeCommands(ctx, &ow.DescribeCommandsInput{DeploymentId: aws.String(job)}); err != nil {
		return fmt.Errorf("describe-commands: %w", err)
	}
	if err := dialect.WriteAnswer(filepath.Join(dir, recordCommands), last()); err != nil {
		return err
	}
	if _, err := c.DescribeInstances(ctx, &ow.DescribeInstancesInput{StackId: ds.Deployments[0].StackId}); err != nil {
		return fmt.Errorf("describe-instances: %w", err)
	}
	return dialect.WriteAnswer(filepath.Join(dir, recordInstances), last())
}
