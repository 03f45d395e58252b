// Package sdkhttp gives the AWS SDK for Go v2 clients fleetlab drives its service with an HTTP client that does
// not lose answers.
//
// The SDK wraps a request body in a reader whose WriteTo, once the body is closed, returns io.EOF, and it closes
// the body as soon as the response headers arrive. net/http writes a body of known length in two copies: the
// length, then a read of what is left to check for extra bytes. When the service answers between the two (it
// has the whole request after the first), the second copy meets a closed body, io.Copy hands its io.EOF back as a
// write error, and the transport closes the connection, under the caller still reading the response body: the
// call fails with "use of closed network connection". Only answers longer than one buffered read are cut, so it
// is seen on describes of large jobs, on a loaded machine.
//
// Transport hides WriteTo from the transport: the second copy then reads the closed body with Read, whose io.EOF
// is the normal end of a body.
package sdkhttp

import (
	"io"
	"net/http"
)

// Client returns an HTTP client for an SDK client's HTTPClient option, carrying its calls over rt (nil:
// http.DefaultTransport) through Transport.
func Client(rt http.RoundTripper) *http.Client { return &http.Client{Transport: Transport(rt)} }

// Transport returns rt (nil: http.DefaultTransport) with every request body given to it as a plain reader.
func Transport(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	if t, ok := rt.(*transport); ok {
		return t
	}
	return &transport{rt}
}

type transport struct{ rt http.RoundTripper }

// body is a request body without its WriteTo.
type body struct {
	io.Reader
	io.Closer
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return t.rt.RoundTrip(req)
	}
	if _, ok := req.Body.(io.WriterTo); !ok {
		return t.rt.RoundTrip(req)
	}
	r := *req // a RoundTripper may not change its request; a shallow copy is the request net/http would send
	r.Body = body{req.Body, req.Body}
	return t.rt.RoundTrip(&r)
}

// CloseIdleConnections closes the idle connections of the transport underneath, when it has them.
func (t *transport) CloseIdleConnections() {
	if c, ok := t.rt.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
