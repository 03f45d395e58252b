package service_test

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/robomaker"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"

	"github.com/fleetlab/fleetlab/sim/awsapi/sdkhttp"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"

	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
	"github.com/fleetlab/fleetlab/sim/service"
)

// childEnv names the data directory of a service run as a child process of the test binary.
const childEnv = "FLEETLAB_SERVICE_CHILD_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		runChild(dir)
		return
	}
	os.Exit(m.Run())
}

// runChild serves on the data directory until killed, announcing its endpoint on stdout.
func runChild(dir string) {
	svc, err := service.New(service.Options{Dir: dir})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(3)
	}
	if err := svc.Start("127.0.0.1:0", "127.0.0.1:0"); err != nil {
		fmt.Println("ERROR", err)
		os.Exit(3)
	}
	fmt.Println("ENDPOINT", svc.Endpoint(), svc.S3Endpoint())
	select {} // until SIGKILL
}

// child is the service in another process, so it can be killed without any chance to flush or close.
type child struct {
	cmd          *exec.Cmd
	endpoint, s3 string
}

func startChild(t *testing.T, dir string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd}
	t.Cleanup(c.kill)
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ENDPOINT ") {
		t.Fatalf("child said %q: %v", line, err)
	}
	fields := strings.Fields(line)
	if len(fields) != 3 {
		t.Fatalf("child said %q", line)
	}
	c.endpoint, c.s3 = fields[1], fields[2]
	return c
}

func (c *child) kill() {
	if c.cmd.ProcessState == nil {
		c.cmd.Process.Kill()
		c.cmd.Wait()
	}
}

func (c *child) world(t *testing.T) *world {
	rm := robomaker.New(robomaker.Options{BaseEndpoint: aws.String(c.endpoint), HTTPClient: sdkhttp.Client(nil), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AK", "SK", ""), RetryMaxAttempts: 1})
	return &world{t: t, rm: rm}
}

func (c *child) device(t *testing.T, name string) *device { return &device{t, c.endpoint, name} }

// TestCrashMidRolloutAndReopen kills the service with SIGKILL while devices are reporting, starts it again on
// the same data, and finishes the rollout: nothing acknowledged is forgotten, no execution is lost or doubled.
func TestCrashMidRolloutAndReopen(t *testing.T) {
	dir := t.TempDir()
	a := startChild(t, dir)
	w := a.world(t)
	fleet := setupOver(t, w, a, 6)
	job := w.deploy(fleet, &types.DeploymentConfig{ConcurrentDeploymentPercentage: aws.Int32(50)})

	// robot-00 finishes; robot-01 reaches Launching; robot-02 and robot-03 (released when robot-00 finished)
	// start.
	jobID, _ := a.device(t, "robot-00").next()
	a.device(t, "robot-00").run(jobID, "", "")
	for _, name := range []string{"robot-01", "robot-02", "robot-03"} {
		if id, _ := a.device(t, name).next(); id != jobID {
			t.Fatalf("%s started %q, want %s", name, id, jobID)
		}
	}
	a.device(t, "robot-01").report(jobID, wire.StatusInProgress, map[string]string{wire.DetailStep: rmwire.StepLaunching})

	// robot-02 and robot-03 report progress as fast as they can while the service is killed. Every update the
	// service acknowledged must be there after the restart.
	steps := []string{rmwire.StepDownloadingExtracting, rmwire.StepExecutingDownloadCondition,
		rmwire.StepExecutingPreLaunch, rmwire.StepLaunching, rmwire.StepExecutingPostLaunch}
	acked := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	started := make(chan struct{}, 2)
	for _, name := range []string{"robot-02", "robot-03"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				step := i % len(steps)
				err := postStep(a.endpoint, name, jobID, steps[step], i)
				if err != nil {
					return // the service is gone
				}
				mu.Lock()
				acked[name] = i
				mu.Unlock()
				if i == 3 {
					started <- struct{}{}
				}
			}
		}()
	}
	<-started
	<-started
	a.kill()
	wg.Wait()

	b := startChild(t, dir)
	w2 := b.world(t)
	out := w2.describe(job)
	got := summary(out)
	if got["robot-00"] != "InSync" || got["robot-01"] != "Deploying" {
		t.Fatalf("after restart %v", got)
	}
	for _, r := range out.RobotDeploymentSummary {
		name := strings.Split(*r.Arn, "/")[1]
		if name == "robot-01" && r.ProgressDetail.CurrentProgress != types.RobotDeploymentStepLaunchingStep {
			t.Errorf("robot-01 progress %s, want Launching", r.ProgressDetail.CurrentProgress)
		}
	}
	for name, n := range acked {
		seq := lastSeq(t, b.endpoint, name, jobID)
		if seq < n {
			t.Errorf("%s: update %d was acknowledged, the restarted service remembers only %d", name, n, seq)
		}
	}

	// Finish the rollout on the restarted service.
	b.device(t, "robot-01").run(jobID, "", "")
	for _, name := range []string{"robot-02", "robot-03"} {
		b.device(t, name).report(jobID, wire.StatusSucceeded, map[string]string{wire.DetailStep: rmwire.StepFinished})
	}
	for _, name := range []string{"robot-04", "robot-05"} {
		if id, _ := b.device(t, name).next(); id != jobID {
			t.Fatalf("%s: got %q, want %s", name, id, jobID)
		}
		b.device(t, name).run(jobID, "", "")
	}
	final := w2.waitJob(job)
	if final.Status != types.DeploymentStatusSucceeded || len(final.RobotDeploymentSummary) != 6 {
		t.Fatalf("job %s with %d robots", final.Status, len(final.RobotDeploymentSummary))
	}
	for name, s := range summary(final) {
		if s != "InSync" {
			t.Errorf("%s %s", name, s)
		}
	}
	// Every robot had exactly one execution: none has another pending.
	for i := 0; i < 6; i++ {
		if id, _ := b.device(t, robotName(i)).next(); id != "" {
			t.Errorf("%s has a second execution %s", robotName(i), id)
		}
	}
}

// postStep reports an in-progress step with a sequence number in statusDetails; it fails when the service does
// not acknowledge.
func postStep(endpoint, thing, job, step string, seq int) error {
	return doJSON("POST", endpoint+"/things/"+thing+"/jobs/"+job, wire.UpdateJobExecutionRequest{Status: wire.StatusInProgress,
		StatusDetails: map[string]string{wire.DetailStep: step, "seq": fmt.Sprint(seq)}}, nil)
}

func lastSeq(t *testing.T, endpoint, thing, job string) int {
	t.Helper()
	var out wire.DescribeJobExecutionResponse
	d := &device{t: t, endpoint: endpoint, name: thing}
	if s := d.call("GET", "/things/"+thing+"/jobs/"+job, nil, &out); s != 200 || out.Execution == nil {
		t.Fatalf("describe %s: %d", thing, s)
	}
	var n int
	fmt.Sscan(out.Execution.StatusDetails["seq"], &n)
	return n
}

// setupOver uploads the bundle through the child's S3 API, then creates the application, a fleet of n robots,
// and returns the fleet ARN.
func setupOver(t *testing.T, w *world, c *child, n int) string {
	t.Helper()
	for _, path := range []string{"/bundles", "/bundles/hello.tar.gz"} {
		req, _ := http.NewRequest("PUT", c.s3+path, strings.NewReader("bundle bytes"))
		if path == "/bundles" {
			req.Body = http.NoBody
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("PUT %s: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}
	return w.fleetOf(n)
}
