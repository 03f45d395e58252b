package greengrassv2_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ggsdk "github.com/aws/aws-sdk-go-v2/service/greengrassv2"
	"github.com/aws/aws-sdk-go-v2/service/greengrassv2/types"
	"github.com/aws/smithy-go"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	gg "github.com/fleetlab/fleetlab/sim/agent/greengrassv2"
	"github.com/fleetlab/fleetlab/sim/agent/kinds"
	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/awsapi/sdkhttp"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	"github.com/fleetlab/fleetlab/sim/service"
)

// Operator and device keys of the cloud under test.
const (
	operatorKey, operatorSecret = "AK", "SK"
	deviceKey, deviceSecret     = "DK", "DS"
)

// cloudCore is a core device whose job comes from the fake data plane and whose components the real service
// resolves: one endpoint serves /greengrass/ by the service (checking SigV4: operators' and devices' keys) and
// the rest by the fake, as one endpoint serves both in the service.
type cloudCore struct {
	*core
	cloud *service.Service
	sdk   *ggsdk.Client
	ht    *agent.HTTPTransport

	mu       sync.Mutex
	resolves []string // the Authorization header of every ResolveComponentCandidates request
}

func newCloudCore(t *testing.T) *cloudCore {
	t.Helper()
	cloud, err := service.New(service.Options{Dir: t.TempDir(), InMemoryStore: true, Auth: &awsapi.SigV4{
		Keys: map[string]string{operatorKey: operatorSecret}, DeviceKeys: map[string]string{deviceKey: deviceSecret}}})
	if err != nil {
		t.Fatal(err)
	}
	fake := agenttest.New(nil)
	c := &cloudCore{cloud: cloud}
	mux := http.NewServeMux()
	mux.Handle("/", fake.Handler())
	mux.Handle("/greengrass/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == gg.PathResolve {
			c.mu.Lock()
			c.resolves = append(c.resolves, r.Header.Get("Authorization"))
			c.mu.Unlock()
		}
		cloud.API.ServeHTTP(w, r)
	}))
	srv := httptest.NewServer(mux)
	c.core = &core{t: t, svc: fake, srv: srv, dir: t.TempDir(), rec: &recorder{}}
	c.log = filepath.Join(t.TempDir(), "log")
	c.sdk = c.client(operatorKey, operatorSecret)
	t.Cleanup(func() {
		c.stop()
		if c.ht != nil {
			c.ht.CloseIdleConnections()
		}
		fake.Close()
		srv.Close()
		cloud.Close()
	})
	return c
}

func (c *cloudCore) client(key, secret string) *ggsdk.Client {
	return ggsdk.New(ggsdk.Options{BaseEndpoint: aws.String(c.srv.URL), HTTPClient: sdkhttp.Client(nil), Region: "us-east-1", RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(key, secret, "")})
}

// create creates a component version in the cloud: install appends "<name> <version> install" to the log.
func (c *cloudCore) create(name, version string, deps map[string]string) {
	c.t.Helper()
	r := c.recipe(name, version, deps, nil, map[string]any{"install": c.step(name, version+" install", "")})
	b, err := r.JSON()
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.sdk.CreateComponentVersion(context.Background(),
		&ggsdk.CreateComponentVersionInput{InlineRecipe: b}); err != nil {
		c.t.Fatalf("create %s %s: %v", name, version, err)
	}
}

// startSigned starts the agent with the kinds every host runs, over an HTTP transport signed with the device's
// keys.
func (c *cloudCore) startSigned() {
	c.t.Helper()
	ht, err := agent.NewHTTPTransport(c.srv.URL, "core-1", nil)
	if err != nil {
		c.t.Fatal(err)
	}
	ht.SignWith(agent.Credentials{AccessKey: deviceKey, SecretKey: deviceSecret})
	c.ht = ht
	c.kinds, c.transport = kinds.All(), ht
	c.start()
}

