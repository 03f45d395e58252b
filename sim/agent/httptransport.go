package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/gorilla/websocket"

	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
)

// maxAnswer bounds the size of a data-plane answer the agent reads; a job document is far smaller.
const maxAnswer = 4 << 20

// HTTPTransport speaks the IoT Jobs data plane, the artifact store and the websocket notify channel over
// HTTP at the device API's endpoint, for one thing.
type HTTPTransport struct {
	base    string // endpoint without a trailing slash
	thing   string // path-escaped thing name
	client  *http.Client
	objects *http.Client // artifact downloads (default client)
	dialer  *websocket.Dialer
	creds   *Credentials // nil: requests are not signed
	signer  *v4.Signer
}

// Credentials are a device's own keys for a service that checks signatures (`fleetlab serve --auth sigv4`).
type Credentials struct {
	AccessKey, SecretKey string
	// Region is the credential scope's region (default us-east-1).
	Region string
}

// SigningName is the credential scope the transport signs with: the IoT Jobs data plane's, as the AWS SDKs sign
// for it.
const SigningName = "iot-jobs-data"

// SignWith makes the transport sign every request — the data plane, downloads and the notify channel's upgrade
// — with c, by SigV4 as the AWS SDKs do for the IoT Jobs data plane, declaring each body's hash so the service
// checks the signature before it reads the body. Call it before the transport is used.
func (t *HTTPTransport) SignWith(c Credentials) {
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	t.creds, t.signer = &c, v4.NewSigner()
}

// sign signs req, whose body is body, for the IoT Jobs data plane when the transport has credentials.
func (t *HTTPTransport) sign(req *http.Request, body []byte) error {
	return t.signFor(req, body, SigningName)
}

// signFor signs req, whose body is body, under signing name service when the transport has credentials.
// Signatures carry the wall-clock time, which the service compares with its own wall clock whatever the
// device's clock says.
func (t *HTTPTransport) signFor(req *http.Request, body []byte, service string) error {
	if t.creds == nil {
		return nil
	}
	return signHTTP(t.signer, *t.creds, req, body, service)
}

// Sign signs req, whose body is body, with c under signing name service — SigV4 as the AWS SDKs sign, declaring
// the body's hash so the service checks the signature before it reads the body — for a device's calls of the
// cloud's APIs that do not go through an HTTPTransport (an AppConfig device's AppConfigData and CloudWatch
// calls). Signatures carry the wall-clock time, which the service compares with its own wall clock whatever the
// device's clock says.
func (c Credentials) Sign(req *http.Request, body []byte, service string) error {
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	return signHTTP(v4.NewSigner(), c, req, body, service)
}

func signHTTP(signer *v4.Signer, c Credentials, req *http.Request, body []byte, service string) error {
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	err := signer.SignHTTP(req.Context(), aws.Credentials{AccessKeyID: c.AccessKey, SecretAccessKey: c.SecretKey},
		req, hash, service, c.Region, clock.Real{}.Now())
	if err != nil {
		return fmt.Errorf("sign %s %s: %w", req.Method, req.URL.Path, err)
	}
	return nil
}

var _ Transport = (*HTTPTransport)(nil)
var _ APICaller = (*HTTPTransport)(nil)

// APICaller is the optional ability of a Transport to call the cloud's other APIs as the device does — the
// Greengrass nucleus resolves its components with the cloud's ResolveComponentCandidates: one JSON request at
// the transport's endpoint, through its client, signed (when the transport signs) with the device's keys under
// the API's signing name. Errors are the Transport's: an answer outside 2xx is an *APIError, a link failure is
// Transient.
type APICaller interface {
	// CallAPI sends in (JSON; nil for no body) by method to path, signed for signingName, and decodes a JSON
	// answer into out (nil: the answer is discarded).
	CallAPI(ctx context.Context, signingName, method, path string, in, out any) error
}

// CallAPI implements APICaller.
func (t *HTTPTransport) CallAPI(ctx context.Context, signingName, method, path string, in, out any) error {
	return t.call(ctx, signingName, method, path, in, out)
}

