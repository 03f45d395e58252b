package agent

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Blob is an artifact held on the device.
type Blob interface {
	// Open reads the blob from its start.
	Open() (io.ReadCloser, error)
	// Size is its length in bytes.
	Size() int64
	// Path is its file on the device; empty in the in-memory family.
	Path() string
}

// Request names an artifact to download.
type Request struct {
	Bucket, Key string
	// ETag is the ETag the object must have, quoted; empty accepts the service's ETag. Either way the bytes
	// that arrive must match it when it is a single-part ETag (the hex MD5 of the object).
	ETag string
	// Name is the staging name, unique per artifact of an execution (e.g. "<jobId>.bundle").
	Name string
}

// Progress is told how many bytes of the object the device holds and the object's size (-1 unknown) as
// they arrive. An error aborts the download with it.
type Progress func(done, total int64) error

// Downloader fetches artifacts into the device's staging area. A download cut short keeps what arrived and
// the next call for the same name resumes it with a Range request; a finished download is kept until
// Discard, so a restarted agent does not fetch it again.
//
// Errors: *ETagError when the object's ETag differs from the one asked or the bytes do not match it; link
// errors from the Fetcher unchanged (Transient, *APIError); anything else is a local storage error.
type Downloader interface {
	Download(ctx context.Context, src Fetcher, req Request, progress Progress) (Blob, error)
	// Discard removes the staged artifact name, finished or partial.
	Discard(name string) error
}

// ETagError is an artifact whose ETag is not the expected one, or whose bytes do not match its ETag.
type ETagError struct {
	Object    string // bucket/key
	Want, Got string
}

func (e *ETagError) Error() string {
	return fmt.Sprintf("%s: ETag %s, want %s", e.Object, e.Got, e.Want)
}

// md5ETag returns the hex MD5 inside a single-part ETag, "" for a multipart or weak ETag.
func md5ETag(etag string) string {
	s := strings.Trim(etag, `"`)
	if len(s) != 32 {
		return ""
	}
	if _, err := hex.DecodeString(s); err != nil {
		return ""
	}
	return strings.ToLower(s)
}

// part is a staged download in progress.
type part interface {
	// meta returns the ETag and size recorded when the first byte was staged.
	meta() (etag string, size int64)
	len() int64
	// reset empties the part and records the object's ETag and size.
	reset(etag string, size int64) error
	write(p []byte) error
	// hashInto feeds the staged bytes to h.
	hashInto(h hash.Hash) error
	sync() error
	// commit turns the part into the finished blob.
	commit() (Blob, error)
	close() error
}

// partStore holds staged downloads.
type partStore interface {
	finished(name string) (Blob, bool)
	open(name string) (part, error)
	remove(name string) error
}

// stagedDownloader is the download algorithm over a partStore; the two families differ only in the store.
type stagedDownloader struct {
	store partStore
	// chunk is the copy buffer size.
	chunk int
}

// Download implements Downloader.
func (d *stagedDownloader) Download(ctx context.Context, src Fetcher, req Request, progress Progress) (Blob, error) {
	if err := checkID(req.Name); err != nil {
		return nil, fmt.Errorf("download %s/%s: staging name: %w", req.Bucket, req.Key, err)
	}
	if b, ok := d.store.finished(req.Name); ok {
		return b, nil
	}
	p, err := d.store.open(req.Name)
	if err != nil {
		return nil, err
	}
	defer p.close()
	obj := req.Bucket + "/" + req.Key
	// Pass 0 resumes what is staged; when that fails verification, or the object changed under it, pass 1
	// starts again from the first byte. What arrives in pass 1 is final.
	for pass := 0; pass < 2; pass++ {
		have := p.len()
		etag, size := p.meta()
		if have > 0 && req.ETag != "" && etag != req.ETag {
			if err := p.reset("", -1); err != nil {
				return nil, err
			}
			have = 0
		}
		h := md5.New()
		resumed := have > 0
		if resumed {
			if err := p.hashInto(h); err != nil {
				return nil, err
			}
		}
		if !resumed || size < 0 || have < size {
			done, err := d.fetch(ctx, src, req, p, h, have, etag, progress)
			if err != nil {
				return nil, err
			}
			if !done { // the object changed under the staged part: start over
				continue
			}
			etag, size = p.meta()
		}
		if size >= 0 && p.len() != size {
			if err := p.reset("", -1); err != nil {
				return nil, err
			}
			if pass == 0 && resumed {
				continue
			}
			return nil, Transient(fmt.Errorf("download %s: %d bytes arrived, want %d", obj, p.len(), size))
		}
		if err := p.sync(); err != nil {
			return nil, err
		}
		if want := md5ETag(etag); want != "" {
			if got := hex.EncodeToString(h.Sum(nil)); got != want {
				if err := p.reset("", -1); err != nil {
					return nil, err
				}
				if pass == 0 && resumed {
					continue
				}
				return nil, &ETagError{Object: obj, Want: etag, Got: `"` + got + `"`}
			}
		}
		return p.commit()
	}
	return nil, Transient(fmt.Errorf("download %s: object changed while downloading", obj))
}

