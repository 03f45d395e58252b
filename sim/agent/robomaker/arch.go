package robomaker

import "fmt"

// architectures pairs RoboMaker's robot architectures with the GOARCH names the agent and its hosts use.
var architectures = []struct{ goarch, robomaker string }{
	{"amd64", "X86_64"},
	{"arm64", "ARM64"},
	{"arm", "ARMHF"},
}

// Architecture returns RoboMaker's name of a device architecture, given by its GOARCH name as the agent and
// every host name it: amd64 is X86_64, arm64 ARM64 and arm ARMHF. It is the one place the two namings meet:
// the agent picks a job's source by it, and the harness's RoboMaker driver names the robots it creates by it.
// An architecture RoboMaker has no robots of is an error (RoboMaker's own names too: they are not GOARCH
// names); the agent then finds no source for it (MissingRobotApplicationArchitecture).
func Architecture(arch string) (string, error) {
	for _, a := range architectures {
		if arch == a.goarch {
			return a.robomaker, nil
		}
	}
	return "", fmt.Errorf("architecture %q: RoboMaker has X86_64 (amd64), ARM64 (arm64) and ARMHF (arm) robots", arch)
}

// architectureName is RoboMaker's name of arch, or arch itself when RoboMaker has none.
func architectureName(arch string) string {
	if a, err := Architecture(arch); err == nil {
		return a
	}
	return arch
}

// GOARCH returns the GOARCH name of a RoboMaker robot architecture (X86_64 is amd64, ARM64 arm64, ARMHF arm).
func GOARCH(robomakerArch string) (string, error) {
	for _, a := range architectures {
		if robomakerArch == a.robomaker {
			return a.goarch, nil
		}
	}
	return "", fmt.Errorf("architecture %q: RoboMaker's are X86_64, ARM64 and ARMHF", robomakerArch)
}
