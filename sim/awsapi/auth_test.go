package awsapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/clock"
)

// oneEndpoint is a handler with every kind of route: a RoboMaker operation, a mounted device API and an S3
// handler, each recording the requests that reach it and the body bytes it read; and, around everything, a
// count of the body bytes anyone read.
type oneEndpoint struct {
	url string

	mu      sync.Mutex
	reached []string // "api", "device", "s3"
	bodies  []string // what each reached handler read of the body, or its read error
	read    int      // body bytes read by anyone
}

func newOneEndpoint(t *testing.T, auth *awsapi.SigV4) *oneEndpoint {
	t.Helper()
	e := &oneEndpoint{}
	reach := func(kind string, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		body := string(b)
		if err != nil {
			body = "error: " + err.Error()
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		e.reached = append(e.reached, kind)
		e.bodies = append(e.bodies, body)
	}
	s3 := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reach("s3", r) })
	h := awsapi.NewHandler(awsapi.Options{Auth: auth, S3: s3})
	if err := h.Register(awsapi.Service{Model: rmModel(t), Invalid: invalidParameter}, map[string]awsapi.Operation{
		"CreateFleet": {Handle: func(r *awsapi.Request) (any, error) {
			reach("api", r.HTTP)
			return map[string]any{}, nil
		}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := h.Mount("/things/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reach("device", r) })); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = &countingBody{ReadCloser: r.Body, e: e}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

type countingBody struct {
	io.ReadCloser
	e *oneEndpoint
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.e.mu.Lock()
	b.e.read += n
	b.e.mu.Unlock()
	return n, err
}

// take returns and forgets what reached the handlers and how much body was read.
func (e *oneEndpoint) take() (reached, bodies []string, read int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	reached, bodies, read = e.reached, e.bodies, e.read
	e.reached, e.bodies, e.read = nil, nil, 0
	return reached, bodies, read
}

// call is one hand-made request: signed with key and secret for service unless key is empty, with the body's
// hash declared in X-Amz-Content-Sha256 when declare, and then its body replaced by send when send is not "".
type call struct {
	method, path, body string
	key, secret        string
	service            string
	declare            bool
	send               string
}

func (e *oneEndpoint) do(t *testing.T, c call) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(c.method, e.url+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256([]byte(c.body))
	hash := hex.EncodeToString(sum[:])
	if c.declare {
		req.Header.Set("X-Amz-Content-Sha256", hash)
	}
	if c.key != "" {
		signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = c.service == "s3" })
		if err := signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: c.key, SecretAccessKey: c.secret},
			req, hash, c.service, "us-east-1", clock.Real{}.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if c.send != "" {
		req.Body, req.ContentLength = io.NopCloser(strings.NewReader(c.send)), int64(len(c.send))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

var testAuth = &awsapi.SigV4{Keys: map[string]string{"AK": "SK"}, DeviceKeys: map[string]string{"DK": "DS"}}

// errorCode is the error code of an answer: the JSON dialects' header, or S3's XML <Code>.
func errorCode(h http.Header, body string) string {
	if c := h.Get("X-Amzn-ErrorType"); c != "" {
		return c
	}
	_, rest, _ := strings.Cut(body, "<Code>")
	code, _, _ := strings.Cut(rest, "</Code>")
	return code
}

// TestSignatureCheckedBeforeBody sends requests whose signature is wrong, or missing, or by a key the route
// does not take, to every kind of route: each is refused without a byte of its body read, and reaches nothing.
func TestSignatureCheckedBeforeBody(t *testing.T) {
	e := newOneEndpoint(t, testAuth)
	body := `{"name":"fleet-with-a-body"}`
	for _, tc := range []struct {
		name   string
		call   call
		status int
		code   string
	}{
		{"api, declared hash, wrong secret", call{method: "POST", path: "/createFleet", key: "AK", secret: "wrong",
			service: "robomaker", declare: true}, 403, "InvalidSignatureException"},
		{"api, unknown key", call{method: "POST", path: "/createFleet", key: "NOPE", secret: "SK",
			service: "robomaker"}, 403, "UnrecognizedClientException"},
		{"api, a device's key", call{method: "POST", path: "/createFleet", key: "DK", secret: "DS",
			service: "robomaker"}, 403, "UnrecognizedClientException"},
		{"api, scoped to another service", call{method: "POST", path: "/createFleet", key: "AK", secret: "SK",
			service: "greengrass"}, 403, "InvalidSignatureException"},
		{"api, unsigned", call{method: "POST", path: "/createFleet"}, 403, "MissingAuthenticationTokenException"},
		{"s3, wrong secret", call{method: "PUT", path: "/bundles/hello.tar.gz", key: "AK", secret: "wrong",
			service: "s3", declare: true}, 403, "SignatureDoesNotMatch"},
		{"s3, no declared hash", call{method: "PUT", path: "/bundles/hello.tar.gz", key: "AK", secret: "SK",
			service: "s3"}, 400, "AuthorizationHeaderMalformed"},
		{"s3, a device's key", call{method: "PUT", path: "/bundles/hello.tar.gz", key: "DK", secret: "DS",
			service: "s3", declare: true}, 403, "InvalidAccessKeyId"},
		{"s3, unsigned", call{method: "PUT", path: "/bundles/hello.tar.gz"}, 403, "AccessDenied"},
		{"device, wrong secret", call{method: "PUT", path: "/things/robot-1/jobs/$next", key: "DK", secret: "wrong",
			service: "iot-jobs-data", declare: true}, 403, "InvalidSignatureException"},
		{"device, unknown key", call{method: "POST", path: "/things/robot-1/jobs/j1", key: "NOPE", secret: "DS",
			service: "iot-jobs-data"}, 403, "UnrecognizedClientException"},
		{"device, an operator's key", call{method: "POST", path: "/things/robot-1/jobs/j1", key: "AK", secret: "SK",
			service: "iot-jobs-data"}, 403, "UnrecognizedClientException"},
		{"device, unsigned", call{method: "POST", path: "/things/robot-1/jobs/j1"}, 403,
			"MissingAuthenticationTokenException"},
	} {
		tc.call.body = body
		status, hdr, answer := e.do(t, tc.call)
		reached, _, read := e.take()
		if status != tc.status || errorCode(hdr, answer) != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, status, answer, tc.status, tc.code)
		}
		if read != 0 || len(reached) != 0 {
			t.Errorf("%s: %d body bytes read, reached %v; want the request refused on its headers", tc.name, read,
				reached)
		}
	}
}

// TestPayloadCheckedAfterSignature sends correctly signed requests whose body was changed after signing: a
// declared hash is checked as the body is read, and a signature over the body (no declared hash) when it has
// been read. No changed body reaches an operation intact.
func TestPayloadCheckedAfterSignature(t *testing.T) {
	e := newOneEndpoint(t, testAuth)
	const body, changed = `{"name":"lab"}`, `{"name":"bad"}`
	for _, tc := range []struct {
		name   string
		call   call
		status int
		code   string
	}{
		{"api, declared hash", call{method: "POST", path: "/createFleet", key: "AK", secret: "SK",
			service: "robomaker", declare: true}, 400, "XAmzContentSHA256Mismatch"},
		{"api, signed over the body", call{method: "POST", path: "/createFleet", key: "AK", secret: "SK",
			service: "robomaker"}, 403, "InvalidSignatureException"},
		{"device, signed over the body", call{method: "POST", path: "/things/robot-1/jobs/j1", key: "DK",
			secret: "DS", service: "iot-jobs-data"}, 403, "InvalidSignatureException"},
	} {
		tc.call.body, tc.call.send = body, changed
		status, hdr, answer := e.do(t, tc.call)
		reached, _, _ := e.take()
		if status != tc.status || errorCode(hdr, answer) != tc.code || len(reached) != 0 {
			t.Errorf("%s: %d %s, reached %v; want %d %s", tc.name, status, answer, reached, tc.status, tc.code)
		}
	}
	// A device request with a declared hash reaches the device API, but its body fails to read when changed.
	e.do(t, call{method: "POST", path: "/things/robot-1/jobs/j1", body: body, send: changed, key: "DK", secret: "DS",
		service: "iot-jobs-data", declare: true})
	if reached, bodies, _ := e.take(); len(reached) != 1 || !strings.Contains(bodies[0], awsapi.ErrPayloadMismatch.Error()) {
		t.Errorf("changed device body: reached %v reading %q, want the read to fail", reached, bodies)
	}
}

// TestDeviceCredentials signs device requests as the AWS SDKs do for the IoT Jobs data plane, with a device
// key: they reach the device API, body intact, with either device scope.
func TestDeviceCredentials(t *testing.T) {
	e := newOneEndpoint(t, testAuth)
	const body = `{"status":"IN_PROGRESS"}`
	for _, c := range []call{
		{method: "POST", path: "/things/robot-1/jobs/j1", service: "iot-jobs-data"},
		{method: "POST", path: "/things/robot-1/jobs/j1", service: "iot-jobs-data", declare: true},
		{method: "PUT", path: "/things/robot-1/jobs/$next", service: "iotdata"},
		{method: "GET", path: "/things/robot-1/jobs", service: "iot-jobs-data", declare: true},
	} {
		c.key, c.secret = "DK", "DS"
		if c.method != "GET" {
			c.body = body
		}
		status, _, answer := e.do(t, c)
		reached, bodies, _ := e.take()
		if status != 200 || len(reached) != 1 || reached[0] != "device" || bodies[0] != c.body {
			t.Errorf("%s %s signed for %s: %d %s, reached %v with %q", c.method, c.path, c.service, status, answer,
				reached, bodies)
		}
	}
	// And the operators' keys still open the control plane and S3.
	for _, c := range []call{
		{method: "POST", path: "/createFleet", body: `{"name":"lab"}`, service: "robomaker"},
		{method: "PUT", path: "/bundles/hello.tar.gz", body: "bytes", service: "s3", declare: true},
	} {
		c.key, c.secret = "AK", "SK"
		if status, _, answer := e.do(t, c); status != 200 {
			t.Errorf("%s %s by an operator: %d %s", c.method, c.path, status, answer)
		}
		e.take()
	}
}

// TestOneEndpointRouting checks what reaches what on the one endpoint: S3 by its credential scope whatever the
// path, the device API by its prefix, the APIs by their routes, and unsigned requests no route takes go to S3.
func TestOneEndpointRouting(t *testing.T) {
	e := newOneEndpoint(t, nil)
	for _, tc := range []struct {
		call call
		want string
	}{
		{call{method: "PUT", path: "/things/x", key: "AK", secret: "SK", service: "s3", declare: true}, "s3"},
		{call{method: "POST", path: "/createFleet", key: "AK", secret: "SK", service: "s3", declare: true}, "s3"},
		{call{method: "GET", path: "/bundles/hello.tar.gz"}, "s3"},
		{call{method: "GET", path: "/"}, "s3"},
		{call{method: "PUT", path: "/tags/x"}, "s3"},
		{call{method: "GET", path: "/b/k?X-Amz-Credential=AK%2F20260101%2Fus-east-1%2Fs3%2Faws4_request"}, "s3"},
		{call{method: "POST", path: "/createFleet", body: `{"name":"lab"}`}, "api"},
		{call{method: "POST", path: "/createFleet", body: `{"name":"lab"}`, key: "AK", secret: "SK", service: "robomaker"}, "api"},
		{call{method: "GET", path: "/things/robot-1/jobs"}, "device"},
		{call{method: "POST", path: "/nothing-here", key: "AK", secret: "SK", service: "robomaker"}, ""},
	} {
		status, _, answer := e.do(t, tc.call)
		reached, _, _ := e.take()
		got := strings.Join(reached, ",")
		if got != tc.want || (tc.want == "" && status != http.StatusNotFound) {
			t.Errorf("%s %s (signed for %q): reached %q (%d %s), want %q", tc.call.method, tc.call.path,
				tc.call.service, got, status, answer, tc.want)
		}
	}
}
