// Package robomakertest helps test fleet hosts against the real service through its RoboMaker dialect: a World
// is a running service with a RoboMaker client from the official SDK, the robots registered and the
// applications deployed as the harness's RoboMaker driver does it, and the checks the tests share — a job's
// outcome, a robot directory's version, a device's processes. Goroutines left behind are agenttest.LeakTest's.
package robomakertest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	rmsdk "github.com/aws/aws-sdk-go-v2/service/robomaker"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness/robomaker"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	agentrm "github.com/fleetlab/fleetlab/sim/agent/robomaker"
	"github.com/fleetlab/fleetlab/sim/awsapi/sdkhttp"
	"github.com/fleetlab/fleetlab/sim/fleet"
	"github.com/fleetlab/fleetlab/sim/service"
)

// Bucket is the artifact bucket a World creates for bundles.
const Bucket = "bundles"

// World is a running deployment service and an SDK client for it. Everything it starts is stopped by the test's
// cleanup.
type World struct {
	T   testing.TB
	Svc *service.Service
	RM  *rmsdk.Client

	transport *http.Transport
}

// Start starts the service with opts (Dir defaults to a test directory) on loopback ports, creates the bundle
// bucket and a RoboMaker client that does not retry, and registers their cleanup.
func Start(t testing.TB, opts service.Options) *World {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	svc, err := service.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start("127.0.0.1:0", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	w := &World{T: t, Svc: svc}
	w.transport = &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(func() {
		svc.Close()
		w.transport.CloseIdleConnections()
	})
	w.RM = rmsdk.New(rmsdk.Options{BaseEndpoint: aws.String(svc.Endpoint()), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AK", "SK", ""), RetryMaxAttempts: 1,
		HTTPClient: sdkhttp.Client(w.transport)})
	if err := svc.Artifacts.CreateBucket(Bucket); err != nil {
		t.Fatal(err)
	}
	return w
}

// Put stores body as the object key of the bundle bucket.
func (w *World) Put(key string, body []byte) {
	w.T.Helper()
	if _, err := w.Svc.Artifacts.Put(Bucket, key, bytes.NewReader(body)); err != nil {
		w.T.Fatal(err)
	}
}

// App stores bundle as <name>.tar.gz for each architecture given by its GOARCH name (amd64 when none; the source
// names it as RoboMaker does), creates the robot application
// name from it and its version 1, and returns the application's ARN and version.
func (w *World) App(name string, bundle []byte, archs ...string) (arn, version string) {
	w.T.Helper()
	if len(archs) == 0 {
		archs = []string{fleet.ArchAMD64}
	}
	key := name + ".tar.gz"
	w.Put(key, bundle)
	var sources []types.SourceConfig
	for _, a := range archs {
		rm, err := agentrm.Architecture(a)
		if err != nil {
			w.T.Fatal(err)
		}
		sources = append(sources, types.SourceConfig{S3Bucket: aws.String(Bucket), S3Key: aws.String(key),
			Architecture: types.Architecture(rm)})
	}
	ctx := context.Background()
	app, err := w.RM.CreateRobotApplication(ctx, &rmsdk.CreateRobotApplicationInput{Name: aws.String(name),
		RobotSoftwareSuite: &types.RobotSoftwareSuite{Name: types.RobotSoftwareSuiteTypeGeneral}, Sources: sources})
	if err != nil {
		w.T.Fatal(err)
	}
	v, err := w.RM.CreateRobotApplicationVersion(ctx, &rmsdk.CreateRobotApplicationVersionInput{Application: app.Arn})
	if err != nil {
		w.T.Fatal(err)
	}
	return aws.ToString(app.Arn), aws.ToString(v.Version)
}

// Register makes devs the robots of the RoboMaker fleet fleetName as the harness's RoboMaker driver does it, and
// returns the fleet's ARN.
func (w *World) Register(ctx context.Context, fleetName string, devs []fleet.Device) (string, error) {
	return robomaker.Register(ctx, w.RM, fleetName, devs, nil)
}

// Deploy creates a deployment job of the application version to the fleet, with cfg (nil: RoboMaker's defaults)
// and the fixtures' launch config, and returns the job's ARN.
func (w *World) Deploy(fleetARN, appARN, version string, cfg *types.DeploymentConfig) string {
	w.T.Helper()
	out, err := w.RM.CreateDeploymentJob(context.Background(), &rmsdk.CreateDeploymentJobInput{
		Fleet: aws.String(fleetARN), DeploymentConfig: cfg,
		DeploymentApplicationConfigs: []types.DeploymentApplicationConfig{{Application: aws.String(appARN),
			ApplicationVersion: aws.String(version), LaunchConfig: robomaker.Launch()}}})
	if err != nil {
		w.T.Fatal(err)
	}
	return aws.ToString(out.Arn)
}

// Describe is DescribeDeploymentJob.
func (w *World) Describe(job string) *rmsdk.DescribeDeploymentJobOutput {
	w.T.Helper()
	out, err := w.RM.DescribeDeploymentJob(context.Background(), &rmsdk.DescribeDeploymentJobInput{Job: aws.String(job)})
	if err != nil {
		w.T.Fatal(err)
	}
	return out
}

// WaitJob waits until the job reaches a final status and describes it, failing the test after timeout of real
// time.
func (w *World) WaitJob(job string, timeout time.Duration) *rmsdk.DescribeDeploymentJobOutput {
	w.T.Helper()
	// The engine is asked while waiting: describing a job of thousands of robots every few milliseconds would
	// load the service more than the rollout does.
	id := JobID(job)
	if !Eventually(timeout, func() bool {
		d, err := w.Svc.Engine.Deployment(id)
		return err == nil && d.Status.Terminal()
	}) {
		out := w.Describe(job)
		w.T.Fatalf("job still %s after %v: robots %v", out.Status, timeout, Summary(out))
	}
	return w.Describe(job)
}

// JobID is the id of a job from its ARN: the job id the robots see.
func JobID(jobARN string) string { return robomaker.JobID(jobARN) }

// Summary maps each robot of a described job to its status, with "/failureCode" when it has one.
func Summary(out *rmsdk.DescribeDeploymentJobOutput) map[string]string {
	m := map[string]string{}
	if out == nil {
		return m
	}
	for _, r := range out.RobotDeploymentSummary {
		parts := strings.Split(aws.ToString(r.Arn), "/")
		name := parts[len(parts)-2]
		s := string(r.Status)
		if r.FailureCode != "" {
			s += "/" + string(r.FailureCode)
		}
		m[name] = s
	}
	return m
}

// Eventually checks cond every few milliseconds of real time until it holds or timeout passes, and reports
// whether it held: the way tests wait, with a deadline and never a bare sleep. It is agenttest.Eventually, so
// fleet and agent tests wait alike.
func Eventually(timeout time.Duration, cond func() bool) bool {
	return agenttest.Eventually(timeout, cond)
}

// Bundle packs files (slash paths to contents) as a bundle, as fixtures/bundles packs its own (bundles.Pack).
// The files are the test's own: a path that cannot be packed panics.
func Bundle(files map[string]string) []byte {
	b, err := bundles.Pack(files)
	if err != nil {
		panic(err)
	}
	return b
}

// HeartbeatApp is a launch file for the fixtures' launch config that runs until signalled and writes, five times a
// second, "app=<application> job=<job id> pid=<pid> beat=<n>" to $ROBOT_DATA_DIR/heartbeat, so a test can tell
// which version a robot runs and that it runs.
const HeartbeatApp = `#!/bin/sh
out="${ROBOT_DATA_DIR:-.}/heartbeat"
trap 'exit 0' TERM INT
n=0
while :; do
	n=$((n + 1))
	echo "app=$APPLICATION_NAME job=$DEPLOYMENT_JOB_ID pid=$$ beat=$n" >"$out.tmp" && mv "$out.tmp" "$out"
	sleep 0.2
done
`

// Heartbeat is a parsed heartbeat line.
type Heartbeat struct {
	App, Job string
	Pid      int
	Beat     int
}

// ReadHeartbeat reads the heartbeat of the robot whose device directory is dir.
func ReadHeartbeat(dir string) (Heartbeat, error) {
	b, err := os.ReadFile(filepath.Join(dir, "data", "heartbeat"))
	if err != nil {
		return Heartbeat{}, err
	}
	var h Heartbeat
	if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "app=%s job=%s pid=%d beat=%d", &h.App, &h.Job, &h.Pid, &h.Beat); err != nil {
		return Heartbeat{}, fmt.Errorf("heartbeat %q: %w", b, err)
	}
	return h, nil
}

