package robomaker

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/robomaker"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"

	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/store"
	"github.com/fleetlab/fleetlab/sim/store/storetest"
)

// atomicWorld is the state every control operation of TestControlOperationsAllOrNothing starts from: a fleet
// "lab" with two robots and a finished job, a robot "spare" in no fleet, a fleet "empty", an application with a
// version, and tags on each kind of resource.
type atomicWorld struct {
	fleet, empty, spare, app, version, job string
	robots                                 []string
	running                                string // a job in progress, when the test prepared one
}

func buildAtomicWorld(e *env) *atomicWorld {
	w := &atomicWorld{}
	w.fleet, w.robots = e.fleetWith("lab", 2)
	w.empty = e.fleet("empty")
	w.spare = e.robot("spare")
	w.app = e.app("hello")
	w.version = e.version(w.app)
	w.job = aws.ToString(e.job(w.fleet, w.app, w.version, nil).Arn)
	for _, r := range w.robots {
		e.succeed(r, w.job)
	}
	for _, arn := range []string{w.fleet, w.spare, w.app, w.job} {
		if _, err := e.c.TagResource(e.ctx, &robomaker.TagResourceInput{ResourceArn: aws.String(arn),
			Tags: map[string]string{"team": "hil"}}); err != nil {
			e.t.Fatal(err)
		}
	}
	return w
}

