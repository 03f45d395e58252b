package righost_test

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"

	"github.com/fleetlab/fleetlab/harness/robomaker/robomakertest"
	"github.com/fleetlab/fleetlab/rigs"
	"github.com/fleetlab/fleetlab/rigs/righost"
	"github.com/fleetlab/fleetlab/sim/agent"
	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
	"github.com/fleetlab/fleetlab/sim/fleet/process"
	"github.com/fleetlab/fleetlab/sim/service"
)

// BenchmarkDeploy1MiBOverSerial deploys a bundle of 1 MiB (incompressible: a random file beside the launch
// file) to one emulated board of fixtures/rigs/emulated-4.yaml, whose agent speaks over a line paced at 115200
// baud, in real time. deploy-s is the job's wall time from CreateDeploymentJob to Succeeded; download-s the
// agent's time in DownloadingExtracting (the bundle crossing the line, and its unpacking); bundle-B/s the
// bundle's bytes over download-s, also as a share of the line's 11520 bytes a second.
//
//	go test ./rigs/righost -run '^$' -bench Deploy1MiB -benchtime 1x
func BenchmarkDeploy1MiBOverSerial(b *testing.B) {
	dir := b.TempDir()
	bin, err := process.Build(context.Background(), dir)
	if err != nil {
		b.Fatal(err)
	}
	f, err := rigs.Load("../../fixtures/rigs/emulated-4.yaml")
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 1<<20)
	rand.Read(payload)
	bundle := robomakertest.Bundle(map[string]string{
		"hello_robot/launch.sh": robomakertest.HeartbeatApp, "hello_robot/payload.bin": string(payload),
		"pre_launch.sh": "#!/bin/sh\nexit 0\n", "post_launch.sh": "#!/bin/sh\nexit 0\n"})
	var deploy, download time.Duration
	for range b.N {
		b.StopTimer()
		w := robomakertest.Start(b, service.Options{InMemoryStore: true})
		app, v := w.App("big", bundle)
		var mu sync.Mutex
		var downloadAt, downloaded time.Time
		fl, err := righost.Start(context.Background(), righost.Options{File: f, Agent: bin, Endpoint: w.Svc.Endpoint(),
			Names: []string{"robot-0001"}, Dir: b.TempDir(), OnEvent: func(_ string, e agent.Event) {
				if e.Kind != agent.EventState {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				switch e.State {
				case rmwire.StepDownloadingExtracting:
					downloadAt = time.Now()
				case rmwire.StepExecutingDownloadCondition:
					downloaded = time.Now()
				}
			}})
		if err != nil {
			b.Fatal(err)
		}
		arn, err := w.Register(context.Background(), "bench", fl.Devices())
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 := time.Now()
		out := w.WaitJob(w.Deploy(arn, app, v, &types.DeploymentConfig{ConcurrentDeploymentPercentage: aws.Int32(100)}),
			10*time.Minute)
		deploy += time.Since(t0)
		b.StopTimer()
		if out.Status != types.DeploymentStatusSucceeded {
			b.Fatalf("job %s: %v", out.Status, robomakertest.Summary(out))
		}
		mu.Lock()
		download += downloaded.Sub(downloadAt)
		mu.Unlock()
		st := fl.Rig().Board("robot-0001").Stats()
		b.Logf("bundle %d bytes; lab side: %d frames, %d resent, %d bytes on the line", len(bundle), st.FramesSent, st.FramesResent, st.BytesSent)
		if err := fl.Close(); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(b.N)
	b.ReportMetric(deploy.Seconds()/n, "deploy-s")
	b.ReportMetric(download.Seconds()/n, "download-s")
	b.ReportMetric(float64(len(bundle))*n/download.Seconds(), "bundle-B/s")
	b.ReportMetric(100*float64(len(bundle))*n/download.Seconds()/11520, "%line")
}
