package artifacts

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestDeviceHandler mounts DeviceHandler under /artifacts/ as the device API does and downloads as a device
// does: whole, by range, conditionally, and checks it refuses everything but reads.
func TestDeviceHandler(t *testing.T) {
	s := openStore(t, Options{})
	if err := s.CreateBucket("bundles"); err != nil {
		t.Fatal(err)
	}
	body := randomBytes(31, 10_000)
	o, err := s.Put("bundles", "robot/x86_64/app.tar", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/artifacts/", http.StripPrefix("/artifacts", s.DeviceHandler()))
	srv := serve(t, mux, false)
	url := srv.URL + "/artifacts/bundles/robot/x86_64/app.tar"

	do := func(method, url string, headers ...string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(""))
		for i := 0; i < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}

	resp, got := do("GET", url)
	if resp.StatusCode != 200 || !bytes.Equal(got, body) || resp.Header.Get("ETag") != o.ETag ||
		resp.Header.Get("Accept-Ranges") != "bytes" || resp.Header.Get("Last-Modified") == "" {
		t.Fatalf("GET: %d %v", resp.StatusCode, resp.Header)
	}
	// Clients canonicalise header names as they read them; the handler's own spelling is S3's.
	direct := httptest.NewRecorder()
	s.DeviceHandler().ServeHTTP(direct, httptest.NewRequest("HEAD", "/bundles/robot/x86_64/app.tar", nil))
	if direct.Header()["ETag"] == nil {
		t.Fatalf("ETag header not spelled as S3 spells it: %v", direct.Header())
	}

	resp, got = do("GET", url, "Range", "bytes=1000-1999")
	if resp.StatusCode != 206 || !bytes.Equal(got, body[1000:2000]) || resp.Header.Get("Content-Range") != "bytes 1000-1999/10000" {
		t.Fatalf("range GET: %d %q", resp.StatusCode, resp.Header.Get("Content-Range"))
	}
	// A device resuming a download: from an offset to the end.
	resp, got = do("GET", url, "Range", "bytes=9000-")
	if resp.StatusCode != 206 || !bytes.Equal(got, body[9000:]) {
		t.Fatalf("resume GET: %d, %d bytes", resp.StatusCode, len(got))
	}
	resp, got = do("GET", url, "Range", "bytes=10000-")
	if resp.StatusCode != 416 || !strings.Contains(string(got), "<Code>InvalidRange</Code>") ||
		resp.Header.Get("Content-Range") != "bytes */10000" || !strings.Contains(string(got), "<ActualObjectSize>10000</ActualObjectSize>") {
		t.Fatalf("unsatisfiable range: %d %s", resp.StatusCode, got)
	}
	resp, got = do("GET", url, "Range", "bytes=0-1,5-6") // several ranges: S3 sends the whole object
	if resp.StatusCode != 200 || len(got) != len(body) {
		t.Fatalf("multiple ranges: %d, %d bytes", resp.StatusCode, len(got))
	}

	resp, got = do("HEAD", url)
	if resp.StatusCode != 200 || len(got) != 0 || resp.ContentLength != int64(len(body)) || resp.Header.Get("ETag") != o.ETag {
		t.Fatalf("HEAD: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, _ := do("GET", url, "If-None-Match", o.ETag); resp.StatusCode != 304 || resp.Header.Get("ETag") != o.ETag {
		t.Fatalf("If-None-Match with the current ETag: %d", resp.StatusCode)
	}
	if resp, _ := do("GET", url, "If-None-Match", `"0123"`); resp.StatusCode != 200 {
		t.Fatalf("If-None-Match with another ETag: %d", resp.StatusCode)
	}
	if resp, got := do("GET", url, "If-Match", `"0123"`); resp.StatusCode != 412 || !strings.Contains(string(got), "<Code>PreconditionFailed</Code>") {
		t.Fatalf("If-Match with another ETag: %d %s", resp.StatusCode, got)
	}
	if resp, _ := do("GET", url, "If-Match", o.ETag); resp.StatusCode != 200 {
		t.Fatalf("If-Match with the current ETag: %d", resp.StatusCode)
	}
	lm := resp.Header.Get("Last-Modified")
	if resp, _ := do("GET", url, "If-Modified-Since", lm); resp.StatusCode != 304 {
		t.Fatalf("If-Modified-Since its own time: %d", resp.StatusCode)
	}

	resp, got = do("GET", srv.URL+"/artifacts/bundles/robot/none")
	if resp.StatusCode != 404 || !strings.Contains(string(got), "<Code>NoSuchKey</Code>") ||
		!strings.Contains(string(got), "<Key>robot/none</Key>") || !strings.Contains(string(got), "<RequestId>") {
		t.Fatalf("missing key: %d %s", resp.StatusCode, got)
	}
	for _, tc := range []struct {
		method, url string
		status      int
	}{
		{"PUT", url, 405},
		{"DELETE", url, 405},
		{"POST", url + "?uploads", 405},
		{"GET", url + "?acl", 405},
		{"GET", srv.URL + "/artifacts/bundles", 400},
		{"GET", srv.URL + "/artifacts/", 400},
	} {
		if resp, got := do(tc.method, tc.url); resp.StatusCode != tc.status {
			t.Errorf("%s %s: %d %s", tc.method, tc.url, resp.StatusCode, got)
		}
	}
	if o2, _ := s.Head("bundles", "robot/x86_64/app.tar"); o2 != o {
		t.Fatal("a refused request changed the object")
	}
}
