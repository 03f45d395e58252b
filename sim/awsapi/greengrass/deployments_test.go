package greengrass

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	gg "github.com/aws/aws-sdk-go-v2/service/greengrass"
	"github.com/aws/aws-sdk-go-v2/service/greengrass/types"

	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	ggwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/greengrass"
	"github.com/fleetlab/fleetlab/sim/engine"
)

// TestDeploymentLifecycle: Building until the core takes the deployment, InProgress while it runs, Success when
// it reports so; UpdatedAt moves with each transition, and the core's document is the group version resolved.
func TestDeploymentLifecycle(t *testing.T) {
	e := newEnv(t)
	gid, vid := e.group("core-1", "echo hi")
	did := e.deploy(gid, vid)

	st := e.status(gid, did)
	if aws.ToString(st.DeploymentStatus) != StatusBuilding || st.DeploymentType != types.DeploymentTypeNewDeployment {
		t.Fatalf("status %s %s, want Building NewDeployment", aws.ToString(st.DeploymentStatus), st.DeploymentType)
	}
	built := aws.ToString(st.UpdatedAt)
	if built != "2026-03-01T10:00:00.000Z" {
		t.Errorf("UpdatedAt %s, want the creation time", built)
	}

	e.clock.Advance(time.Minute)
	e.core("core-1", engine.ExecInProgress, "", "")
	st = e.status(gid, did)
	if aws.ToString(st.DeploymentStatus) != StatusInProgress || aws.ToString(st.UpdatedAt) != "2026-03-01T10:01:00.000Z" {
		t.Fatalf("status %s at %s, want InProgress at 10:01", aws.ToString(st.DeploymentStatus), aws.ToString(st.UpdatedAt))
	}
	dep, _ := e.engine.Deployment(did)
	var env wire.Document
	if err := json.Unmarshal(dep.Document, &env); err != nil {
		t.Fatal(err)
	}
	doc, err := ggwire.FromEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	if doc.GroupID != gid || doc.GroupVersionID != vid || len(doc.Functions) != 1 || doc.Functions[0].Executable != "echo hi" ||
		!doc.Functions[0].Pinned || doc.Functions[0].Environment["N"] != "1" || ggwire.ThingName(doc.Core.ThingArn) != "core-1" {
		t.Fatalf("document %+v", doc)
	}

	if _, err := e.engine.Report("core-1", did, engine.Update{Status: engine.ExecSucceeded}); err != nil {
		t.Fatal(err)
	}
	st = e.status(gid, did)
	if aws.ToString(st.DeploymentStatus) != StatusSuccess || st.ErrorMessage != nil || st.ErrorDetails != nil {
		t.Fatalf("status %+v, want Success without errors", st)
	}
}

// TestDeploymentFailure: the core's failure code and reason are ErrorMessage and ErrorDetails.
func TestDeploymentFailure(t *testing.T) {
	e := newEnv(t)
	gid, vid := e.group("core-1", "exit 3")
	did := e.deploy(gid, vid)
	e.core("core-1", engine.ExecFailed, ggwire.CodeFunctionFailed, "function f0 exited 3")
	st := e.status(gid, did)
	if aws.ToString(st.DeploymentStatus) != StatusFailure || aws.ToString(st.ErrorMessage) != "function f0 exited 3" ||
		len(st.ErrorDetails) != 1 || aws.ToString(st.ErrorDetails[0].DetailedErrorCode) != ggwire.CodeFunctionFailed {
		t.Fatalf("status %+v", st)
	}
	if aws.ToString(st.UpdatedAt) != "2026-03-01T10:00:03.000Z" {
		t.Errorf("UpdatedAt %s, want the failure's time", aws.ToString(st.UpdatedAt))
	}
}

