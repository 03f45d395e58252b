package fleet_test

import (
	"context"
	"errors"
	"testing"

	"github.com/fleetlab/fleetlab/sim/fleet"
)

type run struct{ stopped bool }

// TestLife walks one device through its lifecycle and checks that each illegal call is refused before the host's
// own act is called.
func TestLife(t *testing.T) {
	l := fleet.NewLife[run]("r1", nil)
	ctx := context.Background()
	never := func(*run) error { t.Fatal("called on an illegal step"); return nil }

	if err := l.Stop("crash", never); err == nil || err.Error() != "crash r1: not running" {
		t.Fatalf("Stop with no run: %v", err)
	}
	if err := l.SetFrozen(true, never); err == nil || err.Error() != "freeze r1: not running" {
		t.Fatalf("Freeze with no run: %v", err)
	}
	r := &run{}
	if err := l.Restart(ctx, func() error { l.Started(r); return nil }); err != nil {
		t.Fatal(err)
	}
	if !l.Running() || l.Current() != r || l.Frozen() {
		t.Fatalf("after start: running %v, current %p, frozen %v", l.Running(), l.Current(), l.Frozen())
	}
	if err := l.Restart(ctx, func() error { t.Fatal("started twice"); return nil }); err == nil {
		t.Fatal("Restart of a running device: no error")
	}
	if err := l.SetFrozen(false, never); err == nil || err.Error() != "thaw r1: not frozen" {
		t.Fatalf("Thaw of a running device: %v", err)
	}
	boom := errors.New("boom")
	if err := l.SetFrozen(true, func(*run) error { return boom }); !errors.Is(err, boom) || err.Error() != "freeze r1: boom" || l.Frozen() {
		t.Fatalf("Freeze whose act fails: %v, frozen %v", err, l.Frozen())
	}
	if err := l.SetFrozen(true, func(got *run) error {
		if got != r {
			t.Errorf("Freeze acts on %p, want %p", got, r)
		}
		return nil
	}); err != nil || !l.Frozen() {
		t.Fatalf("Freeze: %v, frozen %v", err, l.Frozen())
	}
	if err := l.SetFrozen(true, never); err == nil || err.Error() != "freeze r1: already frozen" {
		t.Fatalf("Freeze of a frozen device: %v", err)
	}
	if err := l.Stop("crash", func(got *run) error { got.stopped = true; l.Ended(got); return nil }); err != nil {
		t.Fatal(err)
	}
	if !r.stopped || l.Running() || l.Frozen() {
		t.Fatalf("after Stop: stopped %v, running %v, frozen %v", r.stopped, l.Running(), l.Frozen())
	}
	// A run that ended is forgotten only while it is the current one.
	r2 := &run{}
	l.Lock()
	l.Started(r2)
	l.Unlock()
	l.Ended(r)
	if l.Current() != r2 {
		t.Fatal("the end of an earlier run ended the current one")
	}
	l.Lock()
	got, frozen := l.Closing()
	l.Unlock()
	if got != r2 || frozen {
		t.Fatalf("Closing: %p frozen %v, want %p not frozen", got, frozen, r2)
	}
	l.Ended(r2)
	if err := l.Restart(ctx, func() error { t.Fatal("started after close"); return nil }); err == nil || err.Error() != "restart r1: the fleet is closed" {
		t.Fatalf("Restart after Closing: %v", err)
	}
}
