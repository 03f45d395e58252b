//go:build !linux

package bench

import (
	"runtime"
	"time"
)

// cpuTime is not measured off Linux.
func cpuTime() time.Duration { return 0 }

func resetPeakRSS() {}

// peakRSS is, off Linux, the memory the Go runtime obtained from the OS: an upper bound of the resident set.
func peakRSS() uint64 { return currentRSS() }

func currentRSS() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Sys
}
