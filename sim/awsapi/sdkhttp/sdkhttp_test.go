package sdkhttp_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fleetlab/fleetlab/sim/awsapi/sdkhttp"
)

// sdkBody is a request body as the SDK gives it to net/http: Read and WriteTo answer io.EOF once it is closed.
// It closes itself the moment its last byte has been read, which is the worst time the SDK's close can come:
// after the service has the whole request and before net/http's check for extra bytes.
type sdkBody struct {
	mu     sync.Mutex
	r      *bytes.Reader
	closed bool
}

func (b *sdkBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, io.EOF
	}
	n, err := b.r.Read(p)
	if b.r.Len() == 0 {
		b.closed = true
	}
	return n, err
}

func (b *sdkBody) WriteTo(w io.Writer) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, io.EOF
	}
	return b.r.WriteTo(w)
}

func (b *sdkBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return nil
}

// call posts payload with an SDK-like body through c and returns the answer read to its end.
func call(t *testing.T, c *http.Client, url, payload string) (string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Body = &sdkBody{r: bytes.NewReader([]byte(payload))}
	req.ContentLength = int64(len(payload))
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestAnswerSurvivesTheBodyClosedAfterItsLastByte: with the body closed right after its last byte, calls through
// Transport get their whole long answers, on one kept-alive connection; the same calls straight through
// net/http's transport lose the connection (and, when the close overtakes the reader, the answer).
func TestAnswerSurvivesTheBodyClosedAfterItsLastByte(t *testing.T) {
	answer := strings.Repeat("0123456789abcdef", 64<<10/16) // longer than one buffered read
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b, err := io.ReadAll(r.Body); err != nil || string(b) != `{"job":"j-1"}` {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		io.WriteString(w, answer)
	}))
	defer srv.Close()
	newTransport := func(dials *atomic.Int32) *http.Transport {
		var d net.Dialer
		return &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return d.DialContext(ctx, network, addr)
		}}
	}

	var dials atomic.Int32
	tr := newTransport(&dials)
	defer tr.CloseIdleConnections()
	c := sdkhttp.Client(tr)
	for i := range 5 {
		got, err := call(t, c, srv.URL, `{"job":"j-1"}`)
		if err != nil || got != answer {
			t.Fatalf("call %d through Transport: %d bytes, %v; want the %d-byte answer", i, len(got), err, len(answer))
		}
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("5 calls through Transport dialled %d connections, want 1 kept alive", n)
	}

	// The same calls without it: the transport takes the second copy's io.EOF for a failed write and closes
	// the connection after every call. This is what Transport exists for; if net/http stops doing it, the
	// package's reason is gone and this part says so.
	var bare atomic.Int32
	raw := newTransport(&bare)
	defer raw.CloseIdleConnections()
	for range 5 {
		call(t, &http.Client{Transport: raw}, srv.URL, `{"job":"j-1"}`)
	}
	if n := bare.Load(); n < 2 {
		t.Logf("net/http no longer closes the connection on the closed body's io.EOF (%d dials for 5 calls)", n)
	}
}

// TestTransportKeepsTheRequest: the caller's request is not changed, bodies without WriteTo pass as they are,
// and wrapping twice wraps once.
func TestTransportKeepsTheRequest(t *testing.T) {
	var seen []io.ReadCloser
	rt := sdkhttp.Transport(roundTripper(func(r *http.Request) (*http.Response, error) {
		seen = append(seen, r.Body)
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
	}))
	if sdkhttp.Transport(rt) != rt {
		t.Error("Transport of a Transport wrapped it again")
	}
	sdk := &sdkBody{r: bytes.NewReader([]byte("x"))}
	req, _ := http.NewRequest(http.MethodPost, "http://service.invalid/", nil)
	req.Body = sdk
	if _, err := rt.RoundTrip(req); err != nil {
		t.Fatal(err)
	}
	if req.Body != sdk {
		t.Error("RoundTrip changed the caller's request body")
	}
	if _, ok := seen[0].(io.WriterTo); ok {
		t.Error("the transport underneath was given a body with WriteTo")
	}
	plain := plainBody{strings.NewReader("y")}
	req.Body = plain
	rt.RoundTrip(req)
	if b, ok := seen[1].(plainBody); !ok || b != plain {
		t.Error("a body without WriteTo was wrapped")
	}
}

// plainBody is a body with Read and Close only.
type plainBody struct{ io.Reader }

func (plainBody) Close() error { return nil }

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
