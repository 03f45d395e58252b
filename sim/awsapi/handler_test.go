package awsapi_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/robomaker"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"
	"github.com/aws/smithy-go"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/awsapi/model"
	rm "github.com/fleetlab/fleetlab/sim/awsapi/robomaker"
	"github.com/fleetlab/fleetlab/sim/awsapi/sdkhttp"
)

// demoModel is a second restJson service that shares /tags/{arn} with RoboMaker, as Greengrass and AppConfig do.
const demoModel = `{
 "metadata": {"protocol": "rest-json", "endpointPrefix": "demo", "apiVersion": "2020-01-01"},
 "operations": {
  "TagResource": {"name": "TagResource", "http": {"method": "POST", "requestUri": "/tags/{resource-arn}"},
   "input": {"shape": "TagResourceRequest"}},
  "GetThing": {"name": "GetThing", "http": {"method": "GET", "requestUri": "/things/{id}"},
   "input": {"shape": "GetThingRequest"}},
  "GetNext": {"name": "GetNext", "http": {"method": "GET", "requestUri": "/things/next"}},
  "DeleteThing": {"name": "DeleteThing", "http": {"method": "DELETE", "requestUri": "/things/{id}", "responseCode": 204},
   "input": {"shape": "GetThingRequest"}}
 },
 "shapes": {
  "TagResourceRequest": {"type": "structure", "required": ["ResourceArn", "tags"], "members": {
   "ResourceArn": {"shape": "S", "location": "uri", "locationName": "resource-arn"},
   "tags": {"shape": "M"}}},
  "GetThingRequest": {"type": "structure", "required": ["Id"], "members": {"Id": {"shape": "S", "location": "uri", "locationName": "id"}}},
  "S": {"type": "string", "min": 1},
  "M": {"type": "map", "key": {"shape": "S"}, "value": {"shape": "S"}}
 }
}`

// rpcModel is an awsJson1_1 service, routed on X-Amz-Target at POST /.
const rpcModel = `{
 "metadata": {"protocol": "json", "jsonVersion": "1.1", "endpointPrefix": "rpc", "targetPrefix": "Rpc_20200101", "apiVersion": "2020-01-01"},
 "operations": {"DoThing": {"name": "DoThing", "http": {"method": "POST", "requestUri": "/"}, "input": {"shape": "DoThingRequest"}}},
 "shapes": {
  "DoThingRequest": {"type": "structure", "required": ["Name"], "members": {"Name": {"shape": "S"}}},
  "S": {"type": "string", "min": 1}
 }
}`

