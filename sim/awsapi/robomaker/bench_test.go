package robomaker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/robomaker"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/awsapi/sdkhttp"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/store"
)

// BenchmarkDescribeDeploymentJob measures the whole request path (routing, validation, store and engine reads,
// encoding) of DescribeDeploymentJob for a job over a fleet of 200 robots, without the network.
func BenchmarkDescribeDeploymentJob(b *testing.B) {
	e := newEnv(b)
	f, _ := e.fleetWith("lab", 200)
	app := e.app("hello")
	job := aws.ToString(e.job(f, app, e.version(app), nil).Arn)
	h := awsapi.NewHandler(awsapi.Options{})
	if err := e.svc.Register(h); err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"job":"` + job + `"}`)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/describeDeploymentJob", bytes.NewReader(body)))
		if rec.Code != 200 {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkValidateCreateDeploymentJob measures model validation of a full CreateDeploymentJob input.
func BenchmarkValidateCreateDeploymentJob(b *testing.B) {
	m, err := LoadModel()
	if err != nil {
		b.Fatal(err)
	}
	env := map[string]string{}
	for i := range 20 {
		env[fmt.Sprintf("VAR_%d", i)] = "value"
	}
	doc, _ := json.Marshal(map[string]any{
		"clientRequestToken": "tok-1", "fleet": "arn:aws:robomaker:us-east-1:123456789012:deployment-fleet/f/1",
		"deploymentConfig": map[string]any{"concurrentDeploymentPercentage": 20, "failureThresholdPercentage": 10,
			"robotDeploymentTimeoutInSeconds": 600, "downloadConditionFile": map[string]string{"bucket": "scripts", "key": "c.sh"}},
		"deploymentApplicationConfigs": []any{map[string]any{
			"application": "arn:aws:robomaker:us-east-1:123456789012:robot-application/a/1", "applicationVersion": "1",
			"launchConfig": map[string]any{"packageName": "pkg", "launchFile": "x.launch", "environmentVariables": env}}},
		"tags": map[string]string{"team": "hil", "run": "42"},
	})
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var in map[string]any
	if err := dec.Decode(&in); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := m.ValidateInput("CreateDeploymentJob", in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConcurrentWrites measures the latency of control-plane writes under 200 concurrent SDK clients, on the
// on-disk store (bbolt, a disk sync per commit) behind a loopback server: each client creates robots and tags
// them, one request after another. It reports the median and 99th-percentile latency of a write and the
// writes per second all clients together got through. Run it with a fixed count, so every run measures the
// same work: go test ./sim/awsapi/robomaker -run '^$' -bench ConcurrentWrites -benchtime 4000x
func BenchmarkConcurrentWrites(b *testing.B) {
	const clients = 200
	st, err := store.Open(filepath.Join(b.TempDir(), "fleetlab.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	eng, err := engine.New(engine.Options{Store: st})
	if err != nil {
		b.Fatal(err)
	}
	svc, err := New(Options{Engine: eng, Store: st})
	if err != nil {
		b.Fatal(err)
	}
	h := awsapi.NewHandler(awsapi.Options{})
	if err := svc.Register(h); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	b.Cleanup(tr.CloseIdleConnections)
	c := robomaker.New(robomaker.Options{BaseEndpoint: aws.String(srv.URL), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AK", "SK", ""), RetryMaxAttempts: 1,
		HTTPClient: sdkhttp.Client(tr)})
	ctx := context.Background()

	latencies := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := range clients {
		wg.Go(func() {
			var robotARN string
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				start := time.Now()
				var err error
				if robotARN == "" {
					var out *robomaker.CreateRobotOutput
					out, err = c.CreateRobot(ctx, &robomaker.CreateRobotInput{Name: aws.String(fmt.Sprintf("w%d-%d", w, i)),
						Architecture: types.ArchitectureArm64, GreengrassGroupId: aws.String("g")})
					if err == nil {
						robotARN = aws.ToString(out.Arn)
					}
				} else {
					_, err = c.TagResource(ctx, &robomaker.TagResourceInput{ResourceArn: aws.String(robotARN),
						Tags: map[string]string{"n": strconv.Itoa(i)}})
					robotARN = ""
				}
				latencies[i] = time.Since(start)
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[min(len(latencies)-1, int(p*float64(len(latencies))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}
