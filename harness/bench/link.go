package bench

import (
	"fmt"

	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/sim/fleet/inproc"
)

// resolveLink decides cfg.Link from the backend and the fault mix (see Config.Link), refuses a link the backend
// has not got or a link fault the link cannot play, and asks the in-process host for its direct path for LinkDirect. It runs before
// anything starts, so a refused point costs nothing.
func resolveLink(cfg *Config) error {
	b, isInProc := cfg.Backend.(harness.InProc)
	switch {
	case isInProc && b.Transport == harness.InMemory:
		if cfg.Link != "" && cfg.Link != LinkAdapter {
			return fmt.Errorf("bench: link %q: the memory transport shapes its links in its adapter (link %s)", cfg.Link, LinkAdapter)
		}
		cfg.Link = LinkAdapter
		return nil
	case isInProc && b.Transport == harness.HTTP:
	case cfg.Link != "" && cfg.Link != LinkProxied:
		return fmt.Errorf("bench: link %q: backend %s has a link proxy per device (link %s); the choice is the in-process host's over HTTP",
			cfg.Link, cfg.Backend.Name(), LinkProxied)
	default:
		cfg.Link = LinkProxied
		return nil
	}
	shaping := linkFaults(cfg.Registry, cfg.Faults)
	switch cfg.Link {
	case "":
		cfg.Link = LinkDirect
		if len(shaping) > 0 {
			cfg.Link = LinkProxied
		}
	case LinkDirect, LinkProxied:
	default:
		return fmt.Errorf("bench: link %q: want %s or %s", cfg.Link, LinkDirect, LinkProxied)
	}
	if cfg.Link == LinkDirect && len(shaping) > 0 {
		return fmt.Errorf("bench: fault %s shapes the devices' links, and link %s (inproc.Options.DirectHTTP) has none: "+
			"use link %s: %w", shaping[0], LinkDirect, LinkProxied, inproc.ErrNoLink)
	}
	if cfg.Link == LinkDirect {
		b.Direct = true
		cfg.Backend = b
	}
	return nil
}

// linkFaults are the names of the faults of specs that shape a device's link (the link layer of the registry).
func linkFaults(reg *faults.Registry, specs []faults.Spec) []string {
	var out []string
	for _, s := range specs {
		if d, ok := reg.Lookup(s.Fault); ok && d.Layer == faults.LayerLink {
			out = append(out, s.Fault)
		}
	}
	return out
}
