package link

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"syscall"

	"github.com/fleetlab/fleetlab/sim/clock"
)

// Transport returns an http.RoundTripper that sends requests through base over this link, as a Proxy does with
// an agent's connections: each request is admitted first (a partition refuses it, latency delays it, a drop
// loses it — each failing as a reset connection would), and the answer's body arrives at the link's bandwidth
// and breaks when a partition starts.
func (s *Shaper) Transport(base http.RoundTripper) http.RoundTripper {
	return &shapedTransport{s: s, base: base}
}

type shapedTransport struct {
	s    *Shaper
	base http.RoundTripper
}

func (t *shapedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.s.Admit(req.Context()); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		if req.Context().Err() != nil {
			return nil, err
		}
		return nil, &net.OpError{Op: "write", Net: "tcp", Err: fmt.Errorf("%w: %w", err, syscall.ECONNRESET)}
	}
	resp, err := t.base.RoundTrip(req)
	if err == nil && resp.StatusCode != http.StatusSwitchingProtocols {
		resp.Body = t.s.Body(req.Context(), resp.Body)
	}
	return resp, err
}

// InProcess is an http.RoundTripper that serves a request by calling an http.Handler of this process in the
// calling goroutine: no socket, no goroutine of its own. The whole handler chain runs — routing, middleware,
// fault hooks — and the answer is buffered, then returned as a client receives it. A handler that hijacks the
// connection (a websocket upgrade) cannot be served this way and fails.
//
// On a virtual-time world's clock (clock.World) a request made by one of the world's actors is served within
// its turn; one made from outside the world is served as an outside caller (clock.Do), at the world's next
// quiescent point.
type InProcess struct {
	// Clock is the world's clock, when the handlers belong to a world; nil otherwise.
	Clock clock.Clock
	// Handler returns the handler that serves host (the request URL's host:port), or an error when nothing serves
	// it now, such as a service that is stopped: the request then fails as a refused connection does.
	Handler func(host string) (http.Handler, error)
}

var _ http.RoundTripper = (*InProcess)(nil)

// ForActors returns a RoundTripper like t for clients that only the world's actors use, such as the robots'
// agents: it serves each request in the caller's turn without asking who the caller is.
func (t *InProcess) ForActors() http.RoundTripper { return actorTransport{t} }

type actorTransport struct{ t *InProcess }

func (a actorTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		defer req.Body.Close()
	}
	return a.t.serve(req)
}

// RoundTrip implements http.RoundTripper.
func (t *InProcess) RoundTrip(req *http.Request) (resp *http.Response, err error) {
	if req.Body != nil {
		defer req.Body.Close()
	}
	if derr := clock.Do(t.Clock, func() { resp, err = t.serve(req) }); derr != nil {
		return nil, derr
	}
	return resp, err
}

func (t *InProcess) serve(req *http.Request) (*http.Response, error) {
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	h, err := t.Handler(req.URL.Host)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("%w: %w", err, syscall.ECONNREFUSED)}
	}
	rec := &recorder{header: http.Header{}}
	if aborted := rec.serve(h, serverRequest(req)); aborted {
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	}
	return rec.response(req), nil
}

// serverRequest is req as a server's handler receives it: a path-only URL, RequestURI and Host set, the
// Content-Length a server would parse.
func serverRequest(req *http.Request) *http.Request {
	r := req.Clone(req.Context())
	r.Header = canonical(req.Header)
	r.URL = &url.URL{Path: req.URL.Path, RawPath: req.URL.RawPath, RawQuery: req.URL.RawQuery}
	r.RequestURI = req.URL.RequestURI()
	if r.Host == "" {
		r.Host = req.URL.Host
	}
	r.RemoteAddr = "127.0.0.1:1"
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	r.Close = false
	r.GetBody = nil
	switch {
	case r.Body == nil || r.Body == http.NoBody:
		r.Body, r.ContentLength = http.NoBody, 0
	case r.ContentLength > 0:
		r.Header.Set("Content-Length", strconv.FormatInt(r.ContentLength, 10))
	case r.ContentLength < 0:
		r.TransferEncoding = []string{"chunked"}
	}
	return r
}

// recorder is the ResponseWriter of an in-process request.
type recorder struct {
	header http.Header
	sent   http.Header // the header as it was when the status was written
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status != 0 {
		return
	}
	r.status = code
	r.sent = canonical(r.header)
}

// canonical copies h with every key in canonical form, as a header read off the wire has them: a key set as
// h["ETag"] is read as "Etag".
func canonical(h http.Header) http.Header {
	out := make(http.Header, len(h))
	for k, vs := range h {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		out[ck] = append(out[ck], vs...)
	}
	return out
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		if r.header.Get("Content-Type") == "" && len(b) > 0 {
			r.header.Set("Content-Type", http.DetectContentType(b))
		}
		r.WriteHeader(http.StatusOK)
	}
	return r.body.Write(b)
}

// Flush implements http.Flusher: the answer is buffered whole anyway.
func (r *recorder) Flush() {}

// serve runs h; it reports whether h aborted the answer (http.ErrAbortHandler), as a handler that drops the
// connection does.
func (r *recorder) serve(h http.Handler, req *http.Request) (aborted bool) {
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				panic(p)
			}
			aborted = true
		}
	}()
	h.ServeHTTP(r, req)
	return false
}

func (r *recorder) response(req *http.Request) *http.Response {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	body := r.body.Bytes()
	resp := &http.Response{Status: fmt.Sprintf("%d %s", r.status, http.StatusText(r.status)), StatusCode: r.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: r.sent, Request: req,
		ContentLength: int64(len(body)), Body: io.NopCloser(bytes.NewReader(body))}
	if req.Method == http.MethodHead || r.status == http.StatusNoContent || r.status == http.StatusNotModified {
		resp.Body, resp.ContentLength = http.NoBody, 0
		if n, err := strconv.ParseInt(r.sent.Get("Content-Length"), 10, 64); err == nil {
			resp.ContentLength = n
		}
	}
	return resp
}
