// Package artifacts is an S3-style object store for robot bundles, component artifacts and scripts: objects by
// bucket and key, kept in files under one directory, served over the path-style subset of the S3 REST API that
// the AWS CLI (`aws s3 cp|ls|mb|rb|rm`) and the AWS SDKs use, and read by devices through a read-only handler.
//
// On disk, under the store's directory:
//
//	buckets/<bucket>/bucket.json                  the bucket's creation time
//	buckets/<bucket>/objects/<hh>/<sha256 of key> one file per object: its bytes, then its metadata
//	uploads/<upload id>/                          multipart uploads in progress: upload.json and one file per part
//	tmp/                                          files being written; emptied by Open
//
// Keys are not paths: a key only ever reaches the file system as its SHA-256. Every write goes to tmp/ and is
// renamed into place, so a crash never leaves part of an object visible.
package artifacts

import (
	"cmp"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fleetlab/fleetlab/sim/clock"
)

// DefaultMaxObjectSize is the largest object Options.MaxObjectSize allows when zero: S3's limit for one PUT.
const DefaultMaxObjectSize = 5 << 30

// Errors of the store's Go API. The HTTP handlers answer them with S3's error codes (in parentheses).
var (
	ErrNoSuchBucket      = errors.New("artifacts: no such bucket")                    // NoSuchBucket, 404
	ErrNoSuchKey         = errors.New("artifacts: no such key")                       // NoSuchKey, 404
	ErrBucketExists      = errors.New("artifacts: bucket already exists")             // BucketAlreadyOwnedByYou, 409
	ErrBucketNotEmpty    = errors.New("artifacts: bucket not empty")                  // BucketNotEmpty, 409
	ErrInvalidBucketName = errors.New("artifacts: invalid bucket name")               // InvalidBucketName, 400
	ErrInvalidKey        = errors.New("artifacts: invalid key")                       // KeyTooLongError or InvalidArgument, 400
	ErrTooLarge          = errors.New("artifacts: object larger than the size limit") // EntityTooLarge, 400
)

// Object describes a stored object.
type Object struct {
	Bucket, Key string
	// ETag is as S3 sends it: for an object uploaded in one part the quoted hex MD5 of its bytes, e.g.
	// "\"9b2cf535f27731c974343645a3985328\""; for a multipart upload the quoted MD5 of the parts' MD5s, a dash
	// and the number of parts.
	ETag         string
	Size         int64
	LastModified time.Time
	ContentType  string
}

// Bucket describes a bucket.
type Bucket struct {
	Name    string
	Created time.Time
}

// Options configure a Store. The zero value is ready to use.
type Options struct {
	// Clock stamps objects and paces throttled downloads; nil means the real clock.
	Clock clock.Clock
	// MaxObjectSize is the largest object accepted, in bytes; zero means DefaultMaxObjectSize.
	MaxObjectSize int64
	// Intercept, when set, is asked about every request the HTTP handlers serve, and the Fault it returns
	// changes how the request is answered (nil: normally). It lets a harness inject cloud faults. It is not
	// consulted by the Go methods of Store.
	Intercept func(op Op, bucket, key string) *Fault
	// Random is the source of request and upload ids; it must be safe for concurrent use. Nil means
	// crypto/rand.
	Random io.Reader
}

// Store is an object store in a directory. It is safe for concurrent use, but only one Store may use a
// directory at a time.
type Store struct {
	dir       string
	clock     clock.Clock
	maxSize   int64
	intercept func(op Op, bucket, key string) *Fault
	random    io.Reader

	mu      sync.RWMutex // guards buckets, and orders renames into buckets/ with the index
	buckets map[string]*bucketIndex
}

// bucketIndex is what the store knows of one bucket, loaded from disk by Open and kept in step with it.
type bucketIndex struct {
	created time.Time
	objects map[string]*objectMeta
	keys    []string // the keys of objects, sorted
}

