package fleet_test

import (
	"strings"
	"testing"

	"github.com/fleetlab/fleetlab/sim/fleet"
)

func TestNames(t *testing.T) {
	got, err := fleet.Names(nil, 3, "")
	if err != nil || strings.Join(got, " ") != "robot-0001 robot-0002 robot-0003" {
		t.Fatalf("Names(3) = %v, %v", got, err)
	}
	got, err = fleet.Names(nil, 12000, "arm")
	if err != nil || got[0] != "arm-00001" || got[11999] != "arm-12000" {
		t.Fatalf("Names(12000) = %v…, %v", got[:2], err)
	}
	got, err = fleet.Names([]string{"b", "a"}, 0, "")
	if err != nil || strings.Join(got, " ") != "a b" {
		t.Fatalf("Names(b, a) = %v, %v", got, err)
	}
	for _, bad := range [][]string{{"a", "a"}, {"has space"}, {"colon:name"}, {""}} {
		if _, err := fleet.Names(bad, 0, ""); err == nil {
			t.Errorf("Names(%q) accepted", bad)
		}
	}
	if _, err := fleet.Names(nil, 0, ""); err == nil {
		t.Error("no names and no count accepted")
	}
}
