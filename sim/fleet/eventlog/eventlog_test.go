package eventlog_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/fleet/eventlog"
)

func TestRoundTrip(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 8, time.UTC)
	in := []agent.Event{
		{Time: at, Kind: agent.EventState, Thing: "r1", JobID: "job-1", State: "Validating"},
		{Time: at, Kind: agent.EventState, Thing: "r1", JobID: "job-1", State: agent.StateFailed, Code: "PreLaunchFileFailure", Reason: "exit status 3"},
		{Time: at, Kind: agent.EventRetry, Thing: "r1", JobID: "job-1", State: "notify", Err: errors.New("dial: refused"), Delay: 1500 * time.Millisecond},
	}
	var buf bytes.Buffer
	w := eventlog.NewWriter(&buf)
	for _, e := range in {
		w.Write(e)
	}
	if w.Err() != nil {
		t.Fatal(w.Err())
	}
	// A line cut short by a kill, and noise, are skipped.
	buf.WriteString(`{"time":"2026-03-04T05:06:07Z","kind":"sta` + "\n" + "not json\n")
	var out []agent.Event
	if err := eventlog.Read(&buf, func(e agent.Event) { out = append(out, e) }); err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("read %d events, wrote %d", len(out), len(in))
	}
	for i := range in {
		want, got := in[i], out[i]
		if (want.Err == nil) != (got.Err == nil) || want.Err != nil && want.Err.Error() != got.Err.Error() {
			t.Errorf("event %d error %v, want %v", i, got.Err, want.Err)
		}
		want.Err, got.Err = nil, nil
		if !reflect.DeepEqual(want, got) {
			t.Errorf("event %d\n got %+v\nwant %+v", i, got, want)
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteErrorIsKept(t *testing.T) {
	w := eventlog.NewWriter(failWriter{})
	w.Write(agent.Event{Kind: agent.EventConnected})
	w.Write(agent.Event{Kind: agent.EventDisconnected})
	if err := w.Err(); err == nil || err.Error() != "write event: disk full" {
		t.Fatalf("Err() = %v", err)
	}
}
