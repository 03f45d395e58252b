package fleet

import (
	"context"
	"fmt"
)

// The guards below are the lifecycle rules of Crasher and Freezer that every host applies before it acts on a
// device, so that an illegal call is refused alike — and with the same words — whatever hosts the device.

// CheckRestart is the guard of Crasher.Restart: ctx has not ended, the fleet is not closed, the device does not
// run.
func CheckRestart(ctx context.Context, name string, running, closed bool) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("restart %s: %w", name, ctx.Err())
	case closed:
		return fmt.Errorf("restart %s: the fleet is closed", name)
	case running:
		return fmt.Errorf("restart %s: already running", name)
	}
	return nil
}

// CheckFreeze is the guard of Freezer.Freeze (freeze true) and Freezer.Thaw (freeze false): the device runs,
// and is not already where the call would take it.
func CheckFreeze(name string, running, frozen, freeze bool) error {
	op := "thaw"
	if freeze {
		op = "freeze"
	}
	switch {
	case !running:
		return fmt.Errorf("%s %s: not running", op, name)
	case frozen && freeze:
		return fmt.Errorf("%s %s: already frozen", op, name)
	case !frozen && !freeze:
		return fmt.Errorf("%s %s: not frozen", op, name)
	}
	return nil
}
