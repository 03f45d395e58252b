package artifacts

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func openStore(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// recorder remembers the headers of every request a handler saw, so a test can prove which wire form a client
// used (aws-chunked or not) rather than assume it.
type recorder struct {
	next http.Handler
	mu   sync.Mutex
	reqs []http.Header
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.mu.Lock()
	h := r.Header.Clone()
	h.Set("X-Test-Method", r.Method)
	rec.reqs = append(rec.reqs, h)
	rec.mu.Unlock()
	rec.next.ServeHTTP(w, r)
}

// sawChunkedPut reports whether a PUT arrived aws-chunked with a trailing checksum.
func (rec *recorder) sawChunkedPut() bool {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, h := range rec.reqs {
		if h.Get("X-Test-Method") == http.MethodPut && h.Get("X-Amz-Trailer") != "" &&
			(h.Get("Content-Encoding") == "aws-chunked" || h.Get("X-Amz-Content-Sha256") == "STREAMING-UNSIGNED-PAYLOAD-TRAILER") {
			return true
		}
	}
	return false
}

// serve starts h on a loopback test server, with TLS when tls is set.
func serve(t testing.TB, h http.Handler, tls bool) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	return srv
}

// sdkClient is an SDK v2 S3 client for srv, path-style, with retries off so an injected fault is seen once.
func sdkClient(srv *httptest.Server) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(srv.URL),
		UsePathStyle: true,
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDFLEETLAB", "fleetlab-secret", ""),
		HTTPClient:   srv.Client(),
		Retryer:      aws.NopRetryer{},
		// What config.LoadDefaultConfig sets: checksums on every upload and download that supports them.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenSupported,
	})
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func etagOf(b []byte) string {
	sum := md5.Sum(b)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
