package artifacts

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Multipart uploads, which `aws s3 cp` and the SDKs' upload managers use for files above their threshold (8 MiB
// for the CLI). Parts are kept under uploads/<id>/ until the upload is completed, when they are joined into one
// object file in tmp/ and renamed into place like any other object, or aborted.

var errNoSuchUpload = errors.New("artifacts: no such upload")

const (
	minPartSize = 5 << 20 // every part but the last, as in S3
	maxParts    = 10000
)

// uploadRecord is upload.json: where the object will go and what it will carry.
type uploadRecord struct {
	Bucket          string            `json:"bucket"`
	Key             string            `json:"key"`
	ContentType     string            `json:"contentType,omitempty"`
	ContentEncoding string            `json:"contentEncoding,omitempty"`
	Metadata        map[string]string `json:"metadata,omitempty"`
	Initiated       time.Time         `json:"initiated"`
}

// uploadDir is the directory of an upload; id must have passed validUploadID.
func (s *Store) uploadDir(id string) string { return filepath.Join(s.uploadsDir(), id) }

// validUploadID reports whether id is one this store could have made (32 hex digits), so that an id from a
// request can name a directory.
func validUploadID(id string) bool {
	b, err := hex.DecodeString(id)
	return err == nil && len(b) == 16 && hex.EncodeToString(b) == id
}

func (s *Store) createUpload(bucket, key string, o putOptions) (string, error) {
	if err := s.checkTarget(bucket, key); err != nil {
		return "", fmt.Errorf("create upload %s/%s: %w", bucket, key, err)
	}
	b, err := s.randomBytes(16)
	if err != nil {
		return "", fmt.Errorf("create upload: %w", err)
	}
	id := hex.EncodeToString(b)
	tmp, err := os.MkdirTemp(s.tmpDir(), "upload-*")
	if err != nil {
		return "", fmt.Errorf("create upload: %w", err)
	}
	defer os.RemoveAll(tmp)
	rec := uploadRecord{Bucket: bucket, Key: key, ContentType: o.contentType, ContentEncoding: o.contentEncoding,
		Metadata: o.metadata, Initiated: s.now()}
	if err := writeJSON(filepath.Join(tmp, "upload.json"), rec); err != nil {
		return "", fmt.Errorf("create upload: %w", err)
	}
	if err := os.Rename(tmp, s.uploadDir(id)); err != nil {
		return "", fmt.Errorf("create upload: %w", err)
	}
	return id, nil
}

func (s *Store) loadUpload(bucket, key, id string) (uploadRecord, error) {
	var rec uploadRecord
	if !validUploadID(id) {
		return rec, errNoSuchUpload
	}
	err := readJSON(filepath.Join(s.uploadDir(id), "upload.json"), &rec)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && (rec.Bucket != bucket || rec.Key != key)) {
		return rec, errNoSuchUpload
	}
	return rec, err
}

func partFile(n int) string { return fmt.Sprintf("%05d", n) }

func (s *Store) uploadPart(bucket, key, id string, n int, r io.Reader, o putOptions) (*objectMeta, error) {
	if _, err := s.loadUpload(bucket, key, id); err != nil {
		return nil, err
	}
	if n < 1 || n > maxParts {
		return nil, invalidArgument("Part number must be an integer between 1 and 10000, inclusive")
	}
	t, err := newTempObject(s.tmpDir(), o.checksum, o.sha256)
	if err != nil {
		return nil, err
	}
	defer t.discard()
	if err := t.write(r, s.maxSize); err != nil {
		return nil, err
	}
	d := digests{size: t.size, md5: t.md5.Sum(nil)}
	if t.sha != nil {
		d.sha256 = t.sha.Sum(nil)
	}
	if t.sum != nil {
		d.checksum = base64Sum(t.sum)
	}
	if err := o.verify(d); err != nil {
		return nil, err
	}
	meta := &objectMeta{Key: key, ETag: quotedMD5(d.md5), ChecksumAlgorithm: o.checksum, Checksum: d.checksum,
		LastModified: s.now()}
	if err := t.finish(meta); err != nil {
		return nil, err
	}
	// The rename fails if the upload was completed or aborted meanwhile: its directory is gone.
	if err := os.Rename(t.f.Name(), filepath.Join(s.uploadDir(id), partFile(n))); errors.Is(err, fs.ErrNotExist) {
		return nil, errNoSuchUpload
	} else if err != nil {
		return nil, err
	}
	return meta, nil
}

type completedPart struct {
	PartNumber int
	ETag       string
}

