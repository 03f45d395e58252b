package faults

// Builtin returns the definitions of the fault catalog, in a fresh slice.
func Builtin() []Definition {
	return []Definition{
		{Name: "no-response", Layer: LayerDevice, Summary: "freeze the device (at a step): it answers nothing until recovered",
			New: func() Fault { return &NoResponse{} }},
		{Name: "crash", Layer: LayerDevice, Summary: "kill the device (at a step) with no cleanup, then restart it",
			New: func() Fault { return &Crash{} }},
		{Name: "power-cut", Layer: LayerDevice, Summary: "cut the device's power (at a step) for a duration, then boot it",
			New: func() Fault { return &PowerCut{} }},
		{Name: "reset", Layer: LayerDevice, Summary: "pulse the device's reset line (at a step): it reboots at once",
			New: func() Fault { return &Reset{} }},
		{Name: "slow-device", Layer: LayerDevice, Summary: "cut the device's CPU and memory (for a duration)",
			New: func() Fault { return &SlowDevice{} }},
		{Name: "script-exit", Layer: LayerDevice, Summary: "make a script exit N: download-condition, pre-/post-launch, or a component's install/startup/shutdown",
			New: func() Fault { return &ScriptExit{} }},
		{Name: "slow-script", Layer: LayerDevice, Summary: "make a script take a delay (past its own timeout: it times out)",
			New: func() Fault { return &SlowScript{} }},
		{Name: "slow-step", Layer: LayerDevice, Summary: "hold the device in a step for a delay",
			New: func() Fault { return &SlowStep{} }},
		{Name: "disk-full", Layer: LayerDevice, Summary: "fail writes with ENOSPC while downloading or unpacking",
			New: func() Fault { return &DiskFull{} }},
		{Name: "clock-skew", Layer: LayerDevice, Summary: "set the device's clock off the service's",
			New: func() Fault { return &ClockSkew{} }},
		{Name: "partition", Layer: LayerLink, Summary: "cut the device's link (for a duration)",
			New: func() Fault { return &Partition{} }},
		{Name: "latency", Layer: LayerLink, Summary: "delay every request of the device",
			New: func() Fault { return &Latency{} }},
		{Name: "drop", Layer: LayerLink, Summary: "lose a fraction of the device's requests",
			New: func() Fault { return &Drop{} }},
		{Name: "bandwidth", Layer: LayerLink, Summary: "throttle what the device downloads",
			New: func() Fault { return &Bandwidth{} }},
		{Name: "serial-noise", Layer: LayerLink, Summary: "change a fraction of the bytes on the device's serial line",
			New: func() Fault { return &SerialNoise{} }},
		{Name: "serial-unplug", Layer: LayerLink, Summary: "unplug the device's serial line (for a duration)",
			New: func() Fault { return &SerialUnplug{} }},
		{Name: "etag-mismatch", Layer: LayerCloud, Summary: "serve objects whose ETag differs from the job's",
			New: func() Fault { return &EtagMismatch{} }},
		{Name: "missing-object", Layer: LayerCloud, Summary: "answer object reads with NoSuchKey",
			New: func() Fault { return &MissingObject{} }},
		{Name: "http-5xx", Layer: LayerCloud, Summary: "answer an API's requests with a 5xx",
			New: func() Fault { return &HTTPError{} }},
		{Name: "throttle", Layer: LayerCloud, Summary: "answer an API's requests with its throttling error",
			New: newThrottle},
		{Name: "service-restart", Layer: LayerCloud, Summary: "drop the service and restart it on its data",
			New: func() Fault { return &ServiceRestart{} }},
	}
}

// Catalog returns a registry of the built-in faults. The built-in names are distinct (a test holds them to it),
// so building it cannot fail.
func Catalog() *Registry {
	r, err := NewRegistry(Builtin()...)
	if err != nil {
		panic("faults: built-in catalog: " + err.Error())
	}
	return r
}
