package fleet

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
)

// The device architectures, by their GOARCH names, as the agent and every host name them. A dialect that
// names them otherwise (RoboMaker's X86_64, ARM64, ARMHF) maps them in its own driver.
const (
	ArchAMD64 = "amd64"
	ArchARM64 = "arm64"
	ArchARM   = "arm"
)

// validName is what a device name must be to serve as both a RoboMaker robot name ([a-zA-Z0-9_-], up to 255) and
// a thing name on the device API ([a-zA-Z0-9:_-], up to 128).
var validName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,128}$`)

// CheckName reports whether name can name a device.
func CheckName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("device name %q: want 1 to 128 of [a-zA-Z0-9_-]", name)
	}
	return nil
}

// CheckArchitecture reports whether arch is one of amd64, arm64 and arm.
func CheckArchitecture(arch string) error {
	switch arch {
	case ArchAMD64, ArchARM64, ArchARM:
		return nil
	}
	return fmt.Errorf("architecture %q: want amd64, arm64 or arm", arch)
}

// Names returns the device names of a fleet, sorted: names when given, otherwise count names made from prefix
// ("robot" when empty) and a zero-padded number from 1 ("robot-0001" … "robot-1000"). Every name is checked and
// duplicates are an error.
func Names(names []string, count int, prefix string) ([]string, error) {
	if len(names) == 0 {
		if count <= 0 {
			return nil, errors.New("fleet names: give Names or a positive Count")
		}
		if prefix == "" {
			prefix = "robot"
		}
		width := max(4, len(strconv.Itoa(count)))
		names = make([]string, count)
		for i := range names {
			names[i] = fmt.Sprintf("%s-%0*d", prefix, width, i+1)
		}
	} else {
		names = slices.Clone(names)
	}
	slices.Sort(names)
	for i, n := range names {
		if err := CheckName(n); err != nil {
			return nil, fmt.Errorf("fleet names: %w", err)
		}
		if i > 0 && names[i-1] == n {
			return nil, fmt.Errorf("fleet names: %s appears twice", n)
		}
	}
	return names, nil
}
