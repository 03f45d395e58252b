package artifacts

import (
	"bytes"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestValidBucketName(t *testing.T) {
	for name, want := range map[string]bool{
		"bundles":               true,
		"robot-bundles.v2":      true,
		"a1b":                   true,
		strings.Repeat("a", 63): true,
		"ab":                    false, // too short
		strings.Repeat("a", 64): false,
		"Bundles":               false, // upper case
		"robot_bundles":         false,
		"-bundles":              false,
		"bundles-":              false,
		".bundles":              false,
		"bun..dles":             false,
		"192.168.5.4":           false, // an IP address
		"xn--bundles":           false, // reserved prefixes and suffixes
		"sthree-bundles":        false,
		"amzn-s3-demo-x":        false,
		"bundles-s3alias":       false,
		"bundles--ol-s3":        false,
		"bundles.mrap":          false,
		"bundles--x-s3":         false,
		"bundles--table-s3":     false,
		"..":                    false,
		"../etc":                false,
		"a/b/c":                 false,
		"bun dles":              false,
	} {
		if got := validBucketName(name); got != want {
			t.Errorf("validBucketName(%q) = %v, want %v", name, got, want)
		}
	}
}

var objectFilePattern = regexp.MustCompile(`^[0-9a-f]{2}/[0-9a-f]{64}$`)

// FuzzObjectFile checks that any key at all maps to a file name made of hex digits only, two levels deep and
// inside the bucket's directory, and that the mapping depends on the key alone.
func FuzzObjectFile(f *testing.F) {
	for _, k := range []string{"../../etc/passwd", "/abs", "a/./b", "a//b", "..", ".", "C:\\x", "ü/日本", "\x00", "%2e%2e/"} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		p := objectFile(key)
		if !objectFilePattern.MatchString(filepath.ToSlash(p)) {
			t.Fatalf("objectFile(%q) = %q", key, p)
		}
		if !filepath.IsLocal(p) || filepath.Clean(p) != p {
			t.Fatalf("objectFile(%q) = %q is not a clean local path", key, p)
		}
		base := filepath.Join("data", "buckets", "b", "objects")
		if rel, err := filepath.Rel(base, filepath.Join(base, p)); err != nil || rel != p {
			t.Fatalf("objectFile(%q) = %q leaves the bucket: %q", key, p, rel)
		}
		if objectFile(key) != p {
			t.Fatal("mapping is not stable")
		}
		if key != "" && objectFile(key+"x") == p {
			t.Fatalf("keys %q and %q collide", key, key+"x")
		}
	})
}

// TestHostileKeys sends keys that would be dangerous as paths, over raw HTTP so nothing on the client side
// cleans them, and checks each is stored exactly, read back exactly, and that every file the store has made is
// inside its directory and named by a hash.
func TestHostileKeys(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateBucket("bundles"); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, s.Handler(), false)
	for _, tc := range []struct{ escaped, key string }{
		{"..%2F..%2F..%2Fescape", "../../../escape"},
		{"../../outside", "../../outside"},
		{"%2Fleading", "/leading"},
		{"/double-leading", "/double-leading"},
		{"a/./b/../c", "a/./b/../c"},
		{"a//b", "a//b"},
		{"..", ".."},
		{"sp%20ace+plus%2B%25pct", "sp ace+plus+%pct"},
		{"%C3%BC/%E6%97%A5%E6%9C%AC", "ü/日本"},
		{"q%3Fx%3D1%23frag", "q?x=1#frag"},
		{"back%5Cslash%5C..%5C", `back\slash\..\`},
		{"nul%00byte", "nul\x00byte"},
		{"trailing/", "trailing/"},
	} {
		body := []byte("object " + tc.key)
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/bundles/x", bytes.NewReader(body))
		req.URL.Opaque = "//" + req.URL.Host + "/bundles/" + tc.escaped // sent exactly as written
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("PUT %q: %d", tc.escaped, resp.StatusCode)
		}
		_, r, err := s.Open("bundles", tc.key)
		if err != nil {
			t.Fatalf("key %q sent as %q: %v", tc.key, tc.escaped, err)
		}
		got, _ := io.ReadAll(r)
		r.Close()
		if !bytes.Equal(got, body) {
			t.Fatalf("key %q: %q", tc.key, got)
		}
	}
	if objs, _ := s.List("bundles", ""); len(objs) != 13 {
		t.Fatalf("%d objects stored, want 13: %v", len(objs), objs)
	}
	// Nothing outside the store's directory, and no object file named by anything but a hash.
	entries, _ := os.ReadDir(filepath.Dir(dir))
	if len(entries) != 1 {
		t.Fatalf("files beside the store's directory: %v", entries)
	}
	objects := filepath.Join(dir, "buckets", "bundles", "objects")
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(objects, path)
		if path != filepath.Join(dir, "buckets", "bundles", "bucket.json") && !objectFilePattern.MatchString(filepath.ToSlash(rel)) {
			t.Errorf("unexpected file %s", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Reopened, the store finds every key again from the files' metadata.
	s2, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if objs, _ := s2.List("bundles", ""); len(objs) != 13 {
		t.Fatalf("after reopen, %d objects", len(objs))
	}
}

func TestInvalidKeysRefused(t *testing.T) {
	s := openStore(t, Options{})
	if err := s.CreateBucket("bundles"); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, s.Handler(), false)
	for _, tc := range []struct{ escaped, code string }{
		{strings.Repeat("k", MaxKeyLength+1), "KeyTooLongError"},
		{"bad%FFutf8", "InvalidArgument"},
	} {
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/bundles/"+tc.escaped, strings.NewReader("x"))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(b), "<Code>"+tc.code+"</Code>") {
			t.Fatalf("%.20s: %d %s", tc.escaped, resp.StatusCode, b)
		}
	}
	if _, err := s.Put("bundles", strings.Repeat("k", MaxKeyLength), strings.NewReader("x")); err != nil {
		t.Fatalf("longest key: %v", err)
	}
}
