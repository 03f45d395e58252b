package greengrassv2

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	gg "github.com/aws/aws-sdk-go-v2/service/greengrassv2"
	ggtypes "github.com/aws/aws-sdk-go-v2/service/greengrassv2/types"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/awsapi"
	ggwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/greengrassv2"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/store"
)

// publish posts a fleet status message for thing as a device does and returns the answer's status and body.
func (e *deployEnv) publish(thing string, body []byte) (int, string) {
	e.t.Helper()
	resp, err := http.Post(e.srv.URL+ggwire.FleetStatusPath(thing), "application/json", bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (e *deployEnv) publishStatus(fs ggwire.FleetStatus) {
	e.t.Helper()
	b, err := json.Marshal(fs)
	if err != nil {
		e.t.Fatal(err)
	}
	if code, body := e.publish(fs.Thing, b); code != http.StatusOK {
		e.t.Fatalf("publish: %d %s", code, body)
	}
}

func (e *deployEnv) health(thing string) ggtypes.CoreDeviceStatus {
	e.t.Helper()
	c, err := e.coreDevice(thing)
	if err != nil {
		e.t.Fatal(err)
	}
	return c.Status
}

// A component that breaks after its deployment succeeded reaches the cloud through the fleet status: the core
// device is UNHEALTHY and lists it BROKEN until a later deployment succeeds; a status of another deployment's
// set, or one older than the last outcome, changes nothing.
func TestFleetStatusBrokenAfterDeployment(t *testing.T) {
	e := newDeployEnv(t)
	e.things("", "solo")
	dep := e.deploy(&gg.CreateDeploymentInput{TargetArn: aws.String(thingARN("solo"))})
	e.run(time.Second)
	e.clock.Advance(time.Minute)
	e.finish("solo", engine.ExecSucceeded, map[string]string{detailDeploymentStatus: "SUCCESSFUL"})
	job := aws.ToString(dep.IotJobId)
	if got := e.health("solo"); got != ggtypes.CoreDeviceStatusHealthy {
		t.Fatalf("after the deployment: %s", got)
	}

	// The run step fails three times a minute later.
	e.clock.Advance(time.Minute)
	changed := e.clock.Now().Add(-5 * time.Second).Truncate(time.Millisecond)
	broken := ggwire.FleetStatus{Thing: "solo", OverallDeviceStatus: ggwire.DeviceUnhealthy, SequenceNumber: 2,
		Timestamp: e.clock.Now().UnixMilli(), Trigger: ggwire.TriggerComponentStatusChange, JobID: job,
		Components: []ggwire.ComponentStatus{{ComponentName: "com.example.Hello", Version: "1.0.0", IsRoot: true,
			Status: ggwire.LifecycleBroken, StatusDetails: "run step exited 3; BROKEN after 3 errors in a row",
			StatusCodes: []string{"COMPONENT_BROKEN"}, Errors: 3, LastStatusChangeTime: changed.UnixMilli()}}}
	e.publishStatus(broken)
	if got := e.health("solo"); got != ggtypes.CoreDeviceStatusUnhealthy {
		t.Errorf("after BROKEN: %s, want UNHEALTHY", got)
	}
	core, _ := e.coreDevice("solo")
	if !aws.ToTime(core.LastStatusUpdateTimestamp).Equal(e.clock.Now().Truncate(time.Millisecond)) {
		t.Errorf("lastStatusUpdateTimestamp %v, want %v", aws.ToTime(core.LastStatusUpdateTimestamp), e.clock.Now())
	}
	if got := e.coreDevices(gg.ListCoreDevicesInput{Status: ggtypes.CoreDeviceStatusUnhealthy}); len(got) != 1 || got[0] != "solo" {
		t.Errorf("ListCoreDevices UNHEALTHY: %v", got)
	}
	ic := e.installed("solo")
	if len(ic) != 1 || ic[0].LifecycleState != ggtypes.InstalledComponentLifecycleStateBroken ||
		!strings.Contains(aws.ToString(ic[0].LifecycleStateDetails), "BROKEN after 3 errors") ||
		!aws.ToTime(ic[0].LastStatusChangeTimestamp).Equal(changed) ||
		len(ic[0].LifecycleStatusCodes) != 1 || ic[0].LifecycleStatusCodes[0] != "COMPONENT_BROKEN" {
		t.Fatalf("installed after BROKEN: %+v", ic)
	}

	// A status of another deployment's set does not apply to this one.
	other := broken
	other.JobID = "some-other-job"
	e.publishStatus(other)
	if got := e.health("solo"); got != ggtypes.CoreDeviceStatusHealthy {
		t.Errorf("a status of another set: %s, want HEALTHY", got)
	}
	if ic := e.installed("solo"); ic[0].LifecycleState != ggtypes.InstalledComponentLifecycleStateRunning {
		t.Errorf("a status of another set: %s, want RUNNING", ic[0].LifecycleState)
	}
	e.publishStatus(broken)

	// A later deployment that succeeds makes the device HEALTHY again, its components RUNNING.
	e.component("com.example.Hello", "2.0.0", "hello/2.0.0/hello.py")
	e.deploy(&gg.CreateDeploymentInput{TargetArn: aws.String(thingARN("solo")),
		Components: map[string]ggtypes.ComponentDeploymentSpecification{
			"com.example.Hello": {ComponentVersion: aws.String("2.0.0")}}})
	e.run(time.Second)
	e.clock.Advance(time.Minute)
	e.finish("solo", engine.ExecSucceeded, map[string]string{detailDeploymentStatus: "SUCCESSFUL"})
	if got := e.health("solo"); got != ggtypes.CoreDeviceStatusHealthy {
		t.Errorf("after the next deployment: %s, want HEALTHY", got)
	}
	if ic := e.installed("solo"); len(ic) != 1 || aws.ToString(ic[0].ComponentVersion) != "2.0.0" ||
		ic[0].LifecycleState != ggtypes.InstalledComponentLifecycleStateRunning {
		t.Errorf("installed after the next deployment: %+v", ic)
	}
}

// Bad publishes are refused with the data plane's errors, and change nothing.
func TestFleetStatusErrors(t *testing.T) {
	e := newDeployEnv(t)
	e.things("", "solo")
	e.deploy(&gg.CreateDeploymentInput{TargetArn: aws.String(thingARN("solo"))})
	e.run(time.Second)
	e.finish("solo", engine.ExecSucceeded, nil)
	for _, tt := range []struct {
		name, body string
		want       string
	}{
		{"not JSON", `{`, "InvalidRequestException"},
		{"another thing", `{"thing":"other","overallDeviceStatus":"HEALTHY","components":[]}`, "InvalidRequestException"},
		{"bad overall status", `{"thing":"solo","overallDeviceStatus":"FINE","components":[]}`, "InvalidRequestException"},
		{"bad lifecycle", `{"thing":"solo","overallDeviceStatus":"UNHEALTHY","components":[{"componentName":"c","status":"DEAD"}]}`,
			"InvalidRequestException"},
		{"twice", `{"thing":"solo","overallDeviceStatus":"HEALTHY","components":[{"componentName":"c","status":"RUNNING"},{"componentName":"c","status":"RUNNING"}]}`,
			"InvalidRequestException"},
	} {
		code, body := e.publish("solo", []byte(tt.body))
		if code != http.StatusBadRequest || !strings.Contains(body, tt.want) {
			t.Errorf("%s: %d %s, want 400 %s", tt.name, code, body, tt.want)
		}
	}
	resp, err := http.Post(e.srv.URL+"/topics/some%2Ftopic", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("another topic: %d, want 404", resp.StatusCode)
	}
	resp, err = http.Get(e.srv.URL + ggwire.FleetStatusPath("solo"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d, want 405", resp.StatusCode)
	}
	if got := e.health("solo"); got != ggtypes.CoreDeviceStatusHealthy {
		t.Errorf("after bad publishes: %s", got)
	}
}

// With signatures checked, a device publishes its fleet status signed with its own key for iotdata, as the
// agent's transport does; an unsigned publish and one signed with an operator's key are refused.
func TestFleetStatusSigned(t *testing.T) {
	e := &deployEnv{env: newEnvOn(t, store.NewMemory()),
		auth: &awsapi.SigV4{Keys: map[string]string{"AK": "SK"}, DeviceKeys: map[string]string{"DK": "DS"}}}
	e.startAll()
	e.component("com.example.Hello", "1.0.0", "hello/1.0.0/hello.py")
	e.things("", "solo")
	dep := e.deploy(&gg.CreateDeploymentInput{TargetArn: aws.String(thingARN("solo"))})
	e.run(time.Second)
	e.finish("solo", engine.ExecSucceeded, nil)
	fs := ggwire.FleetStatus{Thing: "solo", OverallDeviceStatus: ggwire.DeviceUnhealthy, JobID: aws.ToString(dep.IotJobId),
		Components: []ggwire.ComponentStatus{{ComponentName: "com.example.Hello", Status: ggwire.LifecycleBroken}}}
	publish := func(c *agent.Credentials) error {
		tr, err := agent.NewHTTPTransport(e.srv.URL, "solo", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.CloseIdleConnections()
		if c != nil {
			tr.SignWith(*c)
		}
		return tr.CallAPI(e.ctx, ggwire.SigningNameFleetStatus, http.MethodPost, ggwire.FleetStatusPath("solo"), fs, nil)
	}
	var ae *agent.APIError
	if err := publish(nil); !errors.As(err, &ae) || ae.Status != http.StatusForbidden && ae.Status != http.StatusUnauthorized {
		t.Errorf("unsigned: %v, want refused", err)
	}
	if err := publish(&agent.Credentials{AccessKey: "AK", SecretKey: "SK"}); !errors.As(err, &ae) || ae.Status < 400 {
		t.Errorf("an operator's key: %v, want refused", err)
	}
	if got := e.health("solo"); got != ggtypes.CoreDeviceStatusHealthy {
		t.Fatalf("after refused publishes: %s", got)
	}
	if err := publish(&agent.Credentials{AccessKey: "DK", SecretKey: "DS"}); err != nil {
		t.Fatalf("the device's key: %v", err)
	}
	if got := e.health("solo"); got != ggtypes.CoreDeviceStatusUnhealthy {
		t.Errorf("after the device's publish: %s, want UNHEALTHY", got)
	}
}

// A fleet status of a core device none of whose executions ended (its only one still in progress) applies to
// nothing: the device is HEALTHY and lists nothing.
func TestFleetStatusBeforeAnyOutcome(t *testing.T) {
	e := newDeployEnv(t)
	e.things("", "solo")
	dep := e.deploy(&gg.CreateDeploymentInput{TargetArn: aws.String(thingARN("solo"))})
	e.run(time.Second)
	if _, ok, err := e.eng.StartNext("solo", engine.Update{Status: engine.ExecInProgress}); err != nil || !ok {
		t.Fatal(err)
	}
	e.publishStatus(ggwire.FleetStatus{Thing: "solo", OverallDeviceStatus: ggwire.DeviceUnhealthy,
		JobID: aws.ToString(dep.IotJobId), Components: []ggwire.ComponentStatus{{ComponentName: "com.example.Hello",
			Status: ggwire.LifecycleBroken}}})
	if got := e.health("solo"); got != ggtypes.CoreDeviceStatusHealthy {
		t.Errorf("status %s, want HEALTHY", got)
	}
	if ic := e.installed("solo"); len(ic) != 0 {
		t.Errorf("installed %+v, want none", ic)
	}
}