// TestCreateDeploymentErrors: every refusal of CreateDeployment, with its code and status, stores nothing.
func TestCreateDeploymentErrors(t *testing.T) {
	e := newEnv(t)
	gid, vid := e.group("core-1")
	noCore, noCoreVersion := e.group("")
	other, _ := e.group("core-2")
	tests := []struct {
		name   string
		in     gg.CreateDeploymentInput
		code   string
		status int
	}{
		{"unknown group", gg.CreateDeploymentInput{GroupId: aws.String("nope"), GroupVersionId: aws.String(vid),
			DeploymentType: types.DeploymentTypeNewDeployment}, "IdNotFoundException", 404},
		{"no version", gg.CreateDeploymentInput{GroupId: aws.String(gid),
			DeploymentType: types.DeploymentTypeNewDeployment}, "InvalidInputException", 400},
		{"unknown version", gg.CreateDeploymentInput{GroupId: aws.String(gid), GroupVersionId: aws.String("nope"),
			DeploymentType: types.DeploymentTypeNewDeployment}, "VersionNotFoundException", 404},
		{"version of another group", gg.CreateDeploymentInput{GroupId: aws.String(other), GroupVersionId: aws.String(vid),
			DeploymentType: types.DeploymentTypeNewDeployment}, "VersionNotFoundException", 404},
		{"redeploy without id", gg.CreateDeploymentInput{GroupId: aws.String(gid),
			DeploymentType: types.DeploymentTypeRedeployment}, "InvalidInputException", 400},
		{"redeploy unknown", gg.CreateDeploymentInput{GroupId: aws.String(gid), DeploymentId: aws.String("nope"),
			DeploymentType: types.DeploymentTypeRedeployment}, "InvalidInputException", 400},
		{"reset type", gg.CreateDeploymentInput{GroupId: aws.String(gid), GroupVersionId: aws.String(vid),
			DeploymentType: types.DeploymentTypeResetDeployment}, "InvalidInputException", 400},
		{"unknown type", gg.CreateDeploymentInput{GroupId: aws.String(gid), GroupVersionId: aws.String(vid),
			DeploymentType: "Sideways"}, "BadRequestException", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.c.CreateDeployment(e.ctx, &tt.in)
			wantError(t, err, tt.code, tt.status)
		})
	}
	t.Run("no core", func(t *testing.T) {
		_, err := e.c.CreateDeployment(e.ctx, &gg.CreateDeploymentInput{GroupId: aws.String(noCore),
			GroupVersionId: aws.String(noCoreVersion), DeploymentType: types.DeploymentTypeNewDeployment})
		wantError(t, err, "MissingCoreException", 400)
		// The error's ErrorDetails carry GG-303, as the service sends them.
		req, _ := http.NewRequest("POST", e.srv.URL+"/greengrass/groups/"+noCore+"/deployments",
			strings.NewReader(`{"DeploymentType":"NewDeployment","GroupVersionId":"`+noCoreVersion+`"}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Message      string
			ErrorDetails []ErrorDetail
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 400 || len(body.ErrorDetails) != 1 || body.ErrorDetails[0].DetailedErrorCode != "GG-303" ||
			!strings.Contains(body.Message, "Greengrass Core") {
			t.Fatalf("status %d body %+v", resp.StatusCode, body)
		}
	})
	if n := len(e.engine.Deployments(Kind)); n != 0 {
		t.Fatalf("%d deployments after refusals", n)
	}
}

// TestRedeploymentAndToken: a Redeployment deploys the earlier deployment's group version under a new id; the
// client token answers the same deployment for the same request and refuses another request.
func TestRedeploymentAndToken(t *testing.T) {
	e := newEnv(t)
	gid, vid := e.group("core-1")
	in := &gg.CreateDeploymentInput{GroupId: aws.String(gid), GroupVersionId: aws.String(vid),
		DeploymentType: types.DeploymentTypeNewDeployment, AmznClientToken: aws.String("tok-1")}
	a, err := e.c.CreateDeployment(e.ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.c.CreateDeployment(e.ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(a.DeploymentId) != aws.ToString(b.DeploymentId) {
		t.Fatalf("same token gave %s and %s", aws.ToString(a.DeploymentId), aws.ToString(b.DeploymentId))
	}
	want := "arn:aws:greengrass:us-east-1:123456789012:/greengrass/groups/" + gid + "/deployments/" + aws.ToString(a.DeploymentId)
	if aws.ToString(a.DeploymentArn) != want {
		t.Errorf("DeploymentArn %s, want %s", aws.ToString(a.DeploymentArn), want)
	}
	_, err = e.c.CreateDeployment(e.ctx, &gg.CreateDeploymentInput{GroupId: aws.String(gid), DeploymentId: a.DeploymentId,
		DeploymentType: types.DeploymentTypeRedeployment, AmznClientToken: aws.String("tok-1")})
	wantError(t, err, "InvalidInputException", 400)

	e.core("core-1", engine.ExecSucceeded, "", "")
	redo, err := e.c.CreateDeployment(e.ctx, &gg.CreateDeploymentInput{GroupId: aws.String(gid),
		DeploymentId: a.DeploymentId, DeploymentType: types.DeploymentTypeRedeployment})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(redo.DeploymentId) == aws.ToString(a.DeploymentId) {
		t.Fatal("the redeployment has the first deployment's id")
	}
	st := e.status(gid, aws.ToString(redo.DeploymentId))
	if st.DeploymentType != types.DeploymentTypeRedeployment || aws.ToString(st.DeploymentStatus) != StatusBuilding {
		t.Fatalf("redeployment status %+v", st)
	}
	if n := len(e.engine.Deployments(Kind)); n != 2 {
		t.Fatalf("%d engine deployments, want 2", n)
	}
}

// TestListDeployments: creation order, the ARN quirks (GroupArn is the group version's), paging and its errors.
func TestListDeployments(t *testing.T) {
	e := newEnv(t)
	gid, vid := e.group("core-1")
	var ids []string
	for range 3 {
		ids = append(ids, e.deploy(gid, vid))
		e.core("core-1", engine.ExecSucceeded, "", "")
	}
	out, err := e.c.ListDeployments(e.ctx, &gg.ListDeploymentsInput{GroupId: aws.String(gid), MaxResults: aws.String("2")})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Deployments) != 2 || out.NextToken == nil || aws.ToString(out.Deployments[0].DeploymentId) != ids[0] {
		t.Fatalf("first page %+v", out)
	}
	d := out.Deployments[0]
	groupARN := "arn:aws:greengrass:us-east-1:123456789012:/greengrass/groups/" + gid
	if aws.ToString(d.GroupArn) != groupARN+"/versions/"+vid || aws.ToString(d.DeploymentArn) != groupARN+"/deployments/"+ids[0] ||
		d.DeploymentType != types.DeploymentTypeNewDeployment || aws.ToString(d.CreatedAt) == "" {
		t.Fatalf("item %+v", d)
	}
	out, err = e.c.ListDeployments(e.ctx, &gg.ListDeploymentsInput{GroupId: aws.String(gid), NextToken: out.NextToken})
	if err != nil || len(out.Deployments) != 1 || aws.ToString(out.Deployments[0].DeploymentId) != ids[2] || out.NextToken != nil {
		t.Fatalf("second page %+v %v", out, err)
	}
	for _, tt := range []struct {
		in   gg.ListDeploymentsInput
		code string
		st   int
	}{
		{gg.ListDeploymentsInput{GroupId: aws.String(gid), MaxResults: aws.String("0")}, "BadRequestException", 400},
		{gg.ListDeploymentsInput{GroupId: aws.String(gid), MaxResults: aws.String("251")}, "BadRequestException", 400},
		{gg.ListDeploymentsInput{GroupId: aws.String(gid), NextToken: aws.String("garbage")}, "BadRequestException", 400},
		{gg.ListDeploymentsInput{GroupId: aws.String("nope")}, "IdNotFoundException", 404},
	} {
		_, err := e.c.ListDeployments(e.ctx, &tt.in)
		wantError(t, err, tt.code, tt.st)
	}
}

// TestResetDeployments: refused while Building or InProgress and when there is nothing to reset; a reset goes to
// the core; a forced one is Success at once.
func TestResetDeployments(t *testing.T) {
	e := newEnv(t)
	gid, vid := e.group("core-1")

	_, err := e.c.ResetDeployments(e.ctx, &gg.ResetDeploymentsInput{GroupId: aws.String(gid)})
	wantError(t, err, "ResourceNotFoundException", 404)
	_, err = e.c.ResetDeployments(e.ctx, &gg.ResetDeploymentsInput{GroupId: aws.String("nope")})
	wantError(t, err, "IdNotFoundException", 404)

	did := e.deploy(gid, vid)
	_, err = e.c.ResetDeployments(e.ctx, &gg.ResetDeploymentsInput{GroupId: aws.String(gid)})
	wantError(t, err, "BadRequestException", 400) // Building
	e.core("core-1", engine.ExecInProgress, "", "")
	_, err = e.c.ResetDeployments(e.ctx, &gg.ResetDeploymentsInput{GroupId: aws.String(gid), Force: aws.Bool(true)})
	wantError(t, err, "BadRequestException", 400) // InProgress
	if _, err := e.engine.Report("core-1", did, engine.Update{Status: engine.ExecFailed}); err != nil {
		t.Fatal(err)
	}

	_, err = e.c.DeleteGroup(e.ctx, &gg.DeleteGroupInput{GroupId: aws.String(gid)})
	wantError(t, err, "BadRequestException", 400) // deployed

	reset, err := e.c.ResetDeployments(e.ctx, &gg.ResetDeploymentsInput{GroupId: aws.String(gid)})
	if err != nil {
		t.Fatal(err)
	}
	rid := aws.ToString(reset.DeploymentId)
	st := e.status(gid, rid)
	if st.DeploymentType != types.DeploymentTypeResetDeployment || aws.ToString(st.DeploymentStatus) != StatusBuilding {
		t.Fatalf("reset status %+v", st)
	}
	dep, err := e.engine.Deployment(rid)
	if err != nil {
		t.Fatal(err)
	}
	var env wire.Document
	_ = json.Unmarshal(dep.Document, &env)
	if doc, err := ggwire.FromEnvelope(env); err != nil || doc.DeploymentType != ggwire.TypeReset {
		t.Fatalf("reset document %+v %v", doc, err)
	}
	e.core("core-1", engine.ExecSucceeded, "", "")
	_, err = e.c.ResetDeployments(e.ctx, &gg.ResetDeploymentsInput{GroupId: aws.String(gid)})
	wantError(t, err, "ResourceNotFoundException", 404) // already reset

	force, err := e.c.ResetDeployments(e.ctx, &gg.ResetDeploymentsInput{GroupId: aws.String(gid), Force: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	st = e.status(gid, aws.ToString(force.DeploymentId))
	if st.DeploymentType != types.DeploymentTypeForceResetDeployment || aws.ToString(st.DeploymentStatus) != StatusSuccess {
		t.Fatalf("forced reset status %+v", st)
	}
	if n := len(e.engine.Deployments(Kind)); n != 2 {
		t.Fatalf("%d engine deployments, want 2 (the forced reset has none)", n)
	}
	if _, err := e.c.DeleteGroup(e.ctx, &gg.DeleteGroupInput{GroupId: aws.String(gid)}); err != nil {
		t.Fatalf("delete a reset group: %v", err)
	}
}

// TestGetDeploymentStatusErrors: an unknown deployment, one of another group, an unknown group.
func TestGetDeploymentStatusErrors(t *testing.T) {
	e := newEnv(t)
	gid, vid := e.group("core-1")
	other, _ := e.group("core-2")
	did := e.deploy(gid, vid)
	for _, tt := range []struct {
		gid, did, code string
		status         int
	}{
		{gid, "nope", "InvalidInputException", 400},
		{other, did, "InvalidInputException", 400},
		{"nope", did, "IdNotFoundException", 404},
	} {
		_, err := e.c.GetDeploymentStatus(e.ctx, &gg.GetDeploymentStatusInput{GroupId: aws.String(tt.gid),
			DeploymentId: aws.String(tt.did)})
		api := wantError(t, err, tt.code, tt.status)
		if tt.did == "nope" && api.ErrorMessage() != "Deployment 'nope' does not exist." {
			t.Errorf("message %q", api.ErrorMessage())
		}
	}
}

// TestDeploymentsSurviveRestart: deployments, their statuses and tokens are in the store.
func TestDeploymentsSurviveRestart(t *testing.T) {
	e := newEnv(t)
	gid, vid := e.group("core-1")
	did := e.deploy(gid, vid)
	e.core("core-1", engine.ExecSucceeded, "", "")
	e.restart()
	if st := e.status(gid, did); aws.ToString(st.DeploymentStatus) != StatusSuccess {
		t.Fatalf("after restart: %+v", st)
	}
	if !e.svc.KnowsThing("core-1") || e.svc.KnowsThing("core-9") {
		t.Fatal("KnowsThing does not follow the core definitions")
	}
}
