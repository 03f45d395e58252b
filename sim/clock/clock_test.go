package clock_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/clock/clocktest"
)

func TestScaledRunsFaster(t *testing.T) {
	base := clocktest.New(time.Time{})
	c := clock.NewScaled(base, 600)
	start := c.Now()
	base.Advance(time.Second)
	if got := c.Now().Sub(start); got != 10*time.Minute {
		t.Fatalf("one base second is %v of scaled time, want 10m", got)
	}
	// A ten-minute timer fires after one base second.
	timer := c.NewTimer(10 * time.Minute)
	<-base.BlockUntil(1)
	base.Advance(time.Second - time.Millisecond)
	select {
	case <-timer.C():
		t.Fatal("fired early")
	default:
	}
	base.Advance(time.Millisecond)
	select {
	case at := <-timer.C():
		if want := start.Add(20 * time.Minute); !at.Equal(want) {
			t.Fatalf("fired at %v, want %v", at, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not fire")
	}
	if clock.NewScaled(base, 1) != clock.Clock(base) {
		t.Fatal("scale 1 should be the base clock itself")
	}
}

func TestFakeFiresInOrder(t *testing.T) {
	f := clocktest.New(time.Time{})
	late, early := f.NewTimer(2*time.Minute), f.NewTimer(time.Minute)
	stopped := f.NewTimer(30 * time.Second)
	if !stopped.Stop() {
		t.Fatal("stopping a pending timer")
	}
	if f.Timers() != 2 {
		t.Fatalf("%d timers waiting, want 2", f.Timers())
	}
	f.Advance(90 * time.Second)
	if at := <-early.C(); !at.Equal(clocktest.Epoch.Add(time.Minute)) {
		t.Fatalf("early fired at %v", at)
	}
	select {
	case <-late.C():
		t.Fatal("late fired before its time")
	default:
	}
	f.Advance(time.Hour)
	<-late.C()
	if late.Stop() {
		t.Fatal("a fired timer reported stopped")
	}
	if now := f.Now(); !now.Equal(clocktest.Epoch.Add(90*time.Second + time.Hour)) {
		t.Fatalf("now %v", now)
	}
}

func TestSleep(t *testing.T) {
	f := clocktest.New(time.Time{})
	done := make(chan bool)
	go func() { done <- clock.Sleep(f, time.Minute, nil) }()
	<-f.BlockUntil(1)
	f.Advance(time.Minute)
	if !<-done {
		t.Fatal("Sleep reported interrupted")
	}
	stop := make(chan struct{})
	go func() { done <- clock.Sleep(f, time.Minute, stop) }()
	<-f.BlockUntil(1)
	close(stop)
	if <-done {
		t.Fatal("Sleep ignored done")
	}
	if !clock.Sleep(nil, 0, nil) {
		t.Fatal("a zero sleep should complete")
	}
}

// skewed reads the real clock ahead; its timers are the real clock's.
type skewed struct{ clock.Real }

func (skewed) Now() time.Time    { return time.Now().Add(time.Hour) }
func (skewed) Base() clock.Clock { return clock.Real{} }

// TestAfterFuncOnABaseClockNeedsNoGoroutine: a clock that says its timers are its base's (a robot's skewed
// clock) gets the base's AfterFunc, which on the real clock is a runtime timer — not a goroutine a call, the
// cost that made 100,000 robots carry 70,000 goroutines waiting on request timeouts.
func TestAfterFuncOnABaseClockNeedsNoGoroutine(t *testing.T) {
	const n = 1000
	before := runtime.NumGoroutine()
	stops := make([]func() bool, n)
	for i := range stops {
		stops[i] = clock.AfterFunc(skewed{}, time.Hour, func() { t.Error("fired") })
	}
	if grown := runtime.NumGoroutine() - before; grown >= n/2 {
		t.Errorf("%d AfterFunc calls on a clock with a real base started %d goroutines", n, grown)
	}
	for _, stop := range stops {
		if !stop() {
			t.Fatal("stop did not cancel the call")
		}
	}
	fired := make(chan struct{})
	clock.AfterFunc(skewed{}, time.Millisecond, func() { close(fired) })
	select {
	case <-fired:
	case <-time.After(time.Minute):
		t.Fatal("the call never came")
	}
}
