package artifacts

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/fleetlab/fleetlab/sim/clock/clocktest"
)

func TestPutHeadOpen(t *testing.T) {
	clk := clocktest.New(time.Time{})
	clk.Advance(1500 * time.Millisecond)
	s := openStore(t, Options{Clock: clk})
	if err := s.CreateBucket("bundles"); err != nil {
		t.Fatal(err)
	}
	body := randomBytes(11, 70_000)
	o, err := s.Put("bundles", "robot/app.tar", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	want := Object{Bucket: "bundles", Key: "robot/app.tar", ETag: etagOf(body), Size: int64(len(body)),
		LastModified: clocktest.Epoch.Add(time.Second), ContentType: "binary/octet-stream"}
	if o != want {
		t.Fatalf("Put returned %+v, want %+v", o, want)
	}
	if h, err := s.Head("bundles", "robot/app.tar"); err != nil || h != want {
		t.Fatalf("Head: %+v, %v", h, err)
	}
	if e, err := s.ETag("bundles", "robot/app.tar"); err != nil || e != etagOf(body) {
		t.Fatalf("ETag: %s, %v", e, err)
	}
	// The ETag is S3's: the MD5 in quotes.
	if want := fmt.Sprintf("%q", fmt.Sprintf("%x", md5.Sum(body))); o.ETag != want {
		t.Fatalf("ETag %s, want %s", o.ETag, want)
	}

	oo, r, err := s.Open("bundles", "robot/app.tar")
	if err != nil || oo != want {
		t.Fatalf("Open: %+v, %v", oo, err)
	}
	defer r.Close()
	if _, err := r.Seek(60_000, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	tail, _ := io.ReadAll(r)
	if !bytes.Equal(tail, body[60_000:]) {
		t.Fatalf("read after Seek: %d bytes", len(tail))
	}

	if _, err := s.Put("nobucket", "k", strings.NewReader("x")); !errors.Is(err, ErrNoSuchBucket) {
		t.Fatalf("Put in missing bucket: %v", err)
	}
	if _, err := s.Head("bundles", "missing"); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("Head missing: %v", err)
	}
	if _, _, err := s.Open("bundles", "missing"); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("Open missing: %v", err)
	}
	if _, err := s.Head("nobucket", "k"); !errors.Is(err, ErrNoSuchBucket) {
		t.Fatalf("Head in missing bucket: %v", err)
	}
	if _, err := s.Put("bundles", "", strings.NewReader("x")); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("Put with empty key: %v", err)
	}
}

