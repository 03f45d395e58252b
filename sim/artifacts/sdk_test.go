package artifacts

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"hash/crc32"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// apiCode returns the S3 error code and HTTP status of an SDK error.
func apiCode(err error) (string, int) {
	var ae smithy.APIError
	var re *smithyhttp.ResponseError
	code, status := "", 0
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	return code, status
}

func wantCode(t *testing.T, err error, code string, status int) {
	t.Helper()
	if got, gotStatus := apiCode(err); got != code || gotStatus != status {
		t.Fatalf("error %v: code %q status %d, want %q %d", err, got, gotStatus, code, status)
	}
}

// TestSDKRoundTrip drives every served operation through the AWS SDK for Go v2, over plain HTTP (where the SDK
// sends its checksum in a header) and over TLS (where it streams the body aws-chunked with a trailing checksum).
func TestSDKRoundTrip(t *testing.T) {
	for _, tls := range []bool{false, true} {
		name := map[bool]string{false: "http", true: "https"}[tls]
		t.Run(name, func(t *testing.T) {
			s := openStore(t, Options{})
			rec := &recorder{next: s.Handler()}
			c := sdkClient(serve(t, rec, tls))
			ctx := context.Background()

			if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bundles")}); err != nil {
				t.Fatal(err)
			}
			_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bundles")})
			if !errors.As(err, new(*types.BucketAlreadyOwnedByYou)) {
				t.Fatalf("second CreateBucket: %v, want BucketAlreadyOwnedByYou", err)
			}
			wantCode(t, err, "BucketAlreadyOwnedByYou", 409)
			_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("Not_Valid")})
			wantCode(t, err, "InvalidBucketName", 400)
			if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("bundles")}); err != nil {
				t.Fatal(err)
			}

			body := randomBytes(1, 300_000)
			put, err := c.PutObject(ctx, &s3.PutObjectInput{
				Bucket: aws.String("bundles"), Key: aws.String("robot/app.tar"), Body: bytes.NewReader(body),
				ContentType: aws.String("application/x-tar"), Metadata: map[string]string{"arch": "X86_64"},
			})
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToString(put.ETag) != etagOf(body) {
				t.Fatalf("PutObject ETag %s, want %s", aws.ToString(put.ETag), etagOf(body))
			}
			crc := crc32.ChecksumIEEE(body)
			wantCRC := base64.StdEncoding.EncodeToString([]byte{byte(crc >> 24), byte(crc >> 16), byte(crc >> 8), byte(crc)})
			if aws.ToString(put.ChecksumCRC32) != wantCRC {
				t.Fatalf("PutObject CRC32 %q, want %q", aws.ToString(put.ChecksumCRC32), wantCRC)
			}
			if got := rec.sawChunkedPut(); got != tls {
				t.Fatalf("aws-chunked PUT seen: %v, want %v (the test must exercise the wire form it claims)", got, tls)
			}

			get, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bundles"), Key: aws.String("robot/app.tar"),
				ChecksumMode: types.ChecksumModeEnabled})
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(get.Body) // the SDK verifies the CRC32 we return while reading
			get.Body.Close()
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("GetObject: %d bytes, %v", len(got), err)
			}
			if aws.ToString(get.ETag) != etagOf(body) || aws.ToString(get.ContentType) != "application/x-tar" ||
				get.Metadata["arch"] != "X86_64" || aws.ToString(get.ChecksumCRC32) != wantCRC {
				t.Fatalf("GetObject headers: etag %s type %s metadata %v crc %s", aws.ToString(get.ETag),
					aws.ToString(get.ContentType), get.Metadata, aws.ToString(get.ChecksumCRC32))
			}

			for _, tc := range []struct {
				rng, contentRange string
				from, to          int
			}{
				{"bytes=100-199", "bytes 100-199/300000", 100, 200},
				{"bytes=299990-", "bytes 299990-299999/300000", 299990, 300000},
				{"bytes=-10", "bytes 299990-299999/300000", 299990, 300000},
				{"bytes=299000-999999", "bytes 299000-299999/300000", 299000, 300000},
			} {
				r, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bundles"), Key: aws.String("robot/app.tar"), Range: aws.String(tc.rng)})
				if err != nil {
					t.Fatalf("%s: %v", tc.rng, err)
				}
				part, _ := io.ReadAll(r.Body)
				r.Body.Close()
				if !bytes.Equal(part, body[tc.from:tc.to]) || aws.ToString(r.ContentRange) != tc.contentRange {
					t.Fatalf("%s: %d bytes, Content-Range %q", tc.rng, len(part), aws.ToString(r.ContentRange))
				}
			}
			_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bundles"), Key: aws.String("robot/app.tar"), Range: aws.String("bytes=300000-")})
			wantCode(t, err, "InvalidRange", 416)

			head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bundles"), Key: aws.String("robot/app.tar")})
			if err != nil || aws.ToInt64(head.ContentLength) != int64(len(body)) || aws.ToString(head.ETag) != etagOf(body) {
				t.Fatalf("HeadObject: %+v, %v", head, err)
			}
			if st, _ := s.Head("bundles", "robot/app.tar"); st.ETag != etagOf(body) || st.Size != int64(len(body)) || st.ContentType != "application/x-tar" {
				t.Fatalf("Store.Head after SDK put: %+v", st)
			}
			_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bundles"), Key: aws.String("robot/none")})
			if !errors.As(err, new(*types.NotFound)) {
				t.Fatalf("HeadObject missing: %v, want NotFound", err)
			}
			_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bundles"), Key: aws.String("robot/none")})
			if !errors.As(err, new(*types.NoSuchKey)) {
				t.Fatalf("GetObject missing: %v, want NoSuchKey", err)
			}
			// GetObject's model lists no NoSuchBucket, so the SDK gives the code without a type.
			_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("nobucket"), Key: aws.String("k")})
			wantCode(t, err, "NoSuchBucket", 404)
			_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bundles"), Key: aws.String("bad-md5"),
				Body: strings.NewReader("payload"), ContentMD5: aws.String(base64.StdEncoding.EncodeToString(make([]byte, 16)))})
			wantCode(t, err, "BadDigest", 400)

			cp, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("bundles"), Key: aws.String("copy/app.tar"),
				CopySource: aws.String("bundles/robot/app.tar")})
			if err != nil || aws.ToString(cp.CopyObjectResult.ETag) != etagOf(body) {
				t.Fatalf("CopyObject: %v", err)
			}

			testListing(t, c, s)

			_, err = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("bundles")})
			wantCode(t, err, "BucketNotEmpty", 409)
			objs, _ := s.List("bundles", "")
			for _, o := range objs {
				if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("bundles"), Key: aws.String(o.Key)}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("bundles"), Key: aws.String("never")}); err != nil {
				t.Fatalf("deleting a missing key: %v", err)
			}
			if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("bundles")}); err != nil {
				t.Fatal(err)
			}
			_, err = c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("bundles")})
			if !errors.As(err, new(*types.NotFound)) {
				t.Fatalf("HeadBucket after delete: %v", err)
			}
			_, err = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("bundles")})
			wantCode(t, err, "NoSuchBucket", 404)
		})
	}
}

