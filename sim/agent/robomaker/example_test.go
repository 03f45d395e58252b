package robomaker_test

import (
	"context"
	"fmt"
	"time"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	"github.com/fleetlab/fleetlab/sim/agent/robomaker"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
)

// An in-memory robot carries out a deployment of the hello bundle against a fake device API.
func Example() {
	svc := agenttest.New(nil)
	defer svc.Close()
	etag := svc.PutObject("fleet-bundles", "hello.tar.gz", bundles.MustBuild(bundles.Hello))
	svc.Enqueue("robot-1", "job-1", agenttest.Doc(rmwire.Kind, rmwire.Document{
		Name: "hello", Version: "1",
		Sources: []rmwire.Source{{Architecture: "X86_64", Bucket: "fleet-bundles", Key: "hello.tar.gz", ETag: etag}},
		Launch: rmwire.Launch{
			PackageName: bundles.Package, LaunchFile: bundles.LaunchFile,
			PreLaunchFile: bundles.PreLaunchFile, PostLaunchFile: bundles.PostLaunchFile,
		},
	}))

	a, err := agent.New(agent.Options{
		Thing:        "robot-1",
		Kinds:        []agent.Kind{robomaker.Kind{}},
		Architecture: "amd64",
		// No Dir: the in-memory executors. The transport goes straight to the fake service.
		Executors: agent.Executors{Transport: svc.Transport("robot-1")},
		OnEvent: func(e agent.Event) {
			if e.Kind == agent.EventState {
				fmt.Println(e.State)
			}
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	agenttest.Eventually(10*time.Second, func() bool {
		e, _ := svc.Execution("robot-1", "job-1")
		return e.Status == wire.StatusSucceeded
	})
	cancel()
	<-done
	fmt.Println("running:", agent.VersionJob(a.Executors().Launcher.Running()))
	a.Close()
	// Output:
	// Validating
	// DownloadingExtracting
	// ExecutingDownloadCondition
	// ExecutingPreLaunch
	// Launching
	// ExecutingPostLaunch
	// Finished
	// running: job-1
}
