package main

import (
	"bufio"
	"encoding/json"
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
	api, s3      string
	stdout       *bufio.Scanner
	stoppedClean bool
}

func startServe(t *testing.T, bin, data string) *served {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--s3-addr", "127.0.0.1:0", "--data", data,
		"--time-scale", "60")
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
		line := s.stdout.Text()
		fields := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "  AWS APIs"):
			s.api = fields[len(fields)-1]
		case strings.HasPrefix(line, "  artifact store"):
			s.s3 = fields[len(fields)-1]
		}
		if s.api != "" && s.s3 != "" {
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

// TestServeWithTheAWSCLI runs `fleetlab serve` and uses it the way the README says: the AWS CLI for RoboMaker
// (its model added back with `fleetlab model`) and S3, then a restart on the same data.
func TestServeWithTheAWSCLI(t *testing.T) {
	aws, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("the AWS CLI is not installed; the SDK tests of sim/service cover the service")
	}
	bin := buildFleetlab(t)
	home, data := t.TempDir(), t.TempDir()
	env := append(os.Environ(), "HOME="+home, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
		"AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE="+filepath.Join(home, "config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "credentials"))
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

	s := startServe(t, bin, data)
	bundle := filepath.Join(home, "hello.tar.gz")
	os.WriteFile(bundle, []byte("not really a bundle"), 0o600)
	cli(s.s3, "s3", "mb", "s3://bundles")
	cli(s.s3, "s3", "cp", bundle, "s3://bundles/hello.tar.gz")
	var fleet struct{ Arn string }
	json.Unmarshal(cli(s.api, "robomaker", "create-fleet", "--name", "lab"), &fleet)
	if !strings.Contains(fleet.Arn, ":deployment-fleet/lab/") {
		t.Fatalf("create-fleet arn %q", fleet.Arn)
	}
	cli(s.api, "robomaker", "create-robot", "--name", "r1", "--architecture", "X86_64", "--greengrass-group-id", "g")
	s.stop(t)

	// Everything is still there after a restart on the same data.
	s = startServe(t, bin, data)
	var fleets struct{ FleetDetails []struct{ Name string } }
	json.Unmarshal(cli(s.api, "robomaker", "list-fleets"), &fleets)
	if len(fleets.FleetDetails) != 1 || fleets.FleetDetails[0].Name != "lab" {
		t.Fatalf("fleets after restart %+v", fleets)
	}
	if out := cli(s.s3, "s3", "ls", "s3://bundles"); !strings.Contains(string(out), "hello.tar.gz") {
		t.Fatalf("s3 ls after restart: %s", out)
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