// NewHTTPTransport returns a transport for thing at endpoint (e.g. "http://127.0.0.1:4566"). A nil client
// means a client of its own, whose idle connections CloseIdleConnections releases.
func NewHTTPTransport(endpoint, thing string, client *http.Client) (*HTTPTransport, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("parse endpoint: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("endpoint %q: want http(s)://host[:port]", endpoint)
	}
	if thing == "" {
		return nil, errors.New("thing name is empty")
	}
	if client == nil {
		client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	return &HTTPTransport{
		base:    strings.TrimRight(endpoint, "/"),
		thing:   url.PathEscape(thing),
		client:  client,
		objects: client,
		dialer:  &websocket.Dialer{Proxy: http.ProxyFromEnvironment, HandshakeTimeout: websocket.DefaultDialer.HandshakeTimeout},
	}, nil
}

// CloseIdleConnections closes the client's idle keep-alive connections.
func (t *HTTPTransport) CloseIdleConnections() { t.client.CloseIdleConnections() }

// Pending implements Transport.
func (t *HTTPTransport) Pending(ctx context.Context) (wire.GetPendingJobExecutionsResponse, error) {
	var out wire.GetPendingJobExecutionsResponse
	err := t.do(ctx, http.MethodGet, fmt.Sprintf(wire.PathPending, t.thing), nil, &out)
	return out, err
}

// StartNext implements Transport.
func (t *HTTPTransport) StartNext(ctx context.Context, req wire.StartNextPendingJobExecutionRequest) (*wire.JobExecution, error) {
	var out wire.StartNextPendingJobExecutionResponse
	if err := t.do(ctx, http.MethodPut, fmt.Sprintf(wire.PathNext, t.thing), req, &out); err != nil {
		return nil, err
	}
	return out.Execution, nil
}

// Describe implements Transport.
func (t *HTTPTransport) Describe(ctx context.Context, jobID string) (*wire.JobExecution, error) {
	var out wire.DescribeJobExecutionResponse
	p := fmt.Sprintf(wire.PathExecution, t.thing, url.PathEscape(jobID)) + "?includeJobDocument=true"
	if err := t.do(ctx, http.MethodGet, p, nil, &out); err != nil {
		return nil, err
	}
	if out.Execution == nil {
		return nil, &APIError{Status: http.StatusNotFound, Code: wire.ErrResourceNotFound, Message: "no execution in the answer"}
	}
	return out.Execution, nil
}

// Update implements Transport.
func (t *HTTPTransport) Update(ctx context.Context, jobID string, req wire.UpdateJobExecutionRequest) (wire.UpdateJobExecutionResponse, error) {
	var out wire.UpdateJobExecutionResponse
	err := t.do(ctx, http.MethodPost, fmt.Sprintf(wire.PathExecution, t.thing, url.PathEscape(jobID)), req, &out)
	return out, err
}

// Fetch implements Fetcher. Bucket and each segment of key are path-escaped; the slashes of the key stay.
func (t *HTTPTransport) Fetch(ctx context.Context, bucket, key string, offset int64) (*Object, error) {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.base+"/artifacts/"+url.PathEscape(bucket)+"/"+strings.Join(segs, "/"), nil)
	if err != nil {
		return nil, fmt.Errorf("fetch %s/%s: %w", bucket, key, err)
	}
	if offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	if err := t.sign(req, nil); err != nil {
		return nil, err
	}
	resp, err := t.objects.Do(req)
	if err != nil {
		return nil, linkErr(ctx, fmt.Errorf("fetch %s/%s: %w", bucket, key, err))
	}
	obj := &Object{Body: &linkBody{ctx: ctx, rc: resp.Body}, Size: -1, ETag: resp.Header.Get("ETag")}
	switch resp.StatusCode {
	case http.StatusOK:
		obj.Size = resp.ContentLength
	case http.StatusPartialContent:
		start, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok {
			resp.Body.Close()
			return nil, fmt.Errorf("fetch %s/%s: bad Content-Range %q", bucket, key, resp.Header.Get("Content-Range"))
		}
		obj.Offset, obj.Size = start, size
	default:
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	return obj, nil
}

// Subscribe implements Transport: it dials the websocket notify channel and reads wire.Notify messages until
// the connection ends, ctx does, or the stream is closed.
func (t *HTTPTransport) Subscribe(ctx context.Context) (Notifications, error) {
	path := fmt.Sprintf(wire.PathNotify, t.thing)
	var header http.Header
	if t.creds != nil {
		// The upgrade is an ordinary GET until it is answered: sign it as one, and send what the signature needs.
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.base+path, nil)
		if err != nil {
			return nil, fmt.Errorf("dial notify: %w", err)
		}
		if err := t.sign(req, nil); err != nil {
			return nil, err
		}
		header = http.Header{}
		for _, h := range []string{"Authorization", "X-Amz-Date", "X-Amz-Content-Sha256"} {
			header.Set(h, req.Header.Get(h))
		}
	}
	u := "ws" + strings.TrimPrefix(t.base, "http") + path
	conn, resp, err := t.dialer.DialContext(ctx, u, header)
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			defer resp.Body.Close()
			return nil, decodeError(resp)
		}
		return nil, linkErr(ctx, fmt.Errorf("dial notify: %w", err))
	}
	// Next reads the socket on the listening goroutine itself: a reader goroutine of its own and a queue to hand
	// over each message cost a goroutine per device and a handoff per message. Ending ctx closes the socket,
	// which ends a read in progress.
	conn.SetReadLimit(64 << 10)
	return &socketStream{conn: conn, stop: context.AfterFunc(ctx, func() { conn.Close() })}, nil
}

