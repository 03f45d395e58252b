package robomaker

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/store"
)

// fuzzRoutes are the operations the fuzzer calls, by index; {arn} is a fleet's ARN, escaped.
var fuzzRoutes = []struct {
	method, path string
	read         bool // the operation never changes state
}{
	{"POST", "/createFleet", false}, {"POST", "/deleteFleet", false}, {"POST", "/describeFleet", true},
	{"POST", "/listFleets", true}, {"POST", "/createRobot", false}, {"POST", "/deleteRobot", false},
	{"POST", "/describeRobot", true}, {"POST", "/listRobots", true}, {"POST", "/registerRobot", false},
	{"POST", "/deregisterRobot", false}, {"POST", "/createRobotApplication", false},
	{"POST", "/createRobotApplicationVersion", false}, {"POST", "/describeRobotApplication", true},
	{"POST", "/listRobotApplications", true}, {"POST", "/deleteRobotApplication", false},
	{"POST", "/createDeploymentJob", false}, {"POST", "/describeDeploymentJob", true},
	{"POST", "/listDeploymentJobs", true}, {"POST", "/cancelDeploymentJob", false},
	{"POST", "/syncDeploymentJob", false}, {"POST", "/tags/{arn}", false}, {"DELETE", "/tags/{arn}", false},
	{"GET", "/tags/{arn}", true},
}

// snapshot digests every key and value the service and its engine keep.
func snapshot(t *testing.T, st store.Store) [32]byte {
	h := sha256.New()
	buckets := append([]string{"engine.deployments", "engine.executions"}, robomakerBuckets...)
	err := st.View(func(tx store.Tx) error {
		for _, b := range buckets {
			if err := tx.ForEach(b, "", func(k string, v []byte) error {
				h.Write([]byte(b + "\x00" + k + "\x00"))
				h.Write(v)
				h.Write([]byte{0})
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// FuzzOperations sends arbitrary bodies and queries to every operation. No input may panic or be answered with an
// internal error; every error is a well-formed AWS error; and a request that is refused, or that only reads, leaves
// the stored state as it was.
func FuzzOperations(f *testing.F) {
	e := newEnv(f)
	fleet, _ := e.fleetWith("lab", 2)
	app := e.app("hello")
	v := e.version(app)
	job := aws.ToString(e.job(fleet, app, v, nil).Arn)
	h := awsapi.NewHandler(awsapi.Options{})
	if err := e.svc.Register(h); err != nil {
		f.Fatal(err)
	}

	seeds := []struct {
		op    byte
		query string
		body  string
	}{
		{0, "", `{"name":"fuzzed","tags":{"k":"v"}}`},
		{2, "", `{"fleet":"` + fleet + `"}`},
		{3, "", `{"maxResults":1,"filters":[{"name":"name","values":["lab"]}]}`},
		{4, "", `{"name":"r9","architecture":"X86_64","greengrassGroupId":"g"}`},
		{15, "", `{"clientRequestToken":"t","fleet":"` + fleet + `","deploymentApplicationConfigs":[{"application":"` + app +
			`","applicationVersion":"1","launchConfig":{"packageName":"p","launchFile":"l"}}]}`},
		{16, "", `{"job":"` + job + `"}`},
		{17, "", `{"filters":[{"name":"status","values":["Pending","Failed"]}],"nextToken":"abc"}`},
		{20, "", `{"tags":{"a":"b"}}`},
		{21, "tagKeys=a&tagKeys=b", ``},
		{22, "", ``},
		{1, "", `{"fleet":`},
		{8, "", `[]`},
		{11, "", `{"application":"` + app + `","s3Etags":[1]}`},
		{19, "", `{"clientRequestToken":"","fleet":null}`},
	}
	for _, s := range seeds {
		f.Add(s.op, s.query, []byte(s.body))
	}

	f.Fuzz(func(t *testing.T, op byte, query string, body []byte) {
		route := fuzzRoutes[int(op)%len(fuzzRoutes)]
		path := route.path
		if path == "/tags/{arn}" {
			path = "/tags/" + url.PathEscape(fleet)
		}
		target := path
		if q, err := url.ParseQuery(query); err == nil && len(q) > 0 {
			target += "?" + q.Encode()
		}
		req := httptest.NewRequest(route.method, target, bytes.NewReader(body))
		before := snapshot(t, e.store)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		after := snapshot(t, e.store)

		res := rec.Result()
		if res.StatusCode >= 500 {
			t.Fatalf("%s %s %q: status %d %s", route.method, target, body, res.StatusCode, rec.Body)
		}
		if res.Header.Get("x-amzn-RequestId") == "" {
			t.Fatal("no request id")
		}
		var doc map[string]any
		if res.StatusCode != http.StatusOK {
			if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || doc["__type"] != res.Header.Get("X-Amzn-ErrorType") ||
				doc["__type"] == "" || doc["message"] == nil {
				t.Fatalf("malformed error %d %v: %s", res.StatusCode, res.Header, rec.Body)
			}
			if before != after {
				t.Fatalf("refused request %s %s %q changed the store: %s", route.method, target, body, rec.Body)
			}
			return
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
			t.Fatalf("success body is not a JSON object: %s", rec.Body)
		}
		if route.read && before != after {
			t.Fatalf("read %s %s changed the store", route.method, target)
		}
	})
}
