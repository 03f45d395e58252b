package robomaker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/fleetlab/fleetlab/sim/awsapi"
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
