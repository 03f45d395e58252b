package awsapi_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/robomaker"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"
	"github.com/aws/smithy-go"

	"github.com/fleetlab/fleetlab/sim/awsapi"
)

// An armed fault answers the operation it selects by name, after routing, in the serving dialect's own error
// form: its code and status (or those the fault gives), its message member, the one writer's header and body.
func TestInterceptAnswersInTheDialectsForm(t *testing.T) {
	var (
		mu    sync.Mutex
		fault *awsapi.Fault
		op    string
		calls []awsapi.Call
	)
	arm := func(operation string, f *awsapi.Fault) {
		mu.Lock()
		defer mu.Unlock()
		op, fault = operation, f
	}
	h := awsapi.NewHandler(awsapi.Options{Intercept: func(c awsapi.Call) *awsapi.Fault {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, awsapi.Call{Dialect: c.Dialect, Operation: c.Operation})
		if c.Operation != op {
			return nil
		}
		return fault
	}})
	var created atomic.Int32
	if err := h.Register(awsapi.Service{Model: rmModel(t), Dialect: "robomaker", Invalid: invalidParameter,
		Throttled: func(msg string) *awsapi.Error {
			return awsapi.NewError("ThrottlingException", http.StatusBadRequest, "%s", msg)
		}}, map[string]awsapi.Operation{
		"CreateFleet": {Handle: func(r *awsapi.Request) (any, error) {
			created.Add(1)
			return map[string]string{"name": "f"}, nil
		}},
		"ListFleets": {Handle: func(r *awsapi.Request) (any, error) { return map[string]any{}, nil }},
	}); err != nil {
		t.Fatal(err)
	}
	if err := h.Register(awsapi.Service{Model: loadModel(t, demoModel), MessageMember: "Message",
		Invalid: invalidParameter}, map[string]awsapi.Operation{
		"GetThing": {Handle: func(r *awsapi.Request) (any, error) { return map[string]any{}, nil }},
	}); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, h)
	c := sdk(srv.URL, "AK", "SK")
	ctx := context.Background()

	// Throttling, the dialect's: RoboMaker's ThrottlingException is a 400, and the SDK decodes it typed.
	arm("CreateFleet", &awsapi.Fault{Throttle: true, Message: "slow down"})
	var throttled *types.ThrottlingException
	if _, err := c.CreateFleet(ctx, &robomaker.CreateFleetInput{Name: aws.String("f")}); !errors.As(err, &throttled) ||
		aws.ToString(throttled.Message) != "slow down" {
		t.Fatalf("throttled CreateFleet: %v", err)
	}
	if _, err := c.ListFleets(ctx, &robomaker.ListFleetsInput{}); err != nil {
		t.Fatalf("an operation the fault does not select: %v", err)
	}
	if created.Load() != 0 {
		t.Fatal("a throttled request reached the operation")
	}

	// After: the operation runs, and its answer is replaced by the server error.
	arm("CreateFleet", &awsapi.Fault{After: true, Message: "lost"})
	var apiErr smithy.APIError
	if _, err := c.CreateFleet(ctx, &robomaker.CreateFleetInput{Name: aws.String("f")}); !errors.As(err, &apiErr) ||
		apiErr.ErrorCode() != "InternalServerException" {
		t.Fatalf("CreateFleet with its answer lost: %v", err)
	}
	if created.Load() != 1 {
		t.Fatalf("the operation ran %d times, want once", created.Load())
	}

	// Another dialect: its message member; the fault's own status and code.
	arm("GetThing", &awsapi.Fault{Status: 503, Code: "ServiceUnavailableException", Message: "down"})
	status, hdr, body := rawCall(t, "GET", srv.URL+"/things/t-1", "", nil)
	if status != 503 || hdr.Get("X-Amzn-ErrorType") != "ServiceUnavailableException" ||
		body != `{"Message":"down","__type":"ServiceUnavailableException"}` {
		t.Fatalf("demo fault = %d %v %s", status, hdr, body)
	}

	mu.Lock()
	defer mu.Unlock()
	want := []awsapi.Call{{Dialect: "robomaker", Operation: "CreateFleet"},
		{Dialect: "robomaker", Operation: "ListFleets"}, {Dialect: "robomaker", Operation: "CreateFleet"},
		{Dialect: "demo", Operation: "GetThing"}}
	if len(calls) != len(want) {
		t.Fatalf("intercept saw %v, want %v", calls, want)
	}
	for i := range want {
		if calls[i] != want[i] {
			t.Fatalf("intercept saw %v, want %v", calls, want)
		}
	}
}

// namedMount is a mounted API that names its operations, as the device API does.
type namedMount struct{ served atomic.Int32 }

func (m *namedMount) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.served.Add(1)
	w.Write([]byte("{}"))
}

func (m *namedMount) Operation(r *http.Request) (awsapi.Call, bool) {
	if r.URL.Path == "/dev/unnamed" {
		return awsapi.Call{}, false
	}
	return awsapi.Call{Dialect: "device", Operation: "UpdateJobExecution", Thing: "r1"}, true
}

// A mounted API that names its operations is intercepted too, its faults written in the data plane's form.
func TestInterceptSeesNamedMounts(t *testing.T) {
	var saw []awsapi.Call
	h := awsapi.NewHandler(awsapi.Options{Intercept: func(c awsapi.Call) *awsapi.Fault {
		saw = append(saw, awsapi.Call{Dialect: c.Dialect, Operation: c.Operation, Thing: c.Thing})
		return &awsapi.Fault{Throttle: true, After: true, Message: "later"}
	}})
	m := &namedMount{}
	if err := h.Mount("/dev/", m); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, h)
	status, hdr, body := rawCall(t, "POST", srv.URL+"/dev/x", "{}", nil)
	if status != 429 || hdr.Get("X-Amzn-ErrorType") != "ThrottlingException" ||
		body != `{"__type":"ThrottlingException","message":"later"}` || m.served.Load() != 1 {
		t.Fatalf("named mount = %d %v %s, served %d", status, hdr, body, m.served.Load())
	}
	if status, _, _ := rawCall(t, "GET", srv.URL+"/dev/unnamed", "", nil); status != 200 || m.served.Load() != 2 {
		t.Fatalf("a request the mount does not name = %d", status)
	}
	if want := (awsapi.Call{Dialect: "device", Operation: "UpdateJobExecution", Thing: "r1"}); len(saw) != 1 || saw[0] != want {
		t.Fatalf("intercept saw %v", saw)
	}
}
