package engine

import (
	"fmt"
	"math"
	"time"
)

// PacingKind names a release policy.
type PacingKind string

// The release policies of DESIGN §4.2.
const (
	PaceAllAtOnce PacingKind = ""       // Greengrass V1, OpsWorks
	PaceBatch     PacingKind = "batch"  // RoboMaker concurrentDeploymentPercentage
	PaceRate      PacingKind = "rate"   // IoT Jobs jobExecutionsRolloutConfig (Greengrass V2)
	PaceGrowth    PacingKind = "growth" // AppConfig deployment strategies
)

// PacingSpec is a release policy as data, so it can be stored. Its zero value releases everything at once.
// Build one with AllAtOnce, Batch, Rate or Growth.
type PacingSpec struct {
	Kind PacingKind `json:"kind,omitempty"`
	// Batch: at most this percentage of the initial targets in flight (released, not ended) at once.
	ConcurrentPercent float64 `json:"concurrentPercent,omitempty"`
	// Rate: releases per minute, constant, or the cap of an exponential ramp.
	PerMinute int `json:"perMinute,omitempty"`
	// Rate, exponential: start at BaseRate per minute and multiply by Factor each time the count of notified
	// (or, with AfterSucceeded, succeeded) executions reaches another multiple of IncreaseEvery.
	BaseRate       int     `json:"baseRate,omitempty"`
	Factor         float64 `json:"factor,omitempty"`
	IncreaseEvery  int     `json:"increaseEvery,omitempty"`
	AfterSucceeded bool    `json:"afterSucceeded,omitempty"`
	// Growth: Linear (step k reaches k·GrowthFactor %) or Exponential (step k reaches GrowthFactor·2^(k-1) %),
	// spread over Duration.
	Exponential  bool          `json:"exponential,omitempty"`
	GrowthFactor float64       `json:"growthFactor,omitempty"`
	Duration     time.Duration `json:"duration,omitempty"`
	// HoldLastStep spaces the steps Duration/(N+1) apart and holds at 100 % until Duration, as observed in
	// AppConfig's own timeline, instead of the documented Duration/N.
	HoldLastStep bool `json:"holdLastStep,omitempty"`
}

// AllAtOnce releases every execution at once.
func AllAtOnce() PacingSpec { return PacingSpec{} }

// Batch keeps at most percent of the targets in flight: max(1, ceil(N·percent/100)).
func Batch(percent float64) PacingSpec {
	return PacingSpec{Kind: PaceBatch, ConcurrentPercent: percent}
}

// Rate releases perMinute executions a minute, evenly spaced.
func Rate(perMinute int) PacingSpec { return PacingSpec{Kind: PaceRate, PerMinute: perMinute} }

// ExponentialRate starts at base a minute and multiplies by factor each time the count of notified executions
// (succeeded ones if afterSucceeded) reaches another multiple of every, never above max (0: 1000).
func ExponentialRate(base int, factor float64, every int, afterSucceeded bool, max int) PacingSpec {
	if max <= 0 {
		max = 1000
	}
	return PacingSpec{Kind: PaceRate, PerMinute: max, BaseRate: base, Factor: factor, IncreaseEvery: every,
		AfterSucceeded: afterSucceeded}
}

// Growth releases a growing percentage of targets in steps over duration.
func Growth(exponential bool, factor float64, duration time.Duration) PacingSpec {
	return PacingSpec{Kind: PaceGrowth, Exponential: exponential, GrowthFactor: factor, Duration: duration}
}

// Validate reports a spec that cannot be paced.
func (p PacingSpec) Validate() error {
	switch p.Kind {
	case PaceAllAtOnce:
	case PaceBatch:
		if p.ConcurrentPercent <= 0 || p.ConcurrentPercent > 100 {
			return fmt.Errorf("%w: batch percentage %v outside (0, 100]", ErrInvalid, p.ConcurrentPercent)
		}
	case PaceRate:
		if p.PerMinute <= 0 {
			return fmt.Errorf("%w: rate %d per minute must be positive", ErrInvalid, p.PerMinute)
		}
		if p.exponential() && (p.BaseRate < 1 || p.Factor < 1 || p.IncreaseEvery < 1) {
			return fmt.Errorf("%w: exponential rate needs base ≥ 1, factor ≥ 1 and a threshold ≥ 1", ErrInvalid)
		}
	case PaceGrowth:
		if p.GrowthFactor <= 0 || p.GrowthFactor > 100 || p.Duration < 0 {
			return fmt.Errorf("%w: growth factor %v outside (0, 100] or negative duration", ErrInvalid, p.GrowthFactor)
		}
	default:
		return fmt.Errorf("%w: unknown pacing %q", ErrInvalid, p.Kind)
	}
	return nil
}