func TestBuckets(t *testing.T) {
	s := openStore(t, Options{})
	for _, name := range []string{"zeta", "alpha"} {
		if err := s.CreateBucket(name); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateBucket("alpha"); !errors.Is(err, ErrBucketExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := s.CreateBucket("Alpha"); !errors.Is(err, ErrInvalidBucketName) {
		t.Fatalf("invalid name: %v", err)
	}
	if b := s.Buckets(); len(b) != 2 || b[0].Name != "alpha" || b[1].Name != "zeta" {
		t.Fatalf("Buckets: %+v", b)
	}
	if _, err := s.Put("alpha", "k", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteBucket("alpha"); !errors.Is(err, ErrBucketNotEmpty) {
		t.Fatalf("delete non-empty: %v", err)
	}
	if err := s.Delete("alpha", "k"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("alpha", "k"); err != nil {
		t.Fatalf("deleting a missing key: %v", err)
	}
	if err := s.DeleteBucket("alpha"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteBucket("alpha"); !errors.Is(err, ErrNoSuchBucket) {
		t.Fatalf("delete twice: %v", err)
	}
	if err := s.CreateBucket("alpha"); err != nil {
		t.Fatalf("create again after delete: %v", err)
	}
}

// TestFailedPutLeavesNothing breaks an upload part way: the object it would have replaced is unchanged and no
// file of it remains.
func TestFailedPutLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateBucket("bundles"); err != nil {
		t.Fatal(err)
	}
	old, err := s.Put("bundles", "app", strings.NewReader("version 1"))
	if err != nil {
		t.Fatal(err)
	}
	broken := io.MultiReader(bytes.NewReader(randomBytes(1, 500_000)), iotest.ErrReader(errors.New("connection reset")))
	if _, err := s.Put("bundles", "app", broken); err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("Put of a broken body: %v", err)
	}
	if o, err := s.Head("bundles", "app"); err != nil || o.ETag != old.ETag {
		t.Fatalf("object after failed overwrite: %+v, %v", o, err)
	}
	if tmp, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	clk := clocktest.New(time.Time{})
	s, err := Open(dir, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateBucket("bundles"); err != nil {
		t.Fatal(err)
	}
	var want []Object
	for i := range 5 {
		clk.Advance(time.Minute)
		o, err := s.Put("bundles", fmt.Sprintf("robot/%d", i), strings.NewReader(strings.Repeat("x", i)))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, o)
	}
	// What a crash in the middle of a Put leaves: a partial file in tmp/.
	if err := os.WriteFile(filepath.Join(dir, "tmp", "object-123"), []byte("half an obj"), 0o600); err != nil {
		t.Fatal(err)
	}

	s2, err := Open(dir, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s2.List("bundles", "robot/")
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after reopen:\n%v\nwant\n%v (%v)", got, want, err)
	}
	if b := s2.Buckets(); len(b) != 1 || !b[0].Created.Equal(clocktest.Epoch) {
		t.Fatalf("buckets after reopen: %+v", b)
	}
	if tmp, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(tmp) != 0 {
		t.Fatalf("Open left temporary files: %v", tmp)
	}

	// A damaged object file is reported, not skipped.
	path := s2.objectPath("bundles", "robot/3")
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); !errors.Is(err, errCorrupt) {
		t.Fatalf("Open over a damaged object: %v", err)
	}
}

// TestReaderKeepsItsVersion opens an object and then replaces and deletes it: the open reader still reads the
// version it opened, whole.
func TestReaderKeepsItsVersion(t *testing.T) {
	s := openStore(t, Options{})
	if err := s.CreateBucket("bundles"); err != nil {
		t.Fatal(err)
	}
	v1 := randomBytes(1, 100_000)
	if _, err := s.Put("bundles", "app", bytes.NewReader(v1)); err != nil {
		t.Fatal(err)
	}
	o, r, err := s.Open("bundles", "app")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := s.Put("bundles", "app", strings.NewReader("version 2")); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("bundles", "app"); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, v1) || o.ETag != etagOf(v1) {
		t.Fatalf("reader after overwrite and delete: %d bytes, %v", len(got), err)
	}
}

// TestConcurrentPutGet has writers replace one key and write keys of their own while readers read the shared
// key: every read must be one whole version, its bytes matching the ETag it came with.
func TestConcurrentPutGet(t *testing.T) {
	s := openStore(t, Options{})
	if err := s.CreateBucket("bundles"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put("bundles", "shared", strings.NewReader("initial")); err != nil {
		t.Fatal(err)
	}
	const writers, readers, rounds = 4, 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers+readers)
	for w := range writers {
		wg.Go(func() {
			for i := range rounds {
				body := randomBytes(uint64(w*rounds+i), 1000+w*5000+i)
				if _, err := s.Put("bundles", "shared", bytes.NewReader(body)); err != nil {
					errs <- err
					return
				}
				if _, err := s.Put("bundles", fmt.Sprintf("own/%d/%d", w, i), bytes.NewReader(body)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for range readers {
		wg.Go(func() {
			for range rounds * 2 {
				o, r, err := s.Open("bundles", "shared")
				if err != nil {
					errs <- err
					return
				}
				got, err := io.ReadAll(r)
				r.Close()
				if err != nil || etagOf(got) != o.ETag || int64(len(got)) != o.Size {
					errs <- fmt.Errorf("torn read: %d bytes, size %d, etag %s vs %s (%v)", len(got), o.Size, etagOf(got), o.ETag, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if objs, _ := s.List("bundles", "own/"); len(objs) != writers*rounds {
		t.Fatalf("%d own objects, want %d", len(objs), writers*rounds)
	}
}
