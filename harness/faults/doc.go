// Package faults is the fault catalog of the harness: what can go wrong on a device, on its link to the service,
// and in the cloud, each as data that a scenario, a replay file or a JSON plan can name.
//
// A fault is a name, typed parameters (the JSON-tagged fields of the type that implements it, one file per
// fault), and a target selector: device names, a count or a percentage of the fleet picked with the run's seed,
// and for some faults the step at which it strikes. Faults are registered explicitly in a Registry built by a
// constructor (Catalog for the built-in ones); a duplicate name is an error.
//
// # Lifecycle
//
// A fault in a run is a Handle, guarded against calls out of order:
//
//	          Arm               Inject                Recover
//	Defined ───────▶ Armed ───────────▶ Injected ───────────▶ Recovered
//	   │               │                   ▲                      │
//	   │               │                   └──────── Inject ──────┘
//	   └───────────────┴──── Close (from any state; recovers an injected fault first) ────▶ Closed
//
// The calls:
//
//   - Arm checks that the environment can do the fault to its targets — a backend that lacks the ability is
//     refused here, with an error naming the backend and the ability, never a silent no-op — and installs the
//     hooks the fault needs (executor wraps, HTTP interceptors). Nothing behaves differently yet.
//   - Inject makes the fault take effect. A fault with a step strikes each target when it enters that step, so
//     after Inject it waits for its targets.
//   - Recover undoes the effect: the device, the link or the service works again. A recovered fault can be
//     injected again.
//   - Close releases everything Arm installed. Any other call out of order is an error wrapping ErrLifecycle.
//
// Every change is recorded as an event (event.FaultInjected when a fault starts or strikes a device,
// event.FaultRecovered when it ends), so a report shows faults as markers on the devices' lanes.
//
// # Layers
//
//	device   no-response, crash, power-cut, reset, script-exit, slow-step, slow-device, disk-full, clock-skew
//	link     partition, latency, drop, bandwidth, serial-noise, serial-unplug
//	cloud    etag-mismatch, missing-object, http-5xx, throttle, service-restart
//
// Device faults act through the fleet backend's abilities (sim/fleet: Freezer, Crasher, ExecutorHook, StepHooker,
// ScriptFailer, Linker, Limiter, ClockSkewer, Resetter, SerialLine); cloud faults through the service's hooks (HTTP middleware and the
// artifact store's intercept).
// Cloud faults act on an API or an object, not on devices, except the device API faults of http-5xx and
// throttle, whose requests name their thing.
package faults