// TestCloudResolution runs deployments on a core whose agent has only the kinds of every host (kinds.All) and
// resolves through its transport against the real service:
//
//	App 1.0.0    depends on Mid ^1.0.0 and Lib <1.2.0
//	Mid 1.0.0    depends on Lib ^1.0.0
//	Lib 1.0.0, 1.1.0, 1.2.0, 2.0.0
//	Clash 1.0.0  depends on Mid ^1.0.0 and Lib >=2.0.0 (Mid's ^1.0.0 and it meet in no version)
//	Orphan 1.0.0 depends on Missing ^1.0.0, which does not exist
func TestCloudResolution(t *testing.T) {
	c := newCloudCore(t)
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0", "2.0.0"} {
		c.create("Lib", v, nil)
	}
	c.create("Mid", "1.0.0", map[string]string{"Lib": "^1.0.0"})
	c.create("App", "1.0.0", map[string]string{"Mid": "^1.0.0", "Lib": "<1.2.0"})
	c.create("Clash", "1.0.0", map[string]string{"Mid": "^1.0.0", "Lib": ">=2.0.0"})
	c.create("Orphan", "1.0.0", map[string]string{"Missing": "^1.0.0"})
	// A layer between the agent and its transport that knows nothing of APICaller (as a fleet's fault layer):
	// the kind still resolves through the transport underneath.
	c.wrap = func(ex agent.Executors) agent.Executors {
		ex.Transport = struct{ agent.Transport }{ex.Transport}
		return ex
	}
	c.startSigned()

	// Two levels, Lib under the requirements of App and Mid both: the highest version both allow.
	c.enqueue("job-1", deployment{roots: map[string]string{"App": "1.0.0"}})
	if e := c.waitEnded("job-1"); e.Status != wire.StatusSucceeded {
		t.Fatalf("job-1 ended %s %v, chain %q", e.Status, e.StatusDetails, c.rec.chain("job-1"))
	}
	if got, want := c.logLines(), []string{"Lib 1.1.0 install", "Mid 1.0.0 install", "App 1.0.0 install"}; !reflect.DeepEqual(got, want) {
		t.Errorf("log %q, want %q", got, want)
	}
	job, v := c.active()
	if set, _ := gg.Components(v); job != "job-1" || !reflect.DeepEqual(set, []string{"Lib", "Mid", "App"}) {
		t.Errorf("the device runs %s's set %q, want job-1's Lib, Mid, App", job, set)
	}

	for _, tt := range []struct {
		job, root, code, stack string
	}{
		{"job-2", "Clash", gg.CodeVersionRequirementsNotMet, "DEPLOYMENT_FAILURE,COMPONENT_VERSION_REQUIREMENTS_NOT_MET"},
		{"job-3", "Orphan", gg.CodeNoAvailableComponentVersion, "DEPLOYMENT_FAILURE,NO_AVAILABLE_COMPONENT_VERSION"},
	} {
		before := len(c.logLines())
		c.enqueue(tt.job, deployment{roots: map[string]string{tt.root: "1.0.0"}})
		e := c.waitEnded(tt.job)
		if got, want := c.rec.chain(tt.job), []string{R, D, failed(tt.code)}; !reflect.DeepEqual(got, want) {
			t.Errorf("%s (%s): chain %q, want %q", tt.job, tt.root, got, want)
		}
		if e.StatusDetails[gg.DetailErrorStack] != tt.stack ||
			e.StatusDetails[gg.DetailDeploymentStatus] != gg.StatusFailedNoStateChange {
			t.Errorf("%s (%s): details %v", tt.job, tt.root, e.StatusDetails)
		}
		if got := c.logLines()[before:]; len(got) != 0 {
			t.Errorf("%s (%s) ran %q", tt.job, tt.root, got)
		}
	}
	if job, _ := c.active(); job != "job-1" {
		t.Errorf("the device runs %s's set after the failures, want job-1's", job)
	}

	c.mu.Lock()
	resolves := append([]string(nil), c.resolves...)
	c.mu.Unlock()
	if len(resolves) == 0 {
		t.Fatal("the agent never called ResolveComponentCandidates")
	}
	for _, auth := range resolves {
		if !strings.Contains(auth, "Credential="+deviceKey+"/") || !strings.Contains(auth, "/"+gg.SigningName+"/aws4_request") {
			t.Errorf("ResolveComponentCandidates signed %q, want the device key under %s", auth, gg.SigningName)
		}
	}
}

// TestDeviceKeysOpenOnlyResolve: a device key calls ResolveComponentCandidates, as the nucleus does with its
// device certificate, and no other Greengrass operation.
func TestDeviceKeysOpenOnlyResolve(t *testing.T) {
	c := newCloudCore(t)
	c.create("Lib", "1.0.0", nil)
	ctx := context.Background()
	device := c.client(deviceKey, deviceSecret)
	out, err := device.ResolveComponentCandidates(ctx, &ggsdk.ResolveComponentCandidatesInput{
		Platform: &types.ComponentPlatform{Attributes: map[string]string{"os": "linux", "architecture": "amd64"}},
		ComponentCandidates: []types.ComponentCandidate{{ComponentName: aws.String("Lib"),
			VersionRequirements: map[string]string{"App": "^1.0.0"}}}})
	if err != nil {
		t.Fatalf("ResolveComponentCandidates with a device key: %v", err)
	}
	if len(out.ResolvedComponentVersions) != 1 || aws.ToString(out.ResolvedComponentVersions[0].ComponentVersion) != "1.0.0" {
		t.Fatalf("resolved %+v, want Lib 1.0.0", out.ResolvedComponentVersions)
	}
	refused := func(op string, err error) {
		t.Helper()
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "UnrecognizedClientException" {
			t.Errorf("%s with a device key: %v, want UnrecognizedClientException", op, err)
		}
	}
	_, err = device.ListComponents(ctx, &ggsdk.ListComponentsInput{})
	refused("ListComponents", err)
	_, err = device.CreateComponentVersion(ctx, &ggsdk.CreateComponentVersionInput{
		InlineRecipe: []byte(`{"RecipeFormatVersion":"2020-01-25","ComponentName":"X","ComponentVersion":"1.0.0"}`)})
	refused("CreateComponentVersion", err)
	_, err = device.ListComponentVersions(ctx, &ggsdk.ListComponentVersionsInput{
		Arn: aws.String("arn:aws:greengrass:us-east-1:123456789012:components:Lib")})
	refused("ListComponentVersions", err)
}

// TestNoResolverOnMemoryTransport: on the in-memory transport, which calls no cloud API, the kinds of every host
// fail a Greengrass deployment with the named code.
func TestNoResolverOnMemoryTransport(t *testing.T) {
	svc := agenttest.New(nil)
	t.Cleanup(svc.Close)
	rec := &recorder{}
	a := runInMemory(t, svc, kinds.All(), rec)
	c := &core{t: t, svc: svc, rec: rec, a: a}
	c.enqueue("job-1", deployment{roots: map[string]string{"App": "1.0.0"}})
	e := c.waitEnded("job-1")
	if got, want := rec.chain("job-1"), []string{R, D, failed(gg.CodeResolverMissing)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("chain %q, want %q", got, want)
	}
	if e.StatusDetails[gg.DetailErrorStack] != "DEPLOYMENT_FAILURE,NUCLEUS_MISSING_REQUIRED_CAPABILITIES" {
		t.Errorf("details %v", e.StatusDetails)
	}
}
