package clock_test

import (
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
