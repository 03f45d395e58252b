package greengrass

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	gg "github.com/aws/aws-sdk-go-v2/service/greengrass"
	"github.com/aws/aws-sdk-go-v2/service/greengrass/types"

	"github.com/fleetlab/fleetlab/sim/engine"
)

const role = "arn:aws:iam::123456789012:role/bulk"

// TestBulkDeployment: one engine deployment for the valid records, each a group deployment with a status of its
// own; invalid records counted; Running until every core ended, then Completed.
func TestBulkDeployment(t *testing.T) {
	e := newEnv(t)
	g1, v1 := e.group("core-1")
	g2, v2 := e.group("core-2")
	g3, v3 := e.group("core-1") // the same core as g1: invalid in one bulk
	noCore, noCoreV := e.group("")
	lines := []string{
		fmt.Sprintf(`{"GroupId":%q,"GroupVersionId":%q,"DeploymentType":"NewDeployment"}`, g1, v1),
		fmt.Sprintf(`{"GroupId":%q,"GroupVersionId":%q,"DeploymentType":"NewDeployment"}`, g2, v2),
		fmt.Sprintf(`{"GroupId":%q,"GroupVersionId":%q,"DeploymentType":"NewDeployment"}`, g3, v3),
		fmt.Sprintf(`{"GroupId":%q,"GroupVersionId":%q,"DeploymentType":"NewDeployment"}`, noCore, noCoreV),
		fmt.Sprintf(`{"GroupId":%q,"GroupVersionId":%q,"DeploymentType":"Redeployment"}`, g2, v2),
		`not json`,
	}
	e.objects.put("input", "bulk.jsonl", []byte(strings.Join(lines, "\n")+"\n"))
	in := &gg.StartBulkDeploymentInput{InputFileUri: aws.String("s3://input/bulk.jsonl"),
		ExecutionRoleArn: aws.String(role), AmznClientToken: aws.String("bulk-1")}
	out, err := e.c.StartBulkDeployment(e.ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.c.StartBulkDeployment(e.ctx, in)
	if err != nil || aws.ToString(again.BulkDeploymentId) != aws.ToString(out.BulkDeploymentId) {
		t.Fatalf("token replay %v %v", again, err)
	}
	id := aws.ToString(out.BulkDeploymentId)
	st, err := e.c.GetBulkDeploymentStatus(e.ctx, &gg.GetBulkDeploymentStatusInput{BulkDeploymentId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	if st.BulkDeploymentStatus != types.BulkDeploymentStatusRunning || aws.ToInt32(st.BulkDeploymentMetrics.RecordsProcessed) != 6 ||
		aws.ToInt32(st.BulkDeploymentMetrics.InvalidInputRecords) != 4 {
		t.Fatalf("status %s metrics %+v", st.BulkDeploymentStatus, st.BulkDeploymentMetrics)
	}
	if n := len(e.engine.Deployments(Kind)); n != 1 {
		t.Fatalf("%d engine deployments, want the bulk's one", n)
	}
	e.core("core-1", engine.ExecSucceeded, "", "")
	e.core("core-2", engine.ExecFailed, "GG-FUNCTION-FAILED", "function f exited 2")
	rep, err := e.c.ListBulkDeploymentDetailedReports(e.ctx, &gg.ListBulkDeploymentDetailedReportsInput{BulkDeploymentId: aws.String(id)})
	if err != nil || len(rep.Deployments) != 2 {
		t.Fatalf("reports %+v %v", rep, err)
	}
	if aws.ToString(rep.Deployments[0].DeploymentStatus) != StatusSuccess || aws.ToString(rep.Deployments[1].DeploymentStatus) != StatusFailure ||
		aws.ToString(rep.Deployments[1].ErrorDetails[0].DetailedErrorCode) != "GG-FUNCTION-FAILED" {
		t.Fatalf("reports %+v", rep.Deployments)
	}
	// Each group's deployment answers GetDeploymentStatus and ListDeployments on its own.
	gs := e.status(g2, aws.ToString(rep.Deployments[1].DeploymentId))
	if aws.ToString(gs.DeploymentStatus) != StatusFailure {
		t.Fatalf("group status %+v", gs)
	}
	st, _ = e.c.GetBulkDeploymentStatus(e.ctx, &gg.GetBulkDeploymentStatusInput{BulkDeploymentId: aws.String(id)})
	if st.BulkDeploymentStatus != types.BulkDeploymentStatusCompleted {
		t.Fatalf("status %s after every core ended", st.BulkDeploymentStatus)
	}
	_, err = e.c.StopBulkDeployment(e.ctx, &gg.StopBulkDeploymentInput{BulkDeploymentId: aws.String(id)})
	wantError(t, err, "BadRequestException", 400)
	list, err := e.c.ListBulkDeployments(e.ctx, &gg.ListBulkDeploymentsInput{})
	if err != nil || len(list.BulkDeployments) != 1 {
		t.Fatalf("ListBulkDeployments %+v %v", list, err)
	}
}

// TestBulkErrors: an input file that is not there, a role that is not an ARN, an unknown bulk deployment; a stop
// ends what the cores had not taken.
func TestBulkErrors(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		in   gg.StartBulkDeploymentInput
		code string
	}{
		{gg.StartBulkDeploymentInput{InputFileUri: aws.String("s3://input/none"), ExecutionRoleArn: aws.String(role)}, "InvalidInputException"},
		{gg.StartBulkDeploymentInput{InputFileUri: aws.String("http://x"), ExecutionRoleArn: aws.String(role)}, "InvalidInputException"},
		{gg.StartBulkDeploymentInput{InputFileUri: aws.String("s3://input/none"), ExecutionRoleArn: aws.String("role")}, "InvalidInputException"},
	} {
		_, err := e.c.StartBulkDeployment(e.ctx, &tt.in)
		wantError(t, err, tt.code, 400)
	}
	_, err := e.c.GetBulkDeploymentStatus(e.ctx, &gg.GetBulkDeploymentStatusInput{BulkDeploymentId: aws.String("nope")})
	wantError(t, err, "ResourceNotFoundException", 404)

	g1, v1 := e.group("core-1")
	e.objects.put("input", "one.jsonl", []byte(fmt.Sprintf(`{"GroupId":%q,"GroupVersionId":%q,"DeploymentType":"NewDeployment"}`, g1, v1)))
	out, err := e.c.StartBulkDeployment(e.ctx, &gg.StartBulkDeploymentInput{InputFileUri: aws.String("s3://input/one.jsonl"),
		ExecutionRoleArn: aws.String(role)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.StopBulkDeployment(e.ctx, &gg.StopBulkDeploymentInput{BulkDeploymentId: out.BulkDeploymentId}); err != nil {
		t.Fatal(err)
	}
	st, _ := e.c.GetBulkDeploymentStatus(e.ctx, &gg.GetBulkDeploymentStatusInput{BulkDeploymentId: out.BulkDeploymentId})
	if st.BulkDeploymentStatus != types.BulkDeploymentStatusStopped {
		t.Fatalf("status %s after a stop", st.BulkDeploymentStatus)
	}
	ds, _ := e.c.ListDeployments(e.ctx, &gg.ListDeploymentsInput{GroupId: aws.String(g1)})
	if len(ds.Deployments) != 1 || aws.ToString(e.status(g1, aws.ToString(ds.Deployments[0].DeploymentId)).DeploymentStatus) != StatusFailure {
		t.Fatalf("the stopped group deployment %+v", ds)
	}
}