// fetch appends the object's bytes from have on to p and h. It reports done=false when the service's
// answer cannot continue the staged part (the object changed), after resetting p.
func (d *stagedDownloader) fetch(ctx context.Context, src Fetcher, req Request, p part, h hash.Hash, have int64, stagedETag string, progress Progress) (bool, error) {
	obj := req.Bucket + "/" + req.Key
	o, err := src.Fetch(ctx, req.Bucket, req.Key, have)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == 416 && have > 0 {
		return false, p.reset("", -1)
	}
	if err != nil {
		return false, err
	}
	defer o.Body.Close()
	if req.ETag != "" && o.ETag != req.ETag {
		if err := p.reset("", -1); err != nil {
			return false, err
		}
		return false, &ETagError{Object: obj, Want: req.ETag, Got: o.ETag}
	}
	if have > 0 && (o.Offset != have || o.ETag != stagedETag) {
		if o.Offset != 0 || o.ETag != stagedETag {
			return false, p.reset("", -1)
		}
		// The service ignored the range and sent the whole object: take it from the start.
		h.Reset()
		have = 0
	}
	if have == 0 {
		if err := p.reset(o.ETag, o.Size); err != nil {
			return false, err
		}
	}
	chunk := d.chunk
	if chunk <= 0 {
		chunk = 32 << 10
	}
	if left := o.Size - have; o.Size >= 0 && left < int64(chunk) {
		chunk = int(left) + 1 // room to see EOF in the same read; small artifacts need no big buffer
	}
	buf := make([]byte, chunk)
	for {
		n, rerr := o.Body.Read(buf)
		if n > 0 {
			if err := p.write(buf[:n]); err != nil {
				return false, err
			}
			h.Write(buf[:n])
			if progress != nil {
				if err := progress(p.len(), o.Size); err != nil {
					p.sync()
					return false, err
				}
			}
		}
		if rerr == io.EOF {
			return true, nil
		}
		if rerr != nil {
			// Keep what arrived for the next attempt.
			if err := p.sync(); err != nil {
				return false, err
			}
			return false, fmt.Errorf("download %s: %w", obj, rerr)
		}
	}
}

// Discard implements Downloader.
func (d *stagedDownloader) Discard(name string) error { return d.store.remove(name) }

// NewFileDownloader returns the OS family's downloader, staging under dir:
//
//	<name>.part   bytes arrived so far (synced before a failed attempt returns)
//	<name>.meta   the object's ETag and size, recorded at the first byte
//	<name>        the finished, verified artifact (mode 0700: a download condition file is run as is)
func NewFileDownloader(dir string) (Downloader, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create downloads dir: %w", err)
	}
	return &stagedDownloader{store: fileParts{dir: dir}}, nil
}

// NewMemoryDownloader returns the in-memory family's downloader: staged bytes live in memory, with the same
// resume and ETag rules as on disk.
func NewMemoryDownloader() Downloader {
	return &stagedDownloader{store: &memParts{parts: map[string]*memPart{}}}
}

type fileParts struct{ dir string }

type partMeta struct {
	ETag string `json:"etag"`
	Size int64  `json:"size"`
}

func (s fileParts) finished(name string) (Blob, bool) {
	p := filepath.Join(s.dir, name)
	fi, err := os.Stat(p)
	if err != nil || !fi.Mode().IsRegular() {
		return nil, false
	}
	return fileBlob{path: p, size: fi.Size()}, true
}

