package harness

import (
	"fmt"
	"strings"

	"github.com/fleetlab/fleetlab/harness/dialect"
	"github.com/fleetlab/fleetlab/harness/greengrass"
	"github.com/fleetlab/fleetlab/harness/greengrassv2"
	"github.com/fleetlab/fleetlab/harness/opsworks"
	"github.com/fleetlab/fleetlab/harness/robomaker"
)

// Drivers returns every dialect the harness knows, the default first. Adding a dialect is adding its driver
// here; nothing else in the harness names one.
func Drivers() []dialect.Driver {
	return []dialect.Driver{
		robomaker.Driver{},
		greengrassv2.Driver{},
		greengrass.Driver{},
		opsworks.Driver{},
	}
}

// DriverNamed returns the driver of the named dialect; the empty name is the default (robomaker).
func DriverNamed(name string) (dialect.Driver, error) {
	ds := Drivers()
	if name == "" {
		return ds[0], nil
	}
	var names []string
	for _, d := range ds {
		if d.Name() == name {
			return d, nil
		}
		names = append(names, d.Name())
	}
	return nil, fmt.Errorf("dialect %q: want %s", name, strings.Join(names, ", "))
}
