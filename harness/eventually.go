package harness

import (
	"fmt"
	"reflect"
	"time"

	"github.com/onsi/gomega"

	"github.com/fleetlab/fleetlab/sim/clock"
)

// eventuallyTick is how much virtual time may pass between two calls of an Eventually's function when no event
// arrives: a change that no event announces (a download's percentage) is still seen.
const eventuallyTick = time.Minute

// inVirtualTime wraps a function given to Eventually on virtual time, so that gomega's polling drives the world
// instead of watching it stand still: the function is called in the world, at once the first time and then only
// once the world has changed — after the next event, or eventuallyTick of virtual time — for up to the
// environment's wait of virtual time, after which polling stops with a failure. A value that is not a function
// is returned unchanged.
func (e *Env) inVirtualTime(actual any) any {
	f := reflect.ValueOf(actual)
	if f.Kind() != reflect.Func {
		return actual
	}
	var deadline time.Time
	var changed <-chan struct{}
	return reflect.MakeFunc(f.Type(), func(args []reflect.Value) []reflect.Value {
		var out []reflect.Value
		expired := false
		e.do(func() {
			now := e.clock.Now()
			if changed == nil {
				deadline = now.Add(e.cfg.wait)
			} else if left := deadline.Sub(now); left <= 0 {
				expired = true
				return
			} else {
				clock.Wait(nil, e.clock, min(left, eventuallyTick), clock.Done(changed))
			}
			changed = e.events.Changed() // before the call: an event during it is a change
			out = f.Call(args)
		})
		if expired {
			gomega.StopTrying(fmt.Sprintf("no match within %v of virtual time", e.cfg.wait)).Now()
		}
		return out
	}).Interface()
}
