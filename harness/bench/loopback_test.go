package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/harness/bench"
	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
)

// The loopback limit's clients share as many connections as they are given, and one each by default.
func TestLoopbackSharesConnections(t *testing.T) {
	agenttest.LeakTest(t)
	for _, tc := range []struct{ clients, conns, want int }{{8, 2, 2}, {8, 0, 8}, {3, 5, 3}} {
		res, err := bench.Loopback(context.Background(), tc.clients, tc.conns, 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if res.Conns != tc.want || res.Opened < 1 || res.Opened > int64(tc.want) || res.Requests == 0 || res.RPS <= 0 {
			t.Errorf("%d clients over %d connections: %+v, want %d connections at most and requests served",
				tc.clients, tc.conns, res, tc.want)
		}
	}
	if _, err := bench.Loopback(context.Background(), 0, 1, time.Millisecond); err == nil {
		t.Error("0 clients accepted")
	}
}