func (s *Store) completeUpload(bucket, key, id string, parts []completedPart) (*objectMeta, error) {
	rec, err := s.loadUpload(bucket, key, id)
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, errMalformedXML
	}
	invalidPart := &apiError{status: http.StatusBadRequest, code: "InvalidPart", message: "One or more of the " +
		"specified parts could not be found. The part may not have been uploaded, or the specified entity tag may " +
		"not match the part's entity tag."}
	files := make([]*os.File, 0, len(parts))
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	sections := make([]io.Reader, 0, len(parts))
	etags := md5.New() // S3's multipart ETag: the MD5 of the parts' MD5s, then "-" and the number of parts
	for i := 1; i < len(parts); i++ {
		if parts[i].PartNumber <= parts[i-1].PartNumber {
			return nil, &apiError{status: http.StatusBadRequest, code: "InvalidPartOrder",
				message: "The list of parts was not in ascending order. Parts must be ordered by part number."}
		}
	}
	var total int64
	for i, p := range parts {
		if p.PartNumber < 1 || p.PartNumber > maxParts {
			return nil, invalidPart
		}
		f, err := os.Open(filepath.Join(s.uploadDir(id), partFile(p.PartNumber)))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, invalidPart
		} else if err != nil {
			return nil, err
		}
		files = append(files, f)
		meta, err := readMeta(f)
		if err != nil {
			return nil, err
		}
		sum, err := hex.DecodeString(strings.Trim(meta.ETag, `"`))
		if err != nil || strings.Trim(p.ETag, `"`) != strings.Trim(meta.ETag, `"`) {
			return nil, invalidPart
		}
		if meta.Size < minPartSize && i < len(parts)-1 {
			return nil, &apiError{status: http.StatusBadRequest, code: "EntityTooSmall",
				message: "Your proposed upload is smaller than the minimum allowed object size."}
		}
		if total += meta.Size; total > s.maxSize {
			return nil, tooLarge(total, s.maxSize)
		}
		etags.Write(sum)
		sections = append(sections, io.NewSectionReader(f, 0, meta.Size))
	}
	t, err := newTempObject(s.tmpDir(), "", false)
	if err != nil {
		return nil, err
	}
	defer t.discard()
	if err := t.write(io.MultiReader(sections...), s.maxSize); err != nil {
		return nil, err
	}
	meta := &objectMeta{
		Key:             key,
		ETag:            `"` + hex.EncodeToString(etags.Sum(nil)) + "-" + strconv.Itoa(len(parts)) + `"`,
		ContentType:     rec.ContentType,
		ContentEncoding: rec.ContentEncoding,
		Metadata:        rec.Metadata,
	}
	if err := s.commit(bucket, t, meta); err != nil {
		return nil, err
	}
	// The object is published: a failure to clear the parts away leaves garbage, not an error for the client.
	s.removeUpload(id)
	return meta, nil
}

func (s *Store) abortUpload(bucket, key, id string) error {
	if _, err := s.loadUpload(bucket, key, id); err != nil {
		return err
	}
	return s.removeUpload(id)
}

// removeUpload moves the upload's directory out of uploads/ in one step, so a part arriving meanwhile fails
// rather than landing in a directory being removed, and then removes it.
func (s *Store) removeUpload(id string) error {
	tmp, err := os.MkdirTemp(s.tmpDir(), "upload-done-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Rename(s.uploadDir(id), filepath.Join(tmp, id)); errors.Is(err, fs.ErrNotExist) {
		return errNoSuchUpload
	} else if err != nil {
		return err
	}
	return nil
}

func (s *Store) serveCreateUpload(q *request) error {
	o, _, err := s.uploadOptions(q.r)
	if err != nil {
		return err
	}
	id, err := s.createUpload(q.bucket, q.key, o)
	if err != nil {
		return err
	}
	writeXML(q.w, http.StatusOK, struct {
		XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
		Xmlns    string   `xml:"xmlns,attr"`
		Bucket   string
		Key      string
		UploadId string
	}{Xmlns: xmlns, Bucket: q.bucket, Key: q.key, UploadId: id})
	return nil
}

func (s *Store) serveUploadPart(q *request) error {
	n, err := strconv.Atoi(q.query.Get("partNumber"))
	if err != nil {
		return invalidArgument("Part number must be an integer between 1 and 10000, inclusive")
	}
	o, body, err := s.uploadOptions(q.r)
	if err != nil {
		return err
	}
	meta, err := s.uploadPart(q.bucket, q.key, q.query.Get("uploadId"), n, body, o)
	if err != nil {
		return err
	}
	q.w.Header()["ETag"] = []string{meta.ETag}
	if meta.Checksum != "" {
		q.w.Header().Set(meta.ChecksumAlgorithm.header(), meta.Checksum)
	}
	q.w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Store) serveCompleteUpload(q *request) error {
	var body struct {
		Parts []completedPart `xml:"Part"`
	}
	if err := xml.NewDecoder(http.MaxBytesReader(q.w, q.r.Body, 1<<20)).Decode(&body); err != nil {
		return errMalformedXML
	}
	meta, err := s.completeUpload(q.bucket, q.key, q.query.Get("uploadId"), body.Parts)
	if err != nil {
		return err
	}
	scheme := "http"
	if q.r.TLS != nil {
		scheme = "https"
	}
	location := (&url.URL{Scheme: scheme, Host: q.r.Host, Path: "/" + q.bucket + "/" + q.key}).String()
	writeXML(q.w, http.StatusOK, struct {
		XMLName  xml.Name `xml:"CompleteMultipartUploadResult"`
		Xmlns    string   `xml:"xmlns,attr"`
		Location string
		Bucket   string
		Key      string
		ETag     string
	}{Xmlns: xmlns, Location: location, Bucket: q.bucket, Key: q.key, ETag: meta.ETag})
	return nil
}
