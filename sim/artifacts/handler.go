package artifacts

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fleetlab/fleetlab/sim/awsapi"
)

// Handler returns the store's S3 REST API, path-style (http://host/bucket/key), to be served on a listener of
// its own. Requests are not authenticated: signatures are accepted and not checked.
//
// Served: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation, ListObjects (V1 and V2, with
// prefix, delimiter, max-keys, markers and encoding-type=url), PutObject (plain or aws-chunked, with
// Content-MD5 and additional checksums), CopyObject, GetObject (Range and conditional requests), HeadObject,
// DeleteObject, and multipart uploads (create, upload part, complete, abort). Other S3 requests are answered
// 501 NotImplemented.
func (s *Store) Handler() http.Handler { return &handler{s: s} }

// DeviceHandler returns the read-only view devices download from: GET and HEAD of /{bucket}/{key}, answered as
// S3 answers GetObject and HeadObject (ETag, Range, If-Match and If-None-Match). The device API mounts it under
// /artifacts/ with http.StripPrefix.
func (s *Store) DeviceHandler() http.Handler { return &handler{s: s, device: true} }

type handler struct {
	s      *Store
	device bool
}

// request is one request being served.
type request struct {
	s           *Store
	w           http.ResponseWriter
	r           *http.Request
	id          string
	op          Op
	bucket, key string
	query       url.Values
	fault       *Fault
}

const xmlns = "http://s3.amazonaws.com/doc/2006-03-01/"

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Request ids as S3's: sixteen upper-case hex digits, and a longer base64 host id.
	b, err := h.s.randomBytes(8 + 48)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	q := &request{s: h.s, w: w, r: r, id: strings.ToUpper(hex.EncodeToString(b[:8]))}
	w.Header().Set("X-Amz-Request-Id", q.id)
	w.Header().Set("X-Amz-Id-2", base64.StdEncoding.EncodeToString(b[8:]))
	if err := h.serve(q); err != nil {
		q.writeError(err)
	}
}

func (h *handler) serve(q *request) error {
	var err error
	if q.bucket, q.key, err = splitPath(q.r.URL.EscapedPath()); err != nil {
		return err
	}
	q.query = q.r.URL.Query()
	if q.op, err = h.route(q); err != nil {
		return err
	}
	if h.s.intercept != nil {
		q.fault = h.s.intercept(q.op, q.bucket, q.key)
	}
	if f := q.fault; f != nil {
		switch {
		case f.Status != 0:
			return f.err()
		case f.Missing && q.key != "":
			return ErrNoSuchKey
		case f.Missing:
			return ErrNoSuchBucket
		}
	}
	s := h.s
	switch q.op {
	case OpListBuckets:
		return s.serveListBuckets(q)
	case OpCreateBucket:
		// The body, if any, is a CreateBucketConfiguration naming a region: one region is served, so it is
		// read and dropped.
		if _, err := io.Copy(io.Discard, http.MaxBytesReader(q.w, q.r.Body, 64<<10)); err != nil {
			return errMalformedXML
		}
		if err := s.CreateBucket(q.bucket); err != nil {
			return err
		}
		q.w.Header().Set("Location", "/"+q.bucket)
		q.w.WriteHeader(http.StatusOK)
	case OpHeadBucket:
		if !s.hasBucket(q.bucket) {
			return ErrNoSuchBucket
		}
		q.w.Header().Set("X-Amz-Bucket-Region", "us-east-1")
		q.w.WriteHeader(http.StatusOK)
	case OpDeleteBucket:
		if err := s.DeleteBucket(q.bucket); err != nil {
			return err
		}
		q.w.WriteHeader(http.StatusNoContent)
	case OpGetBucketLocation:
		if !s.hasBucket(q.bucket) {
			return ErrNoSuchBucket
		}
		// us-east-1 is an empty LocationConstraint.
		writeXML(q.w, http.StatusOK, struct {
			XMLName xml.Name `xml:"LocationConstraint"`
			Xmlns   string   `xml:"xmlns,attr"`
		}{Xmlns: xmlns})
	case OpListObjects, OpListObjectsV2:
		return s.serveList(q)
	case OpPutObject:
		return s.servePut(q)
	case OpCopyObject:
		return s.serveCopy(q)
	case OpGetObject, OpHeadObject:
		return s.serveGet(q)
	case OpDeleteObject:
		if err := s.Delete(q.bucket, q.key); err != nil {
			return err
		}
		q.w.WriteHeader(http.StatusNoContent)
	case OpCreateMultipartUpload:
		return s.serveCreateUpload(q)
	case OpUploadPart:
		return s.serveUploadPart(q)
	case OpCompleteMultipartUpload:
		return s.serveCompleteUpload(q)
	case OpAbortMultipartUpload:
		if err := s.abortUpload(q.bucket, q.key, q.query.Get("uploadId")); err != nil {
			return err
		}
		q.w.WriteHeader(http.StatusNoContent)
	}
	return nil
}

