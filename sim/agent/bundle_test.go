package agent

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"path"
	"strings"
	"testing"
)

// tarEntry describes one member of a test archive.
type tarEntry struct {
	name, link string
	typ        byte
	body       string
	mode       int64
}

func makeBundle(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: typ, Mode: mode}
		if typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadBundleRefuses(t *testing.T) {
	tests := []struct {
		name    string
		bundle  []byte
		wantErr string
		unsafe  bool
	}{
		{"not gzip", []byte("plain text"), "not a gzip stream", false},
		{"absolute path", makeBundle(t, tarEntry{name: "/etc/passwd"}), "", true},
		{"dot-dot path", makeBundle(t, tarEntry{name: "pkg/../../escape"}), "", true},
		{"backslash", makeBundle(t, tarEntry{name: `..\escape`}), "", true},
		{"absolute symlink", makeBundle(t, tarEntry{name: "l", typ: tar.TypeSymlink, link: "/etc"}), "", true},
		{"symlink out", makeBundle(t, tarEntry{name: "pkg/l", typ: tar.TypeSymlink, link: "../../etc"}), "", true},
		{"symlink out through another symlink", makeBundle(t,
			tarEntry{name: "a/", typ: tar.TypeDir},
			tarEntry{name: "a/b", typ: tar.TypeSymlink, link: ".."},
			tarEntry{name: "x", typ: tar.TypeSymlink, link: "a/b/.."}), "", true},
		{"symlink loop", makeBundle(t,
			tarEntry{name: "a", typ: tar.TypeSymlink, link: "b"},
			tarEntry{name: "b", typ: tar.TypeSymlink, link: "a"}), "too many levels", false},
		{"member under a symlink", makeBundle(t,
			tarEntry{name: "d", typ: tar.TypeSymlink, link: "e"},
			tarEntry{name: "d/f", body: "x"}), "", true},
		{"hard link to nothing", makeBundle(t, tarEntry{name: "h", typ: tar.TypeLink, link: "missing"}), "not an earlier regular file", false},
		{"hard link out", makeBundle(t, tarEntry{name: "h", typ: tar.TypeLink, link: "../x"}), "", true},
		{"device", makeBundle(t, tarEntry{name: "dev", typ: tar.TypeChar}), "not allowed", false},
		{"duplicate", makeBundle(t, tarEntry{name: "f", body: "1"}, tarEntry{name: "f", body: "2"}), "appears twice", false},
		{"file under a file", makeBundle(t, tarEntry{name: "f", body: "1"}, tarEntry{name: "f/g", body: "2"}), "non-directory", false},
		{"truncated tar", makeBundle(t, tarEntry{name: "f", body: "1"})[:30], "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := readBundle(bytes.NewReader(tt.bundle), 0, func(member, io.Reader) error { return nil })
			if err == nil {
				t.Fatal("readBundle accepted the bundle")
			}
			if tt.unsafe && !errors.Is(err, ErrUnsafePath) {
				t.Errorf("err = %v, want ErrUnsafePath", err)
			}
			if tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestReadBundleAccepts(t *testing.T) {
	b := makeBundle(t,
		tarEntry{name: "./", typ: tar.TypeDir},
		tarEntry{name: "./pkg/", typ: tar.TypeDir, mode: 0o555},
		tarEntry{name: "./pkg/run.sh", body: "#!/bin/sh\nexit 0\n", mode: 0o4755},
		tarEntry{name: "pkg/lib", typ: tar.TypeSymlink, link: "../shared"},
		tarEntry{name: "shared/", typ: tar.TypeDir},
		tarEntry{name: "shared/data", body: "d"},
		tarEntry{name: "pkg/data", typ: tar.TypeLink, link: "shared/data"},
	)
	var got []member
	err := readBundle(bytes.NewReader(b), 0, func(m member, body io.Reader) error {
		data, err := io.ReadAll(body)
		if err != nil {
			return err
		}
		if int64(len(data)) != m.size {
			t.Errorf("%s: %d bytes, want %d", m.name, len(data), m.size)
		}
		got = append(got, m)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"pkg", "pkg/run.sh", "pkg/lib", "shared", "shared/data", "pkg/data"}
	if len(got) != len(want) {
		t.Fatalf("got %d members, want %d", len(got), len(want))
	}
	for i, m := range got {
		if m.name != want[i] {
			t.Errorf("member %d = %s, want %s", i, m.name, want[i])
		}
	}
	if got[1].mode != 0o755 {
		t.Errorf("run.sh mode %v, want setuid dropped (0755)", got[1].mode)
	}
}

func TestReadBundleSizeLimit(t *testing.T) {
	b := makeBundle(t, tarEntry{name: "a", body: strings.Repeat("x", 600)}, tarEntry{name: "b", body: strings.Repeat("x", 600)})
	err := readBundle(bytes.NewReader(b), 1000, func(member, io.Reader) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "larger than 1000") {
		t.Fatalf("err = %v, want the size limit", err)
	}
}

func TestResolveLink(t *testing.T) {
	links := map[string]string{"a/up": "..", "a/self": ".", "b": "a/self", "deep/x": "../a/up/a"}
	tests := []struct {
		name, want string
		unsafe     bool
	}{
		{"a/up", "", false},
		{"b", "a", false},
		{"a/up/b/c", "a/c", false},
		{"deep/x", "a", false},
		{"a/up/..", "", true},
		{"a/up/a/up/../..", "", true},
	}
	for _, tt := range tests {
		got, err := resolveLink(tt.name, links)
		if tt.unsafe {
			if !errors.Is(err, ErrUnsafePath) {
				t.Errorf("resolveLink(%q) = %q, %v; want ErrUnsafePath", tt.name, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("resolveLink(%q) = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

// FuzzReadBundle checks that no archive makes readBundle hand out a member outside the bundle.
func FuzzReadBundle(f *testing.F) {
	f.Add(makeBundle(f, tarEntry{name: "pkg/run.sh", body: "#!/bin/sh\nexit 0\n"}))
	f.Add(makeBundle(f, tarEntry{name: "a/b", typ: tar.TypeSymlink, link: ".."}, tarEntry{name: "x", typ: tar.TypeSymlink, link: "a/b/.."}))
	f.Add([]byte("not gzip"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = readBundle(bytes.NewReader(b), 1<<20, func(m member, body io.Reader) error {
			if !fs.ValidPath(m.name) || m.name == "." {
				t.Fatalf("member %q escapes", m.name)
			}
			if m.typ == tar.TypeSymlink && (path.IsAbs(m.link) || !fs.ValidPath(path.Join(path.Dir(m.name), m.link))) {
				t.Fatalf("symlink %q -> %q escapes", m.name, m.link)
			}
			return nil
		})
	})
}
