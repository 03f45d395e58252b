package kinds_test

import (
	"testing"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/agent/kinds"
	gg1wire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/greengrass"
	ggwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/greengrassv2"
	owwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/opsworks"
	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
)

// TestAll: the list makes an agent (no two kinds of one name), and carries RoboMaker's jobs first.
func TestAll(t *testing.T) {
	all := kinds.All()
	if len(all) != 4 || all[0].Name() != rmwire.Kind || all[1].Name() != ggwire.Kind || all[2].Name() != gg1wire.Kind ||
		all[3].Name() != owwire.Kind {
		t.Fatalf("kinds %v: want robomaker first, then greengrassv2, greengrass, opsworks", all)
	}
	a, err := agent.New(agent.Options{Thing: "robot-1", Kinds: all, Endpoint: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := agent.New(agent.Options{Thing: "robot-1", Kinds: append(all, all[0]), Endpoint: "http://127.0.0.1:1"}); err == nil {
		t.Fatal("an agent with two kinds of one name was made")
	}
	if _, err := agent.New(agent.Options{Thing: "robot-1", Endpoint: "http://127.0.0.1:1"}); err == nil {
		t.Fatal("an agent with no kinds was made")
	}
}

func TestCheckArchitecture(t *testing.T) {
	for _, ok := range []string{"amd64", "arm64", "arm"} {
		if err := kinds.CheckArchitecture(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "MIPS", "riscv64", "X86_64", "ARM64", "ARMHF"} {
		if err := kinds.CheckArchitecture(bad); err == nil {
			t.Errorf("%q passed", bad)
		}
	}
}
