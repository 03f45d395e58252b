package container_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness/robomaker/robomakertest"
	"github.com/fleetlab/fleetlab/sim/fleet/container"
	"github.com/fleetlab/fleetlab/sim/fleet/container/containertest"
	"github.com/fleetlab/fleetlab/sim/service"
)

// BenchmarkContainerFleet starts N robot containers (image already built) and completes a clean job on all of
// them at once: containers/s is how fast the fleet came up (every agent connected), job-s the job's wall time
// from CreateDeploymentJob to its end, deploy-s the two together. Target: 50 containers deployed in 60 s.
//
//	go test ./sim/fleet/container -run '^$' -bench ContainerFleet -benchtime 1x
func BenchmarkContainerFleet(b *testing.B) {
	containertest.Require(b)
	ctx := context.Background()
	if _, err := container.BuildImage(ctx, container.Engine{}, container.ImageOptions{Binary: binary}); err != nil {
		b.Fatal(err)
	}
	bundle, err := bundles.Build(bundles.Hello)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{10, 25, 50} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			var start, job time.Duration
			for range b.N {
				b.StopTimer()
				w := robomakertest.Start(b, service.Options{InMemoryStore: true})
				app, v := w.App("hello", bundle)
				b.StartTimer()
				t0 := time.Now()
				f, err := container.New(ctx, container.Options{Endpoint: w.Svc.Endpoint(), Count: n, Binary: binary,
					Agent: fast})
				if err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				arn, err := w.Register(ctx, "bench", f.Devices())
				if err != nil {
					b.Fatal(err)
				}
				out := w.WaitJob(w.Deploy(arn, app, v, &types.DeploymentConfig{ConcurrentDeploymentPercentage: aws.Int32(100)}),
					5*time.Minute)
				t2 := time.Now()
				b.StopTimer()
				if out.Status != types.DeploymentStatusSucceeded {
					b.Fatalf("job %s: %v", out.Status, robomakertest.Summary(out))
				}
				if err := f.Close(); err != nil {
					b.Fatal(err)
				}
				start += t1.Sub(t0)
				job += t2.Sub(t1)
			}
			b.ReportMetric(float64(n*b.N)/start.Seconds(), "containers/s")
			b.ReportMetric(job.Seconds()/float64(b.N), "job-s")
			b.ReportMetric((start+job).Seconds()/float64(b.N), "deploy-s")
		})
	}
}
