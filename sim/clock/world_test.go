package clock_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/clock/clocktest"
)

// newWorld returns a world closed by the test's cleanup, which fails the test if an actor is left.
func newWorld(t *testing.T, seed uint64) *clock.World {
	t.Helper()
	w := clock.NewWorld(clock.WorldOptions{Seed: seed})
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Error(err)
		}
	})
	return w
}

func do(t *testing.T, w *clock.World, f func()) {
	t.Helper()
	if err := w.Do(f); err != nil {
		t.Fatal(err)
	}
}

func TestWorldFiveHoursTakeNoWallTime(t *testing.T) {
	w := newWorld(t, 1)
	start := clock.Real{}.Now()
	do(t, w, func() {
		if !clock.Sleep(w, 5*time.Hour, nil) {
			t.Error("Sleep was interrupted")
		}
	})
	if got := w.Now().Sub(clock.WorldEpoch); got != 5*time.Hour {
		t.Fatalf("virtual time advanced %v, want 5h", got)
	}
	if wall := (clock.Real{}).Now().Sub(start); wall > 5*time.Second {
		t.Fatalf("five virtual hours took %v of wall time", wall)
	}
}

// interleaving runs four actors that each log a step, yield, and log again, and returns the log.
func interleaving(t *testing.T, seed uint64) string {
	w := newWorld(t, seed)
	var log []string
	do(t, w, func() {
		g := clock.NewGroup(w)
		for i := range 4 {
			g.Go(fmt.Sprint("a", i), func() {
				for step := range 3 {
					log = append(log, fmt.Sprintf("a%d.%d", i, step))
					clock.Yield(w)
				}
			})
		}
		g.Wait()
	})
	return strings.Join(log, " ")
}

func TestWorldOrderComesFromTheSeed(t *testing.T) {
	seen := map[string]bool{}
	for seed := range uint64(10) {
		a, b := interleaving(t, seed), interleaving(t, seed)
		if a != b {
			t.Fatalf("seed %d gave two orders:\n%s\n%s", seed, a, b)
		}
		seen[a] = true
	}
	if len(seen) < 5 {
		t.Fatalf("ten seeds gave %d orders, want different seeds to explore different ones", len(seen))
	}
}

func TestWorldTimersFireInOrderAndTiesTogether(t *testing.T) {
	order := func(seed uint64) []string {
		w := newWorld(t, seed)
		var log []string
		do(t, w, func() {
			g := clock.NewGroup(w)
			for _, s := range []struct {
				name string
				d    time.Duration
			}{{"late", 2 * time.Minute}, {"tie1", time.Minute}, {"tie2", time.Minute}, {"tie3", time.Minute}} {
				g.Go(s.name, func() {
					clock.Sleep(w, s.d, nil)
					log = append(log, fmt.Sprintf("%s@%v", s.name, w.Now().Sub(clock.WorldEpoch)))
				})
			}
			g.Wait()
		})
		return log
	}
	seen := map[string]bool{}
	for seed := range uint64(8) {
		log := order(seed)
		if !slices.Equal(log, order(seed)) {
			t.Fatalf("seed %d: two orders", seed)
		}
		if len(log) != 4 || log[3] != "late@2m0s" {
			t.Fatalf("seed %d: %v, want the three ties at 1m before late at 2m", seed, log)
		}
		for _, e := range log[:3] {
			if !strings.HasSuffix(e, "@1m0s") {
				t.Fatalf("seed %d: %v", seed, log)
			}
		}
		seen[strings.Join(log, " ")] = true
	}
	if len(seen) < 2 {
		t.Fatalf("timers due at one instant woke in one order under every seed: %v", seen)
	}
}

