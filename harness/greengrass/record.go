package greengrass

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
	gg "github.com/aws/aws-sdk-go-v2/service/greengrass"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness/dialect"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// A Greengrass V1 field record is one group's deployment — GetDeploymentStatus (DeploymentStatus, ErrorMessage,
// ErrorDetails, UpdatedAt) and ListDeployments (the group's deployments; the record's is the newest) — and
// optionally the group's core definition version, which names the core's thing. A group deployment goes to the
// one core of its group, so a group is a device. A bulk deployment's record has the same files once per group,
// under groups/<GROUP_ID>/.
const (
	recordStatus  = "get-deployment-status.json"
	recordList    = "list-deployments.json"
	recordCore    = "get-core-definition-version.json"
	recordGroups  = "groups" // a directory: <GROUP_ID>/ per group of a bulk deployment
	recordBucket  = "fleetlab-bundles"
	deviceDefault = "core-" // the device of a group whose core the record does not name: core-<GROUP_ID>
)

var _ dialect.Replayer = Driver{}

// RecordFiles implements dialect.Replayer.
func (Driver) RecordFiles() []dialect.RecordFile {
	return []dialect.RecordFile{
		{Name: recordStatus, Command: "aws greengrass get-deployment-status --group-id GROUP_ID --deployment-id DEPLOYMENT_ID --output json"},
		{Name: recordList, Command: "aws greengrass list-deployments --group-id GROUP_ID --output json"},
		{Name: recordCore, Command: "aws greengrass get-core-definition-version --core-definition-id CORE_DEFINITION_ID --core-definition-version-id CORE_VERSION_ID --output json (the ids from aws greengrass get-group-version's Definition.CoreDefinitionVersionArn)", Optional: true},
		{Name: recordGroups + "/<GROUP_ID>/", Command: "a bulk deployment: the files above once per group that aws greengrass list-bulk-deployment-detailed-reports --bulk-deployment-id BULK_ID lists", Optional: true},
	}
}

// recordedStatus is what fleetlab reads of GetDeploymentStatus's output.
type recordedStatus struct {
	DeploymentStatus string `json:"DeploymentStatus"`
	DeploymentType   string `json:"DeploymentType"`
	ErrorMessage     string `json:"ErrorMessage"`
	ErrorDetails     []struct {
		DetailedErrorCode    string `json:"DetailedErrorCode"`
		DetailedErrorMessage string `json:"DetailedErrorMessage"`
	} `json:"ErrorDetails"`
	UpdatedAt dialect.Time `json:"UpdatedAt"`
}

// recordedList is what fleetlab reads of ListDeployments' output.
type recordedList struct {
	Deployments []struct {
		CreatedAt      dialect.Time `json:"CreatedAt"`
		DeploymentArn  string       `json:"DeploymentArn"`
		DeploymentID   string       `json:"DeploymentId"`
		DeploymentType string       `json:"DeploymentType"`
		GroupArn       string       `json:"GroupArn"`
	} `json:"Deployments"`
	NextToken string `json:"NextToken"`
}

// recordedCore is what fleetlab reads of GetCoreDefinitionVersion's output.
type recordedCore struct {
	Arn               string `json:"Arn"`
	CreationTimestamp string `json:"CreationTimestamp"`
	Definition        struct {
		Cores []struct {
			CertificateArn string `json:"CertificateArn"`
			ID             string `json:"Id"`
			SyncShadow     bool   `json:"SyncShadow"`
			ThingArn       string `json:"ThingArn"`
		} `json:"Cores"`
	} `json:"Definition"`
	ID        string `json:"Id"`
	NextToken string `json:"NextToken"`
	Version   string `json:"Version"`
}

// functionExit reads the function and the exit status of a GG-FUNCTION-FAILED message.
var functionExit = regexp.MustCompile(`function (\S+) .*exited with status (\d+)`)

