package artifacts

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strings"
	"testing"
)

// encodeChunked encodes data aws-chunked in chunks of chunk bytes, with chunk signatures when signed (as
// STREAMING-AWS4-HMAC-SHA256-PAYLOAD sends them) and the given trailer lines ("name:value").
func encodeChunked(data []byte, chunk int, signed bool, trailers ...string) []byte {
	var b bytes.Buffer
	sig := ""
	if signed {
		sig = ";chunk-signature=" + strings.Repeat("ab", 32)
	}
	for len(data) > 0 {
		n := min(chunk, len(data))
		fmt.Fprintf(&b, "%x%s\r\n", n, sig)
		b.Write(data[:n])
		b.WriteString("\r\n")
		data = data[n:]
	}
	fmt.Fprintf(&b, "0%s\r\n", sig)
	for _, t := range trailers {
		b.WriteString(t + "\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

func decodeAll(encoded []byte) ([]byte, http.Header, error) {
	cr := newChunkedReader(bytes.NewReader(encoded), nil)
	out, err := io.ReadAll(cr)
	return out, cr.Trailer(), err
}

func TestChunkedDecode(t *testing.T) {
	payload := randomBytes(5, 100_000)
	for _, tc := range []struct {
		name    string
		encoded []byte
	}{
		{"unsigned with trailer", encodeChunked(payload, 65536, false, "x-amz-checksum-crc32:AAAAAA==")},
		{"signed", encodeChunked(payload, 8192, true)},
		{"signed with trailer", encodeChunked(payload, 8192, true, "x-amz-checksum-crc32:AAAAAA==", "x-amz-trailer-signature:"+strings.Repeat("cd", 32))},
		{"one-byte chunks", encodeChunked(payload[:300], 1, false)},
		{"upper-case hex", bytes.Replace(encodeChunked(payload[:255], 255, false), []byte("ff\r\n"), []byte("FF\r\n"), 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, trailer, err := decodeAll(tc.encoded)
			if err != nil {
				t.Fatal(err)
			}
			if want := payload[:len(out)]; len(out) < 255 || !bytes.Equal(out, want) {
				t.Fatalf("decoded %d bytes, not the payload", len(out))
			}
			if strings.Contains(tc.name, "trailer") && trailer.Get("X-Amz-Checksum-Crc32") != "AAAAAA==" {
				t.Fatalf("trailers %v", trailer)
			}
		})
	}
	t.Run("ends after final chunk", func(t *testing.T) {
		out, _, err := decodeAll([]byte("3\r\nabc\r\n0\r\n"))
		if err != nil || string(out) != "abc" {
			t.Fatalf("%q, %v", out, err)
		}
	})
}

func TestChunkedDecodeRejects(t *testing.T) {
	long := strings.Repeat("1", maxChunkLine+1)
	for _, tc := range []struct {
		name, encoded string
		want          error
	}{
		{"truncated data", "10\r\nabc", io.ErrUnexpectedEOF},
		{"no final chunk", "3\r\nabc\r\n", io.ErrUnexpectedEOF},
		{"data longer than its size", "3\r\nabcd\r\n0\r\n\r\n", errMalformedChunk},
		{"bad size", "zz\r\nabc\r\n", errMalformedChunk},
		{"negative size", "-3\r\nabc\r\n", errMalformedChunk},
		{"empty size", "\r\nabc\r\n", errMalformedChunk},
		{"size overflows", "ffffffffffffffffff\r\n", errMalformedChunk},
		{"LF without CR", "3\nabc\r\n0\r\n\r\n", errMalformedChunk},
		{"long line", long + "\r\n", errMalformedChunk},
		{"trailer without colon", "0\r\nnocolon\r\n\r\n", errMalformedChunk},
		{"trailers too long", "0\r\n" + strings.Repeat("x-a:"+strings.Repeat("v", 1000)+"\r\n", 20) + "\r\n", errMalformedChunk},
		{"trailer cut short", "0\r\nx-amz-checksum-crc32:AAAAAA==\r\n", io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := decodeAll([]byte(tc.encoded))
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
}

// FuzzChunkedDecode feeds the decoder arbitrary bodies: it must never panic, never produce more bytes than it
// was given, and whatever it accepts must survive encoding and decoding again unchanged. The input is also
// used as a payload, which must come back whole through the encoder and decoder.
func FuzzChunkedDecode(f *testing.F) {
	f.Add(encodeChunked([]byte("hello, robot"), 5, false, "x-amz-checksum-crc32:AAAAAA=="))
	f.Add(encodeChunked([]byte("hello, robot"), 64, true))
	f.Add([]byte("3\r\nabc\r\n0\r\n"))
	f.Add([]byte("ffffffffffffffff\r\n"))
	f.Add([]byte("0;chunk-signature=\r\nx:y\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, trailer, err := decodeAll(in)
		if len(out) > len(in) {
			t.Fatalf("decoded %d bytes from %d", len(out), len(in))
		}
		if err == nil {
			var lines []string
			for name, values := range trailer {
				for _, v := range values {
					lines = append(lines, name+":"+v)
				}
			}
			again, _, err := decodeAll(encodeChunked(out, 7, false, lines...))
			if err != nil || !bytes.Equal(again, out) {
				t.Fatalf("re-encoded body decodes to %q, %v; want %q", again, err, out)
			}
		}
		for _, signed := range []bool{false, true} {
			crc := fmt.Sprintf("x-amz-checksum-crc32:%08x", crc32.ChecksumIEEE(in))
			got, tr, err := decodeAll(encodeChunked(in, 1+len(in)%13, signed, crc))
			if err != nil || !bytes.Equal(got, in) || tr.Get("X-Amz-Checksum-Crc32") != crc[len("x-amz-checksum-crc32:"):] {
				t.Fatalf("round trip of %d bytes: %d bytes, %v", len(in), len(got), err)
			}
		}
	})
}

// TestChunkedUploads sends aws-chunked PUTs by hand, in the forms no client in these tests produces or with the
// faults a client should never send, and checks what the store makes of them.
func TestChunkedUploads(t *testing.T) {
	s := openStore(t, Options{})
	if err := s.CreateBucket("bundles"); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, s.Handler(), false)
	payload := randomBytes(9, 20_000)
	crc := crc32.ChecksumIEEE(payload)
	crcB64 := base64Std([]byte{byte(crc >> 24), byte(crc >> 16), byte(crc >> 8), byte(crc)})

	put := func(key string, body []byte, headers map[string]string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/bundles/"+key, bytes.NewReader(body))
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	signedHeaders := map[string]string{
		"Content-Encoding":             "aws-chunked",
		"X-Amz-Content-Sha256":         "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
		"X-Amz-Decoded-Content-Length": fmt.Sprint(len(payload)),
		"X-Amz-Trailer":                "x-amz-checksum-crc32",
	}

	resp, body := put("signed", encodeChunked(payload, 8192, true, "x-amz-checksum-crc32:"+crcB64, "x-amz-trailer-signature:00"), signedHeaders)
	if resp.StatusCode != 200 || resp.Header.Get("ETag") != etagOf(payload) || resp.Header.Get("X-Amz-Checksum-Crc32") != crcB64 {
		t.Fatalf("signed chunked PUT: %d %v\n%s", resp.StatusCode, resp.Header, body)
	}
	_, r, err := s.Open("bundles", "signed")
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := io.ReadAll(r)
	r.Close()
	if !bytes.Equal(stored, payload) {
		t.Fatal("stored bytes are not the decoded payload")
	}

	// Without a Content-Encoding header, x-amz-content-sha256 alone marks the body as aws-chunked.
	streamingOnly := map[string]string{"X-Amz-Content-Sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"}
	if resp, body := put("streaming-only", encodeChunked(payload, 4096, true), streamingOnly); resp.StatusCode != 200 {
		t.Fatalf("chunked PUT marked by payload hash only: %d\n%s", resp.StatusCode, body)
	}
	if o, err := s.Head("bundles", "streaming-only"); err != nil || o.ETag != etagOf(payload) {
		t.Fatalf("stored: %+v, %v", o, err)
	}

	for _, tc := range []struct {
		name, code string
		body       []byte
		headers    map[string]string
	}{
		{"trailing checksum mismatch", "BadDigest",
			encodeChunked(payload, 8192, true, "x-amz-checksum-crc32:AAAAAA=="), signedHeaders},
		{"trailer missing", "InvalidRequest", encodeChunked(payload, 8192, true), signedHeaders},
		{"fewer bytes than declared", "IncompleteBody",
			encodeChunked(payload[1:], 8192, true, "x-amz-checksum-crc32:"+crcB64), signedHeaders},
		{"malformed framing", "InvalidRequest", []byte("zz\r\n"), signedHeaders},
		{"header checksum mismatch", "BadDigest", payload, map[string]string{"X-Amz-Checksum-Crc32": "AAAAAA=="}},
		{"malformed checksum", "InvalidRequest", payload, map[string]string{"X-Amz-Checksum-Crc32": "not base64"}},
		{"two checksums", "InvalidRequest", payload, map[string]string{"X-Amz-Checksum-Crc32": crcB64, "X-Amz-Checksum-Sha1": "AAAAAAAAAAAAAAAAAAAAAAAAAAA="}},
		{"Content-MD5 mismatch", "BadDigest", payload, map[string]string{"Content-Md5": base64Std(make([]byte, 16))}},
		{"Content-MD5 malformed", "InvalidDigest", payload, map[string]string{"Content-Md5": "short"}},
		{"payload hash mismatch", "XAmzContentSHA256Mismatch", payload, map[string]string{"X-Amz-Content-Sha256": strings.Repeat("0", 64)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := put("refused", tc.body, tc.headers)
			if resp.StatusCode != 400 || !strings.Contains(body, "<Code>"+tc.code+"</Code>") {
				t.Fatalf("%d\n%s", resp.StatusCode, body)
			}
			if _, err := s.Head("bundles", "refused"); !errors.Is(err, ErrNoSuchKey) {
				t.Fatalf("refused upload was stored: %v", err)
			}
		})
	}

	// Every algorithm the SDKs use is verified: the right value is accepted, with and without aws-chunked.
	for _, alg := range checksumAlgorithms {
		h := alg.newHash()
		h.Write(payload)
		sum := base64Sum(h)
		resp, body := put("alg-"+string(alg), payload, map[string]string{alg.header(): sum})
		if resp.StatusCode != 200 || resp.Header.Get(alg.header()) != sum {
			t.Fatalf("%s in a header: %d\n%s", alg, resp.StatusCode, body)
		}
		resp, body = put("alg-chunked-"+string(alg), encodeChunked(payload, 1000, false, alg.header()+":"+sum),
			map[string]string{"Content-Encoding": "aws-chunked", "X-Amz-Trailer": alg.header(),
				"X-Amz-Content-Sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER"})
		if resp.StatusCode != 200 || resp.Header.Get(alg.header()) != sum {
			t.Fatalf("%s in a trailer: %d\n%s", alg, resp.StatusCode, body)
		}
	}
}

// TestCRC64NVME pins the CRC-64/NVME parameters against the algorithm's published check value.
func TestCRC64NVME(t *testing.T) {
	h := checksumAlgorithm("CRC64NVME").newHash()
	h.Write([]byte("123456789"))
	if got := fmt.Sprintf("%x", h.Sum(nil)); got != "ae8b14860a799888" {
		t.Fatalf("check value %s", got)
	}
}
