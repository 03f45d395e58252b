package artifacts

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"time"
)

// An object file holds the object's bytes followed by a trailer: its metadata as JSON, the JSON's length (4
// bytes, big-endian) and trailerMagic. Bytes first lets an upload stream straight to disk although its ETag is
// known only at the end; one file for bytes and metadata lets one rename publish both at once, so a crash
// leaves either the old object or the new one, never a mix.
const trailerMagic = "FLARTv1\n"

const (
	trailerFixed   = int64(4 + len(trailerMagic))
	maxMetaLength  = 64 << 10
	copyBufferSize = 256 << 10
)

var errCorrupt = errors.New("corrupt object file")

// objectMeta is what the store keeps about an object beside its bytes.
type objectMeta struct {
	Key             string    `json:"key"`
	Size            int64     `json:"size"`
	ETag            string    `json:"etag"`
	LastModified    time.Time `json:"lastModified"`
	ContentType     string    `json:"contentType,omitempty"`
	ContentEncoding string    `json:"contentEncoding,omitempty"`
	// Metadata is the user metadata (x-amz-meta-*), by lower-case name without the prefix.
	Metadata map[string]string `json:"metadata,omitempty"`
	// ChecksumAlgorithm and Checksum are the additional checksum the uploader sent, returned on GET when the
	// client asks (x-amz-checksum-mode: ENABLED).
	ChecksumAlgorithm checksumAlgorithm `json:"checksumAlgorithm,omitempty"`
	Checksum          string            `json:"checksum,omitempty"`
}

func (m *objectMeta) object(bucket string) Object {
	return Object{
		Bucket:       bucket,
		Key:          m.Key,
		ETag:         m.ETag,
		Size:         m.Size,
		LastModified: m.LastModified,
		ContentType:  m.ContentType,
	}
}

// quotedMD5 is an ETag as S3 sends it for an object uploaded in one part: the hex MD5 in double quotes.
func quotedMD5(sum []byte) string { return `"` + hex.EncodeToString(sum) + `"` }

// tempObject is an object file being written in the store's temporary directory.
type tempObject struct {
	f    *os.File
	size int64
	md5  hash.Hash
	sum  hash.Hash // the additional checksum, when one is asked for
	sha  hash.Hash // the SHA-256, when one is asked for
	out  io.Writer
}

func newTempObject(dir string, alg checksumAlgorithm, withSHA256 bool) (*tempObject, error) {
	f, err := os.CreateTemp(dir, "object-*")
	if err != nil {
		return nil, fmt.Errorf("create object file: %w", err)
	}
	t := &tempObject{f: f, md5: md5.New()}
	writers := []io.Writer{f, t.md5}
	if alg != "" {
		t.sum = alg.newHash()
		writers = append(writers, t.sum)
	}
	if withSHA256 {
		t.sha = sha256.New()
		writers = append(writers, t.sha)
	}
	t.out = io.MultiWriter(writers...)
	return t, nil
}

// write appends r's bytes, failing with ErrTooLarge as soon as the object would exceed limit bytes.
func (t *tempObject) write(r io.Reader, limit int64) error {
	n, err := io.CopyBuffer(t.out, io.LimitReader(r, limit-t.size+1), make([]byte, copyBufferSize))
	t.size += n
	if err != nil {
		return err
	}
	if t.size > limit {
		return ErrTooLarge
	}
	return nil
}

// finish writes the trailer (meta, with Size set here) and syncs and closes the file, ready to be renamed
// into place.
func (t *tempObject) finish(meta *objectMeta) error {
	meta.Size = t.size
	js, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	trailer := binary.BigEndian.AppendUint32(js, uint32(len(js)))
	trailer = append(trailer, trailerMagic...)
	if _, err := t.f.Write(trailer); err != nil {
		return fmt.Errorf("write object file: %w", err)
	}
	if err := t.f.Sync(); err != nil {
		return fmt.Errorf("sync object file: %w", err)
	}
	return t.f.Close()
}

// discard removes the file; it is safe after finish too.
func (t *tempObject) discard() {
	t.f.Close()
	os.Remove(t.f.Name())
}

// readMeta reads an object file's trailer.
func readMeta(f *os.File) (objectMeta, error) {
	var meta objectMeta
	st, err := f.Stat()
	if err != nil {
		return meta, err
	}
	size := st.Size()
	var fixed [trailerFixed]byte
	if size < trailerFixed {
		return meta, fmt.Errorf("%s: %w: too short", f.Name(), errCorrupt)
	}
	if _, err := f.ReadAt(fixed[:], size-trailerFixed); err != nil {
		return meta, err
	}
	n := int64(binary.BigEndian.Uint32(fixed[:4]))
	if string(fixed[4:]) != trailerMagic || n > maxMetaLength || n > size-trailerFixed {
		return meta, fmt.Errorf("%s: %w: bad trailer", f.Name(), errCorrupt)
	}
	js := make([]byte, n)
	if _, err := f.ReadAt(js, size-trailerFixed-n); err != nil {
		return meta, err
	}
	if err := json.Unmarshal(js, &meta); err != nil {
		return meta, fmt.Errorf("%s: %w: %v", f.Name(), errCorrupt, err)
	}
	if meta.Size != size-trailerFixed-n {
		return meta, fmt.Errorf("%s: %w: size %d in metadata, %d in file", f.Name(), errCorrupt, meta.Size, size-trailerFixed-n)
	}
	return meta, nil
}

// readMetaFile reads the trailer of the object file at path.
func readMetaFile(path string) (objectMeta, error) {
	f, err := os.Open(path)
	if err != nil {
		return objectMeta{}, err
	}
	defer f.Close()
	return readMeta(f)
}

// objectReader reads the bytes of an open object file, without its trailer.
type objectReader struct {
	*io.SectionReader
	f *os.File
}

func (r objectReader) Close() error { return r.f.Close() }