// splitPath splits a path-style request path, still escaped, into bucket and key. The key is unescaped once and
// kept exactly, "." and ".." segments and repeated slashes included: it is a name, not a path.
func splitPath(escaped string) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(escaped, "/")
	if !ok {
		return "", "", &apiError{status: http.StatusBadRequest, code: "InvalidURI", message: "Couldn't parse the specified URI."}
	}
	b, k, _ := strings.Cut(rest, "/")
	if bucket, err = url.PathUnescape(b); err == nil {
		key, err = url.PathUnescape(k)
	}
	if err != nil {
		return "", "", &apiError{status: http.StatusBadRequest, code: "InvalidURI", message: "Couldn't parse the specified URI."}
	}
	return bucket, key, nil
}

// subresources are the query parameters by which S3 names operations on a bucket or object that are not the
// plain ones. A request with one this store does not serve is answered NotImplemented rather than mistaken for
// a plain GET or PUT.
var subresources = []string{
	"accelerate", "acl", "analytics", "attributes", "cors", "delete", "encryption", "intelligent-tiering",
	"inventory", "legal-hold", "lifecycle", "location", "logging", "metadataTable", "metrics", "notification",
	"object-lock", "ownershipControls", "partNumber", "policy", "policyStatus", "publicAccessBlock",
	"replication", "requestPayment", "restore", "retention", "select", "session", "tagging", "torrent",
	"uploadId", "uploads", "versioning", "versions", "website",
}

func (h *handler) route(q *request) (Op, error) {
	var sub []string
	for _, name := range subresources {
		if q.query.Has(name) {
			sub = append(sub, name)
		}
	}
	has := func(names ...string) bool { // the subresources are exactly names
		if len(sub) != len(names) {
			return false
		}
		for _, n := range names {
			if !q.query.Has(n) {
				return false
			}
		}
		return true
	}
	m := q.r.Method
	if h.device {
		if q.bucket == "" || q.key == "" {
			return "", &apiError{status: http.StatusBadRequest, code: "InvalidRequest", message: "A bucket and a key are required."}
		}
		switch {
		case m == http.MethodGet && len(sub) == 0:
			return OpGetObject, nil
		case m == http.MethodHead && len(sub) == 0:
			return OpHeadObject, nil
		}
		return "", errMethodNotAllowed
	}
	switch {
	case q.bucket == "":
		if m == http.MethodGet {
			return OpListBuckets, nil
		}
		return "", errMethodNotAllowed
	case q.key == "":
		switch {
		case m == http.MethodPut && has():
			return OpCreateBucket, nil
		case m == http.MethodHead && has():
			return OpHeadBucket, nil
		case m == http.MethodDelete && has():
			return OpDeleteBucket, nil
		case m == http.MethodGet && has("location"):
			return OpGetBucketLocation, nil
		case m == http.MethodGet && has() && q.query.Get("list-type") == "2":
			return OpListObjectsV2, nil
		case m == http.MethodGet && has():
			return OpListObjects, nil
		}
	default:
		copySource := q.r.Header.Get("X-Amz-Copy-Source") != ""
		switch {
		case m == http.MethodPut && has() && copySource:
			return OpCopyObject, nil
		case m == http.MethodPut && has():
			return OpPutObject, nil
		case m == http.MethodPut && has("partNumber", "uploadId") && !copySource:
			return OpUploadPart, nil
		case m == http.MethodGet && has():
			return OpGetObject, nil
		case m == http.MethodHead && has():
			return OpHeadObject, nil
		case m == http.MethodDelete && has():
			return OpDeleteObject, nil
		case m == http.MethodDelete && has("uploadId"):
			return OpAbortMultipartUpload, nil
		case m == http.MethodPost && has("uploads"):
			return OpCreateMultipartUpload, nil
		case m == http.MethodPost && has("uploadId"):
			return OpCompleteMultipartUpload, nil
		}
	}
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete:
		return "", &apiError{status: http.StatusNotImplemented, code: "NotImplemented",
			message: "A header or query you provided implies functionality that is not implemented."}
	}
	return "", errMethodNotAllowed
}

