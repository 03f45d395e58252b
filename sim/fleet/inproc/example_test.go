package inproc_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/robomaker"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	rmdialect "github.com/fleetlab/fleetlab/harness/robomaker"
	"github.com/fleetlab/fleetlab/harness/robomaker/robomakertest"
	"github.com/fleetlab/fleetlab/sim/awsapi/sdkhttp"
	"github.com/fleetlab/fleetlab/sim/fleet/inproc"
	"github.com/fleetlab/fleetlab/sim/service"
)

// Three in-process robots on the memory transport carry out a RoboMaker deployment job created through the
// AWS SDK.
func Example() {
	dir, _ := os.MkdirTemp("", "fleetlab-example-")
	defer os.RemoveAll(dir)
	svc, _ := service.New(service.Options{Dir: dir, InMemoryStore: true})
	if err := svc.Start("127.0.0.1:0", "127.0.0.1:0"); err != nil {
		fmt.Println(err)
		return
	}
	defer svc.Close()

	f, err := inproc.New(inproc.Options{Transport: inproc.TransportMemory, Devices: svc.Devices, Objects: svc.Artifacts,
		Count: 3})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()

	ctx := context.Background()
	rm := robomaker.New(robomaker.Options{BaseEndpoint: aws.String(svc.Endpoint()), HTTPClient: sdkhttp.Client(nil), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AK", "SK", "")})
	fleetARN, err := rmdialect.Register(ctx, rm, "lab", f.Devices(), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	svc.Artifacts.CreateBucket("bundles")
	svc.Artifacts.Put("bundles", "hello.tar.gz", bytes.NewReader(bundles.MustBuild(bundles.Hello)))
	app, _ := rm.CreateRobotApplication(ctx, &robomaker.CreateRobotApplicationInput{Name: aws.String("hello"),
		RobotSoftwareSuite: &types.RobotSoftwareSuite{Name: types.RobotSoftwareSuiteTypeGeneral},
		Sources: []types.SourceConfig{{S3Bucket: aws.String("bundles"), S3Key: aws.String("hello.tar.gz"),
			Architecture: types.ArchitectureX8664}}})
	version, _ := rm.CreateRobotApplicationVersion(ctx, &robomaker.CreateRobotApplicationVersionInput{Application: app.Arn})
	job, err := rm.CreateDeploymentJob(ctx, &robomaker.CreateDeploymentJobInput{Fleet: aws.String(fleetARN),
		DeploymentApplicationConfigs: []types.DeploymentApplicationConfig{{Application: app.Arn,
			ApplicationVersion: version.Version, LaunchConfig: rmdialect.Launch()}}})
	if err != nil {
		fmt.Println(err)
		return
	}

	var out *robomaker.DescribeDeploymentJobOutput
	robomakertest.Eventually(30*time.Second, func() bool {
		out, err = rm.DescribeDeploymentJob(ctx, &robomaker.DescribeDeploymentJobInput{Job: job.Arn})
		return err == nil && (out.Status == types.DeploymentStatusSucceeded || out.Status == types.DeploymentStatusFailed)
	})
	fmt.Println("job:", out.Status)
	robots := robomakertest.Summary(out)
	for _, d := range f.Devices() {
		fmt.Println(d.Name(), robots[d.Name()])
	}
	// Output:
	// job: Succeeded
	// robot-0001 InSync
	// robot-0002 InSync
	// robot-0003 InSync
}
