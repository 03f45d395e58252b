package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/harness/robomaker/robomakertest"
)

// readmeWalk returns the shell block of README.md that TestREADMEWalk runs: the one after its marker comment.
func readmeWalk(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "<!-- The block below is run as is by TestREADMEWalk (cmd/fleetlab). -->\n```sh\n")
	if !ok {
		t.Fatal("README.md has no block marked for TestREADMEWalk")
	}
	block, _, ok := strings.Cut(rest, "\n```")
	if !ok {
		t.Fatal("the README's walk block does not end")
	}
	return block + "\n"
}

var urlRE = regexp.MustCompile(`http://127\.0\.0\.1:[0-9]+`)

// TestREADMEWalk runs the README's AWS CLI walk as written — the block marked for it, with the AWS CLI 2, both
// programs built as it says, against `fleetlab serve` on an empty data directory — and checks it ends as the
// README says: the job Succeeded, both robots InSync at Finished, the application running; and that stopping the
// agents, as its last line does, leaves nothing of the robots running.
func TestREADMEWalk(t *testing.T) {
	const aws = "/usr/bin/aws"
	if _, err := os.Stat(aws); err != nil {
		t.Skip("the AWS CLI 2 is not installed at " + aws + "; the SDK tests of sim/service cover the service")
	}
	script := readmeWalk(t)
	work := t.TempDir()
	bin := filepath.Join(work, "bin")
	build := exec.Command("go", "build", "-o", bin+"/", "./cmd/fleetlab", "./cmd/fleetlab-agent")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if err := os.Symlink(aws, filepath.Join(bin, "aws")); err != nil { // the first aws on PATH may be another
		t.Fatal(err)
	}

	serve := exec.Command(filepath.Join(bin, "fleetlab"), "serve", "--addr", "127.0.0.1:0",
		"--data", filepath.Join(work, "lab-data"))
	out, err := serve.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		serve.Process.Signal(syscall.SIGTERM)
		serve.Wait()
	})
	var ep string
	for sc := bufio.NewScanner(out); ep == "" && sc.Scan(); {
		ep = urlRE.FindString(sc.Text()) // the first address it prints is its one endpoint
	}
	if ep == "" {
		t.Fatal("fleetlab serve printed no endpoint")
	}

	home := filepath.Join(work, "home")
	env := []string{"HOME=" + home, "AWS_CONFIG_FILE=" + filepath.Join(home, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials"), "AWS_ACCESS_KEY_ID=test",
		"AWS_SECRET_ACCESS_KEY=test", "AWS_DEFAULT_REGION=us-east-1"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	script = strings.Replace(script, "EP=http://127.0.0.1:4710\n", "EP="+ep+"\n", 1)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	walk := exec.CommandContext(ctx, "bash", "-e", "-c", script)
	walk.Dir, walk.Env = work, env
	walk.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	walk.Cancel = func() error { return syscall.Kill(-walk.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr bytes.Buffer
	walk.Stdout, walk.Stderr = &stdout, &stderr
	err = walk.Run()
	t.Cleanup(func() { stopTagged(work) }) // what a failed walk left running
	if err != nil {
		t.Fatalf("the README's walk: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	got := stdout.String()
	if !strings.Contains(got, "job Succeeded") || strings.Count(got, "|  InSync |  Finished |") != 2 ||
		!regexp.MustCompile(`version=1 pid=[0-9]+ beat=[0-9]+`).MatchString(got) {
		t.Fatalf("the walk did not end as the README says:\n%s\nstderr:\n%s", got, stderr.String())
	}
	for _, r := range []string{"robot-1", "robot-2"} {
		log, _ := os.ReadFile(filepath.Join(work, r+".log"))
		if !strings.Contains(string(log), "msg=Finished robot="+r) {
			t.Errorf("%s.log does not show the steps:\n%s", r, log)
		}
		if left := robomakertest.DeviceProcesses(filepath.Join(work, r)); len(left) > 0 {
			t.Errorf("processes %v of %s outlived its agent's stop", left, r)
		}
	}
}

// stopTagged kills what the walk's robots left running.
func stopTagged(work string) {
	for _, r := range []string{"robot-1", "robot-2"} {
		for _, pid := range robomakertest.DeviceProcesses(filepath.Join(work, r)) {
			syscall.Kill(-pid, syscall.SIGKILL)
			syscall.Kill(pid, syscall.SIGKILL)
		}
		robomakertest.Eventually(5*time.Second, func() bool { return len(robomakertest.DeviceProcesses(filepath.Join(work, r))) == 0 })
	}
}
