package opsworks

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ow "github.com/aws/aws-sdk-go-v2/service/opsworks"
	"github.com/aws/aws-sdk-go-v2/service/opsworks/types"

	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	owwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/opsworks"
	"github.com/fleetlab/fleetlab/sim/engine"
)

func (e *env) document(id string) owwire.Document {
	e.t.Helper()
	d, err := e.engine.Deployment(id)
	if err != nil {
		e.t.Fatal(err)
	}
	var env wire.Document
	var doc owwire.Document
	if json.Unmarshal(d.Document, &env) != nil || json.Unmarshal(env.Payload, &doc) != nil || env.Kind != owwire.Kind {
		e.t.Fatalf("document %s", d.Document)
	}
	return doc
}

// TestDeployLifecycle: a deploy to every online instance, running until each command ended, then successful or
// failed with exit codes, logs and Duration; the releases a later deploy and a rollback carry.
func TestDeployLifecycle(t *testing.T) {
	e := newEnv(t)
	stackID, layerID, appID, inst := e.stack("board-1", "board-2")
	out, err := e.c.CreateDeployment(e.ctx, &ow.CreateDeploymentInput{StackId: aws.String(stackID), AppId: aws.String(appID),
		Command: &types.DeploymentCommand{Name: types.DeploymentCommandNameDeploy, Args: map[string][]string{"migrate": {"true"}}},
		Comment: aws.String("first")})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.DeploymentId)
	doc := e.document(id)
	if doc.Command != "deploy" || doc.Args["migrate"][0] != "true" || doc.App == nil || len(doc.App.Releases) != 1 ||
		doc.App.Releases[0].Source.Key != "hello.tar.gz" || doc.App.Environment["GREETING"] != "hi" ||
		doc.Cookbooks == nil || doc.Cookbooks.Bucket != "cookbooks" || doc.Cookbooks.ETag == "" ||
		len(doc.Instances["board-1"]) != 1 || doc.Layers[layerID].Deploy[0] != "app::deploy" {
		t.Fatalf("document %+v", doc)
	}
	ds, err := e.c.DescribeDeployments(e.ctx, &ow.DescribeDeploymentsInput{DeploymentIds: []string{id}})
	if err != nil || len(ds.Deployments) != 1 || aws.ToString(ds.Deployments[0].Status) != "running" ||
		ds.Deployments[0].CompletedAt != nil || len(ds.Deployments[0].InstanceIds) != 2 {
		t.Fatalf("running %+v %v", ds, err)
	}
	if got := aws.ToString(ds.Deployments[0].CreatedAt); got != "2026-04-01T12:00:00+00:00" {
		t.Errorf("CreatedAt %s", got)
	}
	cs, err := e.c.DescribeCommands(e.ctx, &ow.DescribeCommandsInput{DeploymentId: aws.String(id)})
	if err != nil || len(cs.Commands) != 2 || aws.ToString(cs.Commands[0].Status) != "pending" ||
		aws.ToString(cs.Commands[0].Type) != "deploy" {
		t.Fatalf("pending commands %+v %v", cs, err)
	}
	e.run("board-1", engine.ExecSucceeded, 0, "deployed\n")
	e.run("board-2", engine.ExecFailed, 3, "before_migrate.sh exited 3\n")
	ds, _ = e.c.DescribeDeployments(e.ctx, &ow.DescribeDeploymentsInput{DeploymentIds: []string{id}})
	d := ds.Deployments[0]
	if aws.ToString(d.Status) != "failed" || aws.ToInt32(d.Duration) != 30 || aws.ToString(d.CompletedAt) != "2026-04-01T12:00:30+00:00" {
		t.Fatalf("ended %+v duration %d", d, aws.ToInt32(d.Duration))
	}
	cs, _ = e.c.DescribeCommands(e.ctx, &ow.DescribeCommandsInput{InstanceId: aws.String(inst[1])})
	if len(cs.Commands) != 1 || aws.ToString(cs.Commands[0].Status) != "failed" || aws.ToInt32(cs.Commands[0].ExitCode) != 3 {
		t.Fatalf("board-2's command %+v", cs.Commands)
	}
	log, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(aws.ToString(cs.Commands[0].LogUrl), "data:text/plain;base64,"))
	if string(log) != "before_migrate.sh exited 3\n" {
		t.Fatalf("log %q", log)
	}

	// A failed deploy is no release: the next deploy's releases are its own and none before; once it succeeds,
	// a rollback carries both, newest first.
	second, err := e.c.CreateDeployment(e.ctx, &ow.CreateDeploymentInput{StackId: aws.String(stackID), AppId: aws.String(appID),
		Command: &types.DeploymentCommand{Name: types.DeploymentCommandNameDeploy}})
	if err != nil {
		t.Fatal(err)
	}
	if rel := e.document(aws.ToString(second.DeploymentId)).App.Releases; len(rel) != 1 {
		t.Fatalf("releases %+v", rel)
	}
	e.run("board-1", engine.ExecSucceeded, 0, "ok")
	e.run("board-2", engine.ExecSucceeded, 0, "ok")
	third, _ := e.c.CreateDeployment(e.ctx, &ow.CreateDeploymentInput{StackId: aws.String(stackID), AppId: aws.String(appID),
		Command: &types.DeploymentCommand{Name: types.DeploymentCommandNameDeploy}})
	e.run("board-1", engine.ExecSucceeded, 0, "ok")
	e.run("board-2", engine.ExecSucceeded, 0, "ok")
	rb, err := e.c.CreateDeployment(e.ctx, &ow.CreateDeploymentInput{StackId: aws.String(stackID), AppId: aws.String(appID),
		Command: &types.DeploymentCommand{Name: types.DeploymentCommandNameRollback}})
	if err != nil {
		t.Fatal(err)
	}
	rel := e.document(aws.ToString(rb.DeploymentId)).App.Releases
	if len(rel) != 2 || rel[0].DeploymentID != aws.ToString(third.DeploymentId) || rel[1].DeploymentID != aws.ToString(second.DeploymentId) {
		t.Fatalf("rollback releases %+v", rel)
	}
	all, err := e.c.DescribeDeployments(e.ctx, &ow.DescribeDeploymentsInput{StackId: aws.String(stackID)})
	if err != nil || len(all.Deployments) != 4 || aws.ToString(all.Deployments[0].DeploymentId) != aws.ToString(rb.DeploymentId) {
		t.Fatalf("by stack %+v %v", all, err)
	}
	e.restart()
	byApp, err := e.c.DescribeDeployments(e.ctx, &ow.DescribeDeploymentsInput{AppId: aws.String(appID)})
	if err != nil || len(byApp.Deployments) != 4 || aws.ToString(byApp.Deployments[3].Status) != "failed" {
		t.Fatalf("after restart %+v %v", byApp, err)
	}
}