// Progress is what pacing needs to know of a deployment.
type Progress struct {
	Start       time.Time // when releases began
	Initial     int       // targets at creation; pacing is computed over these
	Released    int       // executions of the initial set released so far
	InFlight    int       // released and not ended
	Succeeded   int       // ended with success
	LastRelease time.Time // when the last release happened (zero: none yet)
}

// Allowance is the pacing policy as a pure function: how many more executions may be released at now, and the
// earliest later time at which that may grow without any counter changing (zero when only a counter change —
// an execution ending — can grow it, or when everything is released).
func (p PacingSpec) Allowance(now time.Time, pr Progress) (n int, next time.Time) {
	left := pr.Initial - pr.Released
	if left <= 0 {
		return 0, time.Time{}
	}
	if now.Before(pr.Start) {
		return 0, pr.Start
	}
	switch p.Kind {
	case PaceBatch:
		limit := int(math.Ceil(float64(pr.Initial) * p.ConcurrentPercent / 100))
		limit = max(limit, 1)
		return clamp(limit-pr.InFlight, left), time.Time{}
	case PaceRate:
		return p.rateAllowance(now, pr, left)
	case PaceGrowth:
		return p.growthAllowance(now, pr, left)
	}
	return left, time.Time{}
}

// exponential reports whether a rate policy ramps up.
func (p PacingSpec) exponential() bool {
	return p.BaseRate != 0 || p.Factor != 0 || p.IncreaseEvery != 0
}

// rate returns the releases per minute once count notified or succeeded executions are reached.
func (p PacingSpec) rate(count int) float64 {
	if !p.exponential() {
		return float64(p.PerMinute)
	}
	k := count / p.IncreaseEvery
	r := float64(p.BaseRate) * math.Pow(p.Factor, float64(k))
	return math.Min(r, float64(p.PerMinute))
}

// rateAllowance spaces releases 1/rate apart. A release that is due is made at once, but a policy that fell
// behind (the engine was stopped, or the rate rose) does not burst to make up the time: the schedule restarts
// from now. So at most one release is due at any instant, and a caller ticking on time keeps the exact spacing.
func (p PacingSpec) rateAllowance(now time.Time, pr Progress, left int) (int, time.Time) {
	interval := func(released int) time.Duration {
		count := released
		if p.AfterSucceeded {
			count = pr.Succeeded
		}
		return time.Duration(float64(time.Minute) / p.rate(count))
	}
	due := pr.Start
	if !pr.LastRelease.IsZero() {
		due = pr.LastRelease.Add(interval(pr.Released))
	}
	if due.After(now) {
		return 0, due
	}
	if left == 1 {
		return 1, time.Time{}
	}
	iv := interval(pr.Released + 1)
	if now.Sub(due) >= iv {
		due = now
	}
	return 1, due.Add(iv)
}

// GrowthSteps returns the number of steps of a growth policy and the percentage each step reaches.
func (p PacingSpec) GrowthSteps() []float64 {
	var steps []float64
	for k := 1; ; k++ {
		var pct float64
		if p.Exponential {
			pct = p.GrowthFactor * math.Pow(2, float64(k-1))
		} else {
			pct = p.GrowthFactor * float64(k)
		}
		// Floating-point sums of 1/3-style factors must still reach 100 exactly.
		if pct >= 100-1e-9 {
			return append(steps, 100)
		}
		steps = append(steps, pct)
	}
}

// StepInterval is the time between growth steps.
func (p PacingSpec) StepInterval() time.Duration {
	n := len(p.GrowthSteps())
	if p.HoldLastStep {
		n++
	}
	return p.Duration / time.Duration(n)
}

// GrowthDone is when a growth policy has finished releasing and bake may begin (zero for other policies).
func (p PacingSpec) GrowthDone(start time.Time) time.Time {
	if p.Kind != PaceGrowth {
		return time.Time{}
	}
	return start.Add(p.Duration)
}

func (p PacingSpec) growthAllowance(now time.Time, pr Progress, left int) (int, time.Time) {
	steps := p.GrowthSteps()
	interval := p.StepInterval()
	reached := len(steps) // with no duration every step is reached at once
	if interval > 0 {
		reached = min(int(now.Sub(pr.Start)/interval), len(steps))
	}
	var pct float64
	if reached > 0 {
		pct = steps[reached-1]
	}
	allowed := int(math.Ceil(float64(pr.Initial)*pct/100 - 1e-9))
	var next time.Time
	if reached < len(steps) {
		next = pr.Start.Add(interval * time.Duration(reached+1))
	}
	return clamp(allowed-pr.Released, left), next
}

func clamp(n, hi int) int {
	return max(0, min(n, hi))
}
