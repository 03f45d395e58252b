package deviceapi

import (
	"time"

	"github.com/fleetlab/fleetlab/sim/clock"
)

// wallDeadline is a socket deadline d from now on the wall clock. Socket deadlines bound real I/O and must not
// follow a scaled or fake service clock.
func wallDeadline(d time.Duration) time.Time { return clock.Real{}.Now().Add(d) }