func testListing(t *testing.T, c *s3.Client, s *Store) {
	t.Helper()
	ctx := context.Background()
	for _, k := range []string{"a/1", "a/2", "a/b/3", "a/b/4", "b", "c/d/e", "top", "z/1"} {
		if _, err := s.Put("bundles", k, strings.NewReader(k)); err != nil {
			t.Fatal(err)
		}
	}
	list := func(in *s3.ListObjectsV2Input) (keys, prefixes []string) {
		t.Helper()
		in.Bucket = aws.String("bundles")
		p := s3.NewListObjectsV2Paginator(c, in)
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(page.Contents) + len(page.CommonPrefixes); in.MaxKeys != nil && n > int(*in.MaxKeys) {
				t.Fatalf("page of %d entries, max %d", n, *in.MaxKeys)
			}
			for _, o := range page.Contents {
				keys = append(keys, aws.ToString(o.Key))
			}
			for _, cp := range page.CommonPrefixes {
				prefixes = append(prefixes, aws.ToString(cp.Prefix))
			}
		}
		return keys, prefixes
	}
	for _, tc := range []struct {
		name           string
		in             s3.ListObjectsV2Input
		keys, prefixes []string
	}{
		{"prefix", s3.ListObjectsV2Input{Prefix: aws.String("a/")}, []string{"a/1", "a/2", "a/b/3", "a/b/4"}, nil},
		{"delimiter", s3.ListObjectsV2Input{Delimiter: aws.String("/")},
			[]string{"b", "top"}, []string{"a/", "c/", "copy/", "robot/", "z/"}},
		{"prefix and delimiter", s3.ListObjectsV2Input{Prefix: aws.String("a/"), Delimiter: aws.String("/")},
			[]string{"a/1", "a/2"}, []string{"a/b/"}},
		{"pages of 2 with delimiter", s3.ListObjectsV2Input{Delimiter: aws.String("/"), MaxKeys: aws.Int32(2)},
			[]string{"b", "top"}, []string{"a/", "c/", "copy/", "robot/", "z/"}},
		{"pages of 1", s3.ListObjectsV2Input{Prefix: aws.String("a/"), MaxKeys: aws.Int32(1)},
			[]string{"a/1", "a/2", "a/b/3", "a/b/4"}, nil},
		{"start after", s3.ListObjectsV2Input{StartAfter: aws.String("b"), Delimiter: aws.String("/")},
			[]string{"top"}, []string{"c/", "copy/", "robot/", "z/"}},
	} {
		keys, prefixes := list(&tc.in)
		if !slices.Equal(keys, tc.keys) || !slices.Equal(prefixes, tc.prefixes) {
			t.Errorf("%s: keys %q prefixes %q; want %q %q", tc.name, keys, prefixes, tc.keys, tc.prefixes)
		}
	}
	page, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("bundles"), Prefix: aws.String("a/"), MaxKeys: aws.Int32(3)})
	if err != nil || !aws.ToBool(page.IsTruncated) || aws.ToInt32(page.KeyCount) != 3 || page.NextContinuationToken == nil {
		t.Fatalf("truncated page: %+v, %v", page, err)
	}
	if o := page.Contents[0]; aws.ToString(o.ETag) != etagOf([]byte("a/1")) || aws.ToInt64(o.Size) != 3 || o.LastModified.IsZero() {
		t.Fatalf("listed object: %+v", o)
	}
	_, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("bundles"), ContinuationToken: aws.String("!!")})
	wantCode(t, err, "InvalidArgument", 400)
	_, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("nobucket")})
	if !errors.As(err, new(*types.NoSuchBucket)) {
		t.Fatalf("listing a missing bucket: %v", err)
	}

	// Version 1, with markers.
	var keys []string
	in := &s3.ListObjectsInput{Bucket: aws.String("bundles"), Prefix: aws.String("a/"), MaxKeys: aws.Int32(1)}
	for pages := 0; ; pages++ {
		if pages == 20 {
			t.Fatal("listing does not end")
		}
		page, err := c.ListObjects(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
		if !aws.ToBool(page.IsTruncated) {
			break
		}
		in.Marker = aws.String(keys[len(keys)-1])
	}
	if want := []string{"a/1", "a/2", "a/b/3", "a/b/4"}; !slices.Equal(keys, want) {
		t.Fatalf("ListObjects V1: %q", keys)
	}

	buckets, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil || len(buckets.Buckets) != 1 || aws.ToString(buckets.Buckets[0].Name) != "bundles" || buckets.Buckets[0].CreationDate.IsZero() {
		t.Fatalf("ListBuckets: %+v, %v", buckets, err)
	}
}