// TestTargets: listed instances, layers, else the online ones; an offline listed instance's command is skipped.
func TestTargets(t *testing.T) {
	e := newEnv(t)
	stackID, layerID, _, inst := e.stack("board-1")
	ec2, err := e.c.CreateInstance(e.ctx, &ow.CreateInstanceInput{StackId: aws.String(stackID), LayerIds: []string{layerID},
		InstanceType: aws.String("t2.micro"), Hostname: aws.String("vm-1")})
	if err != nil {
		t.Fatal(err)
	}
	recipes := &types.DeploymentCommand{Name: types.DeploymentCommandNameExecuteRecipes, Args: map[string][]string{"recipes": {"base::hello"}}}
	// vm-1 is stopped: all online instances means board-1 only.
	out, err := e.c.CreateDeployment(e.ctx, &ow.CreateDeploymentInput{StackId: aws.String(stackID), Command: recipes})
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := e.engine.Deployment(aws.ToString(out.DeploymentId)); d.Counters.Total != 1 {
		t.Fatalf("%d targets, want board-1 alone", d.Counters.Total)
	}
	e.run("board-1", engine.ExecSucceeded, 0, "ok")
	// By layer: vm-1 is in it but stopped: skipped.
	out, err = e.c.CreateDeployment(e.ctx, &ow.CreateDeploymentInput{StackId: aws.String(stackID), LayerIds: []string{layerID}, Command: recipes})
	if err != nil {
		t.Fatal(err)
	}
	cs, _ := e.c.DescribeCommands(e.ctx, &ow.DescribeCommandsInput{DeploymentId: out.DeploymentId})
	statuses := map[string]string{}
	for _, c := range cs.Commands {
		statuses[aws.ToString(c.InstanceId)] = aws.ToString(c.Status)
	}
	if statuses[aws.ToString(ec2.InstanceId)] != "skipped" || statuses[inst[0]] != "pending" {
		t.Fatalf("statuses %v", statuses)
	}
	e.run("board-1", engine.ExecSucceeded, 0, "ok")
	ds, _ := e.c.DescribeDeployments(e.ctx, &ow.DescribeDeploymentsInput{DeploymentIds: []string{aws.ToString(out.DeploymentId)}})
	if aws.ToString(ds.Deployments[0].Status) != "successful" {
		t.Fatalf("status %s: skipped commands do not fail a deployment", aws.ToString(ds.Deployments[0].Status))
	}
	// Started, vm-1 is online and a target; listed alone, it is the only one.
	if _, err := e.c.StartInstance(e.ctx, &ow.StartInstanceInput{InstanceId: ec2.InstanceId}); err != nil {
		t.Fatal(err)
	}
	out, err = e.c.CreateDeployment(e.ctx, &ow.CreateDeploymentInput{StackId: aws.String(stackID),
		InstanceIds: []string{aws.ToString(ec2.InstanceId)}, Command: &types.DeploymentCommand{Name: types.DeploymentCommandNameSetup}})
	if err != nil {
		t.Fatal(err)
	}
	if doc := e.document(aws.ToString(out.DeploymentId)); len(doc.Instances) != 1 || doc.Instances["vm-1"] == nil {
		t.Fatalf("targets %+v", doc.Instances)
	}
	is, err := e.c.DescribeInstances(e.ctx, &ow.DescribeInstancesInput{LayerId: aws.String(layerID)})
	if err != nil || len(is.Instances) != 2 || aws.ToString(is.Instances[0].Hostname) != "board-1" ||
		aws.ToString(is.Instances[0].Status) != "online" || aws.ToString(is.Instances[0].InfrastructureClass) != "on-premises" {
		t.Fatalf("instances %+v %v", is, err)
	}
	if !e.svc.KnowsThing("vm-1") || e.svc.KnowsThing("nobody") {
		t.Fatal("KnowsThing does not follow the instances' hostnames")
	}
}

