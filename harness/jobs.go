package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness/dialect"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/event"
)

// BundleBucket is the artifact bucket the environment keeps bundles and scripts in.
const BundleBucket = "fleetlab-bundles"

// Object is an object in the artifact store.
type Object = dialect.Object

// PutObject stores body in the artifact store through the S3 API, creating the bucket when needed.
func (e *Env) PutObject(bucket, key string, body []byte) (obj Object) {
	e.t.Helper()
	e.do(func() { obj = e.putObject(bucket, key, body) })
	return obj
}

func (e *Env) putObject(bucket, key string, body []byte) Object {
	ctx, cancel := e.callContext()
	defer cancel()
	e.appMu.Lock()
	need := !e.bucket[bucket]
	e.bucket[bucket] = true
	e.appMu.Unlock()
	if need {
		_, err := e.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
		if err != nil && !errors.As(err, new(*s3types.BucketAlreadyOwnedByYou)) {
			infraFatal(e.t, "create bucket %s: %v", bucket, err)
		}
	}
	out, err := e.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
		Body: bytes.NewReader(body)})
	if err != nil {
		infraFatal(e.t, "put %s/%s: %v", bucket, key, err)
	}
	return Object{Bucket: bucket, Key: key, ETag: aws.ToString(out.ETag)}
}

// PutBundle stores the fixture bundle name (fixtures/bundles) as BundleBucket/<name>.tar.gz.
func (e *Env) PutBundle(name string) Object {
	e.t.Helper()
	b, err := bundles.Build(name)
	if err != nil {
		e.t.Fatalf("harness: %v", err)
	}
	return e.PutObject(BundleBucket, name+".tar.gz", b)
}

// PutScript stores the fixture script name (a download condition of fixtures/bundles) as
// BundleBucket/scripts/<name>.
func (e *Env) PutScript(name string) Object {
	e.t.Helper()
	b, err := bundles.Script(name)
	if err != nil {
		e.t.Fatalf("harness: %v", err)
	}
	return e.PutObject(BundleBucket, "scripts/"+name, b)
}

// Deploy stores the fixture bundle, makes an application of it and deploys it to the environment's devices
// with config, the dialect's deployment configuration (a robomaker.Deployment; nil for the dialect's defaults);
// it returns the job. The dialect's error stops the test.
func (e *Env) Deploy(bundle string, config any) string {
	e.t.Helper()
	job, err := e.StartDeployment(bundle, nil, config)
	if err != nil {
		e.t.Fatalf("harness: deploy %s with %s: %v", bundle, e.driver.Name(), err)
	}
	return job
}

// StartDeployment is Deploy for the architectures archs (the dialect's default when none), returning the
// dialect's error (a test of a refused deployment wants it).
func (e *Env) StartDeployment(bundle string, archs []string, config any) (job string, err error) {
	e.t.Helper()
	e.do(func() {
		ctx, cancel := e.callContext()
		defer cancel()
		job, err = e.session.Deploy(ctx, bundle, archs, config)
	})
	return job, err
}

// Cancel cancels a deployment job.
func (e *Env) Cancel(job string) (err error) {
	e.do(func() {
		ctx, cancel := e.callContext()
		defer cancel()
		if err = e.session.Cancel(ctx, job); err == nil {
			e.log("canceled deployment job %s", job)
		}
	})
	return err
}

// Job is a deployment job as its dialect's API describes it, with the run's events about it.
type Job = dialect.Job

// Robot is one device's deployment in a job.
type Robot = dialect.Robot

// JobID returns the job id at the end of a deployment job ARN (every dialect's ARNs end in the engine's id).
func JobID(arn string) string { return arn[strings.LastIndexByte(arn, '/')+1:] }

// Describe describes a job through the SDK.
func (e *Env) Describe(job string) (j Job, err error) {
	e.do(func() { j, err = e.describe(job) })
	return j, err
}

func (e *Env) describe(job string) (Job, error) {
	ctx, cancel := e.callContext()
	defer cancel()
	j, err := e.session.Describe(ctx, job)
	if err != nil {
		return Job{}, err
	}
	id := JobID(job)
	j.Timeline = Filter(e.events.Events(), func(ev event.Event) bool {
		return ev.Deployment == id || Source(ev) == SourceFaults
	})
	for i := range j.Robots {
		r := &j.Robots[i]
		r.Timeline = Filter(j.Timeline, func(ev event.Event) bool { return ev.Device == r.Name || ev.Device == "" })
		if r.Step == "" {
			for _, ev := range r.Timeline {
				if ev.Device == r.Name && ev.Step != "" && (ev.Kind == event.ExecutionStep || ev.Kind == event.ExecutionState) {
					r.Step = ev.Step
				}
			}
		}
	}
	return j, nil
}