// socketStream is the notify channel over a websocket, read by one goroutine.
type socketStream struct {
	conn *websocket.Conn
	stop func() bool // the subscription context's hook that closes conn
}

// Next reads the next notification; the error is ctx's when ctx ended, the socket's otherwise.
func (s *socketStream) Next(ctx context.Context) (wire.Notify, error) {
	if err := ctx.Err(); err != nil {
		return wire.Notify{}, err
	}
	stop := context.AfterFunc(ctx, func() { s.conn.Close() })
	defer stop()
	var n wire.Notify
	if err := s.conn.ReadJSON(&n); err != nil {
		if ctx.Err() != nil {
			return wire.Notify{}, ctx.Err()
		}
		return wire.Notify{}, err
	}
	return n, nil
}

func (s *socketStream) Close() {
	s.stop()
	s.conn.Close()
}

// do sends one data-plane request with a JSON body (nil for none) and decodes a JSON answer into out.
func (t *HTTPTransport) do(ctx context.Context, method, path string, in, out any) error {
	return t.call(ctx, SigningName, method, path, in, out)
}

// call sends one request with a JSON body (nil for none), signed for signingName, and decodes a JSON answer
// into out.
func (t *HTTPTransport) call(ctx context.Context, signingName, method, path string, in, out any) error {
	var body io.Reader
	var payload []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body, payload = bytes.NewReader(b), b
	}
	req, err := http.NewRequestWithContext(ctx, method, t.base+path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header["Content-Type"] = jsonContentType // shared: the transport only reads it
	}
	if err := t.signFor(req, payload, signingName); err != nil {
		return err
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return linkErr(ctx, fmt.Errorf("%s %s: %w", method, path, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(resp)
	}
	buf := answers.Get().(*bytes.Buffer)
	defer putAnswer(buf)
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, maxAnswer)); err != nil {
		return linkErr(ctx, fmt.Errorf("%s %s: read answer: %w", method, path, err))
	}
	if buf.Len() == 0 || out == nil {
		return nil
	}
	// Unmarshal copies what it keeps, so the buffer goes back to the pool.
	if err := json.Unmarshal(buf.Bytes(), out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

var jsonContentType = []string{"application/json"}

// answers are the buffers answers are read into. A job document makes an answer a few KiB; io.ReadAll grew a
// new buffer for every one (a sixth of an in-process fleet's garbage on HTTP).
var answers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// putAnswer returns buf to the pool, unless an unusually large answer grew it.
func putAnswer(buf *bytes.Buffer) {
	if buf.Cap() > 64<<10 {
		return
	}
	buf.Reset()
	answers.Put(buf)
}

// decodeError turns an answer outside 2xx into an *APIError the way the AWS SDKs do: the code from the
// X-Amzn-ErrorType header (cut at ':'), else from the body's __type or code (cut up to '#' and from ':'); the
// message from the body's message or Message.
func decodeError(resp *http.Response) error {
	var body struct {
		Type     string `json:"__type"`
		Code     string `json:"code"`
		Message  string `json:"message"`
		MessageU string `json:"Message"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = json.Unmarshal(b, &body)
	code := resp.Header.Get("X-Amzn-ErrorType")
	if code == "" {
		code = body.Type
		if code == "" {
			code = body.Code
		}
		if i := strings.LastIndexByte(code, '#'); i >= 0 {
			code = code[i+1:]
		}
	}
	if i := strings.IndexByte(code, ':'); i >= 0 {
		code = code[:i]
	}
	msg := body.Message
	if msg == "" {
		msg = body.MessageU
	}
	if code == "" {
		code = http.StatusText(resp.StatusCode)
	}
	return &APIError{Status: resp.StatusCode, Code: code, Message: msg}
}

// parseContentRange parses "bytes start-end/size"; size is -1 for "*".
func parseContentRange(v string) (start, size int64, ok bool) {
	rest, found := strings.CutPrefix(v, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, total, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	first, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(first, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, false
	}
	if total == "*" {
		return start, -1, true
	}
	size, err = strconv.ParseInt(total, 10, 64)
	if err != nil || size < start {
		return 0, 0, false
	}
	return start, size, true
}

// linkErr marks a link-level error transient unless it comes from ctx having ended.
func linkErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return err
	}
	return Transient(err)
}

// linkBody marks read errors of a response body (a connection cut mid-body) transient.
type linkBody struct {
	ctx context.Context
	rc  io.ReadCloser
}

func (b *linkBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF {
		err = linkErr(b.ctx, err)
	}
	return n, err
}

func (b *linkBody) Close() error { return b.rc.Close() }
