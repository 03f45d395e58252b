package engine

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// schedule plays a pacing policy forward with devices that finish their execution `work` after release
// (work < 0: never), and returns the offset from t0 of every release.
func schedule(t *testing.T, p PacingSpec, initial int, work time.Duration) []time.Duration {
	t.Helper()
	pr := Progress{Start: t0, Initial: initial}
	now := t0
	var releases []time.Duration
	var ends []time.Time // end times of executions in flight
	for step := 0; pr.Released < initial; step++ {
		if step > 10*initial+100 {
			t.Fatalf("no progress after %d steps: %+v", step, pr)
		}
		// Executions that ended by now free their slots.
		kept := ends[:0]
		for _, e := range ends {
			if !e.After(now) {
				pr.InFlight--
				pr.Succeeded++
			} else {
				kept = append(kept, e)
			}
		}
		ends = kept
		n, next := p.Allowance(now, pr)
		for i := 0; i < n; i++ {
			releases = append(releases, now.Sub(t0))
			pr.Released++
			pr.InFlight++
			pr.LastRelease = now
			if work >= 0 {
				ends = append(ends, now.Add(work))
			}
		}
		// Move to whichever comes first: the policy's next time or an execution ending.
		wake := next
		for _, e := range ends {
			if wake.IsZero() || e.Before(wake) {
				wake = e
			}
		}
		if wake.IsZero() {
			if pr.Released < initial {
				t.Fatalf("stalled at %d of %d released with nothing due", pr.Released, initial)
			}
			break
		}
		if wake.After(now) {
			now = wake
		}
	}
	return releases
}

func secs(ds ...float64) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = time.Duration(d * float64(time.Second))
	}
	return out
}

func TestPacingSchedules(t *testing.T) {
	min := func(m float64) float64 { return m * 60 }
	tests := []struct {
		name    string
		pacing  PacingSpec
		initial int
		work    time.Duration
		want    []time.Duration
	}{
		{"all at once", AllAtOnce(), 4, time.Second, secs(0, 0, 0, 0)},
		{"batch 30% of 10, 10 s each", Batch(30), 10, 10 * time.Second,
			secs(0, 0, 0, 10, 10, 10, 20, 20, 20, 30)},
		{"batch rounds up: 25% of 6 is 2", Batch(25), 6, 5 * time.Second, secs(0, 0, 5, 5, 10, 10)},
		{"batch of a tiny percentage still releases one", Batch(1), 3, time.Second, secs(0, 1, 2)},
		{"batch 100%", Batch(100), 3, time.Second, secs(0, 0, 0)},
		{"rate 60 a minute", Rate(60), 4, -1, secs(0, 1, 2, 3)},
		{"rate 2 a minute", Rate(2), 3, -1, secs(0, 30, 60)},
		// Base 2/min, doubled each 2 notified, capped at 8/min: 30 s apart, then 15 s, then 7.5 s.
		{"exponential after notified", ExponentialRate(2, 2, 2, false, 8), 7, -1,
			secs(0, 30, 45, 60, 67.5, 75, 82.5)},
		// Increases only as executions succeed: each takes 100 s, so the rate stays 1/min until two succeeded at
		// 160 s; the release then due is made at once and the schedule goes on at 4/min from there, no burst.
		{"exponential after succeeded", ExponentialRate(1, 4, 2, true, 1000), 5, 100 * time.Second,
			secs(0, 60, 120, 160, 175)},
		// AppConfig linear 20 % over 10 h: a step every 2 h (D/N), 5 targets → one per step.
		{"growth linear 20% over 10h", Growth(false, 20, 10*time.Hour), 5, time.Second,
			secs(min(120), min(240), min(360), min(480), min(600))},
		// Exponential 10 %: 10, 20, 40, 80, 100 % of 10 targets over 50 min → steps 10 min apart.
		{"growth exponential 10%", Growth(true, 10, 50*time.Minute), 10, time.Second,
			secs(min(10), min(20), min(30), min(30), min(40), min(40), min(40), min(40), min(50), min(50))},
		{"growth with no duration is all at once", Growth(false, 100, 0), 3, time.Second, secs(0, 0, 0)},
		// The timeline AppConfig itself showed: linear 25 % over 15 min, a step every 3 min, hold at 100 %.
		{"growth holding the last step", func() PacingSpec {
			p := Growth(false, 25, 15*time.Minute)
			p.HoldLastStep = true
			return p
		}(), 4, time.Second, secs(min(3), min(6), min(9), min(12))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.pacing.Validate(); err != nil {
				t.Fatal(err)
			}
			got := schedule(t, tc.pacing, tc.initial, tc.work)
			if !slices.Equal(got, tc.want) {
				t.Errorf("releases at %v, want %v", got, tc.want)
			}
		})
	}
}

func TestGrowthSteps(t *testing.T) {
	tests := []struct {
		p    PacingSpec
		want []float64
	}{
		{Growth(false, 20, time.Hour), []float64{20, 40, 60, 80, 100}},
		{Growth(false, 30, time.Hour), []float64{30, 60, 90, 100}},
		{Growth(true, 10, time.Hour), []float64{10, 20, 40, 80, 100}},
		{Growth(false, 100, 0), []float64{100}},
		{Growth(false, 33.3333333333, time.Hour), []float64{33.3333333333, 66.6666666666, 100}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.p.Exponential, tc.p.GrowthFactor), func(t *testing.T) {
			got := tc.p.GrowthSteps()
			if len(got) != len(tc.want) {
				t.Fatalf("steps %v, want %v", got, tc.want)
			}
			for i := range got {
				if d := got[i] - tc.want[i]; d > 1e-6 || d < -1e-6 {
					t.Fatalf("steps %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestGrowthDoneHoldsUntilDuration(t *testing.T) {
	p := Growth(false, 25, 15*time.Minute)
	p.HoldLastStep = true
	if got := p.StepInterval(); got != 3*time.Minute {
		t.Errorf("interval %v, want 3m", got)
	}
	if got := p.GrowthDone(t0).Sub(t0); got != 15*time.Minute {
		t.Errorf("done after %v, want 15m", got)
	}
	if !Batch(10).GrowthDone(t0).IsZero() {
		t.Error("batch pacing has no growth end")
	}
}

func TestPacingValidate(t *testing.T) {
	bad := []PacingSpec{
		Batch(0), Batch(101), Rate(0), ExponentialRate(0, 2, 1, false, 10), ExponentialRate(5, 0.5, 1, false, 10),
		ExponentialRate(5, 2, 0, false, 10), Growth(false, 0, time.Hour), Growth(false, 101, time.Hour),
		{Kind: "sideways"},
	}
	for _, p := range bad {
		if err := p.Validate(); err == nil {
			t.Errorf("%+v: no error", p)
		}
	}
}
