package agent

import (
	"archive/tar"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// versionFamilies returns a fresh store of each family.
func versionFamilies(t *testing.T) map[string]Versions {
	t.Helper()
	dv, err := NewDirVersions(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]Versions{"dir": dv, "memory": NewMemoryVersions(0)}
}

func TestVersionsLifecycle(t *testing.T) {
	good := BytesBlob(makeBundle(t,
		tarEntry{name: "pkg/", typ: tar.TypeDir},
		tarEntry{name: "pkg/launch.sh", body: "#!/bin/sh\nexit 0\n", mode: 0o755},
		tarEntry{name: "link", typ: tar.TypeSymlink, link: "pkg/launch.sh"},
		tarEntry{name: "pkg/hard", typ: tar.TypeLink, link: "pkg/launch.sh"},
	))
	for name, vs := range versionFamilies(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if id, err := vs.Active(); err != nil || id != "" {
				t.Fatalf("Active() = %q, %v on an empty store", id, err)
			}
			if _, err := vs.Open("v1"); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("Open(v1) = %v, want ErrNotExist", err)
			}
			v1, err := vs.Extract(ctx, "v1", good)
			if err != nil {
				t.Fatal(err)
			}
			fi, err := v1.Files.Stat("pkg/launch.sh")
			if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o755 {
				t.Fatalf("Stat(pkg/launch.sh) = %v, %v; want a 0755 file", fi, err)
			}
			if b, err := v1.Files.ReadFile("link"); err != nil || string(b) != "#!/bin/sh\nexit 0\n" {
				t.Fatalf("ReadFile(link) = %q, %v; want the script through the symlink", b, err)
			}
			if b, err := v1.Files.ReadFile("pkg/hard"); err != nil || string(b) != "#!/bin/sh\nexit 0\n" {
				t.Fatalf("ReadFile(pkg/hard) = %q, %v; want the script through the hard link", b, err)
			}
			if fi, err := v1.Files.Stat("pkg"); err != nil || !fi.IsDir() {
				t.Fatalf("Stat(pkg) = %v, %v; want a directory", fi, err)
			}
			if err := vs.Activate("v1"); err != nil {
				t.Fatal(err)
			}
			if _, err := vs.Extract(ctx, "v1", good); !errors.Is(err, ErrActiveVersion) {
				t.Fatalf("Extract over the active version = %v, want ErrActiveVersion", err)
			}
			if err := vs.Remove("v1"); !errors.Is(err, ErrActiveVersion) {
				t.Fatalf("Remove(active) = %v, want ErrActiveVersion", err)
			}
			if _, err := vs.Extract(ctx, "v2", good); err != nil {
				t.Fatal(err)
			}
			if err := vs.Activate("v2"); err != nil {
				t.Fatal(err)
			}
			if id, _ := vs.Active(); id != "v2" {
				t.Fatalf("Active() = %q, want v2", id)
			}
			if err := vs.Remove("v1"); err != nil {
				t.Fatal(err)
			}
			if _, err := vs.Open("v1"); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("Open(v1) after Remove = %v, want ErrNotExist", err)
			}
			if err := vs.Activate("v1"); err == nil {
				t.Fatal("Activate of a removed version succeeded")
			}
			if err := vs.Activate(""); err != nil {
				t.Fatal(err)
			}
			if id, _ := vs.Active(); id != "" {
				t.Fatalf("Active() = %q after Activate(\"\")", id)
			}
			if _, err := vs.Extract(ctx, "../x", good); err == nil {
				t.Fatal("Extract accepted the id ../x")
			}
		})
	}
}

func TestVersionsExtractFailureLeavesNothing(t *testing.T) {
	bad := BytesBlob(makeBundle(t,
		tarEntry{name: "pkg/launch.sh", body: "ok"},
		tarEntry{name: "pkg/evil", typ: tar.TypeSymlink, link: "../../outside"},
	))
	for name, vs := range versionFamilies(t) {
		t.Run(name, func(t *testing.T) {
			_, err := vs.Extract(context.Background(), "v1", bad)
			if !errors.Is(err, ErrUnsafePath) {
				t.Fatalf("Extract = %v, want ErrUnsafePath", err)
			}
			if _, err := vs.Open("v1"); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("Open after a failed extract = %v, want ErrNotExist", err)
			}
			if dv, ok := vs.(*DirVersions); ok {
				entries, err := os.ReadDir(filepath.Join(dv.dir, "versions"))
				if err != nil || len(entries) != 0 {
					t.Fatalf("versions dir holds %v (%v) after a failed extract", entries, err)
				}
			}
		})
	}
}

func TestDirVersionsCurrentIsASymlink(t *testing.T) {
	dir := t.TempDir()
	vs, err := NewDirVersions(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vs.Extract(context.Background(), "job-1", BytesBlob(makeBundle(t, tarEntry{name: "f", body: "1"}))); err != nil {
		t.Fatal(err)
	}
	if err := vs.Activate("job-1"); err != nil {
		t.Fatal(err)
	}
	target, err := os.Readlink(filepath.Join(dir, "current"))
	if err != nil || target != filepath.Join("versions", "job-1") {
		t.Fatalf("current -> %q, %v; want versions/job-1", target, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "current", "f")); err != nil || string(b) != "1" {
		t.Fatalf("current/f = %q, %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, ".current.next")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("temporary symlink left behind: %v", err)
	}
}

func TestMemoryVersionsKeepsOnlySmallFiles(t *testing.T) {
	big := make([]byte, keepBytes+1)
	vs := NewMemoryVersions(0)
	v, err := vs.Extract(context.Background(), "v", BytesBlob(makeBundle(t, tarEntry{name: "big", body: string(big)}, tarEntry{name: "small", body: "s"})))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := v.Files.Stat("big"); err != nil || fi.Size() != int64(len(big)) {
		t.Fatalf("Stat(big) = %v, %v", fi, err)
	}
	if _, err := v.Files.ReadFile("big"); err == nil {
		t.Fatal("ReadFile(big) returned contents the store should not keep")
	}
	if b, err := v.Files.ReadFile("small"); err != nil || string(b) != "s" {
		t.Fatalf("ReadFile(small) = %q, %v", b, err)
	}
}
