package fleet

import (
	"errors"
	"fmt"
	"slices"

	"github.com/fleetlab/fleetlab/sim/clock"
)

// Roster is the devices a backend hosts, in name order, with the lookups of Fleet over them. A backend's Fleet
// embeds it, so Devices, Device, Robot and Robots are the backend's own, Robot and Robots with the backend's device
// type. StartRoster builds it; it does not change after.
type Roster[D Device] struct {
	devices []D
	byName  map[string]D
}

// StartRoster starts a device for each name, in order, through start. When one fails, the devices already started
// are stopped through stop, as StopAll does on c, and the start error is returned: their stop errors are dropped.
func StartRoster[D Device](c clock.Clock, names []string, start func(name string) (D, error), stop func(D) error) (Roster[D], error) {
	r := Roster[D]{devices: make([]D, 0, len(names)), byName: make(map[string]D, len(names))}
	for _, name := range names {
		d, err := start(name)
		if err != nil {
			StopAll(c, r.devices, stop)
			return Roster[D]{}, err
		}
		r.devices = append(r.devices, d)
		r.byName[name] = d
	}
	return r, nil
}

// Devices implements Fleet.
func (r Roster[D]) Devices() []Device {
	out := make([]Device, len(r.devices))
	for i, d := range r.devices {
		out[i] = d
	}
	return out
}

// Device implements Fleet.
func (r Roster[D]) Device(name string) (Device, bool) {
	d, ok := r.byName[name]
	if !ok {
		return nil, false
	}
	return d, true
}

// Robot returns the named robot with its full API.
func (r Roster[D]) Robot(name string) (D, bool) {
	d, ok := r.byName[name]
	return d, ok
}

// Robots returns every robot, by name.
func (r Roster[D]) Robots() []D { return slices.Clone(r.devices) }

// StopAll stops every device at once through stop, on goroutines of c (actors, on a virtual-time world's clock),
// and waits for them all: a fleet's Close takes as long as its slowest device, not the sum of them. The errors
// come back joined, in the order of devs.
func StopAll[D any](c clock.Clock, devs []D, stop func(D) error) error {
	g := clock.NewGroup(c)
	errs := make([]error, len(devs))
	for i, d := range devs {
		g.Go(fmt.Sprint("stop device ", i), func() { errs[i] = stop(d) })
	}
	g.Wait()
	return errors.Join(errs...)
}

// Architectures returns the architecture of each named device: its entry in perName, else arch, else amd64. An
// architecture CheckArchitecture refuses is an error, and so is an entry of perName for a name not in names.
func Architectures(names []string, arch string, perName map[string]string) (map[string]string, error) {
	if arch == "" {
		arch = ArchAMD64
	}
	if err := CheckArchitecture(arch); err != nil {
		return nil, err
	}
	archs := make(map[string]string, len(names))
	for _, name := range names {
		archs[name] = arch
	}
	for name, a := range perName {
		if err := CheckArchitecture(a); err != nil {
			return nil, fmt.Errorf("robot %s: %w", name, err)
		}
		if _, ok := archs[name]; !ok {
			return nil, fmt.Errorf("Architectures names %s, which is not a robot of the fleet", name)
		}
		archs[name] = a
	}
	return archs, nil
}
