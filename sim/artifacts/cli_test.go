package artifacts

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAWSCLI runs the AWS CLI's s3 commands against the store's handler, over TLS so the CLI sends uploads
// aws-chunked with a trailing checksum, and with a file above the CLI's 8 MiB multipart threshold.
func TestAWSCLI(t *testing.T) {
	awsPath, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("the AWS CLI (aws) is not on PATH; install it to run this test")
	}
	if testing.Short() {
		t.Skip("runs the AWS CLI, about a second per command")
	}
	s := openStore(t, Options{})
	rec := &recorder{next: s.Handler()}
	srv := serve(t, rec, true)

	work := t.TempDir()
	caFile := filepath.Join(work, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"HOME=" + work,
		"AWS_ACCESS_KEY_ID=AKIDFLEETLAB",
		"AWS_SECRET_ACCESS_KEY=fleetlab-secret",
		"AWS_REGION=us-east-1",
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE=" + filepath.Join(work, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(work, "credentials"),
		"AWS_CA_BUNDLE=" + caFile,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_PAGER=",
	}
	for _, kv := range os.Environ() { // keep PATH and the like; drop the caller's AWS settings and HOME
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	aws := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, awsPath, append([]string{"--endpoint-url", srv.URL}, args...)...)
		cmd.Env, cmd.Dir = env, work
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("aws %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
		}
		return stdout.String()
	}

	script := []byte("#!/bin/sh\nexec roslaunch app main.launch\n")
	small := filepath.Join(work, "launch.sh")
	if err := os.WriteFile(small, script, 0o600); err != nil {
		t.Fatal(err)
	}
	bigData := randomBytes(7, 9<<20)
	big := filepath.Join(work, "bundle.tar")
	if err := os.WriteFile(big, bigData, 0o600); err != nil {
		t.Fatal(err)
	}

	aws("s3", "mb", "s3://robot-bundles")
	aws("s3", "cp", "--no-progress", small, "s3://robot-bundles/scripts/launch.sh")
	aws("s3", "cp", "--no-progress", small, "s3://robot-bundles/scripts/ü file+1.sh")
	aws("s3", "cp", "--no-progress", big, "s3://robot-bundles/bundles/x86_64/bundle.tar")
	if !rec.sawChunkedPut() {
		t.Fatal("the CLI sent no aws-chunked upload; the test would not cover the decoder")
	}

	if out := aws("s3", "ls"); !strings.Contains(out, "robot-bundles") {
		t.Fatalf("aws s3 ls:\n%s", out)
	}
	out := aws("s3", "ls", "s3://robot-bundles/")
	if !strings.Contains(out, "PRE bundles/") || !strings.Contains(out, "PRE scripts/") {
		t.Fatalf("aws s3 ls bucket:\n%s", out)
	}
	out = aws("s3", "ls", "--recursive", "s3://robot-bundles/")
	for _, want := range []string{
		fmt.Sprintf("%d bundles/x86_64/bundle.tar", len(bigData)),
		fmt.Sprintf("%d scripts/launch.sh", len(script)),
		fmt.Sprintf("%d scripts/ü file+1.sh", len(script)),
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("aws s3 ls --recursive lacks %q:\n%s", want, out)
		}
	}

	o, err := s.Head("robot-bundles", "bundles/x86_64/bundle.tar")
	if err != nil || o.Size != int64(len(bigData)) || !strings.HasSuffix(o.ETag, `-2"`) {
		t.Fatalf("multipart upload: %+v, %v", o, err)
	}
	if o, err := s.Head("robot-bundles", "scripts/ü file+1.sh"); err != nil || o.ETag != etagOf(script) {
		t.Fatalf("unicode key: %+v, %v", o, err)
	}

	down := filepath.Join(work, "downloaded.tar")
	aws("s3", "cp", "--no-progress", "s3://robot-bundles/bundles/x86_64/bundle.tar", down)
	if got, err := os.ReadFile(down); err != nil || !bytes.Equal(got, bigData) {
		t.Fatalf("downloaded bundle differs (%d bytes): %v", len(got), err)
	}

	aws("s3", "rm", "s3://robot-bundles/scripts/launch.sh")
	if _, err := s.Head("robot-bundles", "scripts/launch.sh"); err == nil {
		t.Fatal("aws s3 rm left the object")
	}
	aws("s3", "rb", "--force", "s3://robot-bundles")
	if len(s.Buckets()) != 0 {
		t.Fatalf("aws s3 rb --force left %v", s.Buckets())
	}
}