func (s *Store) hasBucket(name string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.buckets[name] != nil
}

// serveGet answers GetObject and HeadObject.
func (s *Store) serveGet(q *request) error {
	var meta *objectMeta
	var body io.ReadSeeker
	if f := q.fault; f != nil && f.Body != nil {
		// As if the object had been overwritten with f.Body.
		stored, err := s.head(q.bucket, q.key)
		if err != nil {
			return err
		}
		sum := md5.Sum(f.Body)
		meta = &objectMeta{Key: q.key, Size: int64(len(f.Body)), ETag: quotedMD5(sum[:]),
			LastModified: s.now(), ContentType: stored.ContentType}
		body = bytes.NewReader(f.Body)
	} else {
		m, r, err := s.open(q.bucket, q.key)
		if err != nil {
			return err
		}
		defer r.Close()
		meta, body = m, r
	}

	hdr := q.w.Header()
	hdr["ETag"] = []string{meta.ETag} // S3's spelling, which Header.Set would change to "Etag"
	hdr.Set("Last-Modified", meta.LastModified.UTC().Format(http.TimeFormat))
	if status := preconditions(q.r, meta); status != 0 {
		if status == http.StatusPreconditionFailed {
			return &apiError{status: status, code: "PreconditionFailed",
				message: "At least one of the pre-conditions you specified did not hold", condition: "If-Match"}
		}
		q.w.WriteHeader(status)
		return nil
	}
	start, length, partial, err := parseRange(q.r.Header.Get("Range"), meta.Size)
	if err != nil {
		hdr.Del("ETag")
		hdr.Del("Last-Modified")
		hdr.Set("Content-Range", fmt.Sprintf("bytes */%d", meta.Size))
		return &apiError{status: http.StatusRequestedRangeNotSatisfiable, code: "InvalidRange",
			message: "The requested range is not satisfiable", rangeRequested: q.r.Header.Get("Range"),
			actualSize: strconv.FormatInt(meta.Size, 10)}
	}
	hdr.Set("Accept-Ranges", "bytes")
	hdr.Set("Content-Type", meta.ContentType)
	hdr.Set("Content-Length", strconv.FormatInt(length, 10))
	if meta.ContentEncoding != "" {
		hdr.Set("Content-Encoding", meta.ContentEncoding)
	}
	for k, v := range meta.Metadata {
		hdr.Set("X-Amz-Meta-"+k, v)
	}
	// The full object's checksum, when asked for, describes the body only if the body is the whole object.
	if meta.Checksum != "" && !partial && strings.EqualFold(q.r.Header.Get("X-Amz-Checksum-Mode"), "ENABLED") {
		hdr.Set(meta.ChecksumAlgorithm.header(), meta.Checksum)
		hdr.Set("X-Amz-Checksum-Type", "FULL_OBJECT")
	}
	status := http.StatusOK
	if partial {
		hdr.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, start+length-1, meta.Size))
		status = http.StatusPartialContent
	}
	q.w.WriteHeader(status)
	if q.op == OpHeadObject || length == 0 {
		return nil
	}
	if _, err := body.Seek(start, io.SeekStart); err != nil {
		panic(http.ErrAbortHandler) // the status is sent: cut the body short so the client sees the failure
	}
	if q.fault != nil && q.fault.BytesPerSecond > 0 {
		err = throttledCopy(q.r.Context(), s.clock, q.w, body, length, q.fault.BytesPerSecond)
	} else {
		_, err = io.CopyN(q.w, body, length)
	}
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	return nil
}