func TestSDKMultipartUpload(t *testing.T) {
	s := openStore(t, Options{})
	c := sdkClient(serve(t, s.Handler(), true))
	ctx := context.Background()
	if err := s.CreateBucket("bundles"); err != nil {
		t.Fatal(err)
	}
	parts := [][]byte{randomBytes(2, minPartSize), randomBytes(3, 1000)}
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("bundles"),
		Key: aws.String("big.tar"), ContentType: aws.String("application/x-tar")})
	if err != nil {
		t.Fatal(err)
	}
	var done []types.CompletedPart
	for i, p := range parts {
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("bundles"), Key: aws.String("big.tar"),
			UploadId: up.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p)})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.ETag) != etagOf(p) {
			t.Fatalf("part %d ETag %s", i+1, aws.ToString(out.ETag))
		}
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag})
	}
	// Out of order and unknown parts are refused, and the upload survives the refusal.
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("bundles"), Key: aws.String("big.tar"),
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{done[1], done[0]}}})
	wantCode(t, err, "InvalidPartOrder", 400)
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("bundles"), Key: aws.String("big.tar"),
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{
			done[0], {PartNumber: aws.Int32(2), ETag: aws.String(etagOf([]byte("other")))}}}})
	wantCode(t, err, "InvalidPart", 400)

	out, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("bundles"), Key: aws.String("big.tar"),
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
	if err != nil {
		t.Fatal(err)
	}
	// S3's multipart ETag: the MD5 of the concatenated part MD5s, a dash, the part count.
	var sums []byte
	for _, p := range parts {
		sums = append(sums, mustHex(t, strings.Trim(etagOf(p), `"`))...)
	}
	want := strings.TrimSuffix(etagOf(sums), `"`) + `-2"`
	if aws.ToString(out.ETag) != want {
		t.Fatalf("multipart ETag %s, want %s", aws.ToString(out.ETag), want)
	}
	_, r, err := s.Open("bundles", "big.tar")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if !bytes.Equal(got, slices.Concat(parts...)) {
		t.Fatalf("joined object differs: %d bytes", len(got))
	}
	if o, _ := s.Head("bundles", "big.tar"); o.ContentType != "application/x-tar" || o.ETag != want {
		t.Fatalf("Head: %+v", o)
	}
	_, err = c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("bundles"), Key: aws.String("big.tar"),
		UploadId: up.UploadId, PartNumber: aws.Int32(3), Body: strings.NewReader("late")})
	wantCode(t, err, "NoSuchUpload", 404) // UploadPart's model lists no errors, so no type

	// An aborted upload is gone; a part below the minimum size that is not the last is refused.
	up2, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("bundles"), Key: aws.String("small")})
	if err != nil {
		t.Fatal(err)
	}
	var small []types.CompletedPart
	for i := range 2 {
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("bundles"), Key: aws.String("small"),
			UploadId: up2.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: strings.NewReader("tiny")})
		if err != nil {
			t.Fatal(err)
		}
		small = append(small, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag})
	}
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("bundles"), Key: aws.String("small"),
		UploadId: up2.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: small}})
	wantCode(t, err, "EntityTooSmall", 400)
	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("bundles"), Key: aws.String("small"), UploadId: up2.UploadId}); err != nil {
		t.Fatal(err)
	}
	_, err = c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("bundles"), Key: aws.String("small"), UploadId: up2.UploadId})
	if !errors.As(err, new(*types.NoSuchUpload)) {
		t.Fatalf("abort twice: %v", err)
	}
	if _, err := s.Head("bundles", "small"); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("aborted upload left an object: %v", err)
	}
}