func TestWorldSignalCoalescesAndWaitPrefersTheLowestIndex(t *testing.T) {
	w := newWorld(t, 3)
	do(t, w, func() {
		a, b := clock.NewSignal(w), clock.NewSignal(w)
		b.Notify()
		a.Notify()
		a.Notify()
		if i, err := clock.Wait(nil, w, clock.Forever, a, b); i != 0 || err != nil {
			t.Fatalf("both pending: %d %v, want the first", i, err)
		}
		if i, _ := clock.Wait(nil, w, clock.Forever, a, b); i != 1 {
			t.Fatalf("after taking a: %d, want b", i)
		}
		if i, _ := clock.Wait(nil, w, time.Second, a, b); i != clock.Expired {
			t.Fatalf("nothing pending: %d, want Expired (two notifies coalesce into one)", i)
		}
		// A notify from another actor wakes the waiter at the same instant.
		before := w.Now()
		clock.Go(w, "notifier", func() { clock.Sleep(w, time.Minute, nil); a.Notify() })
		if i, _ := clock.Wait(nil, w, time.Hour, a); i != 0 || w.Now().Sub(before) != time.Minute {
			t.Fatalf("woken %d after %v, want a after 1m", i, w.Now().Sub(before))
		}
	})
}

func TestWorldQueue(t *testing.T) {
	w := newWorld(t, 4)
	do(t, w, func() {
		q := clock.NewQueue[int](w, 2)
		var got []int
		g := clock.NewGroup(w)
		g.Go("reader", func() {
			for {
				v, err := q.Next(nil)
				if err != nil {
					if !errors.Is(err, clock.ErrQueueClosed) {
						t.Errorf("next: %v", err)
					}
					return
				}
				got = append(got, v)
			}
		})
		if !q.Push(1) || !q.Push(2) || q.Push(3) {
			t.Error("a queue of two took three, or refused one of the first two")
		}
		clock.Sleep(w, time.Second, nil)
		q.Push(4)
		q.Close()
		if q.Push(5) {
			t.Error("a closed queue took a value")
		}
		g.Wait()
		if !slices.Equal(got, []int{1, 2, 4}) {
			t.Errorf("read %v, want [1 2 4]", got)
		}
	})
}

func TestWorldCanceledContextWakesAtTheSameInstant(t *testing.T) {
	w := newWorld(t, 5)
	do(t, w, func() {
		ctx, cancel := context.WithCancel(context.Background())
		var woke time.Time
		var err error
		g := clock.NewGroup(w)
		g.Go("waiter", func() {
			_, err = clock.Wait(ctx, w, clock.Forever, clock.NewSignal(w))
			woke = w.Now()
		})
		g.Go("canceler", func() {
			clock.Sleep(w, 10*time.Minute, nil)
			cancel()
		})
		g.Go("later", func() { clock.Sleep(w, time.Hour, nil) })
		g.Wait()
		if !errors.Is(err, context.Canceled) || woke.Sub(clock.WorldEpoch) != 10*time.Minute {
			t.Errorf("waiter woke at +%v with %v, want +10m with context.Canceled", woke.Sub(clock.WorldEpoch), err)
		}
	})
}

func TestWorldDeadlockIsReported(t *testing.T) {
	w := newWorld(t, 6)
	var err error
	do(t, w, func() {
		never := clock.NewSignal(w)
		clock.Go(w, "stuck helper", func() { clock.Wait(nil, w, clock.Forever, never) })
		_, err = clock.Wait(nil, w, clock.Forever, never)
		never.Notify() // lets the helper end
	})
	var de *clock.DeadlockError
	if !errors.As(err, &de) || !strings.Contains(de.Report, `"stuck helper"`) || !strings.Contains(de.Report, "a signal") {
		t.Fatalf("deadlock: %v, want a DeadlockError naming every actor and what it waits on", err)
	}
}