// Open opens the store in dir, creating the directory if needed, and reads the metadata of every object.
func Open(dir string, opts Options) (*Store, error) {
	s := &Store{
		dir:       dir,
		clock:     clock.Or(opts.Clock),
		maxSize:   opts.MaxObjectSize,
		intercept: opts.Intercept,
		random:    opts.Random,
		buckets:   map[string]*bucketIndex{},
	}
	if s.random == nil {
		s.random = rand.Reader
	}
	if s.maxSize <= 0 {
		s.maxSize = DefaultMaxObjectSize
	}
	if err := os.RemoveAll(s.tmpDir()); err != nil {
		return nil, fmt.Errorf("open artifacts: clear temporary files: %w", err)
	}
	for _, d := range []string{s.tmpDir(), filepath.Join(dir, "buckets"), s.uploadsDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open artifacts: %w", err)
		}
	}
	entries, err := os.ReadDir(filepath.Join(dir, "buckets"))
	if err != nil {
		return nil, fmt.Errorf("open artifacts: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() || !validBucketName(e.Name()) {
			continue
		}
		b, err := loadBucket(s.bucketDir(e.Name()))
		if err != nil {
			return nil, fmt.Errorf("open artifacts: bucket %s: %w", e.Name(), err)
		}
		s.buckets[e.Name()] = b
	}
	return s, nil
}

type bucketRecord struct {
	Created time.Time `json:"created"`
}

func loadBucket(dir string) (*bucketIndex, error) {
	var rec bucketRecord
	if err := readJSON(filepath.Join(dir, "bucket.json"), &rec); err != nil {
		return nil, err
	}
	b := &bucketIndex{created: rec.Created, objects: map[string]*objectMeta{}}
	objects := filepath.Join(dir, "objects")
	err := filepath.WalkDir(objects, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		meta, err := readMetaFile(path)
		if err != nil {
			return err
		}
		if filepath.Join(objects, objectFile(meta.Key)) != path {
			return fmt.Errorf("%s: %w: holds key %q", path, errCorrupt, meta.Key)
		}
		b.objects[meta.Key] = &meta
		b.keys = append(b.keys, meta.Key)
		return nil
	})
	slices.Sort(b.keys)
	return b, err
}

func (s *Store) tmpDir() string                 { return filepath.Join(s.dir, "tmp") }
func (s *Store) uploadsDir() string             { return filepath.Join(s.dir, "uploads") }
func (s *Store) bucketDir(bucket string) string { return filepath.Join(s.dir, "buckets", bucket) }
func (s *Store) objectPath(bucket, key string) string {
	return filepath.Join(s.bucketDir(bucket), "objects", objectFile(key))
}

// now is the store's time at S3's precision: Last-Modified has whole seconds.
func (s *Store) now() time.Time { return s.clock.Now().UTC().Truncate(time.Second) }

// randomBytes returns n bytes from the store's random source.
func (s *Store) randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.random, b); err != nil {
		return nil, fmt.Errorf("random source: %w", err)
	}
	return b, nil
}

