package robomaker

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/robomaker"
)

// TestReadsBesideControlOperations lists and describes everything while jobs are created and canceled over and
// over: a control operation commits with the engine locked, so a read that asked the engine for something from
// inside a store transaction would wait on it while the commit waited on the read. Every call must finish.
func TestReadsBesideControlOperations(t *testing.T) {
	e := newEnv(t)
	f, robots := e.fleetWith("lab", 3)
	app := e.app("hello")
	v := e.version(app)
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	read := func(call func() error) {
		wg.Go(func() {
			for !stop.Load() {
				if err := call(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	read(func() error { _, err := e.c.ListRobots(e.ctx, &robomaker.ListRobotsInput{}); return err })
	read(func() error { _, err := e.c.ListFleets(e.ctx, &robomaker.ListFleetsInput{}); return err })
	read(func() error {
		_, err := e.c.ListDeploymentJobs(e.ctx, &robomaker.ListDeploymentJobsInput{})
		return err
	})
	read(func() error {
		_, err := e.c.DescribeFleet(e.ctx, &robomaker.DescribeFleetInput{Fleet: aws.String(f)})
		return err
	})
	read(func() error {
		_, err := e.c.DescribeRobot(e.ctx, &robomaker.DescribeRobotInput{Robot: aws.String(robots[0])})
		return err
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 60 {
			job := aws.ToString(e.job(f, app, v, nil).Arn)
			if _, err := e.c.CancelDeploymentJob(e.ctx, &robomaker.CancelDeploymentJobInput{Job: aws.String(job)}); err != nil {
				errs <- err
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("jobs stopped being created and canceled: reads and control operations wait on each other")
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
