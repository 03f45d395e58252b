package awsapi

import (
	"crypto/sha256"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/sim/clock/clocktest"
)

// TestChunkSignaturesOfTheAWSExample checks the seed signature and the chunk signatures of the worked example
// in Amazon S3's documentation ("Signature Calculations for the Authorization Header: Transferring Payload in
// Multiple Chunks"): a 66,560-byte object of 'a's sent as 64 KiB, 1 KiB and a final empty chunk.
func TestChunkSignaturesOfTheAWSExample(t *testing.T) {
	r, err := http.NewRequest("PUT", "http://s3.amazonaws.com/examplebucket/chunkObject.txt", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.ContentLength = 66824
	for k, v := range map[string]string{
		"X-Amz-Date": "20130524T000000Z", "X-Amz-Storage-Class": "REDUCED_REDUNDANCY",
		"X-Amz-Content-Sha256": streamingSigned, "Content-Encoding": "aws-chunked",
		"X-Amz-Decoded-Content-Length": "66560",
		"Authorization": "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request," +
			"SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;" +
			"x-amz-decoded-content-length;x-amz-storage-class," +
			"Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
	} {
		r.Header.Set(k, v)
	}
	v := &SigV4{Keys: map[string]string{"AKIAIOSFODNN7EXAMPLE": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
		Clock: clocktest.New(time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC))}
	s, aerr := v.check(r, v.Keys, []string{"s3"}, true)
	if aerr != nil {
		t.Fatalf("seed signature refused: %+v", aerr)
	}
	cs := &chunkSigner{s: s, prev: s.signature}
	for _, c := range []struct {
		size int
		sig  string
	}{
		{65536, "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"},
		{1024, "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"},
		{0, "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"},
	} {
		if !cs.Chunk(sha256.Sum256([]byte(strings.Repeat("a", c.size))), c.sig) {
			t.Fatalf("chunk of %d bytes: signature %s refused", c.size, c.sig)
		}
	}
	// Chained: the first chunk's signature does not sign the second chunk.
	again := &chunkSigner{s: s, prev: s.signature}
	if again.Chunk(sha256.Sum256([]byte(strings.Repeat("a", 1024))), "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648") {
		t.Fatal("a chunk signature checked for other data")
	}
}