// preconditions evaluates a GET's or HEAD's conditional headers as RFC 9110 orders them, returning 412, 304, or
// 0 to go on.
func preconditions(r *http.Request, meta *objectMeta) int {
	if im := r.Header.Get("If-Match"); im != "" {
		if !etagMatch(im, meta.ETag) {
			return http.StatusPreconditionFailed
		}
	} else if t, err := http.ParseTime(r.Header.Get("If-Unmodified-Since")); err == nil && meta.LastModified.After(t) {
		return http.StatusPreconditionFailed
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		if etagMatch(inm, meta.ETag) {
			return http.StatusNotModified
		}
	} else if t, err := http.ParseTime(r.Header.Get("If-Modified-Since")); err == nil && !meta.LastModified.After(t) {
		return http.StatusNotModified
	}
	return 0
}

// etagMatch reports whether a list of entity tags from If-Match or If-None-Match names etag.
func etagMatch(list, etag string) bool {
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || strings.Trim(t, `"`) == strings.Trim(etag, `"`) {
			return true
		}
	}
	return false
}

var errUnsatisfiable = errors.New("range not satisfiable")

// parseRange interprets a Range header for an object of size bytes as S3 does: one byte range (first-last,
// first-, or -suffix); a header that is not one well-formed byte range is ignored and the whole object sent.
func parseRange(header string, size int64) (start, length int64, partial bool, err error) {
	spec, ok := strings.CutPrefix(header, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, size, false, nil
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return 0, size, false, nil
	}
	if first == "" { // the last n bytes
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n < 0 {
			return 0, size, false, nil
		}
		if n == 0 || size == 0 {
			return 0, 0, false, errUnsatisfiable
		}
		n = min(n, size)
		return size - n, n, true, nil
	}
	a, err := strconv.ParseInt(first, 10, 64)
	if err != nil || a < 0 {
		return 0, size, false, nil
	}
	b := size - 1
	if last != "" {
		if b, err = strconv.ParseInt(last, 10, 64); err != nil || b < a {
			return 0, size, false, nil
		}
		b = min(b, size-1)
	}
	if a >= size {
		return 0, 0, false, errUnsatisfiable
	}
	return a, b - a + 1, true, nil
}

// servePut answers PutObject.
func (s *Store) servePut(q *request) error {
	o, body, err := s.uploadOptions(q.r)
	if err != nil {
		return err
	}
	meta, err := s.put(q.bucket, q.key, body, o)
	if err != nil {
		return err
	}
	hdr := q.w.Header()
	hdr["ETag"] = []string{meta.ETag}
	if meta.Checksum != "" {
		hdr.Set(meta.ChecksumAlgorithm.header(), meta.Checksum)
		hdr.Set("X-Amz-Checksum-Type", "FULL_OBJECT")
	}
	q.w.WriteHeader(http.StatusOK)
	return nil
}

// maxMetadataSize is S3's limit on user metadata: names and values of x-amz-meta-* together.
const maxMetadataSize = 2 << 10