func (s fileParts) open(name string) (part, error) {
	base := filepath.Join(s.dir, name)
	f, err := os.OpenFile(base+".part", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open staging: %w", err)
	}
	fp := &filePart{f: f, base: base, m: partMeta{Size: -1}}
	if b, err := os.ReadFile(base + ".meta"); err == nil {
		if json.Unmarshal(b, &fp.m) != nil {
			fp.m = partMeta{Size: -1}
		}
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat staging: %w", err)
	}
	fp.n = fi.Size()
	if fp.m.ETag == "" && fp.n > 0 { // bytes without a record of what they are: useless
		if err := fp.reset("", -1); err != nil {
			f.Close()
			return nil, err
		}
	}
	if _, err := f.Seek(fp.n, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("seek staging: %w", err)
	}
	return fp, nil
}

func (s fileParts) remove(name string) error {
	if checkID(name) != nil {
		return nil
	}
	base := filepath.Join(s.dir, name)
	var errs []error
	for _, p := range []string{base, base + ".part", base + ".meta"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

type filePart struct {
	f    *os.File
	base string
	m    partMeta
	n    int64
}

func (p *filePart) meta() (string, int64) { return p.m.ETag, p.m.Size }
func (p *filePart) len() int64            { return p.n }

func (p *filePart) reset(etag string, size int64) error {
	if err := p.f.Truncate(0); err != nil {
		return fmt.Errorf("truncate staging: %w", err)
	}
	if _, err := p.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("seek staging: %w", err)
	}
	p.n, p.m = 0, partMeta{ETag: etag, Size: size}
	if etag == "" {
		if err := os.Remove(p.base + ".meta"); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("reset staging: %w", err)
		}
		return nil
	}
	b, _ := json.Marshal(p.m)
	return writeFileAtomic(p.base+".meta", b, 0o600)
}

func (p *filePart) write(b []byte) error {
	n, err := p.f.Write(b)
	p.n += int64(n)
	if err != nil {
		return fmt.Errorf("write staging: %w", err)
	}
	return nil
}

func (p *filePart) hashInto(h hash.Hash) error {
	if _, err := io.Copy(h, io.NewSectionReader(p.f, 0, p.n)); err != nil {
		return fmt.Errorf("read staging: %w", err)
	}
	return nil
}

func (p *filePart) sync() error {
	if err := p.f.Sync(); err != nil {
		return fmt.Errorf("sync staging: %w", err)
	}
	return nil
}

func (p *filePart) commit() (Blob, error) {
	if err := p.f.Chmod(0o700); err != nil {
		return nil, fmt.Errorf("chmod staging: %w", err)
	}
	if err := os.Rename(p.base+".part", p.base); err != nil {
		return nil, fmt.Errorf("commit download: %w", err)
	}
	if err := os.Remove(p.base + ".meta"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("commit download: %w", err)
	}
	if err := syncDir(filepath.Dir(p.base)); err != nil {
		return nil, err
	}
	return fileBlob{path: p.base, size: p.n}, nil
}

func (p *filePart) close() error { return p.f.Close() }

type fileBlob struct {
	path string
	size int64
}

func (b fileBlob) Open() (io.ReadCloser, error) { return os.Open(b.path) }
func (b fileBlob) Size() int64                  { return b.size }
func (b fileBlob) Path() string                 { return b.path }

type memParts struct {
	mu    sync.Mutex
	parts map[string]*memPart
}

type memPart struct {
	mu   sync.Mutex
	etag string
	size int64
	buf  []byte
	done bool
}

func (s *memParts) finished(name string) (Blob, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.parts[name]
	if !ok || !p.done {
		return nil, false
	}
	return BytesBlob(p.buf), true
}

func (s *memParts) open(name string) (part, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.parts[name]
	if !ok {
		p = &memPart{size: -1}
		s.parts[name] = p
	}
	return p, nil
}

func (s *memParts) remove(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.parts, name)
	return nil
}

func (p *memPart) meta() (string, int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.etag, p.size
}

func (p *memPart) len() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return int64(len(p.buf))
}

func (p *memPart) reset(etag string, size int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.etag, p.size, p.buf = etag, size, nil
	return nil
}

func (p *memPart) write(b []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	return nil
}

func (p *memPart) hashInto(h hash.Hash) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	h.Write(p.buf)
	return nil
}

func (p *memPart) sync() error { return nil }

func (p *memPart) commit() (Blob, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = true
	return BytesBlob(p.buf), nil
}

func (p *memPart) close() error { return nil }

// BytesBlob is an artifact in memory: a downloaded part, or a bundle a kind builds (Bundle.Blob).
type BytesBlob []byte

func (b BytesBlob) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
func (b BytesBlob) Size() int64                  { return int64(len(b)) }
func (b BytesBlob) Path() string                 { return "" }
