package harness

import (
	"fmt"
	"math"
)

// MaxTimeScale is the fastest policy time may run against the wall clock. Beyond it the shortest policy
// intervals are shorter than a step takes on a loaded machine (RoboMaker's one-minute minimum robot timeout is
// 6 ms of wall time at 10,000) and the 90-day job expiry passes within minutes, so outcomes would depend on
// the machine's load rather than on the rollout.
const MaxTimeScale = 10_000

// CheckTimeScale reports whether scale is a time scale the harness and the service can keep: a finite number
// from 1 (real time) to MaxTimeScale. The CLI's --time-scale of serve, run and demo, WithTimeScale and a
// scenario's timeScale are all checked with it.
func CheckTimeScale(scale float64) error {
	if math.IsNaN(scale) || math.IsInf(scale, 0) || scale < 1 || scale > MaxTimeScale {
		return fmt.Errorf("time scale %v is not a number from 1 to %d", scale, MaxTimeScale)
	}
	return nil
}