// CreateBucket creates an empty bucket. The name must follow S3's rules (ErrInvalidBucketName); a bucket that
// exists already is ErrBucketExists.
func (s *Store) CreateBucket(name string) error {
	if !validBucketName(name) {
		return fmt.Errorf("create bucket %q: %w", name, ErrInvalidBucketName)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.buckets[name] != nil {
		return fmt.Errorf("create bucket %s: %w", name, ErrBucketExists)
	}
	// Build the bucket in tmp/ and rename it into place, so a bucket is there whole or not at all.
	tmp, err := os.MkdirTemp(s.tmpDir(), "bucket-*")
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	defer os.RemoveAll(tmp)
	rec := bucketRecord{Created: s.now()}
	if err := writeJSON(filepath.Join(tmp, "bucket.json"), rec); err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	if err := os.Mkdir(filepath.Join(tmp, "objects"), 0o700); err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	if err := os.Rename(tmp, s.bucketDir(name)); err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	s.buckets[name] = &bucketIndex{created: rec.Created, objects: map[string]*objectMeta{}}
	return nil
}

// DeleteBucket deletes an empty bucket (ErrBucketNotEmpty otherwise).
func (s *Store) DeleteBucket(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[name]
	if b == nil {
		return fmt.Errorf("delete bucket %q: %w", name, ErrNoSuchBucket)
	}
	if len(b.objects) > 0 {
		return fmt.Errorf("delete bucket %s: %w", name, ErrBucketNotEmpty)
	}
	// Move it out of buckets/ in one step, then clear it up.
	tmp, err := os.MkdirTemp(s.tmpDir(), "deleted-*")
	if err != nil {
		return fmt.Errorf("delete bucket %s: %w", name, err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Rename(s.bucketDir(name), filepath.Join(tmp, name)); err != nil {
		return fmt.Errorf("delete bucket %s: %w", name, err)
	}
	delete(s.buckets, name)
	return nil
}

// Buckets lists the buckets by name.
func (s *Store) Buckets() []Bucket {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Bucket, 0, len(s.buckets))
	for name, b := range s.buckets {
		out = append(out, Bucket{Name: name, Created: b.created})
	}
	slices.SortFunc(out, func(a, b Bucket) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Put stores r's bytes as the object at key, replacing any object there, and returns it. Its content type is
// S3's default, binary/octet-stream.
func (s *Store) Put(bucket, key string, r io.Reader) (Object, error) {
	meta, err := s.put(bucket, key, r, putOptions{})
	if err != nil {
		return Object{}, err
	}
	return meta.object(bucket), nil
}

// putOptions are what an upload brings besides its bytes, and the checks to make on them.
type putOptions struct {
	contentType, contentEncoding string
	metadata                     map[string]string
	checksum                     checksumAlgorithm // an additional checksum to compute and keep
	sha256                       bool              // compute the SHA-256 too, for verify
	// verify, when set, checks the digests of the bytes received before the object is published.
	verify func(digests) error
}

// digests are the digests of an upload's bytes.
type digests struct {
	size        int64
	md5, sha256 []byte
	checksum    string // base64, of putOptions.checksum
}

func (s *Store) put(bucket, key string, r io.Reader, o putOptions) (*objectMeta, error) {
	if err := s.checkTarget(bucket, key); err != nil {
		return nil, fmt.Errorf("put %s/%s: %w", bucket, key, err)
	}
	t, err := newTempObject(s.tmpDir(), o.checksum, o.sha256)
	if err != nil {
		return nil, err
	}
	defer t.discard()
	if err := t.write(r, s.maxSize); err != nil {
		return nil, fmt.Errorf("put %s/%s: %w", bucket, key, err)
	}
	d := digests{size: t.size, md5: t.md5.Sum(nil)}
	if t.sha != nil {
		d.sha256 = t.sha.Sum(nil)
	}
	if t.sum != nil {
		d.checksum = base64Sum(t.sum)
	}
	if o.verify != nil {
		if err := o.verify(d); err != nil {
			return nil, fmt.Errorf("put %s/%s: %w", bucket, key, err)
		}
	}
	meta := &objectMeta{
		Key:               key,
		ETag:              quotedMD5(d.md5),
		ContentType:       cmp.Or(o.contentType, "binary/octet-stream"),
		ContentEncoding:   o.contentEncoding,
		Metadata:          o.metadata,
		ChecksumAlgorithm: o.checksum,
		Checksum:          d.checksum,
	}
	if err := s.commit(bucket, t, meta); err != nil {
		return nil, fmt.Errorf("put %s/%s: %w", bucket, key, err)
	}
	return meta, nil
}

// checkTarget checks that an object may be written at bucket and key.
func (s *Store) checkTarget(bucket, key string) error {
	if !validKey(key) {
		return ErrInvalidKey
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.buckets[bucket] == nil {
		return ErrNoSuchBucket
	}
	return nil
}

// commit finishes t with meta (stamping it) and renames it into place as meta.Key in bucket.
func (s *Store) commit(bucket string, t *tempObject, meta *objectMeta) error {
	meta.LastModified = s.now()
	if err := t.finish(meta); err != nil {
		return err
	}
	path := s.objectPath(bucket, meta.Key)
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[bucket]
	if b == nil { // deleted while the bytes were arriving
		return ErrNoSuchBucket
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := os.Rename(t.f.Name(), path); err != nil {
		return err
	}
	if b.objects[meta.Key] == nil {
		i, _ := slices.BinarySearch(b.keys, meta.Key)
		b.keys = slices.Insert(b.keys, i, meta.Key)
	}
	b.objects[meta.Key] = meta
	return nil
}

// Head describes the object at key.
func (s *Store) Head(bucket, key string) (Object, error) {
	meta, err := s.head(bucket, key)
	if err != nil {
		return Object{}, err
	}
	return meta.object(bucket), nil
}

func (s *Store) head(bucket, key string) (*objectMeta, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b := s.buckets[bucket]
	if b == nil {
		return nil, fmt.Errorf("head %s/%s: %w", bucket, key, ErrNoSuchBucket)
	}
	meta := b.objects[key]
	if meta == nil {
		return nil, fmt.Errorf("head %s/%s: %w", bucket, key, ErrNoSuchKey)
	}
	return meta, nil
}

// ETag returns the ETag of the object at key: Head(bucket, key).ETag.
func (s *Store) ETag(bucket, key string) (string, error) {
	o, err := s.Head(bucket, key)
	return o.ETag, err
}

// Open opens the object at key for reading. The reader holds the object as it was when opened, even if it is
// replaced or deleted while being read; the caller closes it.
func (s *Store) Open(bucket, key string) (Object, io.ReadSeekCloser, error) {
	meta, r, err := s.open(bucket, key)
	if err != nil {
		return Object{}, nil, err
	}
	return meta.object(bucket), r, nil
}

func (s *Store) open(bucket, key string) (*objectMeta, objectReader, error) {
	if _, err := s.head(bucket, key); err != nil {
		return nil, objectReader{}, fmt.Errorf("open: %w", err)
	}
	// The file read is the one the metadata comes from, whatever has happened since head.
	f, err := os.Open(s.objectPath(bucket, key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, objectReader{}, fmt.Errorf("open %s/%s: %w", bucket, key, ErrNoSuchKey)
	}
	if err != nil {
		return nil, objectReader{}, fmt.Errorf("open %s/%s: %w", bucket, key, err)
	}
	meta, err := readMeta(f)
	if err == nil && meta.Key != key {
		err = fmt.Errorf("%w: holds key %q", errCorrupt, meta.Key)
	}
	if err != nil {
		f.Close()
		return nil, objectReader{}, fmt.Errorf("open %s/%s: %w", bucket, key, err)
	}
	return &meta, objectReader{SectionReader: io.NewSectionReader(f, 0, meta.Size), f: f}, nil
}

// Delete deletes the object at key. Deleting a missing object is not an error, as in S3.
func (s *Store) Delete(bucket, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[bucket]
	if b == nil {
		return fmt.Errorf("delete %s/%s: %w", bucket, key, ErrNoSuchBucket)
	}
	if b.objects[key] == nil {
		return nil
	}
	if err := os.Remove(s.objectPath(bucket, key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s/%s: %w", bucket, key, err)
	}
	delete(b.objects, key)
	if i, ok := slices.BinarySearch(b.keys, key); ok {
		b.keys = slices.Delete(b.keys, i, i+1)
	}
	return nil
}

// List returns the objects in bucket whose keys start with prefix, in key order.
func (s *Store) List(bucket, prefix string) ([]Object, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b := s.buckets[bucket]
	if b == nil {
		return nil, fmt.Errorf("list %s: %w", bucket, ErrNoSuchBucket)
	}
	var out []Object
	i, _ := slices.BinarySearch(b.keys, prefix)
	for _, k := range b.keys[i:] {
		if !strings.HasPrefix(k, prefix) {
			break
		}
		out = append(out, b.objects[k].object(bucket))
	}
	return out, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// writeJSON writes v to a new file at path and syncs it; callers make it visible by renaming its directory.
func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