// ReadRecord implements dialect.Replayer. Each group is a device, named after its core's thing when the record
// has the core definition version (its Cores[0].ThingArn), else core-<GROUP_ID>. The deployment is the newest
// of list-deployments.json; its status, and the first DetailedErrorCode of a Failure, are the device's. A
// failure's code becomes the fault that makes the core fail so:
//
//	GG-FUNCTION-FAILED "function pre-launch|post-launch … exited with status N"
//	                                   the function's script exits N (script-exit)
//	GG-FUNCTION-FAILED "… is not in the group version", on every core
//	                                   a bundle whose launch file is missing
//	GG-RESOURCE-CHECKSUM, on every core the resource served with another ETag
//	GG-RESOURCE-DOWNLOAD, on every core the resource missing from the store
//	GG-RESOURCE-ARCHIVE, on every core  a resource that is not an archive
//
// Anything else is named in Unmapped. The replay deploys a fixture bundle to every group in one bulk
// deployment, which ends Completed once every group's deployment has ended.
func (Driver) ReadRecord(dir fs.FS) (dialect.FieldRecord, bool, error) {
	rec := dialect.FieldRecord{Dialect: Name, Status: JobCompleted, Job: dialect.JobSpec{Bundle: bundles.Hello}}
	var prefixes []string
	if _, err := fs.Stat(dir, recordStatus); err == nil {
		prefixes = append(prefixes, ".")
	}
	if entries, err := fs.ReadDir(dir, recordGroups); err == nil {
		for _, e := range entries {
			p := path.Join(recordGroups, e.Name())
			if !e.IsDir() {
				rec.Unmapped = append(rec.Unmapped, p+": not a groups/<GROUP_ID>/ directory; not read")
				continue
			}
			prefixes = append(prefixes, p)
		}
	}
	if len(prefixes) == 0 {
		return dialect.FieldRecord{}, false, nil
	}
	names := map[string]string{}
	for _, p := range prefixes {
		dev, err := readGroup(dir, p, &rec)
		if err != nil {
			return rec, true, err
		}
		if other, dup := names[dev.Name]; dup {
			return rec, true, &dialect.RecordError{File: path.Join(p, recordCore), Field: "Definition.Cores[0].ThingArn",
				Err: fmt.Errorf("core %s is the core of %s too: a core is in one group", dev.Name, other)}
		}
		names[dev.Name] = p
		rec.Devices = append(rec.Devices, dev)
	}
	mapFailures(&rec)
	return rec, true, nil
}

// readGroup reads the files of one group under p.
func readGroup(dir fs.FS, p string, rec *dialect.FieldRecord) (dialect.FieldDevice, error) {
	file := func(name string) string { return path.Join(p, name) }
	note := func(format string, args ...any) { rec.Unmapped = append(rec.Unmapped, fmt.Sprintf(format, args...)) }
	bad := func(f, field, format string, args ...any) error {
		return &dialect.RecordError{File: f, Field: field, Err: fmt.Errorf(format, args...)}
	}
	var st recordedStatus
	unknown, err := dialect.ReadJSON(dir, file(recordStatus), &st)
	if err != nil {
		return dialect.FieldDevice{}, err
	}
	rec.Unmapped = append(rec.Unmapped, unknown...)
	if !slices.Contains([]string{DeviceBuilding, DeviceInProgress, DeviceSuccess, DeviceFailure}, st.DeploymentStatus) {
		return dialect.FieldDevice{}, bad(file(recordStatus), "DeploymentStatus", "%q: want Building, InProgress, Success or Failure", st.DeploymentStatus)
	}
	if err := st.UpdatedAt.Check(file(recordStatus), "UpdatedAt"); err != nil {
		return dialect.FieldDevice{}, err
	}
	var list recordedList
	unknown, err = dialect.ReadJSON(dir, file(recordList), &list)
	if err != nil {
		return dialect.FieldDevice{}, err
	}
	rec.Unmapped = append(rec.Unmapped, unknown...)
	if len(list.Deployments) == 0 {
		return dialect.FieldDevice{}, bad(file(recordList), "Deployments", "none: the group's deployment must be listed")
	}
	if list.NextToken != "" {
		note("%s: NextToken: more deployments on another page; the newest of this one is the record's", file(recordList))
	}
	newest := 0
	for i, d := range list.Deployments {
		if err := d.CreatedAt.Check(file(recordList), fmt.Sprintf("Deployments[%d].CreatedAt", i)); err != nil {
			return dialect.FieldDevice{}, err
		}
		if d.CreatedAt.After(list.Deployments[newest].CreatedAt.Time) {
			newest = i
		}
	}
	dep := list.Deployments[newest]
	field := fmt.Sprintf("Deployments[%d]", newest)
	gid := GroupID(dep.GroupArn)
	if gid == "" {
		gid = GroupID(dep.DeploymentArn)
	}
	if gid == "" && p != "." {
		gid = path.Base(p)
	}
	if gid == "" {
		return dialect.FieldDevice{}, bad(file(recordList), field+".GroupArn", "%q: want arn:aws:greengrass:REGION:ACCOUNT:/greengrass/groups/GROUP_ID/versions/VERSION_ID", dep.GroupArn)
	}
	if p != "." && gid != path.Base(p) {
		return dialect.FieldDevice{}, bad(file(recordList), field+".GroupArn", "group %s, in the directory of group %s", gid, path.Base(p))
	}
	typ := st.DeploymentType
	if typ == "" {
		typ = dep.DeploymentType
	}
	if typ != "" && typ != "NewDeployment" {
		note("%s: DeploymentType: %s, replayed as a NewDeployment of the group", file(recordStatus), typ)
	}
	dev := dialect.FieldDevice{Name: deviceDefault + gid, Architecture: fleet.ArchAMD64, Status: st.DeploymentStatus,
		FailureReason: st.ErrorMessage, Started: dep.CreatedAt.Time, Finished: st.UpdatedAt.Time}
	if st.DeploymentStatus == DeviceBuilding || st.DeploymentStatus == DeviceInProgress {
		dev.Finished = dev.Started
		note("%s: DeploymentStatus: %s: the core had not ended the deployment; fleetlab's replay ends it, not reproduced", file(recordStatus), st.DeploymentStatus)
	}
	if len(st.ErrorDetails) > 0 {
		dev.FailureCode = st.ErrorDetails[0].DetailedErrorCode
		if dev.FailureReason == "" {
			dev.FailureReason = st.ErrorDetails[0].DetailedErrorMessage
		}
		if len(st.ErrorDetails) > 1 {
			note("%s: ErrorDetails[1:]: only the first detailed error is compared", file(recordStatus))
		}
	}
	var core recordedCore
	unknown, err = dialect.ReadJSON(dir, file(recordCore), &core)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		note("%s: absent: the core's thing is not in the record; group %s's core is named %s", file(recordCore), gid, dev.Name)
		if err := fleet.CheckName(dev.Name); err != nil {
			return dev, bad(file(recordList), field+".GroupArn", "group id %s makes no device name: %v", gid, err)
		}
		return dev, nil
	case err != nil:
		return dev, err
	}
	rec.Unmapped = append(rec.Unmapped, unknown...)
	if len(core.Definition.Cores) == 0 {
		return dev, bad(file(recordCore), "Definition.Cores", "none: a group deployment needs its core")
	}
	arn := core.Definition.Cores[0].ThingArn
	_, thing, ok := strings.Cut(arn, ":thing/")
	if !ok {
		return dev, bad(file(recordCore), "Definition.Cores[0].ThingArn", "%q: want arn:aws:iot:REGION:ACCOUNT:thing/NAME", arn)
	}
	if err := fleet.CheckName(thing); err != nil {
		return dev, bad(file(recordCore), "Definition.Cores[0].ThingArn", "%v", err)
	}
	dev.Name = thing
	return dev, nil
}