// uploadOptions reads what an upload (PutObject, UploadPart) says about its body in its headers — type,
// encoding, user metadata, checksums, lengths — and returns the options to store it with and the body to read,
// decoded from aws-chunked when it is so encoded.
func (s *Store) uploadOptions(r *http.Request) (putOptions, io.Reader, error) {
	o := putOptions{contentType: r.Header.Get("Content-Type")}
	chunked := false
	var encodings []string
	for _, e := range strings.Split(r.Header.Get("Content-Encoding"), ",") {
		switch e = strings.TrimSpace(e); {
		case strings.EqualFold(e, "aws-chunked"):
			chunked = true
		case e != "":
			encodings = append(encodings, e)
		}
	}
	o.contentEncoding = strings.Join(encodings, ",")
	payloadHash := r.Header.Get("X-Amz-Content-Sha256")
	if strings.HasPrefix(payloadHash, "STREAMING-") {
		chunked = true
	}

	size := r.ContentLength
	if chunked {
		size = -1
		if d := r.Header.Get("X-Amz-Decoded-Content-Length"); d != "" {
			n, err := strconv.ParseInt(d, 10, 64)
			if err != nil || n < 0 {
				return o, nil, &apiError{status: http.StatusBadRequest, code: "InvalidArgument", message: "Invalid x-amz-decoded-content-length."}
			}
			size = n
		}
	}
	if size > s.maxSize {
		return o, nil, tooLarge(size, s.maxSize)
	}

	metaSize := 0
	for name, values := range r.Header {
		if k, ok := strings.CutPrefix(strings.ToLower(name), "x-amz-meta-"); ok {
			if o.metadata == nil {
				o.metadata = map[string]string{}
			}
			o.metadata[k] = strings.Join(values, ",")
			metaSize += len(k) + len(o.metadata[k])
		}
	}
	if metaSize > maxMetadataSize {
		return o, nil, &apiError{status: http.StatusBadRequest, code: "MetadataTooLarge",
			message: "Your metadata headers exceed the maximum allowed metadata size."}
	}

	var wantMD5 []byte
	if v := r.Header.Get("Content-MD5"); v != "" {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(b) != md5.Size {
			return o, nil, &apiError{status: http.StatusBadRequest, code: "InvalidDigest", message: "The Content-MD5 you specified was invalid."}
		}
		wantMD5 = b
	}
	var wantSHA256 []byte
	if b, err := hex.DecodeString(payloadHash); err == nil && len(b) == 32 {
		wantSHA256 = b
		o.sha256 = true
	}

	// The additional checksum: named by x-amz-sdk-checksum-algorithm, with its value in a header or, for an
	// aws-chunked body, in a trailer declared by x-amz-trailer.
	var checksumHeader, checksumValue string
	if v := r.Header.Get("X-Amz-Sdk-Checksum-Algorithm"); v != "" {
		alg, ok := parseChecksumAlgorithm(v)
		if !ok {
			return o, nil, invalidRequest("Checksum algorithm %q is not supported.", v)
		}
		o.checksum = alg
	}
	for _, alg := range checksumAlgorithms {
		if v := r.Header.Get(alg.header()); v != "" {
			if checksumHeader != "" {
				return o, nil, invalidRequest("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
			}
			checksumHeader, checksumValue = alg.header(), v
			if o.checksum != "" && o.checksum != alg {
				return o, nil, invalidRequest("Value for x-amz-sdk-checksum-algorithm header is invalid.")
			}
			o.checksum = alg
		}
	}
	var trailer string
	if v := r.Header.Get("X-Amz-Trailer"); v != "" {
		name, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(v)), "x-amz-checksum-")
		alg, known := parseChecksumAlgorithm(name)
		switch {
		case !chunked || !ok || !known:
			return o, nil, invalidRequest("The value specified in the x-amz-trailer header is not supported")
		case checksumHeader != "" || (o.checksum != "" && o.checksum != alg):
			return o, nil, invalidRequest("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
		}
		o.checksum, trailer = alg, alg.header()
	}
	if checksumHeader != "" && !o.checksum.validValue(checksumValue) {
		return o, nil, invalidRequest("Value for %s header is invalid.", checksumHeader)
	}

	var body io.Reader = r.Body
	var cr *chunkedReader
	if chunked {
		var signer awsapi.ChunkSigner
		if payloadHash == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" || payloadHash == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" {
			signer, _ = awsapi.ChunkSignerOf(r.Context())
		}
		cr = newChunkedReader(r.Body, signer)
		body = cr
	}
	o.verify = func(d digests) error {
		if chunked && size >= 0 && d.size != size {
			return &apiError{status: http.StatusBadRequest, code: "IncompleteBody",
				message: "You did not provide the number of bytes specified by the x-amz-decoded-content-length HTTP header."}
		}
		if wantMD5 != nil && !bytes.Equal(wantMD5, d.md5) {
			return errBadDigest
		}
		if wantSHA256 != nil && !bytes.Equal(wantSHA256, d.sha256) {
			return &apiError{status: http.StatusBadRequest, code: "XAmzContentSHA256Mismatch",
				message: "The provided 'x-amz-content-sha256' header does not match what was computed."}
		}
		want := checksumValue
		if trailer != "" {
			if want = cr.Trailer().Get(trailer); !o.checksum.validValue(want) {
				return invalidRequest("The trailer %s is missing or invalid.", trailer)
			}
		}
		if want != "" && want != d.checksum {
			return &apiError{status: http.StatusBadRequest, code: "BadDigest",
				message: fmt.Sprintf("The %s you specified did not match the calculated checksum.", o.checksum)}
		}
		return nil
	}
	return o, body, nil
}

