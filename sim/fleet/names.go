package fleet

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
)

// The robot architectures RoboMaker knows.
const (
	ArchX86_64 = "X86_64"
	ArchARM64  = "ARM64"
	ArchARMHF  = "ARMHF"
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

// CheckArchitecture reports whether arch is one of X86_64, ARM64 and ARMHF.
func CheckArchitecture(arch string) error {
	switch arch {
	case ArchX86_64, ArchARM64, ArchARMHF:
		return nil
	}
	return fmt.Errorf("architecture %q: want X86_64, ARM64 or ARMHF", arch)
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
