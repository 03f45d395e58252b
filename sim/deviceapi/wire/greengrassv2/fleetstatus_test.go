package greengrassv2

import (
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestFleetStatusTopic(t *testing.T) {
	for _, thing := range []string{"core-1", "robot_0001", "a:b"} {
		p := FleetStatusPath(thing)
		topic, err := url.PathUnescape(strings.TrimPrefix(p, "/topics/"))
		if err != nil || !strings.HasPrefix(p, "/topics/") || strings.Count(p, "/") != 2 {
			t.Fatalf("%s: path %q (%v): want /topics/ and one escaped segment", thing, p, err)
		}
		if got, ok := FleetStatusThing(topic); !ok || got != thing {
			t.Errorf("%s: FleetStatusThing(%q) = %q, %v", thing, topic, got, ok)
		}
	}
	for _, topic := range []string{"", "$aws/things//greengrassv2/health/json", "$aws/things/a/b/greengrassv2/health/json",
		"$aws/things/a/greengrassv2/health", "things/a/greengrassv2/health/json"} {
		if thing, ok := FleetStatusThing(topic); ok {
			t.Errorf("FleetStatusThing(%q) = %q, want no fleet status topic", topic, thing)
		}
	}
}

func TestParseFleetStatus(t *testing.T) {
	good := `{"thing":"core-1","overallDeviceStatus":"UNHEALTHY","sequenceNumber":2,"jobId":"j",
		"components":[{"componentName":"a","version":"1.0.0","isRoot":true,"status":"BROKEN","errors":3,"lastStatusChangeTime":5}]}`
	fs, err := ParseFleetStatus("core-1", []byte(good))
	want := FleetStatus{Thing: "core-1", OverallDeviceStatus: DeviceUnhealthy, SequenceNumber: 2, JobID: "j",
		Components: []ComponentStatus{{ComponentName: "a", Version: "1.0.0", IsRoot: true, Status: LifecycleBroken,
			Errors: 3, LastStatusChangeTime: 5}}}
	if err != nil || !reflect.DeepEqual(fs, want) {
		t.Fatalf("good: %+v %v", fs, err)
	}
	for name, body := range map[string]string{
		"not json":      `{`,
		"trailing":      `{"thing":"core-1","overallDeviceStatus":"HEALTHY"} {}`,
		"other thing":   `{"thing":"core-2","overallDeviceStatus":"HEALTHY"}`,
		"no status":     `{"thing":"core-1"}`,
		"negative seq":  `{"thing":"core-1","overallDeviceStatus":"HEALTHY","sequenceNumber":-1}`,
		"no name":       `{"thing":"core-1","overallDeviceStatus":"HEALTHY","components":[{"status":"RUNNING"}]}`,
		"bad state":     `{"thing":"core-1","overallDeviceStatus":"HEALTHY","components":[{"componentName":"a","status":"UP"}]}`,
		"twice":         `{"thing":"core-1","overallDeviceStatus":"HEALTHY","components":[{"componentName":"a","status":"RUNNING"},{"componentName":"a","status":"RUNNING"}]}`,
		"negative errs": `{"thing":"core-1","overallDeviceStatus":"HEALTHY","components":[{"componentName":"a","status":"ERRORED","errors":-1}]}`,
	} {
		if _, err := ParseFleetStatus("core-1", []byte(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzParseFleetStatus checks that any message either is refused or parses into one that parses again to the
// same value after a JSON round trip; never a panic.
func FuzzParseFleetStatus(f *testing.F) {
	f.Add([]byte(`{"thing":"core-1","overallDeviceStatus":"HEALTHY","components":[{"componentName":"a","status":"RUNNING"}]}`))
	f.Add([]byte(`{"thing":"core-1","overallDeviceStatus":"UNHEALTHY","components":[{"componentName":"a","status":"BROKEN","errors":3}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fs, err := ParseFleetStatus("core-1", data)
		if err != nil {
			return
		}
		b, err := json.Marshal(fs)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseFleetStatus("core-1", b)
		if err != nil {
			t.Fatalf("a parsed message does not parse again: %v (%s)", err, b)
		}
		if !reflect.DeepEqual(normal(fs), normal(again)) {
			t.Fatalf("round trip: %+v, then %+v", fs, again)
		}
	})
}

// normal makes empty slices nil, as a JSON round trip of omitempty members does.
func normal(fs FleetStatus) FleetStatus {
	if len(fs.Components) == 0 {
		fs.Components = nil
	}
	for i := range fs.Components {
		if len(fs.Components[i].StatusCodes) == 0 {
			fs.Components[i].StatusCodes = nil
		}
	}
	return fs
}
