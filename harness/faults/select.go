package faults

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
)

// Selector picks the devices a fault strikes and, for faults that strike at a step, the step. At most one of
// Devices, Count and Percent is set; none of them selects every robot.
type Selector struct {
	// Devices names the targets.
	Devices []string `json:"devices,omitempty"`
	// Count picks this many robots with the run's seed.
	Count int `json:"count,omitempty"`
	// Percent picks ceil(N·Percent/100) robots with the run's seed.
	Percent float64 `json:"percent,omitempty"`
	// Step is the step of the dialect in play (Dialect.Steps) at which the fault strikes each target, for the
	// faults that take one.
	Step string `json:"step,omitempty"`
}

// IsZero reports whether the selector selects every robot, with no step.
func (s Selector) IsZero() bool {
	return len(s.Devices) == 0 && s.Count == 0 && s.Percent == 0 && s.Step == ""
}

// selectsDevices reports whether the selector names devices in any way.
func (s Selector) selectsDevices() bool { return len(s.Devices) > 0 || s.Count != 0 || s.Percent != 0 }

// check validates the selector against the dialect's steps.
func (s Selector) check(d Dialect) error {
	if err := s.checkDevices(); err != nil {
		return err
	}
	if s.Step != "" && !slices.Contains(d.Steps, s.Step) {
		return fmt.Errorf("target: step %q is not a %s step (%v)", s.Step, d.Name, d.Steps)
	}
	return nil
}

// checkDevices validates the selector's choice of devices.
func (s Selector) checkDevices() error {
	set := 0
	for _, b := range []bool{len(s.Devices) > 0, s.Count != 0, s.Percent != 0} {
		if b {
			set++
		}
	}
	if set > 1 {
		return fmt.Errorf("target: give one of devices, count and percent, not %d", set)
	}
	if s.Count < 0 {
		return fmt.Errorf("target: count %d is negative", s.Count)
	}
	if s.Percent < 0 || s.Percent > 100 || math.IsNaN(s.Percent) {
		return fmt.Errorf("target: percent %v outside [0, 100]", s.Percent)
	}
	seen := map[string]bool{}
	for _, d := range s.Devices {
		if seen[d] {
			return fmt.Errorf("target: device %s named twice", d)
		}
		seen[d] = true
	}
	return nil
}

// Dialect is what faults know of the deployment dialect in play: the names of its steps. The dialect's driver
// gives it; faults that strike at a step, or in the step that runs a script or a download, take the names from
// here and never name a dialect's steps themselves.
type Dialect struct {
	// Name names the dialect in messages ("robomaker").
	Name string
	// Steps are every step a device goes through, in order: what a selector may name.
	Steps []string
	// Download is the step in which the bundle is downloaded and unpacked (disk-full strikes there).
	Download string
	// Scripts maps each script the dialect runs (ScriptDownloadCondition, …) to the step that runs it; a
	// script the dialect does not run is absent.
	Scripts map[string]string
	// ScriptSuffix, for a script whose step runs other scripts too (Greengrass V2 runs each component's
	// shutdown and install steps in one step), is how the name of the agent's script ends (agent.Script.Name):
	// a fault on it fails only the scripts so named. A script absent here is every script of its step.
	ScriptSuffix map[string]string
}

// check reports what is missing from a dialect.
func (d Dialect) check() error {
	switch {
	case d.Name == "":
		return fmt.Errorf("fault dialect: no name")
	case len(d.Steps) == 0:
		return fmt.Errorf("fault dialect %s: no steps", d.Name)
	}
	for script, step := range d.Scripts {
		if !slices.Contains(d.Steps, step) {
			return fmt.Errorf("fault dialect %s: script %s runs in %s, which is not one of its steps", d.Name, script, step)
		}
	}
	if d.Download != "" && !slices.Contains(d.Steps, d.Download) {
		return fmt.Errorf("fault dialect %s: download step %s is not one of its steps", d.Name, d.Download)
	}
	return nil
}

// Select returns the targets among robots, sorted. Named devices must all be robots. Count and Percent pick
// with a generator seeded by seed and salt (the fault's name, so two faults of one run pick independently):
// the same seed, salt and robots always pick the same devices.
func (s Selector) Select(robots []string, seed uint64, salt string) ([]string, error) {
	if err := s.checkDevices(); err != nil {
		return nil, err
	}
	all := slices.Sorted(slices.Values(robots))
	switch {
	case len(s.Devices) > 0:
		for _, d := range s.Devices {
			if _, ok := slices.BinarySearch(all, d); !ok {
				return nil, fmt.Errorf("target: device %s is not in the fleet (%v)", d, all)
			}
		}
		return slices.Sorted(slices.Values(s.Devices)), nil
	case s.Count == 0 && s.Percent == 0:
		return all, nil
	}
	n := s.Count
	if s.Percent > 0 {
		n = int(math.Ceil(float64(len(all)) * s.Percent / 100))
	}
	if n > len(all) {
		return nil, fmt.Errorf("target: count %d is more than the %d robots of the fleet", n, len(all))
	}
	h := fnv.New64a()
	h.Write([]byte(salt))
	r := rand.New(rand.NewPCG(seed, h.Sum64()))
	picked := slices.Clone(all)
	r.Shuffle(len(picked), func(i, j int) { picked[i], picked[j] = picked[j], picked[i] })
	return slices.Sorted(slices.Values(picked[:n])), nil
}
