package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// buildFleetlab builds the command once per test binary run.
func buildFleetlab(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "fleetlab")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// served is a running `fleetlab serve`.
type served struct {
	cmd          *exec.Cmd
	endpoint     string
	stdout       *bufio.Scanner
	stoppedClean bool
}

func startServe(t *testing.T, bin, data string, extra ...string) *served {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0", "--data", data, "--time-scale", "60"},
		extra...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &served{cmd: cmd, stdout: bufio.NewScanner(out)}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	for s.stdout.Scan() {
		if fields := strings.Fields(s.stdout.Text()); len(fields) > 1 && fields[0] == "endpoint" {
			s.endpoint = fields[1]
			return s
		}
	}
	t.Fatalf("serve printed no endpoints")
	return nil
}

// stop sends SIGTERM and waits: serve must exit 0 after saying it stops.
func (s *served) stop(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	stopping := false
	for s.stdout.Scan() {
		stopping = stopping || strings.Contains(s.stdout.Text(), "stopping")
	}
	if err := s.cmd.Wait(); err != nil || !stopping {
		t.Fatalf("serve after SIGTERM: %v (said stopping: %v)", err, stopping)
	}
}

// TestServeWithTheAWSCLI runs `fleetlab serve` and uses it the way the README says, on its one endpoint: the AWS
// CLI for S3 (a small upload and one above the CLI's 8 MiB multipart threshold) and RoboMaker (its model added
// back with `fleetlab model`) from an empty service to a deployment job, then a restart on the same data; and
// the same S3 and RoboMaker calls, signed, against `fleetlab serve --auth sigv4`.
func TestServeWithTheAWSCLI(t *testing.T) {
	const aws = "/usr/bin/aws" // the AWS CLI 2; an older one may come first on PATH
	if _, err := os.Stat(aws); err != nil {
		t.Skip("the AWS CLI 2 is not installed at /usr/bin/aws; the SDK tests of sim/service cover the service")
	}
	bin := buildFleetlab(t)
	home, data := t.TempDir(), t.TempDir()
	env := append(os.Environ(), "HOME="+home, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
		"AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE="+filepath.Join(home, "config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "credentials"), "AWS_PAGER=", "AWS_EC2_METADATA_DISABLED=true")
	cli := func(endpoint string, args ...string) []byte {
		t.Helper()
		cmd := exec.Command(aws, append([]string{"--endpoint-url", endpoint, "--output", "json"}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aws %v: %v\n%s", args, err, out)
		}
		return out
	}

	model, err := exec.Command(bin, "model", "robomaker").Output()
	if err != nil {
		t.Fatal(err)
	}
	modelFile := filepath.Join(home, "robomaker.json")
	os.WriteFile(modelFile, model, 0o600)
	add := exec.Command(aws, "configure", "add-model", "--service-name", "robomaker", "--service-model",
		"file://"+modelFile)
	add.Env = env
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("aws configure add-model: %v\n%s", err, out)
	}
	bundle := filepath.Join(home, "hello.tar.gz")
	os.WriteFile(bundle, []byte("not really a bundle"), 0o600)
	big := filepath.Join(home, "big.tar.gz")
	os.WriteFile(big, bytes.Repeat([]byte("0123456789abcdef"), 9<<20/16), 0o600) // 9 MiB: a multipart upload

	// s3AndFleet is the walk both runs share: a bucket, two bundles, a fleet, and what s3 ls says.
	s3AndFleet := func(ep string) string {
		cli(ep, "s3", "mb", "s3://bundles")
		cli(ep, "s3", "cp", bundle, "s3://bundles/hello.tar.gz")
		cli(ep, "s3", "cp", big, "s3://bundles/big.tar.gz")
		var fleet struct{ Arn string }
		json.Unmarshal(cli(ep, "robomaker", "create-fleet", "--name", "lab"), &fleet)
		if !strings.Contains(fleet.Arn, ":deployment-fleet/lab/") {
			t.Fatalf("create-fleet arn %q", fleet.Arn)
		}
		out := string(cli(ep, "s3", "ls", "s3://bundles"))
		if !strings.Contains(out, fmt.Sprintf("%d big.tar.gz", 9<<20)) || !strings.Contains(out, "hello.tar.gz") {
			t.Fatalf("s3 ls: %s", out)
		}
		return fleet.Arn
	}

	s := startServe(t, bin, data)
	ep := s.endpoint
	fleet := s3AndFleet(ep)
	var robot, app struct{ Arn string }
	json.Unmarshal(cli(ep, "robomaker", "create-robot", "--name", "r1", "--architecture", "X86_64",
		"--greengrass-group-id", "g"), &robot)
	cli(ep, "robomaker", "register-robot", "--fleet", fleet, "--robot", robot.Arn)
	json.Unmarshal(cli(ep, "robomaker", "create-robot-application", "--name", "hello",
		"--robot-software-suite", "name=General", "--sources", "s3Bucket=bundles,s3Key=hello.tar.gz,architecture=X86_64"), &app)
	var version struct{ Version string }
	json.Unmarshal(cli(ep, "robomaker", "create-robot-application-version", "--application", app.Arn), &version)
	var job struct{ Arn, Status string }
	json.Unmarshal(cli(ep, "robomaker", "create-deployment-job", "--fleet", fleet, "--deployment-application-configs",
		fmt.Sprintf("application=%s,applicationVersion=%s,launchConfig={packageName=hello_robot,launchFile=launch.sh}",
			app.Arn, version.Version)), &job)
	if !strings.Contains(job.Arn, ":deployment-job/deployment-") {
		t.Fatalf("create-deployment-job: %+v", job)
	}
	var described struct{ Arn, Fleet string }
	json.Unmarshal(cli(ep, "robomaker", "describe-deployment-job", "--job", job.Arn), &described)
	if described.Arn != job.Arn || described.Fleet != fleet {
		t.Fatalf("describe-deployment-job: %+v", described)
	}
	s.stop(t)

	// Everything is still there after a restart on the same data.
	s = startServe(t, bin, data)
	var fleets struct{ FleetDetails []struct{ Name string } }
	json.Unmarshal(cli(s.endpoint, "robomaker", "list-fleets"), &fleets)
	if len(fleets.FleetDetails) != 1 || fleets.FleetDetails[0].Name != "lab" {
		t.Fatalf("fleets after restart %+v", fleets)
	}
	if out := cli(s.endpoint, "s3", "ls", "s3://bundles"); !strings.Contains(string(out), "hello.tar.gz") {
		t.Fatalf("s3 ls after restart: %s", out)
	}
	s.stop(t)

	// With --auth sigv4 the CLI's signatures are checked, S3's (multipart included) and RoboMaker's alike.
	s = startServe(t, bin, t.TempDir(), "--auth", "sigv4", "--access-key", "test", "--secret-key", "test")
	s3AndFleet(s.endpoint)
	for _, args := range [][]string{{"s3", "cp", bundle, "s3://bundles/other.tar.gz"}, {"robomaker", "list-fleets"}} {
		cmd := exec.Command(aws, append([]string{"--endpoint-url", s.endpoint}, args...)...)
		cmd.Env = append(env, "AWS_SECRET_ACCESS_KEY=not-the-secret", "AWS_MAX_ATTEMPTS=1")
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "Signature") {
			t.Fatalf("aws %v with a wrong secret: %v\n%s", args, err, out)
		}
	}
	s.stop(t)
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		code int
		hint string
	}{
		{[]string{"nope"}, exitUsage, "fleetlab help"},
		{[]string{"serve", "--addr", "0.0.0.0:4710"}, exitUsage, "--auth sigv4"},
		{[]string{"serve", "--time-scale", "0.5"}, exitUsage, "compress policy time"},
		{[]string{"serve", "--bogus"}, exitUsage, "fleetlab help serve"},
		{[]string{"serve", "--auth", "kerberos"}, exitUsage, "kerberos"},
		{[]string{"serve", "--auth", "sigv4", "--device-access-key", "test"}, exitUsage, "a key of their own"},
		{[]string{"serve", "--auth", "sigv4", "--device-secret-key", ""}, exitUsage, "robots (fleetlab-agent) with the device pair"},
		{[]string{"serve", "--max-conns", "-1"}, exitUsage, "sized for slow device links"},
		{[]string{"model"}, exitUsage, "fleetlab model robomaker"},
		{[]string{"help"}, exitOK, ""},
	}
	for _, tc := range tests {
		var out, errOut strings.Builder
		if code := run(tc.args, &out, &errOut); code != tc.code || !strings.Contains(errOut.String()+out.String(), tc.hint) {
			t.Errorf("%v: exit %d, want %d; stderr %q", tc.args, code, tc.code, errOut.String())
		}
	}
}

// TestTimeScaleCheckedTheSameEverywhere gives serve, run and demo each bad --time-scale: every one is bad usage
// (exit 2) with a hint of the valid range, before anything starts. run's explicit 0 is refused, not taken as
// "the scenario's".
func TestTimeScaleCheckedTheSameEverywhere(t *testing.T) {
	tail := map[string][]string{"serve": {"--data", t.TempDir()}, "run": {"fixtures/scenarios/no-response.json"},
		"demo": nil}
	for _, cmd := range []string{"serve", "run", "demo"} {
		for _, v := range []string{"NaN", "Inf", "-Inf", "+Inf", "1e9", "10001", "0", "0.5", "-3"} {
			var out, errOut strings.Builder
			args := append([]string{cmd, "--time-scale", v}, tail[cmd]...)
			code := run(args, &out, &errOut)
			if code != exitUsage || !strings.Contains(errOut.String(), "--time-scale") ||
				!strings.Contains(errOut.String(), "from 1 to 10000") || !strings.Contains(errOut.String(), "hint:") {
				t.Errorf("%v: exit %d, want %d with the valid range; stderr %q", args, code, exitUsage, errOut.String())
			}
		}
	}
}