func TestWorldWatchdogReportsAnActorBlockedOutside(t *testing.T) {
	reports := make(chan string, 1)
	w := clock.NewWorld(clock.WorldOptions{Seed: 7, Watchdog: 100 * time.Millisecond,
		OnStall: func(r string) { reports <- r }})
	plain := make(chan struct{})
	var err error
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		w.Do(func() {
			clock.Go(w, "blocks on a plain channel", func() { <-plain })
			// The wait hands the turn to the actor, which never yields it.
			_, err = clock.Wait(nil, w, time.Minute)
		})
	}()
	report := <-reports
	for _, want := range []string{`"blocks on a plain channel"`, "held its turn", "goroutines:", "world_test.go"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	<-returned
	var se *clock.StallError
	if !errors.As(err, &se) {
		t.Errorf("the outside caller's wait: %v, want a StallError", err)
	}
	if err := w.Do(func() {}); !errors.As(err, &se) {
		t.Errorf("Do on a stalled world: %v", err)
	}
	// The stuck actor comes back into the world when it is let go: the world goes on.
	close(plain)
	deadline := (clock.Real{}).Now().Add(10 * time.Second)
	for w.Do(func() {}) != nil {
		if (clock.Real{}).Now().After(deadline) {
			t.Fatal("the world did not recover once the stuck actor returned")
		}
		clock.Sleep(clock.Real{}, time.Millisecond, nil)
	}
	if err := w.Close(); err != nil {
		t.Error(err)
	}
}

func TestWorldAdmitsOutsideCallersAtQuiescence(t *testing.T) {
	w := newWorld(t, 8)
	count := 0
	var done sync.WaitGroup
	do(t, w, func() {
		for i := range 20 {
			clock.Go(w, fmt.Sprint("worker", i), func() {
				for range 5 {
					count++
					clock.Yield(w)
				}
			})
		}
	})
	// The workers are still running when Do returns; a visitor only ever sees them done.
	for range 3 {
		done.Go(func() {
			do(t, w, func() {
				if count != 100 {
					t.Errorf("a visitor saw %d of 100 increments", count)
				}
			})
		})
	}
	done.Wait()
}

func TestWorldMutexHeldAcrossAWait(t *testing.T) {
	w := newWorld(t, 9)
	do(t, w, func() {
		m := clock.NewMutex(w)
		var log []string
		g := clock.NewGroup(w)
		for _, name := range []string{"a", "b", "c"} {
			g.Go(name, func() {
				m.Lock()
				log = append(log, name+" in")
				clock.Sleep(w, time.Minute, nil)
				log = append(log, name+" out")
				m.Unlock()
			})
		}
		g.Wait()
		for i := 0; i < len(log); i += 2 {
			if strings.TrimSuffix(log[i], " in") != strings.TrimSuffix(log[i+1], " out") {
				t.Fatalf("two actors inside the mutex: %v", log)
			}
		}
		if got := w.Now().Sub(clock.WorldEpoch); got != 3*time.Minute {
			t.Fatalf("three one-minute holds took %v", got)
		}
	})
}

func TestWorldAfterFuncAndTimerStop(t *testing.T) {
	w := newWorld(t, 10)
	do(t, w, func() {
		fired := clock.NewSignal(w)
		var at time.Time
		clock.AfterFunc(w, time.Hour, func() { at = w.Now(); fired.Notify() })
		stop := clock.AfterFunc(w, 30*time.Minute, func() { t.Error("a stopped AfterFunc ran") })
		if !stop() || stop() {
			t.Error("stop reported wrongly")
		}
		tm := w.NewTimer(time.Minute)
		if !tm.Stop() {
			t.Error("stopping a pending timer")
		}
		clock.Wait(nil, w, clock.Forever, fired)
		if at.Sub(clock.WorldEpoch) != time.Hour {
			t.Errorf("AfterFunc ran at +%v", at.Sub(clock.WorldEpoch))
		}
	})
}

func TestWorldCloseNamesTheActorsLeft(t *testing.T) {
	w := clock.NewWorld(clock.WorldOptions{})
	never := clock.NewSignal(w)
	if err := w.Do(func() { clock.Go(w, "left behind", func() { clock.Wait(nil, w, clock.Forever, never) }) }); err != nil {
		t.Fatal(err)
	}
	err := w.Close()
	if err == nil || !strings.Contains(err.Error(), `"left behind"`) {
		t.Fatalf("close: %v, want it to name the actor left", err)
	}
	if err := w.Do(func() {}); !errors.Is(err, clock.ErrWorldClosed) {
		t.Fatalf("Do after Close: %v", err)
	}
	never.Notify() // the actor ends
}