// serveCopy answers CopyObject: the source is read whole and written as a new single-part object, with the
// source's metadata (x-amz-metadata-directive COPY, the default) or the request's (REPLACE).
func (s *Store) serveCopy(q *request) error {
	src := q.r.Header.Get("X-Amz-Copy-Source")
	src, _, _ = strings.Cut(src, "?versionId=")
	src, err := url.PathUnescape(strings.TrimPrefix(src, "/"))
	srcBucket, srcKey, ok := strings.Cut(src, "/")
	if err != nil || !ok || srcKey == "" {
		return invalidArgument("Copy Source must mention the source bucket and key: sourcebucket/sourcekey")
	}
	meta, r, err := s.open(srcBucket, srcKey)
	if err != nil {
		if errors.Is(err, ErrNoSuchKey) {
			return &apiError{status: http.StatusNotFound, code: "NoSuchKey", message: "The specified key does not exist.", key: srcKey}
		}
		return err
	}
	defer r.Close()
	o := putOptions{
		contentType:     meta.ContentType,
		contentEncoding: meta.ContentEncoding,
		metadata:        meta.Metadata,
		checksum:        meta.ChecksumAlgorithm,
	}
	if strings.EqualFold(q.r.Header.Get("X-Amz-Metadata-Directive"), "REPLACE") {
		replaced, _, err := s.uploadOptions(q.r)
		if err != nil {
			return err
		}
		o.contentType, o.contentEncoding, o.metadata = replaced.contentType, replaced.contentEncoding, replaced.metadata
	}
	out, err := s.put(q.bucket, q.key, r, o)
	if err != nil {
		return err
	}
	writeXML(q.w, http.StatusOK, struct {
		XMLName      xml.Name `xml:"CopyObjectResult"`
		Xmlns        string   `xml:"xmlns,attr"`
		LastModified string
		ETag         string
	}{Xmlns: xmlns, LastModified: xmlTime(out.LastModified), ETag: out.ETag})
	return nil
}

func xmlTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func writeXML(w http.ResponseWriter, status int, v any) {
	body, err := xml.Marshal(v)
	if err != nil {
		panic(err) // the response types always marshal
	}
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(xml.Header)+len(body)))
	w.WriteHeader(status)
	io.WriteString(w, xml.Header)
	w.Write(body)
}
