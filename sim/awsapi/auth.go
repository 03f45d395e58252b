package awsapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"hash"
	"io"
	"net/http"
	"strings"
)

// authKind is why a signature check failed, in words every dialect has its own code for.
type authKind int

const (
	authMissing      authKind = iota // no Authorization header
	authMalformed                    // not a SigV4 header, or X-Amz-Date missing or inconsistent
	authUnknownKey                   // an access key the route does not take
	authScope                        // a credential scope of another service
	authExpired                      // X-Amz-Date too far from now
	authBadSignature                 // the signature does not match
	authPayload                      // the body does not match the declared hash
)

// authError is a failed signature check.
type authError struct {
	kind authKind
	msg  string
}

// json is the failure as the JSON dialects and the IoT data plane answer it.
func (a *authError) json() *Error {
	switch a.kind {
	case authMissing:
		return NewError("MissingAuthenticationTokenException", http.StatusForbidden, "Missing Authentication Token")
	case authMalformed:
		return NewError("IncompleteSignatureException", http.StatusBadRequest, "%s", a.msg)
	case authUnknownKey:
		return NewError("UnrecognizedClientException", http.StatusForbidden,
			"The security token included in the request is invalid.")
	case authScope, authExpired:
		return NewError("InvalidSignatureException", http.StatusForbidden, "%s", a.msg)
	case authPayload:
		return NewError("XAmzContentSHA256Mismatch", http.StatusBadRequest,
			"The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	return NewError("InvalidSignatureException", http.StatusForbidden,
		"The request signature we calculated does not match the signature you provided. "+
			"Check your AWS Secret Access Key and signing method.")
}

// s3 is the failure as S3 answers it: status, code and message.
func (a *authError) s3() (int, string, string) {
	switch a.kind {
	case authMissing:
		return http.StatusForbidden, "AccessDenied", "Access Denied"
	case authMalformed:
		return http.StatusBadRequest, "AuthorizationHeaderMalformed", a.msg
	case authUnknownKey:
		return http.StatusForbidden, "InvalidAccessKeyId",
			"The AWS Access Key Id you provided does not exist in our records."
	case authScope:
		return http.StatusBadRequest, "AuthorizationHeaderMalformed", a.msg
	case authExpired:
		return http.StatusForbidden, "RequestTimeTooSkewed", a.msg
	case authPayload:
		return http.StatusBadRequest, "XAmzContentSHA256Mismatch",
			"The provided 'x-amz-content-sha256' header does not match what was computed."
	}
	return http.StatusForbidden, "SignatureDoesNotMatch",
		"The request signature we calculated does not match the signature you provided. Check your key and signing method."
}

// writeS3Error answers as S3 does: an XML Error document.
func writeS3Error(w http.ResponseWriter, id string, status int, code, message string) {
	body, _ := xml.Marshal(struct {
		XMLName   xml.Name `xml:"Error"`
		Code      string
		Message   string
		RequestID string `xml:"RequestId"`
	}{Code: code, Message: message, RequestID: id})
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("X-Amz-Request-Id", id)
	w.WriteHeader(status)
	io.WriteString(w, xml.Header)
	w.Write(body)
}

// ErrPayloadMismatch is the read error of a body that does not match the SHA-256 it declared
// (X-Amz-Content-Sha256): the S3 handler answers it XAmzContentSHA256Mismatch.
var ErrPayloadMismatch = errors.New("the body does not match x-amz-content-sha256")

// checkedBody checks a body against its declared SHA-256 as it is read: the read that reaches the end fails with
// ErrPayloadMismatch when the hash differs, so nothing reading to the end can take a tampered body.
type checkedBody struct {
	io.ReadCloser
	h    hash.Hash
	want string
}

func (b *checkedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.h.Write(p[:n])
	if err == io.EOF && hex.EncodeToString(b.h.Sum(nil)) != b.want {
		return n, ErrPayloadMismatch
	}
	return n, err
}

// withPayloadCheck makes r's body check itself against a declared hex SHA-256 as it is read.
func (s *signedRequest) withPayloadCheck(r *http.Request) {
	if s.declared == unsignedPayload || strings.HasPrefix(s.declared, streamingPrefix) || r.Body == nil {
		return
	}
	r.Body = &checkedBody{ReadCloser: r.Body, h: sha256.New(), want: s.declared}
}

type chunkSignerKey struct{}

// ChunkSignerOf returns the checker of a request's chunk signatures, when the service checks signatures and the
// request's chunks are signed.
func ChunkSignerOf(ctx context.Context) (ChunkSigner, bool) {
	c, ok := ctx.Value(chunkSignerKey{}).(ChunkSigner)
	return c, ok
}

// serveS3 serves an S3 request: its signature checked first when the handler checks signatures.
func (h *Handler) serveS3(w http.ResponseWriter, r *http.Request) {
	if h.opts.Auth != nil {
		s, e := h.opts.Auth.check(r, h.opts.Auth.Keys, []string{"s3"}, true)
		if e != nil {
			status, code, msg := e.s3()
			writeS3Error(w, strings.ToUpper(h.opts.IDs.Hex(8)), status, code, msg)
			return
		}
		switch s.declared {
		case streamingSigned, streamingTrailer:
			r = r.WithContext(context.WithValue(r.Context(), chunkSignerKey{},
				ChunkSigner(&chunkSigner{s: s, prev: s.signature})))
		default:
			s.withPayloadCheck(r)
		}
	}
	h.opts.S3.ServeHTTP(w, r)
}

// maxDeviceBody bounds the body of a device request whose signature needs it (no declared hash): data-plane
// requests are far smaller.
const maxDeviceBody = 64 << 10

// serveMounted serves a mounted request: when the handler checks signatures, it must be signed by a device key
// with a device scope (the device API), or as the mount's options say (an AWS API of its own), checked before
// the body is read.
func (h *Handler) serveMounted(w http.ResponseWriter, r *http.Request, m *mount) {
	if a := h.opts.Auth; a != nil {
		fail := func(e *Error) { e.Write(w, "message", "application/json") }
		if m.opts.WriteError != nil {
			fail = func(e *Error) { m.opts.WriteError(w, e.Status, e.Code, e.Message) }
		}
		keys, services, limit := a.DeviceKeys, DeviceServices, int64(maxDeviceBody)
		if len(m.opts.Services) > 0 {
			op := ""
			if m.opts.Operation != nil {
				op = m.opts.Operation(r)
			}
			keys, services = a.keysFor(m.opts.Dialect, op), m.opts.Services
		}
		if m.opts.MaxBody > 0 {
			limit = m.opts.MaxBody
		}
		s, e := a.check(r, keys, services, false)
		if e != nil {
			fail(e.json())
			return
		}
		if s.needsBody() {
			body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
			if err != nil {
				fail(NewError("InvalidRequestException", http.StatusBadRequest, "request body could not be read: %v", err))
				return
			}
			if int64(len(body)) > limit {
				fail(NewError("InvalidRequestException", http.StatusBadRequest,
					"request body is larger than the limit of %d bytes", limit))
				return
			}
			if e := s.payload(body); e != nil {
				fail(e.json())
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		} else {
			s.withPayloadCheck(r)
		}
	}
	m.handler.ServeHTTP(w, r)
}
