// Package awsclitest runs the AWS CLI 2 against a service under test, for the dialects' CLI tests.
package awsclitest

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// AWSCLI runs the AWS CLI 2 against url with test credentials and a fresh home: run returns what a command
// printed, call decodes its JSON output into v and fails the test on an error. It skips the test when the CLI is
// absent or the run is short.
func AWSCLI(t *testing.T, url string) (work string, run func(args ...string) (string, string, error),
	call func(v any, args ...string)) {
	t.Helper()
	const awsPath = "/usr/bin/aws"
	if _, err := os.Stat(awsPath); err != nil {
		t.Skip("the AWS CLI 2 is not at /usr/bin/aws; install it to run this test")
	}
	if testing.Short() {
		t.Skip("runs the AWS CLI, about a second per command")
	}
	work = t.TempDir()
	env := []string{
		"HOME=" + work,
		"AWS_ACCESS_KEY_ID=AKIDFLEETLAB",
		"AWS_SECRET_ACCESS_KEY=fleetlab-secret",
		"AWS_REGION=us-east-1",
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE=" + filepath.Join(work, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(work, "credentials"),
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_PAGER=",
		"AWS_MAX_ATTEMPTS=1",
	}
	for _, kv := range os.Environ() { // keep PATH and the like; drop the caller's AWS settings and HOME
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	run = func(args ...string) (stdout, stderr string, err error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, awsPath, append([]string{"--endpoint-url", url, "--output", "json"},
			args...)...)
		cmd.Env, cmd.Dir = env, work
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err = cmd.Run()
		return out.String(), errb.String(), err
	}
	call = func(v any, args ...string) {
		t.Helper()
		out, stderr, err := run(args...)
		if err != nil {
			t.Fatalf("aws %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
		}
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("aws %s: output %q: %v", strings.Join(args, " "), out, err)
		}
	}
	return work, run, call
}
