package greengrassv2

import (
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	gg "github.com/aws/aws-sdk-go-v2/service/greengrassv2"
	ggtypes "github.com/aws/aws-sdk-go-v2/service/greengrassv2/types"

	"github.com/fleetlab/fleetlab/sim/engine"
)

func (e *deployEnv) coreDevices(in gg.ListCoreDevicesInput) []string {
	e.t.Helper()
	var names []string
	p := gg.NewListCoreDevicesPaginator(e.c, &in)
	for p.HasMorePages() {
		out, err := p.NextPage(e.ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, c := range out.CoreDevices {
			names = append(names, aws.ToString(c.CoreDeviceThingName))
		}
	}
	return names
}

func (e *deployEnv) coreDevice(name string) (*gg.GetCoreDeviceOutput, error) {
	return e.c.GetCoreDevice(e.ctx, &gg.GetCoreDeviceInput{CoreDeviceThingName: aws.String(name)})
}

func (e *deployEnv) installed(name string) []ggtypes.InstalledComponent {
	e.t.Helper()
	out, err := e.c.ListInstalledComponents(e.ctx, &gg.ListInstalledComponentsInput{
		CoreDeviceThingName: aws.String(name)})
	if err != nil {
		e.t.Fatal(err)
	}
	return out.InstalledComponents
}

// A core device is a targeted thing or a device that reported on a deployment; its status is its last outcome.
func TestCoreDevices(t *testing.T) {
	e := newDeployEnv(t)
	e.things("fleet", "t1", "t2")
	e.things("", "solo")
	created := e.clock.Now()
	e.deploy(&gg.CreateDeploymentInput{TargetArn: aws.String(thingARN("solo"))})
	e.deploy(&gg.CreateDeploymentInput{TargetArn: aws.String(groupARN("fleet"))})
	e.run(time.Second)

	solo, err := e.coreDevice("solo")
	if err != nil || solo.Status != ggtypes.CoreDeviceStatusHealthy ||
		!aws.ToTime(solo.LastStatusUpdateTimestamp).Equal(created.Truncate(time.Millisecond)) {
		t.Fatalf("targeted thing: %+v %v", solo, err)
	}
	_, err = e.coreDevice("t1")
	wantError[*ggtypes.ResourceNotFoundException](t, err, 404)

	e.clock.Advance(time.Minute)
	e.finish("t1", engine.ExecSucceeded, map[string]string{detailDeploymentStatus: "SUCCESSFUL"})
	e.finish("t2", engine.ExecFailed, map[string]string{detailDeploymentStatus: "FAILED_NO_STATE_CHANGE"})
	for name, want := range map[string]ggtypes.CoreDeviceStatus{
		"solo": ggtypes.CoreDeviceStatusHealthy, "t1": ggtypes.CoreDeviceStatusHealthy,
		"t2": ggtypes.CoreDeviceStatusUnhealthy} {
		got, err := e.coreDevice(name)
		if err != nil || got.Status != want {
			t.Errorf("%s: %+v %v, want %s", name, got, err, want)
		}
	}
	for _, tt := range []struct {
		name string
		in   gg.ListCoreDevicesInput
		want []string
	}{
		{"all", gg.ListCoreDevicesInput{}, []string{"solo", "t1", "t2"}},
		{"paged", gg.ListCoreDevicesInput{MaxResults: aws.Int32(1)}, []string{"solo", "t1", "t2"}},
		{"unhealthy", gg.ListCoreDevicesInput{Status: ggtypes.CoreDeviceStatusUnhealthy}, []string{"t2"}},
		{"healthy in the group", gg.ListCoreDevicesInput{Status: ggtypes.CoreDeviceStatusHealthy,
			ThingGroupArn: aws.String(groupARN("fleet"))}, []string{"t1"}},
	} {
		if got := e.coreDevices(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}

	ic := e.installed("t1")
	if len(ic) != 1 || aws.ToString(ic[0].ComponentName) != "com.example.Hello" ||
		aws.ToString(ic[0].ComponentVersion) != "1.0.0" || ic[0].LifecycleState != ggtypes.InstalledComponentLifecycleStateRunning ||
		!ic[0].IsRoot || aws.ToString(ic[0].LastInstallationSource) != groupARN("fleet") {
		t.Errorf("t1 installed %+v", ic)
	}
	if ic := e.installed("t2"); len(ic) != 0 {
		t.Errorf("t2 never succeeded, yet has %+v", ic)
	}
	_, err = e.c.ListInstalledComponents(e.ctx, &gg.ListInstalledComponentsInput{CoreDeviceThingName: aws.String("nope")})
	wantError[*ggtypes.ResourceNotFoundException](t, err, 404)

	// A later deployment that fails because the component broke shows it BROKEN.
	e.component("com.example.Hello", "2.0.0", "hello/2.0.0/hello.py")
	e.deploy(&gg.CreateDeploymentInput{TargetArn: aws.String(groupARN("fleet")),
		Components: map[string]ggtypes.ComponentDeploymentSpecification{
			"com.example.Hello": {ComponentVersion: aws.String("2.0.0")}}})
	e.run(time.Second)
	e.clock.Advance(time.Minute)
	x, ok, err := e.eng.StartNext("t1", engine.Update{Status: engine.ExecInProgress})
	if err != nil || !ok {
		t.Fatal(err)
	}
	reason := "component com.example.Hello is BROKEN after 3 errors: run: exit status 1"
	if _, err := e.eng.Report("t1", x.Deployment, engine.Update{Status: engine.ExecFailed,
		Details:  map[string]string{detailFailureCause: codeComponentBroken},
		Reported: engine.StepReport{Code: codeComponentBroken, Reason: reason}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.coreDevice("t1"); got.Status != ggtypes.CoreDeviceStatusUnhealthy {
		t.Errorf("t1 after the broken deployment: %s", got.Status)
	}
	ic = e.installed("t1")
	if len(ic) != 1 || ic[0].LifecycleState != ggtypes.InstalledComponentLifecycleStateBroken ||
		aws.ToString(ic[0].LifecycleStateDetails) != reason {
		t.Errorf("t1 installed after the break %+v", ic)
	}

	// Deleting a core device forgets it until it reports again.
	if _, err := e.c.DeleteCoreDevice(e.ctx, &gg.DeleteCoreDeviceInput{CoreDeviceThingName: aws.String("t2")}); err != nil {
		t.Fatal(err)
	}
	_, err = e.coreDevice("t2")
	wantError[*ggtypes.ResourceNotFoundException](t, err, 404)
	_, err = e.c.DeleteCoreDevice(e.ctx, &gg.DeleteCoreDeviceInput{CoreDeviceThingName: aws.String("t2")})
	wantError[*ggtypes.ResourceNotFoundException](t, err, 404)
	if got := e.coreDevices(gg.ListCoreDevicesInput{}); !slices.Equal(got, []string{"solo", "t1"}) {
		t.Errorf("after delete: %v", got)
	}
	e.clock.Advance(time.Minute)
	e.finish("t2", engine.ExecSucceeded, nil)
	if got, err := e.coreDevice("t2"); err != nil || got.Status != ggtypes.CoreDeviceStatusHealthy {
		t.Errorf("t2 reported again: %+v %v", got, err)
	}
	if ic := e.installed("t2"); len(ic) != 1 || aws.ToString(ic[0].ComponentVersion) != "2.0.0" {
		t.Errorf("t2 installed %+v", ic)
	}
}
