package opsworks

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"io"
	"sort"
	"testing"

	"github.com/fleetlab/fleetlab/harness/dialect"
)

func TestCheckJob(t *testing.T) {
	if ps := (Driver{}).CheckJob(dialect.JobSpec{Bundle: "hello"}); len(ps) != 0 {
		t.Fatalf("a plain job refused: %v", ps)
	}
	if ps := (Driver{}).CheckJob(dialect.JobSpec{Concurrency: 50}); len(ps) != 1 || ps[0].Path != "job.concurrency" {
		t.Fatalf("problems %v", ps)
	}
}

// TestRelease: a fixture bundle becomes a release with the deploy hooks OpsWorks runs.
func TestRelease(t *testing.T) {
	b, err := Release("prelaunch-exit3")
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			names = append(names, h.Name)
		}
	}
	sort.Strings(names)
	want := []string{"deploy/after_restart.sh", "deploy/before_migrate.sh", "hello_robot/launch.sh", "hello_robot/package.xml"}
	if len(names) != len(want) {
		t.Fatalf("release files %q, want %q", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("release files %q, want %q", names, want)
		}
	}
	if _, err := Release("corrupt"); err != nil {
		t.Fatalf("corrupt: %v", err)
	}
}

func TestLog(t *testing.T) {
	u := "data:text/plain;base64," + base64.StdEncoding.EncodeToString([]byte("a\nb exited 3\n"))
	if Log(u) != "a\nb exited 3\n" || lastLine(u) != "b exited 3" || Log("http://x") != "" {
		t.Error("Log")
	}
}