func TestSDKSizeLimit(t *testing.T) {
	s := openStore(t, Options{MaxObjectSize: 1000})
	for _, tls := range []bool{false, true} {
		c := sdkClient(serve(t, s.Handler(), tls))
		ctx := context.Background()
		if err := s.CreateBucket("small"); err != nil && !errors.Is(err, ErrBucketExists) {
			t.Fatal(err)
		}
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("small"), Key: aws.String("ok"), Body: bytes.NewReader(make([]byte, 1000))}); err != nil {
			t.Fatalf("object at the limit: %v", err)
		}
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("small"), Key: aws.String("big"), Body: bytes.NewReader(make([]byte, 1001))})
		wantCode(t, err, "EntityTooLarge", 400)
		if _, err := s.Head("small", "big"); !errors.Is(err, ErrNoSuchKey) {
			t.Fatalf("refused object stored: %v", err)
		}
	}
	// A body that says nothing of its size is cut off at the limit too.
	srv := serve(t, s.Handler(), false)
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/small/stream", io.MultiReader(bytes.NewReader(make([]byte, 1500))))
	req.ContentLength = -1
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("unsized body over the limit: %d", resp.StatusCode)
	}
}

func TestSDKCopyAndBucketOperations(t *testing.T) {
	s := openStore(t, Options{})
	c := sdkClient(serve(t, s.Handler(), false))
	ctx := context.Background()
	for _, b := range []string{"alpha", "bundles", "beta"} {
		if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	// CreateBucket with a region's configuration body, as `aws s3 mb --region` sends it.
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("regional"),
		CreateBucketConfiguration: &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraintEuWest1}})
	if err != nil {
		t.Fatal(err)
	}
	loc, err := c.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String("bundles")})
	if err != nil || loc.LocationConstraint != "" {
		t.Fatalf("GetBucketLocation: %+v, %v", loc, err)
	}

	// ListBuckets in pages.
	var names []string
	in := &s3.ListBucketsInput{MaxBuckets: aws.Int32(3)}
	for pages := 0; ; pages++ {
		if pages == 20 {
			t.Fatal("listing does not end")
		}
		page, err := c.ListBuckets(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range page.Buckets {
			names = append(names, aws.ToString(b.Name))
		}
		if page.ContinuationToken == nil {
			break
		}
		in.ContinuationToken = page.ContinuationToken
	}
	if want := []string{"alpha", "beta", "bundles", "regional"}; !slices.Equal(names, want) {
		t.Fatalf("ListBuckets pages: %q", names)
	}
	page, err := c.ListBuckets(ctx, &s3.ListBucketsInput{Prefix: aws.String("b")})
	if err != nil || len(page.Buckets) != 2 {
		t.Fatalf("ListBuckets with prefix: %+v, %v", page, err)
	}

	// CopyObject keeps the source's metadata, or takes the request's with REPLACE.
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("alpha"), Key: aws.String("src"), Body: strings.NewReader("bundle"),
		ContentType: aws.String("application/x-tar"), Metadata: map[string]string{"version": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("bundles"), Key: aws.String("kept"), CopySource: aws.String("alpha/src")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("bundles"), Key: aws.String("replaced"), CopySource: aws.String("/alpha/src"),
		MetadataDirective: types.MetadataDirectiveReplace, ContentType: aws.String("text/plain"), Metadata: map[string]string{"version": "2"}})
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string][2]string{"kept": {"application/x-tar", "1"}, "replaced": {"text/plain", "2"}} {
		h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bundles"), Key: aws.String(key)})
		if err != nil || aws.ToString(h.ContentType) != want[0] || h.Metadata["version"] != want[1] || aws.ToString(h.ETag) != etagOf([]byte("bundle")) {
			t.Fatalf("%s: %+v, %v", key, h, err)
		}
	}
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("bundles"), Key: aws.String("x"), CopySource: aws.String("alpha/none")})
	wantCode(t, err, "NoSuchKey", 404)

	// ListObjects V1 with a delimiter pages through common prefixes by NextMarker, each prefix once.
	for _, k := range []string{"a/1", "a/2", "b", "c/1", "c/2/3", "d"} {
		if _, err := s.Put("beta", k, strings.NewReader(k)); err != nil {
			t.Fatal(err)
		}
	}
	var entries []string
	v1 := &s3.ListObjectsInput{Bucket: aws.String("beta"), Delimiter: aws.String("/"), MaxKeys: aws.Int32(1)}
	for pages := 0; ; pages++ {
		if pages == 20 {
			t.Fatal("listing does not end")
		}
		page, err := c.ListObjects(ctx, v1)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			entries = append(entries, aws.ToString(o.Key))
		}
		for _, p := range page.CommonPrefixes {
			entries = append(entries, aws.ToString(p.Prefix))
		}
		if !aws.ToBool(page.IsTruncated) {
			break
		}
		v1.Marker = page.NextMarker
	}
	if want := []string{"a/", "b", "c/", "d"}; !slices.Equal(entries, want) {
		t.Fatalf("ListObjects V1 pages: %q", entries)
	}

	// S3 operations the store does not serve say so.
	_, err = c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String("bundles")})
	wantCode(t, err, "NotImplemented", 501)
	_, err = c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: aws.String("bundles"), Key: aws.String("kept"),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}})
	wantCode(t, err, "NotImplemented", 501)
}