// mapFailures turns each core's failure into the faults, or the deployment's bundle or faults, that reproduce it.
func mapFailures(rec *dialect.FieldRecord) {
	note := func(format string, args ...any) { rec.Unmapped = append(rec.Unmapped, fmt.Sprintf(format, args...)) }
	every := func(match func(dialect.FieldDevice) bool) (all, some bool) {
		n := 0
		for _, d := range rec.Devices {
			if match(d) {
				n++
			}
		}
		return n > 0 && n == len(rec.Devices), n > 0
	}
	missingLaunch := func(d dialect.FieldDevice) bool {
		return d.FailureCode == "GG-FUNCTION-FAILED" && strings.Contains(d.FailureReason, "is not in the group version")
	}
	object := json.RawMessage(fmt.Sprintf(`{"bucket":%q,"key":%q}`, recordBucket, bundles.Hello+".tar.gz"))
	shared := []struct {
		code  string
		match func(dialect.FieldDevice) bool
		apply func()
	}{
		{"GG-RESOURCE-CHECKSUM", nil, func() { rec.Faults = append(rec.Faults, faults.Spec{Fault: "etag-mismatch", Params: object}) }},
		{"GG-RESOURCE-DOWNLOAD", nil, func() { rec.Faults = append(rec.Faults, faults.Spec{Fault: "missing-object", Params: object}) }},
		{"GG-RESOURCE-ARCHIVE", nil, func() { rec.Job.Bundle = "corrupt" }},
		{"GG-FUNCTION-FAILED", missingLaunch, func() { rec.Job.Bundle = "missing-launch-file" }},
	}
	handled := map[string]bool{}
	for _, s := range shared {
		match := s.match
		if match == nil {
			code := s.code
			match = func(d dialect.FieldDevice) bool { return d.FailureCode == code }
		}
		all, some := every(match)
		switch {
		case all:
			s.apply()
		case some:
			note("%s on some cores only: fleetlab serves the group's resource alike to every core; not reproduced", s.code)
		}
		for _, d := range rec.Devices {
			if match(d) {
				handled[d.Name] = true
			}
		}
	}
	for i := range rec.Devices {
		dev := &rec.Devices[i]
		if dev.Status != DeviceFailure || handled[dev.Name] {
			continue
		}
		if m := functionExit.FindStringSubmatch(dev.FailureReason); dev.FailureCode == "GG-FUNCTION-FAILED" && m != nil &&
			(m[1] == FunctionPreLaunch || m[1] == FunctionPostLaunch) {
			code, _ := strconv.Atoi(m[2])
			if code >= 1 && code <= 255 {
				dev.Faults = append(dev.Faults, faults.Spec{Fault: "script-exit",
					Params: json.RawMessage(fmt.Sprintf(`{"script":%q,"code":%d}`, m[1], code))})
				continue
			}
		}
		note("core %s: failure %s (%s): no fault of fleetlab's reproduces it; not reproduced", dev.Name, dev.FailureCode, dev.FailureReason)
	}
}

