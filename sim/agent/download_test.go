package agent

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeFetcher serves one object, recording the offsets asked; cut drops the next body after that many
// bytes, ignoreRange answers every request from the first byte.
type fakeFetcher struct {
	mu          sync.Mutex
	body        []byte
	etag        string
	cut         []int64
	ignoreRange bool
	offsets     []int64
}

func etagOf(b []byte) string {
	s := md5.Sum(b)
	return `"` + hex.EncodeToString(s[:]) + `"`
}

func (f *fakeFetcher) Fetch(ctx context.Context, bucket, key string, offset int64) (*Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.offsets = append(f.offsets, offset)
	if f.ignoreRange {
		offset = 0
	}
	if offset >= int64(len(f.body)) {
		return nil, &APIError{Status: 416, Code: "InvalidRange"}
	}
	body := f.body[offset:]
	var r io.Reader = bytes.NewReader(body)
	if len(f.cut) > 0 {
		n := f.cut[0]
		f.cut = f.cut[1:]
		r = io.MultiReader(bytes.NewReader(body[:n]), errReader{Transient(io.ErrUnexpectedEOF)})
	}
	return &Object{Body: io.NopCloser(r), Offset: offset, Size: int64(len(f.body)), ETag: f.etag}, nil
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func downloaderFamilies(t *testing.T) map[string]Downloader {
	fd, err := NewFileDownloader(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return map[string]Downloader{"file": fd, "memory": NewMemoryDownloader()}
}

func readBlob(t *testing.T, b Blob) []byte {
	t.Helper()
	rc, err := b.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

var object = []byte(strings.Repeat("robot bundle bytes ", 1000))

func TestDownloadResumesWithRange(t *testing.T) {
	for name, d := range downloaderFamilies(t) {
		t.Run(name, func(t *testing.T) {
			f := &fakeFetcher{body: object, etag: etagOf(object), cut: []int64{5000, 3000}}
			req := Request{Bucket: "b", Key: "k", ETag: etagOf(object), Name: "job.bundle"}
			var seen []int64
			progress := func(done, total int64) error {
				if total != int64(len(object)) {
					t.Errorf("progress total %d, want %d", total, len(object))
				}
				seen = append(seen, done)
				return nil
			}
			for i := 0; i < 2; i++ {
				if _, err := d.Download(context.Background(), f, req, progress); !IsTransient(err) {
					t.Fatalf("attempt %d: err = %v, want a transient cut", i, err)
				}
			}
			b, err := d.Download(context.Background(), f, req, progress)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(readBlob(t, b), object) {
				t.Fatal("downloaded bytes differ from the object")
			}
			if want := []int64{0, 5000, 8000}; !equalInts(f.offsets, want) {
				t.Fatalf("offsets asked %v, want %v", f.offsets, want)
			}
			if seen[len(seen)-1] != int64(len(object)) {
				t.Errorf("last progress %d, want %d", seen[len(seen)-1], len(object))
			}
			// A finished download is not fetched again.
			if _, err := d.Download(context.Background(), f, req, nil); err != nil || len(f.offsets) != 3 {
				t.Fatalf("second Download: %v, offsets %v", err, f.offsets)
			}
			if err := d.Discard(req.Name); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDownloadETag(t *testing.T) {
	other := etagOf([]byte("another object"))
	corrupted := append([]byte{object[0] ^ 0xff}, object[1:]...)
	tests := []struct {
		name    string
		fetcher *fakeFetcher
		want    string // request ETag
		offsets []int64
	}{
		{"object replaced", &fakeFetcher{body: object, etag: etagOf(object)}, other, []int64{0}},
		{"bytes do not match the ETag", &fakeFetcher{body: corrupted, etag: etagOf(object)}, etagOf(object), []int64{0}},
		{"bytes do not match, any ETag accepted", &fakeFetcher{body: corrupted, etag: etagOf(object)}, "", []int64{0}},
		// A resumed part that fails verification is fetched again from the start once.
		{"resumed part corrupted", &fakeFetcher{body: corrupted, etag: etagOf(object), cut: []int64{100}}, etagOf(object), []int64{0, 100, 0}},
	}
	for _, tt := range tests {
		for name, d := range downloaderFamilies(t) {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				f := &fakeFetcher{body: tt.fetcher.body, etag: tt.fetcher.etag, cut: append([]int64(nil), tt.fetcher.cut...)}
				req := Request{Bucket: "b", Key: "k", ETag: tt.want, Name: "x.bundle"}
				_, err := d.Download(context.Background(), f, req, nil)
				for IsTransient(err) {
					_, err = d.Download(context.Background(), f, req, nil)
				}
				var ee *ETagError
				if !errors.As(err, &ee) {
					t.Fatalf("err = %v, want *ETagError", err)
				}
				if !equalInts(f.offsets, tt.offsets) {
					t.Errorf("offsets asked %v, want %v", f.offsets, tt.offsets)
				}
				// Nothing of the bad object is kept for a later resume.
				f.body, f.cut = object, nil
				if tt.want == other {
					f.etag = other
					f.body = []byte("another object")
				}
				if _, err := d.Download(context.Background(), f, req, nil); err != nil {
					t.Fatalf("download of the good object after a mismatch: %v", err)
				}
				if last := f.offsets[len(f.offsets)-1]; last != 0 {
					t.Errorf("the good object was resumed from %d", last)
				}
			})
		}
	}
}

func TestDownloadServerIgnoresRange(t *testing.T) {
	for name, d := range downloaderFamilies(t) {
		t.Run(name, func(t *testing.T) {
			f := &fakeFetcher{body: object, etag: etagOf(object), cut: []int64{700}}
			req := Request{Bucket: "b", Key: "k", Name: "x.bundle"}
			if _, err := d.Download(context.Background(), f, req, nil); !IsTransient(err) {
				t.Fatalf("err = %v, want the cut", err)
			}
			f.ignoreRange = true
			b, err := d.Download(context.Background(), f, req, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(readBlob(t, b), object) {
				t.Fatal("bytes differ: the restart from 0 was appended to the part")
			}
		})
	}
}

func TestDownloadAbortedByProgress(t *testing.T) {
	for name, d := range downloaderFamilies(t) {
		t.Run(name, func(t *testing.T) {
			stop := errors.New("stop")
			f := &fakeFetcher{body: object, etag: etagOf(object)}
			_, err := d.Download(context.Background(), f, Request{Bucket: "b", Key: "k", Name: "x"}, func(done, total int64) error { return stop })
			if !errors.Is(err, stop) {
				t.Fatalf("err = %v, want the progress error", err)
			}
		})
	}
}

func TestFileDownloaderLayout(t *testing.T) {
	dir := t.TempDir()
	d, err := NewFileDownloader(dir)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeFetcher{body: object, etag: etagOf(object), cut: []int64{1234}}
	req := Request{Bucket: "b", Key: "k", Name: "job-1.bundle"}
	if _, err := d.Download(context.Background(), f, req, nil); !IsTransient(err) {
		t.Fatalf("err = %v, want the cut", err)
	}
	fi, err := os.Stat(filepath.Join(dir, "job-1.bundle.part"))
	if err != nil || fi.Size() != 1234 {
		t.Fatalf("part: %v, %v; want 1234 bytes kept", fi, err)
	}
	// A new downloader over the same directory (an agent restarted) resumes the part.
	d2, err := NewFileDownloader(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := d2.Download(context.Background(), f, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.offsets[1] != 1234 || b.Path() != filepath.Join(dir, "job-1.bundle") {
		t.Fatalf("offsets %v, path %s", f.offsets, b.Path())
	}
	if err := d2.Discard(req.Name); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("Discard left %v", entries)
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