// Job returns a function describing the job, for Eventually.
func (e *Env) Job(job string) func() (Job, error) {
	return func() (Job, error) { return e.Describe(job) }
}

// Robot returns a function describing one robot's deployment in the job, for Eventually.
func (e *Env) Robot(job, name string) func() (Robot, error) {
	return func() (Robot, error) {
		j, err := e.Describe(job)
		if err != nil {
			return Robot{}, err
		}
		r, ok := j.Robot(name)
		if !ok {
			return Robot{}, fmt.Errorf("robot %s is not in job %s", name, j.ID)
		}
		return r, nil
	}
}

// Settled reports whether the job is over and every robot in it too: the job's status is final and no robot
// is still deploying (robots deploying when a job fails or is canceled carry on to their own end). A continuous
// job (a Greengrass V2 thing-group deployment, which stays ACTIVE for the things that join later) has settled
// when it has released every robot it has and each has ended.
func (e *Env) Settled(job string) (settled bool) {
	e.do(func() { settled = e.settled(job) })
	return settled
}

func (e *Env) settled(job string) bool {
	svc := e.Service()
	if svc == nil {
		return false
	}
	id := JobID(job)
	d, err := svc.Engine.Deployment(id)
	if err != nil {
		return false
	}
	// A continuous deployment (a Greengrass thing-group revision) never ends by itself: it has settled once
	// every execution it has has ended (a queued one has not).
	open := d.Continuous && !d.Status.Terminal()
	if !d.Status.Terminal() && (!open || d.Status == engine.StatusPending) {
		return false
	}
	xs, err := svc.Engine.Executions(id)
	if err != nil {
		return false
	}
	for _, x := range xs {
		if !x.Status.Terminal() {
			return false
		}
	}
	// The engine's state is visible a moment before its events are delivered: settled means the stream has them
	// too, so a timeline or outcome read now is complete.
	ended := map[string]bool{}
	depEnded := false
	for _, ev := range e.events.Events() {
		if ev.Deployment != id {
			continue
		}
		switch {
		case ev.Kind == event.ExecutionState && isTerminalExec(ev.To):
			ended[ev.Device] = true
		case ev.Kind == event.DeploymentState && engine.Status(ev.To).Terminal():
			depEnded = true
		}
	}
	if !depEnded && !open {
		return false
	}
	for _, x := range xs {
		if !ended[x.Device] {
			return false
		}
	}
	return true
}

// WaitJob waits until the job has settled (see Settled) and returns it. A job that does not settle within the
// environment's wait fails the test with its timeline.
func (e *Env) WaitJob(job string) Job {
	e.t.Helper()
	var j Job
	var err, derr error
	e.do(func() {
		ctx, cancel := e.waitContext()
		defer cancel()
		err = e.events.Await(ctx, func() bool { return e.settled(job) })
		j, derr = e.describe(job)
	})
	var stall *clock.StallError
	var deadlock *clock.DeadlockError
	switch {
	case errors.As(err, &stall) || errors.As(err, &deadlock):
		infraFatal(e.t, "job %s: %v", JobID(job), err)
	case err != nil && derr != nil:
		e.t.Fatalf("job %s did not settle %s (%v), and cannot be described: %v", JobID(job), e.within(), err, derr)
	case err != nil:
		e.t.Fatalf("job did not settle %s (%v): %s\ntimeline:\n%s", e.within(), err, j, Timeline(j.Timeline))
	case derr != nil:
		infraFatal(e.t, "describe job %s: %v", JobID(job), derr)
	}
	return j
}

// within says how long a wait waits.
func (e *Env) within() string {
	if e.world != nil {
		return fmt.Sprintf("within %v of virtual time", e.cfg.wait)
	}
	return fmt.Sprintf("within %v", e.cfg.wait)
}

// WaitFor waits until the job, as described after an event, satisfies cond, and returns it. A job that does not
// within the environment's wait fails the test with its timeline.
func (e *Env) WaitFor(cond func(Job) bool, job string) Job {
	e.t.Helper()
	var last Job
	var err error
	e.do(func() {
		ctx, cancel := e.waitContext()
		defer cancel()
		err = e.events.Await(ctx, func() bool {
			j, err := e.describe(job)
			if err != nil {
				return false
			}
			last = j
			return cond(j)
		})
	})
	var stall *clock.StallError
	var deadlock *clock.DeadlockError
	switch {
	case errors.As(err, &stall) || errors.As(err, &deadlock):
		infraFatal(e.t, "job %s: %v", JobID(job), err)
	case err != nil:
		e.t.Fatalf("job never reached the condition %s (%v): %s\ntimeline:\n%s", e.within(), err, last, Timeline(last.Timeline))
	}
	return last
}

// Context returns the environment's context, which ends at cleanup.
func (e *Env) Context() context.Context { return e.ctx }