// Collect implements dialect.Replayer. job is a bulk deployment's ARN (every group of its detailed
// reports, each under groups/<GROUP_ID>/) or a group's id (its newest deployment, at the top of dir).
func (Driver) Collect(ctx context.Context, endpoint string, rt http.RoundTripper, job, dir string) error {
	rt, last := dialect.CaptureAnswers(rt)
	c := client(endpoint, rt)
	if strings.Contains(job, "/greengrass/bulk/deployments/") {
		var token *string
		for {
			rep, err := c.ListBulkDeploymentDetailedReports(ctx, &gg.ListBulkDeploymentDetailedReportsInput{
				BulkDeploymentId: aws.String(JobID(job)), NextToken: token})
			if err != nil {
				return fmt.Errorf("list-bulk-deployment-detailed-reports: %w", err)
			}
			for _, d := range rep.Deployments {
				gid := GroupID(aws.ToString(d.GroupArn))
				if err := collectGroup(ctx, c, last, gid, aws.ToString(d.DeploymentId), filepath.Join(dir, recordGroups, gid)); err != nil {
					return err
				}
			}
			if token = rep.NextToken; token == nil {
				return nil
			}
		}
	}
	return collectGroup(ctx, c, last, job, "", dir)
}

// collectGroup writes one group's files into dir: its deployment did (the newest when empty).
func collectGroup(ctx context.Context, c *gg.Client, last func() []byte, gid, did, dir string) error {
	list, err := c.ListDeployments(ctx, &gg.ListDeploymentsInput{GroupId: aws.String(gid)})
	if err != nil {
		return fmt.Errorf("list-deployments %s: %w", gid, err)
	}
	if err := dialect.WriteAnswer(filepath.Join(dir, recordList), last()); err != nil {
		return err
	}
	if did == "" {
		var newest string
		for _, d := range list.Deployments {
			if newest == "" || aws.ToString(d.CreatedAt) > newest {
				newest, did = aws.ToString(d.CreatedAt), aws.ToString(d.DeploymentId)
			}
		}
		if did == "" {
			return fmt.Errorf("group %s has no deployment", gid)
		}
	}
	if _, err := c.GetDeploymentStatus(ctx, &gg.GetDeploymentStatusInput{GroupId: aws.String(gid), DeploymentId: aws.String(did)}); err != nil {
		return fmt.Errorf("get-deployment-status %s %s: %w", gid, did, err)
	}
	if err := dialect.WriteAnswer(filepath.Join(dir, recordStatus), last()); err != nil {
		return err
	}
	g, err := c.GetGroup(ctx, &gg.GetGroupInput{GroupId: aws.String(gid)})
	if err != nil {
		return fmt.Errorf("get-group %s: %w", gid, err)
	}
	v, err := c.GetGroupVersion(ctx, &gg.GetGroupVersionInput{GroupId: aws.String(gid), GroupVersionId: g.LatestVersion})
	if err != nil {
		return fmt.Errorf("get-group-version %s: %w", gid, err)
	}
	if v.Definition == nil || v.Definition.CoreDefinitionVersionArn == nil {
		return nil // no core: the record names none
	}
	coreID, coreVersion, ok := CoreVersion(aws.ToString(v.Definition.CoreDefinitionVersionArn))
	if !ok {
		return fmt.Errorf("group %s: core definition version %q is not an ARN of one", gid, aws.ToString(v.Definition.CoreDefinitionVersionArn))
	}
	if _, err := c.GetCoreDefinitionVersion(ctx, &gg.GetCoreDefinitionVersionInput{CoreDefinitionId: aws.String(coreID),
		CoreDefinitionVersionId: aws.String(coreVersion)}); err != nil {
		return fmt.Errorf("get-core-definition-version %s: %w", coreID, err)
	}
	return dialect.WriteAnswer(filepath.Join(dir, recordCore), last())
}

// CoreVersion returns the ids in a core definition version's ARN
// (…:/greengrass/definition/cores/<id>/versions/<version>).
func CoreVersion(arn string) (id, version string, ok bool) {
	_, rest, ok := strings.Cut(arn, "/greengrass/definition/cores/")
	if !ok {
		return "", "", false
	}
	id, version, ok = strings.Cut(rest, "/versions/")
	return id, version, ok && id != "" && version != "" && !strings.Contains(version, "/")
}
