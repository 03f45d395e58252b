package iot

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/store"
)

// fuzzRoutes are the operations the fuzzer calls, by index; {thing}, {group} and {job} are filled from the
// input ({job} from the part of it after a '/', or all of it).
var fuzzRoutes = []struct {
	method, path string
	read         bool // the operation never changes state
}{
	{"POST", "/things/{thing}", false}, {"GET", "/things/{thing}", true}, {"PATCH", "/things/{thing}", false},
	{"DELETE", "/things/{thing}", false}, {"GET", "/things", true}, {"POST", "/thing-groups/{group}", false},
	{"GET", "/thing-groups/{group}", true}, {"DELETE", "/thing-groups/{group}", false},
	{"PUT", "/thing-groups/addThingToThingGroup", false}, {"PUT", "/thing-groups/removeThingFromThingGroup", false},
	{"GET", "/thing-groups/{group}/things", true}, {"GET", "/things/{thing}/thing-groups", true},
	{"POST", "/tags", false}, {"POST", "/untag", false}, {"GET", "/tags", true},
	{"GET", "/jobs/{job}", true}, {"GET", "/jobs", true}, {"GET", "/jobs/{job}/things", true},
	{"GET", "/things/{thing}/jobs/{job}", true}, {"PUT", "/jobs/{job}/cancel", false},
}

// iotBuckets are every bucket the dialect and its engine keep.
var iotBuckets = []string{"engine.deployments", "engine.executions", bucketThings, bucketGroups, bucketGroupThings, bucketThingGroups, bucketChildren,
	"iot.index", "iot.tags", "iot.tokens", "iot.meta", "iot.seq"}

// snapshot digests every key and value the dialect keeps.
func snapshot(t *testing.T, st store.Store) [32]byte {
	h := sha256.New()
	err := st.View(func(tx store.Tx) error {
		for _, b := range iotBuckets {
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

// FuzzOperations sends arbitrary names, queries and bodies to every operation. No input may panic or be
// answered with an internal error; every error is a well-formed AWS error; and a request that is refused, or
// that only reads, leaves the stored state as it was.
func FuzzOperations(f *testing.F) {
	e := newEnv(f)
	e.thing("r1", map[string]string{"a": "1"})
	e.group("site", "")
	e.group("line", "site")
	e.add("line", "r1")
	if _, err := e.eng.Create(engine.Spec{ID: "job-1", Kind: "test", Targets: []string{"r1"}, Document: []byte(`{}`)}); err != nil {
		f.Fatal(err)
	}
	e.eng.Tick()
	h := awsapi.NewHandler(awsapi.Options{})
	if err := e.svc.Register(h); err != nil {
		f.Fatal(err)
	}
	group := "arn:aws:iot:us-east-1:123456789012:thinggroup/site"
	seeds := []struct {
		op          byte
		name, query string
		body        string
	}{
		{0, "r2", "", `{"attributePayload":{"attributes":{"k":"v"}}}`},
		{0, "r1", "", `{"attributePayload":{"attributes":{"a":"2"}}}`},
		{2, "r1", "", `{"expectedVersion":1,"attributePayload":{"merge":true,"attributes":{"a":""}}}`},
		{3, "r1", "expectedVersion=9", ``},
		{4, "", "attributeName=a&attributeValue=1&maxResults=1", ``},
		{4, "", "nextToken=abc", ``},
		{5, "g2", "", `{"parentGroupName":"line","thingGroupProperties":{"thingGroupDescription":"d"},"tags":[{"Key":"k","Value":"v"}]}`},
		{7, "site", "", ``},
		{8, "", "", `{"thingGroupName":"site","thingName":"r1"}`},
		{9, "", "", `{"thingGroupArn":"` + group + `","thingName":"r1"}`},
		{10, "site", "recursive=true&maxResults=1", ``},
		{12, "", "", `{"resourceArn":"` + group + `","tags":[{"Key":"a","Value":"b"}]}`},
		{13, "", "", `{"resourceArn":"` + group + `","tagKeys":["a"]}`},
		{14, "", "resourceArn=" + url.QueryEscape(group), ``},
		{0, "r 1", "", `{"attributePayload":`},
		{8, "", "", `[]`},
		{12, "", "", `{"resourceArn":"` + group + `","tags":{"a":"b"}}`},
		{15, "job-1", "", ``},
		{16, "", "status=IN_PROGRESS&targetSelection=SNAPSHOT&maxResults=1", ``},
		{17, "job-1", "status=QUEUED", ``},
		{18, "r1/job-1", "executionNumber=1", ``},
		{19, "job-1", "force=true", `{"comment":"c"}`},
		{19, "job-1", "", `{"reasonCode":"STOP"}`},
	}
	for _, s := range seeds {
		f.Add(s.op, s.name, s.query, []byte(s.body))
	}

	f.Fuzz(func(t *testing.T, op byte, name, query string, body []byte) {
		route := fuzzRoutes[int(op)%len(fuzzRoutes)]
		thing, job, ok := strings.Cut(name, "/")
		if !ok {
			job = name
		}
		path := strings.NewReplacer("{thing}", url.PathEscape(thing), "{group}", url.PathEscape(name),
			"{job}", url.PathEscape(job)).Replace(route.path)
		target := path
		if q, err := url.ParseQuery(query); err == nil && len(q) > 0 {
			target += "?" + q.Encode()
		}
		req := httptest.NewRequest(route.method, "http://iot.test"+target, bytes.NewReader(body))
		before := snapshot(t, e.store)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		after := snapshot(t, e.store)

		res := rec.Result()
		if res.StatusCode >= 500 {
			t.Fatalf("%s %s %q: status %d %s", route.method, target, body, res.StatusCode, rec.Body)
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
