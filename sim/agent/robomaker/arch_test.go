package robomaker_test

import (
	"testing"

	"github.com/fleetlab/fleetlab/sim/agent/robomaker"
)

func TestArchitecture(t *testing.T) {
	for in, want := range map[string]string{
		"amd64": "X86_64", "arm64": "ARM64", "arm": "ARMHF",
		"X86_64": "", "ARM64": "", "ARMHF": "", "riscv64": "", "MIPS": "", "": "", "x86_64": "",
	} {
		got, err := robomaker.Architecture(in)
		if got != want || (err != nil) != (want == "") {
			t.Errorf("Architecture(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