// visible is everything a client, the engine and a device can see, as JSON: every Describe and List of every
// resource with its tags, the engine's deployments and executions, what each robot is offered, and every record
// the service and the engine keep in the store.
func visible(e *env) string {
	e.t.Helper()
	must := func(err error) {
		e.t.Helper()
		if err != nil {
			e.t.Fatal(err)
		}
	}
	v := map[string]any{}
	fleets, err := e.c.ListFleets(e.ctx, &robomaker.ListFleetsInput{})
	must(err)
	v["ListFleets"] = fleets.FleetDetails
	var arns []string
	for _, f := range fleets.FleetDetails {
		d, err := e.c.DescribeFleet(e.ctx, &robomaker.DescribeFleetInput{Fleet: f.Arn})
		must(err)
		v["DescribeFleet "+aws.ToString(f.Arn)] = d
		arns = append(arns, aws.ToString(f.Arn))
	}
	robots, err := e.c.ListRobots(e.ctx, &robomaker.ListRobotsInput{})
	must(err)
	v["ListRobots"] = robots.Robots
	var names []string
	for _, r := range robots.Robots {
		d, err := e.c.DescribeRobot(e.ctx, &robomaker.DescribeRobotInput{Robot: r.Arn})
		must(err)
		v["DescribeRobot "+aws.ToString(r.Arn)] = d
		arns = append(arns, aws.ToString(r.Arn))
		names = append(names, aws.ToString(r.Name))
	}
	apps, err := e.c.ListRobotApplications(e.ctx, &robomaker.ListRobotApplicationsInput{
		VersionQualifier: aws.String("ALL")})
	must(err)
	v["ListRobotApplications"] = apps.RobotApplicationSummaries
	for _, a := range apps.RobotApplicationSummaries {
		d, err := e.c.DescribeRobotApplication(e.ctx, &robomaker.DescribeRobotApplicationInput{
			Application: a.Arn, ApplicationVersion: a.Version})
		must(err)
		v["DescribeRobotApplication "+aws.ToString(a.Arn)+" "+aws.ToString(a.Version)] = d
		if !slices.Contains(arns, aws.ToString(a.Arn)) {
			arns = append(arns, aws.ToString(a.Arn))
		}
	}
	jobs, err := e.c.ListDeploymentJobs(e.ctx, &robomaker.ListDeploymentJobsInput{})
	must(err)
	v["ListDeploymentJobs"] = jobs.DeploymentJobs
	for _, j := range jobs.DeploymentJobs {
		d, err := e.c.DescribeDeploymentJob(e.ctx, &robomaker.DescribeDeploymentJobInput{Job: j.Arn})
		must(err)
		v["DescribeDeploymentJob "+aws.ToString(j.Arn)] = d
		arns = append(arns, aws.ToString(j.Arn))
	}
	for _, arn := range arns {
		tags, err := e.c.ListTagsForResource(e.ctx, &robomaker.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
		must(err)
		v["ListTagsForResource "+arn] = tags.Tags
	}
	deps := e.engine.Deployments("")
	v["engine deployments"] = deps
	for _, d := range deps {
		xs, err := e.engine.Executions(d.ID)
		must(err)
		v["engine executions "+d.ID] = xs
	}
	for _, n := range append(names, "lab-r1", "lab-r2", "spare", "late") {
		inProgress, queued := e.engine.Pending(n)
		v["offered to "+n] = [][]engine.Execution{inProgress, queued}
	}
	records := map[string]map[string]string{}
	must(e.store.View(func(tx store.Tx) error {
		for _, b := range append(robomakerBuckets, "engine.deployments", "engine.executions") {
			records[b] = map[string]string{}
			if err := tx.ForEach(b, "", func(k string, val []byte) error {
				records[b][k] = string(val)
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	}))
	v["store"] = records
	b, err := json.MarshalIndent(v, "", " ")
	must(err)
	return string(b)
}

// TestControlOperationsAllOrNothing fails each store write of every control operation in turn — once, and from
// that write on (a disk that stays full) — and checks that the operation answers an error and leaves exactly
// what was visible before: to the API, to the engine, to the robots and in the store; the same after a restart
// on the same data; and that the operation then succeeds (no phantom job, no spent token, no taken name).
func TestControlOperationsAllOrNothing(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(e *env, w *atomicWorld) // more state, before the operation (optional)
		op      func(e *env, w *atomicWorld) error
	}{
		{"CreateFleet", nil, func(e *env, w *atomicWorld) error {
			_, err := e.c.CreateFleet(e.ctx, &robomaker.CreateFleetInput{Name: aws.String("new"),
				Tags: map[string]string{"a": "b"}})
			return err
		}},
		{"DeleteFleet", nil, func(e *env, w *atomicWorld) error {
			_, err := e.c.DeleteFleet(e.ctx, &robomaker.DeleteFleetInput{Fleet: aws.String(w.fleet)})
			return err
		}},
		{"CreateRobot", nil, func(e *env, w *atomicWorld) error {
			_, err := e.c.CreateRobot(e.ctx, &robomaker.CreateRobotInput{Name: aws.String("late"),
				Architecture: types.ArchitectureArm64, GreengrassGroupId: aws.String("g"),
				Tags: map[string]string{"a": "b"}})
			return err
		}},
		{"DeleteRobot", nil, func(e *env, w *atomicWorld) error {
			_, err := e.c.DeleteRobot(e.ctx, &robomaker.DeleteRobotInput{Robot: aws.String(w.robots[0])})
			return err
		}},
		{"RegisterRobot", nil, func(e *env, w *atomicWorld) error {
			_, err := e.c.RegisterRobot(e.ctx, &robomaker.RegisterRobotInput{Fleet: aws.String(w.fleet),
				Robot: aws.String(w.spare)})
			return err
		}},
		{"DeregisterRobot", nil, func(e *env, w *atomicWorld) error {
			_, err := e.c.DeregisterRobot(e.ctx, &robomaker.DeregisterRobotInput{Fleet: aws.String(w.fleet),
				Robot: aws.String(w.robots[1])})
			return err
		}},
		{"CreateRobotApplication", nil, func(e *env, w *atomicWorld) error {
			_, err := e.c.CreateRobotApplication(e.ctx, &robomaker.CreateRobotApplicationInput{
				Name:               aws.String("other"),
				RobotSoftwareSuite: &types.RobotSoftwareSuite{Name: types.RobotSoftwareSuiteTypeGeneral},
				Sources: []types.SourceConfig{{S3Bucket: aws.String("bundles"), S3Key: aws.String("app-arm.tar"),
					Architecture: types.ArchitectureArm64}},
				Tags: map[string]string{"a": "b"}})
			return err
		}},
		{"CreateRobotApplicationVersion", nil, func(e *env, w *atomicWorld) error {
			_, err := e.c.CreateRobotApplicationVersion(e.ctx, &robomaker.CreateRobotApplicationVersionInput{
				Application: aws.String(w.app)})
			return err
		}},
		{"DeleteRobotApplication version", nil, func(e *env, w *atomicWorld) error {
			_, err := e.c.DeleteRobotApplication(e.ctx, &robomaker.DeleteRobotApplicationInput{
				Application: aws.String(w.app), ApplicationVersion: aws.String(w.version)})
			return err
		}},
		{"DeleteRobotApplication", nil, func(e *env, w *atomicWorld) error {
			_, err := e.c.DeleteRobotApplication(e.ctx, &robomaker.DeleteRobotApplicationInput{
				Application: aws.String(w.app)})
			return err
		}},
		{"CreateDeploymentJob", nil, func(e *env, w *atomicWorld) error {
			_, err := e.c.CreateDeploymentJob(e.ctx, &robomaker.CreateDeploymentJobInput{Fleet: aws.String(w.fleet),
				ClientRequestToken: aws.String("tok-1"), DeploymentApplicationConfigs: appConfigs(w.app, w.version),
				Tags: map[string]string{"a": "b"}, DeploymentConfig: &types.DeploymentConfig{
					ConcurrentDeploymentPercentage: aws.Int32(50), FailureThresholdPercentage: aws.Int32(50),
					DownloadConditionFile: &types.S3Object{Bucket: aws.String("scripts"), Key: aws.String("condition.sh")}}})
			return err
		}},
		{"CancelDeploymentJob", func(e *env, w *atomicWorld) {
			w.running = aws.ToString(e.job(w.fleet, w.app, w.version, nil).Arn)
			e.act(w.robots[0], w.running, engine.ExecInProgress, nil)
		}, func(e *env, w *atomicWorld) error {
			_, err := e.c.CancelDeploymentJob(e.ctx, &robomaker.CancelDeploymentJobInput{Job: aws.String(w.running)})
			return err
		}},
		{"SyncDeploymentJob", func(e *env, w *atomicWorld) {
			e.register(w.fleet, w.spare)
		}, func(e *env, w *atomicWorld) error {
			_, err := e.c.SyncDeploymentJob(e.ctx, &robomaker.SyncDeploymentJobInput{Fleet: aws.String(w.fleet),
				ClientRequestToken: aws.String("sync-1")})
			return err
		}},
		{"TagResource", nil, func(e *env, w *atomicWorld) error {
			_, err := e.c.TagResource(e.ctx, &robomaker.TagResourceInput{ResourceArn: aws.String(w.job),
				Tags: map[string]string{"run": "8"}})
			return err
		}},
		{"UntagResource", nil, func(e *env, w *atomicWorld) error {
			_, err := e.c.UntagResource(e.ctx, &robomaker.UntagResourceInput{ResourceArn: aws.String(w.fleet),
				TagKeys: []string{"team"}})
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The world is built once; each round starts a service on a copy of its store, as a restart would.
			base := newEnvWith(t, store.NewMemory(), true)
			w := buildAtomicWorld(base)
			if tc.prepare != nil {
				tc.prepare(base, w)
			}
			before := visible(base)
			for _, sticky := range []bool{false, true} {
				for n := 1; ; n++ {
					fs := storetest.NewFailing(copyStore(t, base.store))
					e := newEnvWith(t, fs, true)
					e.clock.Set(base.clock.Now())
					fs.FailAt(n, sticky)
					err := tc.op(e, w)
					fired := fs.Fired()
					fs.Disarm()
					if fired == 0 {
						if err != nil {
							t.Fatalf("without a failure: %v", err)
						}
						if n == 1 {
							t.Fatal("the operation wrote nothing")
						}
						break // every write of the operation has been failed once
					}
					label := fmt.Sprintf("write %d failed (sticky %v)", n, sticky)
					var re *awshttp.ResponseError
					if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusInternalServerError {
						t.Fatalf("%s: the operation answered %v, want an internal error", label, err)
					}
					if got := visible(e); got != before {
						t.Fatalf("%s: visible state changed:\n%s", label, diff(before, got))
					}
					e.restart()
					if got := visible(e); got != before {
						t.Fatalf("%s, then a restart: visible state changed:\n%s", label, diff(before, got))
					}
					if err := tc.op(e, w); err != nil {
						t.Fatalf("%s: the operation again, after a restart: %v", label, err)
					}
				}
			}
		})
	}
}

// diff shows the lines of two renderings that differ, with a little context.
func diff(want, got string) string {
	a, b := splitLines(want), splitLines(got)
	var out []string
	for i := 0; i < max(len(a), len(b)); i++ {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			out = append(out, fmt.Sprintf("line %d: want %s\n         got  %s", i+1, x, y))
			if len(out) > 12 {
				break
			}
		}
	}
	return fmt.Sprint(out)
}

func splitLines(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		out = append(out, s[:i])
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
	return out
}

// copyStore returns a memory store holding every record of the dialect and the engine that src holds, with the
// record sequence where src's is (the highest record key).
func copyStore(t *testing.T, src store.Store) store.Store {
	t.Helper()
	dst := store.NewMemory()
	err := src.View(func(from store.Tx) error {
		return dst.Update(func(to store.Tx) error {
			last := 0
			for _, b := range append(robomakerBuckets, "engine.deployments", "engine.executions") {
				if err := from.ForEach(b, "", func(k string, v []byte) error {
					if n, err := strconv.Atoi(k); err == nil && b != shared.Tags {
						last = max(last, n)
					}
					return to.Put(b, k, v)
				}); err != nil {
					return err
				}
			}
			for range last {
				if _, err := to.NextSequence(shared.Seq); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}