func loadModel(t *testing.T, doc string) *model.Model {
	t.Helper()
	m, err := model.Load([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func rmModel(t *testing.T) *model.Model {
	t.Helper()
	m, err := rm.LoadModel()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func invalidParameter(msg string) *awsapi.Error {
	return awsapi.NewError("InvalidParameterException", http.StatusBadRequest, "%s", msg)
}

func serve(t *testing.T, h *awsapi.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func sdk(url, ak, sk string) *robomaker.Client {
	return robomaker.New(robomaker.Options{BaseEndpoint: aws.String(url), HTTPClient: sdkhttp.Client(nil), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(ak, sk, ""), RetryMaxAttempts: 1})
}

// errorsHandler answers CreateDeploymentJob with the error its fleet names.
func errorsHandler(t *testing.T, opts awsapi.Options) *httptest.Server {
	t.Helper()
	h := awsapi.NewHandler(opts)
	byFleet := map[string]error{
		"arn:aws:robomaker:us-east-1:1:deployment-fleet/notfound/1": awsapi.NewError("ResourceNotFoundException", 400, "no such fleet"),
		"arn:aws:robomaker:us-east-1:1:deployment-fleet/busy/1":     awsapi.NewError("ConcurrentDeploymentException", 400, "fleet busy"),
		"arn:aws:robomaker:us-east-1:1:deployment-fleet/token/1":    awsapi.NewError("IdempotentParameterMismatchException", 400, "token reused"),
		"arn:aws:robomaker:us-east-1:1:deployment-fleet/limit/1":    awsapi.NewError("LimitExceededException", 400, "too many"),
		"arn:aws:robomaker:us-east-1:1:deployment-fleet/throttle/1": awsapi.NewError("ThrottlingException", 400, "slow down"),
		"arn:aws:robomaker:us-east-1:1:deployment-fleet/invalid/1":  invalidParameter("bad value"),
		"arn:aws:robomaker:us-east-1:1:deployment-fleet/internal/1": awsapi.NewError("InternalServerException", 500, "boom"),
		"arn:aws:robomaker:us-east-1:1:deployment-fleet/plain/1":    errors.New("disk on fire"),
		"arn:aws:robomaker:us-east-1:1:deployment-fleet/extra/1": awsapi.NewError("ResourceNotFoundException", 400, "gone").
			With("resourceId", "r-1"),
	}
	err := h.Register(awsapi.Service{Model: rmModel(t), Invalid: invalidParameter}, map[string]awsapi.Operation{
		"CreateDeploymentJob": {Handle: func(r *awsapi.Request) (any, error) {
			var in struct{ Fleet string }
			if err := r.Decode(&in); err != nil {
				return nil, err
			}
			if err, ok := byFleet[in.Fleet]; ok {
				return nil, err
			}
			return map[string]any{"arn": "arn:aws:robomaker:us-east-1:1:deployment-job/deployment-1", "fleet": in.Fleet,
				"status": "Pending", "createdAt": awsapi.EpochSeconds{}}, nil
		}},
		"CreateFleet": {Handle: func(r *awsapi.Request) (any, error) {
			var in struct{ Name string }
			if err := r.Decode(&in); err != nil {
				return nil, err
			}
			return map[string]string{"name": in.Name}, nil
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, h)
}

func createJob(ctx context.Context, c *robomaker.Client, fleet string) (*robomaker.CreateDeploymentJobOutput, error) {
	return c.CreateDeploymentJob(ctx, &robomaker.CreateDeploymentJobInput{
		Fleet: aws.String(fleet), ClientRequestToken: aws.String("tok"),
		DeploymentApplicationConfigs: []types.DeploymentApplicationConfig{{
			Application: aws.String("arn:aws:robomaker:us-east-1:1:robot-application/a/1"), ApplicationVersion: aws.String("1"),
			LaunchConfig: &types.DeploymentLaunchConfig{PackageName: aws.String("pkg"), LaunchFile: aws.String("x.launch")},
		}},
	})
}

func fleetARN(name string) string {
	return "arn:aws:robomaker:us-east-1:1:deployment-fleet/" + name + "/1"
}

func TestErrorsDecodeInSDK(t *testing.T) {
	srv := errorsHandler(t, awsapi.Options{})
	c := sdk(srv.URL, "AK", "SK")
	ctx := context.Background()
	tests := []struct {
		fleet  string
		target any
		code   string
		status int
		msg    string
	}{
		{"notfound", new(*types.ResourceNotFoundException), "ResourceNotFoundException", 400, "no such fleet"},
		{"busy", new(*types.ConcurrentDeploymentException), "ConcurrentDeploymentException", 400, "fleet busy"},
		{"token", new(*types.IdempotentParameterMismatchException), "IdempotentParameterMismatchException", 400, "token reused"},
		{"limit", new(*types.LimitExceededException), "LimitExceededException", 400, "too many"},
		{"throttle", new(*types.ThrottlingException), "ThrottlingException", 400, "slow down"},
		{"invalid", new(*types.InvalidParameterException), "InvalidParameterException", 400, "bad value"},
		{"internal", new(*types.InternalServerException), "InternalServerException", 500, "boom"},
		{"plain", new(*types.InternalServerException), "InternalServerException", 500, "Internal server error"},
	}
	for _, tc := range tests {
		t.Run(tc.fleet, func(t *testing.T) {
			_, err := createJob(ctx, c, fleetARN(tc.fleet))
			if !errors.As(err, tc.target) {
				t.Fatalf("error %v (%T) is not %T", err, errors.Unwrap(err), tc.target)
			}
			var api smithy.APIError
			if !errors.As(err, &api) || api.ErrorCode() != tc.code || api.ErrorMessage() != tc.msg {
				t.Errorf("APIError = %v", api)
			}
			var re *awshttp.ResponseError
			if !errors.As(err, &re) || re.HTTPStatusCode() != tc.status {
				t.Fatalf("status = %v, want %d", err, tc.status)
			}
			if len(re.ServiceRequestID()) != 36 {
				t.Errorf("request id = %q", re.ServiceRequestID())
			}
		})
	}
	out, err := createJob(ctx, c, fleetARN("ok"))
	if err != nil || aws.ToString(out.Fleet) != fleetARN("ok") || aws.ToString(out.Arn) == "" {
		t.Fatalf("success = %+v, %v", out, err)
	}
}

func TestErrorWireForm(t *testing.T) {
	srv := errorsHandler(t, awsapi.Options{})
	body := `{"fleet":"` + fleetARN("extra") + `","clientRequestToken":"t","deploymentApplicationConfigs":[{"application":"arn:a","applicationVersion":"1","launchConfig":{"packageName":"p","launchFile":"l"}}]}`
	resp, err := http.Post(srv.URL+"/createDeploymentJob", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || resp.Header.Get("X-Amzn-ErrorType") != "ResourceNotFoundException" ||
		resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("x-amzn-RequestId") == "" {
		t.Fatalf("status %d headers %v", resp.StatusCode, resp.Header)
	}
	want := `{"__type":"ResourceNotFoundException","message":"gone","resourceId":"r-1"}`
	if string(data) != want {
		t.Fatalf("body = %s, want %s", data, want)
	}
}

func TestRequestIDsAreUnique(t *testing.T) {
	srv := errorsHandler(t, awsapi.Options{})
	seen := map[string]bool{}
	for _, path := range []string{"/createFleet", "/createFleet", "/nope", "/createDeploymentJob"} {
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(`{"name":"f"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		id := resp.Header.Get("x-amzn-RequestId")
		if len(id) != 36 || seen[id] {
			t.Fatalf("%s: request id %q missing or repeated", path, id)
		}
		seen[id] = true
	}
}

func rawCall(t *testing.T, method, url, body string, header map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(data)
}

func TestUnknownRoute(t *testing.T) {
	srv := errorsHandler(t, awsapi.Options{})
	for _, tc := range []struct{ method, path string }{
		{"POST", "/nope"},
		{"GET", "/createFleet"}, // a known path with the wrong method
		{"POST", "/createFleet/extra"},
	} {
		status, h, body := rawCall(t, tc.method, srv.URL+tc.path, "{}", nil)
		if status != 404 || h.Get("X-Amzn-ErrorType") != "UnknownOperationException" ||
			!strings.Contains(body, `"__type":"UnknownOperationException"`) {
			t.Errorf("%s %s = %d %s %s", tc.method, tc.path, status, h.Get("X-Amzn-ErrorType"), body)
		}
	}
}

func TestBodyLimitAndMalformedJSON(t *testing.T) {
	srv := errorsHandler(t, awsapi.Options{MaxBody: 64})
	c := sdk(srv.URL, "AK", "SK")
	_, err := c.CreateFleet(context.Background(), &robomaker.CreateFleetInput{Name: aws.String("f"),
		Tags: map[string]string{"k": strings.Repeat("v", 100)}})
	var ipe *types.InvalidParameterException
	if !errors.As(err, &ipe) || !strings.Contains(ipe.ErrorMessage(), "larger than the limit of 64 bytes") {
		t.Fatalf("oversized body: %v", err)
	}
	if _, err := c.CreateFleet(context.Background(), &robomaker.CreateFleetInput{Name: aws.String("f")}); err != nil {
		t.Fatalf("small body: %v", err)
	}
	for body, want := range map[string]string{
		`{"name":`:        "not valid JSON",
		`["name"]`:        "must be a JSON object",
		`{"name": 5}`:     "Value '5' at 'name' failed to satisfy constraint: Member must be a string",
		`{"name": ""}`:    "Value '' at 'name' failed to satisfy constraint: Member must have length greater than or equal to 1",
		`{"name": "a b"}`: "Member must satisfy regular expression pattern",
		`{}`:              "Value null at 'name' failed to satisfy constraint: Member must not be null",
	} {
		status, h, got := rawCall(t, "POST", srv.URL+"/createFleet", body, nil)
		if status != 400 || h.Get("X-Amzn-ErrorType") != "InvalidParameterException" || !strings.Contains(got, want) {
			t.Errorf("%s = %d %s, want InvalidParameterException with %q", body, status, got, want)
		}
	}
}

func TestPerOperationBodyLimit(t *testing.T) {
	h := awsapi.NewHandler(awsapi.Options{})
	echo := func(r *awsapi.Request) (any, error) { return map[string]string{"name": "x"}, nil }
	if err := h.Register(awsapi.Service{Model: rmModel(t), Invalid: invalidParameter, MaxBody: 1000},
		map[string]awsapi.Operation{"CreateFleet": {Handle: echo, MaxBody: 20}, "CreateRobot": {Handle: echo}}); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, h)
	big := `{"name":"f","tags":{"k":"` + strings.Repeat("v", 30) + `"}}`
	if status, _, body := rawCall(t, "POST", srv.URL+"/createFleet", big, nil); status != 400 || !strings.Contains(body, "limit of 20 bytes") {
		t.Errorf("operation limit: %d %s", status, body)
	}
	robot := `{"name":"r","architecture":"X86_64","greengrassGroupId":"g","tags":{"k":"` + strings.Repeat("v", 30) + `"}}`
	if status, _, body := rawCall(t, "POST", srv.URL+"/createRobot", robot, nil); status != 200 {
		t.Errorf("service limit should allow %d bytes: %d %s", len(robot), status, body)
	}
}

// tagsServer registers RoboMaker's and the demo service's /tags routes and records who served each call.
func tagsServer(t *testing.T, opts awsapi.Options) (*httptest.Server, func() []string) {
	t.Helper()
	var (
		mu     sync.Mutex
		served []string
	)
	record := func(name string) func(*awsapi.Request) (any, error) {
		return func(r *awsapi.Request) (any, error) {
			mu.Lock()
			defer mu.Unlock()
			served = append(served, name+":"+r.Operation)
			return nil, nil
		}
	}
	h := awsapi.NewHandler(opts)
	if err := h.Register(awsapi.Service{Model: rmModel(t), Invalid: invalidParameter}, map[string]awsapi.Operation{
		"TagResource": {Handle: record("robomaker")}, "UntagResource": {Handle: record("robomaker")},
		"ListTagsForResource": {Handle: record("robomaker")}, "CreateFleet": {Handle: record("robomaker")},
	}); err != nil {
		t.Fatal(err)
	}
	if err := h.Register(awsapi.Service{Model: loadModel(t, demoModel), Invalid: invalidParameter, MessageMember: "Message"},
		map[string]awsapi.Operation{
			"TagResource": {Handle: record("demo")}, "GetThing": {Handle: record("demo")},
			"GetNext": {Handle: record("demo")}, "DeleteThing": {Handle: record("demo")},
		}); err != nil {
		t.Fatal(err)
	}
	return serve(t, h), func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := served
		served = nil
		return out
	}
}

func TestTagsRouting(t *testing.T) {
	srv, served := tagsServer(t, awsapi.Options{})
	c := sdk(srv.URL, "AK", "SK")
	ctx := context.Background()
	rmARN := "arn:aws:robomaker:us-east-1:1:deployment-fleet/f/1"
	demoARN := "arn:aws:demo:us-east-1:1:thing/t"

	// Signed: the credential scope decides, whatever the ARN says.
	if _, err := c.TagResource(ctx, &robomaker.TagResourceInput{ResourceArn: aws.String(demoARN),
		Tags: map[string]string{"a": "b"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListTagsForResource(ctx, &robomaker.ListTagsForResourceInput{ResourceArn: aws.String(rmARN)}); err != nil {
		t.Fatal(err)
	}
	signedDemo := map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/demo/aws4_request, SignedHeaders=host, Signature=00"}
	rawCall(t, "POST", srv.URL+"/tags/"+escape(rmARN), `{"tags":{"a":"b"}}`, signedDemo)

	// Unsigned: the ARN's service decides.
	rawCall(t, "POST", srv.URL+"/tags/"+escape(demoARN), `{"tags":{"a":"b"}}`, nil)
	rawCall(t, "POST", srv.URL+"/tags/"+escape(rmARN), `{"tags":{"a":"b"}}`, nil)
	// Unsigned, no ARN: the first registered service, whose validation then refuses the label.
	_, h, body := rawCall(t, "POST", srv.URL+"/tags/not-an-arn", `{"tags":{"a":"b"}}`, nil)
	if h.Get("X-Amzn-ErrorType") != "InvalidParameterException" || !strings.Contains(body, "at 'resourceArn'") {
		t.Errorf("unsigned tag without an ARN = %s", body)
	}

	want := []string{"robomaker:TagResource", "robomaker:ListTagsForResource", "demo:TagResource",
		"demo:TagResource", "robomaker:TagResource"}
	if got := served(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("served %v\nwant   %v", got, want)
	}

	// A path only one service has is routed to it, whatever the signature names; literal segments win over labels.
	rawCall(t, "GET", srv.URL+"/things/next", "", nil)
	rawCall(t, "GET", srv.URL+"/things/t-1", "", signedDemo)
	var status int
	status, h, _ = rawCall(t, "DELETE", srv.URL+"/things/t-1", "", nil)
	if got := served(); strings.Join(got, ",") != "demo:GetNext,demo:GetThing,demo:DeleteThing" {
		t.Fatalf("served %v", got)
	}
	if status != 204 || h.Get("Content-Type") != "" {
		t.Errorf("DeleteThing = %d %v, want 204 with no body", status, h)
	}
	// Errors use the serving service's message member.
	_, _, body = rawCall(t, "POST", srv.URL+"/tags/"+escape(demoARN), `{}`, nil)
	if !strings.Contains(body, `"Message":"1 validation error detected: Value null at 'tags'`) {
		t.Errorf("demo validation error = %s", body)
	}
}

func escape(s string) string {
	r := strings.NewReplacer(":", "%3A", "/", "%2F")
	return r.Replace(s)
}

func TestJSONRPCRouting(t *testing.T) {
	h := awsapi.NewHandler(awsapi.Options{})
	var got string
	if err := h.Register(awsapi.Service{Model: loadModel(t, rpcModel),
		Invalid: func(msg string) *awsapi.Error { return awsapi.NewError("ValidationException", 400, "%s", msg) }},
		map[string]awsapi.Operation{"DoThing": {Handle: func(r *awsapi.Request) (any, error) {
			var in struct{ Name string }
			if err := r.Decode(&in); err != nil {
				return nil, err
			}
			got = in.Name
			return map[string]string{"Done": in.Name}, nil
		}}}); err != nil {
		t.Fatal(err)
	}
	if err := h.Register(awsapi.Service{Model: rmModel(t), Invalid: invalidParameter},
		map[string]awsapi.Operation{"CreateFleet": {Handle: func(*awsapi.Request) (any, error) { return nil, nil }}}); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, h)
	target := map[string]string{"X-Amz-Target": "Rpc_20200101.DoThing", "Content-Type": "application/x-amz-json-1.1"}
	status, hdr, body := rawCall(t, "POST", srv.URL+"/", `{"Name":"n1"}`, target)
	if status != 200 || got != "n1" || body != `{"Done":"n1"}` || hdr.Get("Content-Type") != "application/x-amz-json-1.1" {
		t.Fatalf("DoThing = %d %s %v", status, body, hdr)
	}
	status, hdr, body = rawCall(t, "POST", srv.URL+"/", `{}`, target)
	if status != 400 || body != `{"__type":"ValidationException","message":"1 validation error detected: Value null at 'Name' failed to satisfy constraint: Member must not be null"}` {
		t.Fatalf("invalid DoThing = %d %s", status, body)
	}
	status, _, body = rawCall(t, "POST", srv.URL+"/", `{}`, map[string]string{"X-Amz-Target": "Rpc_20200101.Nope"})
	if status != 404 || !strings.Contains(body, "UnknownOperationException") {
		t.Fatalf("unknown target = %d %s", status, body)
	}
	// restJson routes still work beside it.
	if status, _, _ := rawCall(t, "POST", srv.URL+"/createFleet", `{"name":"f"}`, nil); status != 200 {
		t.Fatalf("createFleet = %d", status)
	}
}

func TestMount(t *testing.T) {
	h := awsapi.NewHandler(awsapi.Options{})
	things := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "things:"+r.URL.Path) })
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "inner") })
	for prefix, handler := range map[string]http.Handler{"/things/": things, "/things/special/": inner} {
		if err := h.Mount(prefix, handler); err != nil {
			t.Fatal(err)
		}
	}
	for _, bad := range []string{"/things/", "things/", "/x", "/"} {
		if err := h.Mount(bad, things); err == nil {
			t.Errorf("Mount(%q) succeeded", bad)
		}
	}
	srv := serve(t, h)
	// Mounted handlers are not subject to AWS routing (their signatures are checked with Auth: auth_test.go).
	if status, _, body := rawCall(t, "GET", srv.URL+"/things/t1/jobs", "", nil); status != 200 || body != "things:/things/t1/jobs" {
		t.Errorf("mounted = %d %s", status, body)
	}
	if _, _, body := rawCall(t, "GET", srv.URL+"/things/special/x", "", nil); body != "inner" {
		t.Errorf("longest prefix = %s", body)
	}
}

func TestRegisterRejects(t *testing.T) {
	h := awsapi.NewHandler(awsapi.Options{})
	noop := awsapi.Operation{Handle: func(*awsapi.Request) (any, error) { return nil, nil }}
	m := rmModel(t)
	for name, tc := range map[string]struct {
		svc awsapi.Service
		ops map[string]awsapi.Operation
	}{
		"no model":   {awsapi.Service{Invalid: invalidParameter}, nil},
		"no invalid": {awsapi.Service{Model: m}, nil},
		"unknown op": {awsapi.Service{Model: m, Invalid: invalidParameter}, map[string]awsapi.Operation{"Fly": noop}},
		"no handler": {awsapi.Service{Model: m, Invalid: invalidParameter}, map[string]awsapi.Operation{"CreateFleet": {}}},
	} {
		if err := h.Register(tc.svc, tc.ops); err == nil {
			t.Errorf("%s: Register succeeded", name)
		}
	}
	if err := h.Register(awsapi.Service{Model: m, Invalid: invalidParameter}, map[string]awsapi.Operation{"CreateFleet": noop}); err != nil {
		t.Fatal(err)
	}
	if err := h.Register(awsapi.Service{Model: m, Invalid: invalidParameter}, nil); err == nil {
		t.Error("a service registered twice")
	}
	rpc := loadModel(t, rpcModel)
	if err := h.Register(awsapi.Service{Model: rpc, Invalid: invalidParameter}, map[string]awsapi.Operation{"DoThing": noop}); err != nil {
		t.Fatal(err)
	}
	if err := h.Register(awsapi.Service{Model: loadModel(t, rpcModel), Name: "rpc2", Invalid: invalidParameter},
		map[string]awsapi.Operation{"DoThing": noop}); err == nil {
		t.Error("a target registered twice")
	}
}

func TestResponseOverride(t *testing.T) {
	h := awsapi.NewHandler(awsapi.Options{})
	if err := h.Register(awsapi.Service{Model: rmModel(t), Invalid: invalidParameter}, map[string]awsapi.Operation{
		"CreateFleet": {Handle: func(*awsapi.Request) (any, error) {
			return &awsapi.Response{Status: 202, Header: http.Header{"Retry-After": {"3"}}, Body: []byte("raw")}, nil
		}},
	}); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, h)
	status, hdr, body := rawCall(t, "POST", srv.URL+"/createFleet", `{"name":"f"}`, nil)
	if status != 202 || hdr.Get("Retry-After") != "3" || body != "raw" {
		t.Fatalf("override = %d %v %s", status, hdr, body)
	}
}