// TestErrors: a table of every reachable refusal, each a 400 with __type.
func TestErrors(t *testing.T) {
	e := newEnv(t)
	stackID, layerID, appID, inst := e.stack("board-1")
	other, _, otherApp, _ := e.stack()
	cmd := func(n types.DeploymentCommandName, args map[string][]string) *types.DeploymentCommand {
		return &types.DeploymentCommand{Name: n, Args: args}
	}
	tests := []struct {
		name string
		call func() error
		code string
	}{
		{"stack role not an ARN", func() error {
			_, err := e.c.CreateStack(e.ctx, &ow.CreateStackInput{Name: aws.String("x"), Region: aws.String("us-east-1"),
				ServiceRoleArn: aws.String("role"), DefaultInstanceProfileArn: aws.String(profile)})
			return err
		}, "ValidationException"},
		{"stack git cookbooks", func() error {
			_, err := e.c.CreateStack(e.ctx, &ow.CreateStackInput{Name: aws.String("x"), Region: aws.String("us-east-1"),
				ServiceRoleArn: aws.String(serviceRole), DefaultInstanceProfileArn: aws.String(profile),
				CustomCookbooksSource: &types.Source{Type: types.SourceTypeGit, Url: aws.String("git://x")}})
			return err
		}, "ValidationException"},
		{"stack custom json", func() error {
			_, err := e.c.CreateStack(e.ctx, &ow.CreateStackInput{Name: aws.String("x"), Region: aws.String("us-east-1"),
				ServiceRoleArn: aws.String(serviceRole), DefaultInstanceProfileArn: aws.String(profile), CustomJson: aws.String("{")})
			return err
		}, "ValidationException"},
		{"describe unknown stack", func() error {
			_, err := e.c.DescribeStacks(e.ctx, &ow.DescribeStacksInput{StackIds: []string{"nope"}})
			return err
		}, "ResourceNotFoundException"},
		{"delete a stack with layers", func() error {
			_, err := e.c.DeleteStack(e.ctx, &ow.DeleteStackInput{StackId: aws.String(stackID)})
			return err
		}, "ValidationException"},
		{"layer in unknown stack", func() error {
			_, err := e.c.CreateLayer(e.ctx, &ow.CreateLayerInput{StackId: aws.String("nope"), Type: types.LayerTypeCustom,
				Name: aws.String("l"), Shortname: aws.String("l")})
			return err
		}, "ResourceNotFoundException"},
		{"layer shortname taken", func() error {
			_, err := e.c.CreateLayer(e.ctx, &ow.CreateLayerInput{StackId: aws.String(stackID), Type: types.LayerTypeCustom,
				Name: aws.String("l"), Shortname: aws.String("boards")})
			return err
		}, "ValidationException"},
		{"layer type", func() error {
			_, err := e.c.CreateLayer(e.ctx, &ow.CreateLayerInput{StackId: aws.String(stackID), Type: "mainframe",
				Name: aws.String("l"), Shortname: aws.String("m")})
			return err
		}, "ValidationException"},
		{"describe layers by two", func() error {
			_, err := e.c.DescribeLayers(e.ctx, &ow.DescribeLayersInput{StackId: aws.String(stackID), LayerIds: []string{layerID}})
			return err
		}, "ValidationException"},
		{"app svn source", func() error {
			_, err := e.c.CreateApp(e.ctx, &ow.CreateAppInput{StackId: aws.String(stackID), Name: aws.String("a"),
				Type: types.AppTypeOther, AppSource: &types.Source{Type: types.SourceTypeSvn, Url: aws.String("svn://x")}})
			return err
		}, "ValidationException"},
		{"instance in another stack's layer", func() error {
			_, err := e.c.CreateInstance(e.ctx, &ow.CreateInstanceInput{StackId: aws.String(other), LayerIds: []string{layerID},
				InstanceType: aws.String("t2.micro")})
			return err
		}, "ValidationException"},
		{"register without hostname", func() error {
			_, err := e.c.RegisterInstance(e.ctx, &ow.RegisterInstanceInput{StackId: aws.String(stackID)})
			return err
		}, "ValidationException"},
		{"register a taken hostname", func() error {
			_, err := e.c.RegisterInstance(e.ctx, &ow.RegisterInstanceInput{StackId: aws.String(stackID), Hostname: aws.String("board-1")})
			return err
		}, "ValidationException"},
		{"start unknown instance", func() error {
			_, err := e.c.StartInstance(e.ctx, &ow.StartInstanceInput{InstanceId: aws.String("nope")})
			return err
		}, "ResourceNotFoundException"},
		{"deploy without app", func() error {
			_, err := e.c.CreateDeployment(e.ctx, &ow.CreateDeploymentInput{StackId: aws.String(stackID), Command: cmd("deploy", nil)})
			return err
		}, "ValidationException"},
		{"stack command with app", func() error {
			_, err := e.c.CreateDeployment(e.ctx, &ow.CreateDeploymentInput{StackId: aws.String(stackID), AppId: aws.String(appID),
				Command: cmd("configure", nil)})
			return err
		}, "ValidationException"},
		{"another stack's app", func() error {
			_, err := e.c.CreateDeployment(e.ctx, &ow.CreateDeploymentInput{StackId: aws.String(stackID), AppId: aws.String(otherApp),
				Command: cmd("deploy", nil)})
			return err
		}, "ValidationException"},
		{"unknown app", func() error {
			_, err := e.c.CreateDeployment(e.ctx, &ow.CreateDeploymentInput{StackId: aws.String(stackID), AppId: aws.String("nope"),
				Command: cmd("deploy", nil)})
			return err
		}, "ResourceNotFoundException"},
		{"unknown stack", func() error {
			_, err := e.c.CreateDeployment(e.ctx, &ow.CreateDeploymentInput{StackId: aws.String("nope"), Command: cmd("setup", nil)})
			return err
		}, "ResourceNotFoundException"},
		{"unknown command", func() error {
			_, err := e.c.CreateDeployment(e.ctx, &ow.CreateDeploymentInput{StackId: aws.String(stackID), Command: cmd("reboot", nil)})
			return err
		}, "ValidationException"},
		{"execute_recipes without recipes", func() error {
			_, err := e.c.CreateDeployment(e.ctx, &ow.CreateDeploymentInput{StackId: aws.String(stackID), Command: cmd("execute_recipes", nil)})
			return err
		}, "ValidationException"},
		{"migrate not a boolean", func() error {
			_, err := e.c.CreateDeployment(e.ctx, &ow.CreateDeploymentInput{StackId: aws.String(stackID), AppId: aws.String(appID),
				Command: cmd("deploy", map[string][]string{"migrate": {"yes"}})})
			return err
		}, "ValidationException"},
		{"unknown arg", func() error {
			_, err := e.c.CreateDeployment(e.ctx, &ow.CreateDeploymentInput{StackId: aws.String(stackID), Command: cmd("setup",
				map[string][]string{"force": {"true"}})})
			return err
		}, "ValidationException"},
		{"deployment custom json too large", func() error {
			_, err := e.c.CreateDeployment(e.ctx, &ow.CreateDeploymentInput{StackId: aws.String(stackID), Command: cmd("setup", nil),
				CustomJson: aws.String(`{"a":"` + strings.Repeat("x", 121*1024) + `"}`)})
			return err
		}, "ValidationException"},
		{"unknown instance listed", func() error {
			_, err := e.c.CreateDeployment(e.ctx, &ow.CreateDeploymentInput{StackId: aws.String(stackID), InstanceIds: []string{"nope"},
				Command: cmd("setup", nil)})
			return err
		}, "ResourceNotFoundException"},
		{"no instance online", func() error {
			_, err := e.c.CreateDeployment(e.ctx, &ow.CreateDeploymentInput{StackId: aws.String(other), Command: cmd("setup", nil)})
			return err
		}, "ValidationException"},
		{"describe deployments by two", func() error {
			_, err := e.c.DescribeDeployments(e.ctx, &ow.DescribeDeploymentsInput{StackId: aws.String(stackID), AppId: aws.String(appID)})
			return err
		}, "ValidationException"},
		{"describe deployments by none", func() error {
			_, err := e.c.DescribeDeployments(e.ctx, &ow.DescribeDeploymentsInput{})
			return err
		}, "ValidationException"},
		{"describe unknown deployment", func() error {
			_, err := e.c.DescribeDeployments(e.ctx, &ow.DescribeDeploymentsInput{DeploymentIds: []string{"nope"}})
			return err
		}, "ResourceNotFoundException"},
		{"describe commands by two", func() error {
			_, err := e.c.DescribeCommands(e.ctx, &ow.DescribeCommandsInput{InstanceId: aws.String(inst[0]), CommandIds: []string{"x"}})
			return err
		}, "ValidationException"},
		{"describe unknown command", func() error {
			_, err := e.c.DescribeCommands(e.ctx, &ow.DescribeCommandsInput{CommandIds: []string{"nope"}})
			return err
		}, "ResourceNotFoundException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantError(t, tt.call(), tt.code) })
	}
	if n := len(e.engine.Deployments(Kind)); n != 0 {
		t.Fatalf("%d deployments after refusals", n)
	}
}

// TestWire: an unknown operation of the service's target prefix is UnknownOperationException (400), and every
// error carries __type, which is all SDK v1 reads.
func TestWire(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct{ target, body, code string }{
		{"OpsWorks_20130218.RebootEverything", `{}`, "UnknownOperationException"},
		{"OpsWorks_20130218.DescribeStacks", `{"StackIds":["nope"]}`, "ResourceNotFoundException"},
		{"OpsWorks_20130218.CreateDeployment", `{"StackId":`, "ValidationException"},
	} {
		req, _ := http.NewRequest("POST", e.srv.URL+"/", strings.NewReader(tt.body))
		req.Header.Set("X-Amz-Target", tt.target)
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != 400 || body["__type"] != tt.code || body["message"] == "" ||
			resp.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
			t.Errorf("%s: %d %v %s", tt.target, resp.StatusCode, body, resp.Header.Get("Content-Type"))
		}
	}
}
