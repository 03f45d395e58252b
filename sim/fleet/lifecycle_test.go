package fleet_test

import (
	"context"
	"testing"

	"github.com/fleetlab/fleetlab/sim/fleet"
)

func TestLifecycleGuards(t *testing.T) {
	live, ended := context.Background(), func() context.Context {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx
	}()
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"restart a crashed device", fleet.CheckRestart(live, "r", false, false), ""},
		{"restart a running device", fleet.CheckRestart(live, "r", true, false), "restart r: already running"},
		{"restart in a closed fleet", fleet.CheckRestart(live, "r", false, true), "restart r: the fleet is closed"},
		{"restart with an ended context", fleet.CheckRestart(ended, "r", false, false), "restart r: context canceled"},
		{"freeze a running device", fleet.CheckFreeze("r", true, false, true), ""},
		{"freeze a frozen device", fleet.CheckFreeze("r", true, true, true), "freeze r: already frozen"},
		{"freeze a crashed device", fleet.CheckFreeze("r", false, false, true), "freeze r: not running"},
		{"thaw a frozen device", fleet.CheckFreeze("r", true, true, false), ""},
		{"thaw a device that is not frozen", fleet.CheckFreeze("r", true, false, false), "thaw r: not frozen"},
		{"thaw a crashed device", fleet.CheckFreeze("r", false, false, false), "thaw r: not running"},
	} {
		got := ""
		if tc.err != nil {
			got = tc.err.Error()
		}
		if got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