func TestWorldLeavesNoGoroutines(t *testing.T) {
	agenttest.LeakTest(t)
	w := clock.NewWorld(clock.WorldOptions{Seed: 11})
	if err := w.Do(func() {
		g := clock.NewGroup(w)
		for i := range 50 {
			g.Go(fmt.Sprint(i), func() { clock.Sleep(w, time.Duration(i)*time.Second, nil) })
		}
		g.Wait()
	}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestPrimitivesOutsideAWorld: the same primitives on other clocks are channels and goroutines.
func TestPrimitivesOutsideAWorld(t *testing.T) {
	f := clocktest.New(time.Time{})
	s := clock.NewSignal(f)
	s.Notify()
	if i, err := clock.Wait(nil, f, clock.Forever, s); i != 0 || err != nil {
		t.Fatalf("pending signal: %d %v", i, err)
	}
	res := make(chan int)
	go func() {
		i, _ := clock.Wait(nil, f, time.Minute, s)
		res <- i
	}()
	<-f.BlockUntil(1)
	f.Advance(time.Minute)
	if i := <-res; i != clock.Expired {
		t.Fatalf("after the fake minute: %d, want Expired", i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := clock.Wait(ctx, nil, clock.Forever, s); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}
	q := clock.NewQueue[string](nil, 0)
	go func() { q.Push("x"); q.Push("y"); q.Close() }()
	var got []string
	for {
		v, err := q.Next(context.Background())
		if err != nil {
			break
		}
		got = append(got, v)
	}
	if !slices.Equal(got, []string{"x", "y"}) {
		t.Fatalf("queue: %v", got)
	}
	var m clock.Mutex
	g := clock.NewGroup(nil)
	n := 0
	for range 10 {
		g.Go("", func() { m.Lock(); n++; m.Unlock() })
	}
	g.Wait()
	ran := make(chan struct{})
	clock.AfterFunc(nil, time.Millisecond, func() { close(ran) })
	<-ran
	if n != 10 || clock.Do(nil, func() { n++ }) != nil || n != 11 {
		t.Fatalf("group, mutex, Do: %d", n)
	}
}

// TestWorldContexts: the cancel of a world context wakes its waiters, and those of the contexts derived from it,
// within the canceling turn; WithTimeout ends on virtual time; one that ends through a parent of the standard
// library is still found.
func TestWorldContexts(t *testing.T) {
	w := newWorld(t, 12)
	do(t, w, func() {
		root, cancelRoot := clock.WithCancel(w, context.Background())
		child, cancelChild := clock.WithCancelCause(w, root)
		defer cancelChild(nil)
		timed, cancelTimed := clock.WithTimeout(w, context.Background(), 90*time.Minute)
		defer cancelTimed()
		plain, cancelPlain := context.WithCancel(context.Background())
		orphan, cancelOrphan := clock.WithCancel(w, plain)
		defer cancelOrphan()
		woke := map[string]time.Duration{}
		g := clock.NewGroup(w)
		for name, ctx := range map[string]context.Context{"root": root, "child": child, "timed": timed, "orphan": orphan} {
			g.Go(name, func() {
				clock.Wait(ctx, w, clock.Forever)
				woke[name] = w.Now().Sub(clock.WorldEpoch)
			})
		}
		g.Go("canceler", func() {
			clock.Sleep(w, time.Hour, nil)
			cancelRoot()
			cancelPlain()
		})
		g.Go("later", func() { clock.Sleep(w, 2*time.Hour, nil) })
		g.Wait()
		for name, want := range map[string]time.Duration{"root": time.Hour, "child": time.Hour, "timed": 90 * time.Minute} {
			if woke[name] != want {
				t.Errorf("%s woke at +%v, want +%v", name, woke[name], want)
			}
		}
		if woke["orphan"] == 0 {
			t.Error("the context ended through a standard parent was never noticed")
		}
		if !errors.Is(context.Cause(timed), context.DeadlineExceeded) {
			t.Errorf("timed out context's cause: %v", context.Cause(timed))
		}
	})
}
