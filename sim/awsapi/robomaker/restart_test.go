package robomaker

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/robomaker"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/store"
)

func TestRestartLosesNothing(t *testing.T) {
	e := newEnv(t)
	f, robots := e.fleetWith("lab", 2)
	app := e.app("hello")
	v := e.version(app)
	in := &robomaker.CreateDeploymentJobInput{Fleet: aws.String(f), ClientRequestToken: aws.String("tok"),
		DeploymentApplicationConfigs: appConfigs(app, v), Tags: map[string]string{"run": "7"},
		DeploymentConfig: &types.DeploymentConfig{ConcurrentDeploymentPercentage: aws.Int32(50)}}
	out, err := e.c.CreateDeploymentJob(e.ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	job := aws.ToString(out.Arn)
	e.act(robots[0], job, engine.ExecInProgress, map[string]string{wire.DetailStep: rmwire.StepLaunching})

	e.restart()

	desc := e.describe(job)
	if desc.Status != types.DeploymentStatusInProgress || desc.Tags["run"] != "7" ||
		summaryOf(desc)[robots[0]].ProgressDetail.CurrentProgress != types.RobotDeploymentStepLaunchingStep {
		t.Fatalf("job after restart = %s %v", desc.Status, desc.Tags)
	}
	again, err := e.c.CreateDeploymentJob(e.ctx, in)
	if err != nil || aws.ToString(again.Arn) != job {
		t.Fatalf("idempotent replay after restart = %v, %v", again, err)
	}
	fd, err := e.c.DescribeFleet(e.ctx, &robomaker.DescribeFleetInput{Fleet: aws.String(f)})
	if err != nil || len(fd.Robots) != 2 || aws.ToString(fd.LastDeploymentJob) != job {
		t.Fatalf("fleet after restart = %+v, %v", fd, err)
	}
	d, err := e.c.DescribeRobotApplication(e.ctx, &robomaker.DescribeRobotApplicationInput{Application: aws.String(app),
		ApplicationVersion: aws.String(v)})
	if err != nil || aws.ToString(d.Sources[0].Etag) == "" {
		t.Fatalf("application after restart = %+v, %v", d, err)
	}
	_, err = e.c.CreateRobot(e.ctx, &robomaker.CreateRobotInput{Name: aws.String(name(robots[0])),
		Architecture: types.ArchitectureArm64, GreengrassGroupId: aws.String("g")})
	expectError[*types.ResourceAlreadyExistsException](t, err, 400, "")

	// The rollout resumes where it was.
	e.act(robots[0], job, engine.ExecSucceeded, map[string]string{wire.DetailStep: rmwire.StepFinished})
	e.succeed(robots[1], job)
	if got := e.describe(job).Status; got != types.DeploymentStatusSucceeded {
		t.Fatalf("job finished after restart: %s", got)
	}

	// New resources get fresh ids: the sequence and the ARN stamps survived too.
	f2, _ := e.fleetWith("lab2", 1)
	job2 := aws.ToString(e.job(f2, app, v, nil).Arn)
	if f2 == f || job2 == job {
		t.Fatalf("ids reused after restart: %s %s", f2, job2)
	}
}

// shared are the buckets of the dialect's shared records.
var shared = awsapi.NewRecords("robomaker", "", "").Buckets()

// robomakerBuckets are every bucket the dialect writes.
var robomakerBuckets = []string{bucketFleets, bucketRobots, bucketApps, bucketVersions, bucketJobs, bucketFleetRobots,
	shared.Index, shared.Tags, shared.Tokens, shared.Meta}

func TestRecoverJobWithoutDeployment(t *testing.T) {
	e := newEnv(t)
	f, robots := e.fleetWith("lab", 1)
	app := e.app("hello")
	job := aws.ToString(e.job(f, app, e.version(app), nil).Arn)

	// A crash after the job record was written and before the engine stored its deployment: the dialect's
	// buckets without the engine's.
	crashed := store.NewMemory()
	t.Cleanup(func() { crashed.Close() })
	err := e.store.View(func(src store.Tx) error {
		return crashed.Update(func(dst store.Tx) error {
			for _, b := range robomakerBuckets {
				if err := src.ForEach(b, "", func(k string, v []byte) error { return dst.Put(b, k, v) }); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	e.srv.Close()
	e.store = crashed
	e.start()

	if _, err := e.engine.Deployment(name(job)); err != nil {
		t.Fatalf("the job's deployment was not recreated: %v", err)
	}
	if got := e.describe(job).Status; got != types.DeploymentStatusPreparing {
		t.Fatalf("recovered job = %s", got)
	}
	e.succeed(robots[0], job)
	if got := e.describe(job).Status; got != types.DeploymentStatusSucceeded {
		t.Fatalf("recovered job finished: %s", got)
	}
}

func TestRecoverDropsJobTheEngineRefuses(t *testing.T) {
	e := newEnv(t)
	f, _ := e.fleetWith("lab", 1)
	app := e.app("hello")
	v := e.version(app)
	active := aws.ToString(e.job(f, app, v, nil).Arn)

	// A job record for the same fleet, made its last job, whose deployment never reached the engine.
	orphan := jobRec{Key: "0000000000009999", ID: "deployment-orphan000001", Fleet: f, FleetName: "lab", CreatedAt: e.clock.Now(),
		Apps: nil, Targets: []jobTarget{{Name: "lab-r1"}}}
	orphan.ARN = e.svc.rec.ARN("deployment-job/" + orphan.ID)
	timeout := int64(60)
	orphan.Config.RobotDeploymentTimeoutInSeconds = &timeout
	if err := e.store.Update(func(tx store.Tx) error {
		if err := awsapi.PutJSON(tx, bucketJobs, orphan.Key, &orphan); err != nil {
			return err
		}
		if err := e.svc.rec.Index(tx, "arn/"+orphan.ARN, kindJob, orphan.Key); err != nil {
			return err
		}
		fr, err := e.svc.loadFleet(tx, f)
		if err != nil || fr == nil {
			t.Fatalf("fleet record: %v", err)
		}
		fr.LastJob = orphan.Key
		if err := awsapi.PutJSON(tx, bucketFleets, fr.Key, fr); err != nil {
			return err
		}
		return e.svc.rec.Index(tx, "job/"+orphan.ID, kindJob, orphan.Key)
	}); err != nil {
		t.Fatal(err)
	}
	e.restart()

	_, err := e.c.DescribeDeploymentJob(e.ctx, &robomaker.DescribeDeploymentJobInput{Job: aws.String(orphan.ARN)})
	expectError[*types.ResourceNotFoundException](t, err, 400, "")
	if got := e.describe(active).Status; got != types.DeploymentStatusPreparing {
		t.Fatalf("active job after recovery: %s", got)
	}
	fd, _ := e.c.DescribeFleet(e.ctx, &robomaker.DescribeFleetInput{Fleet: aws.String(f)})
	if aws.ToString(fd.LastDeploymentJob) != active {
		t.Errorf("fleet's last job = %s, want %s", aws.ToString(fd.LastDeploymentJob), active)
	}
}

func TestIDs(t *testing.T) {
	e := newEnv(t)
	seen := map[string]bool{}
	for range 20000 {
		id, err := e.svc.newJobID()
		if err != nil {
			t.Fatal(err)
		}
		if !jobARNPattern.MatchString("arn:aws:robomaker:us-east-1:123456789012:deployment-job/"+id) || seen[id] {
			t.Fatalf("job id %q: malformed or repeated", id)
		}
		seen[id] = true
	}
	// A source that repeats itself (the same seed given again to a service on the same data) does not make a
	// job id that is taken.
	f, _ := e.fleetWith("lab", 1)
	app := e.app("hello")
	v := e.version(app)
	for range 2 {
		e.opts.IDs, _ = awsapi.NewIDs(awsapi.NewSeededSource(7))
		e.restart()
		job := aws.ToString(e.job(f, app, v, nil).Arn)
		if _, err := e.c.CancelDeploymentJob(e.ctx, &robomaker.CancelDeploymentJobInput{Job: aws.String(job)}); err != nil {
			t.Fatal(err)
		}
		if seen[name(job)] {
			t.Fatalf("job %s was made twice", job)
		}
		seen[name(job)] = true
	}
	if r := e.svc.ids.UUID(); len(r) != 36 || r == e.svc.ids.UUID() {
		t.Fatalf("revision id %q", r)
	}
	// Stamps move past each other on a clock that stands still.
	st := store.NewMemory()
	t.Cleanup(func() { st.Close() })
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var last int64
	for range 3 {
		if err := st.Update(func(tx store.Tx) error {
			ms, err := awsapi.NewRecords("robomaker", "", "").Stamp(tx, now)
			if ms <= last {
				t.Errorf("stamp %d after %d", ms, last)
			}
			last = ms
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	if last != now.UnixMilli()+2 {
		t.Errorf("last stamp = %d", last)
	}
}