// Current returns the version the robot in dir has active: the job id of the version its current link points
// at. It fails unless the link points at a version directory holding the launch file — a robot must never be
// left with a version half there.
func Current(dir string) (string, error) {
	target, err := os.Readlink(filepath.Join(dir, "current"))
	if err != nil {
		return "", err
	}
	id, ok := strings.CutPrefix(filepath.ToSlash(target), "versions/")
	if !ok {
		return "", fmt.Errorf("current points at %q", target)
	}
	launch := filepath.Join(dir, "current", bundles.Package, bundles.LaunchFile)
	if fi, err := os.Stat(launch); err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("current points at %s, which has no launch file: %v", id, err)
	}
	return agent.VersionJob(id), nil
}

// WaitRunning waits until the robot in dir runs job: its current link points at job, and its heartbeat names job
// and moves on — with a process other than notPid, when not zero.
func WaitRunning(t testing.TB, dir, job string, notPid int, timeout time.Duration) Heartbeat {
	t.Helper()
	var first, last Heartbeat
	var why string
	ok := Eventually(timeout, func() bool {
		cur, err := Current(dir)
		if err != nil || cur != job {
			why = fmt.Sprintf("current %q (%v)", cur, err)
			return false
		}
		h, err := ReadHeartbeat(dir)
		if err != nil || h.Job != job || h.Pid == notPid {
			why = fmt.Sprintf("heartbeat %+v (%v)", h, err)
			return false
		}
		if first.Pid != h.Pid {
			first = h
			why = "heartbeat seen once"
			return false
		}
		last = h
		why = "heartbeat does not move"
		return h.Beat > first.Beat
	})
	if !ok {
		t.Fatalf("%s does not run %s after %v: %s", dir, job, timeout, why)
	}
	return last
}

// DeviceProcesses lists the live processes (zombies excluded) an agent started for the robot whose device directory
// is dir: those carrying its device tag (agent.DeviceTag) in their environment. It reads /proc: Linux only.
func DeviceProcesses(dir string) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	tag := []byte(agent.DeviceTag + "=" + dir)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if i := bytes.LastIndexByte(stat, ')'); err != nil || i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' {
			continue
		}
		env, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
		for _, kv := range bytes.Split(env, []byte{0}) {
			if bytes.Equal(kv, tag) {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}
