// Package kinds is the one list of the job kinds the device agent carries out. Every agent host takes its
// agent.Options.Kinds from All, so a new dialect's kind is its package plus one entry here.
package kinds

import (
	"encoding/json"
	"fmt"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/agent/greengrass"
	"github.com/fleetlab/fleetlab/sim/agent/greengrassv2"
	"github.com/fleetlab/fleetlab/sim/agent/opsworks"
	"github.com/fleetlab/fleetlab/sim/agent/robomaker"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
)

// All returns the kinds the agent carries out, the device's own first (see agent.Options.Kinds): a robot
// refuses a document of a kind it does not carry out as RoboMaker's agent does. The Greengrass V2 kind resolves
// its components with the cloud's ResolveComponentCandidates through the agent's transport, at the endpoint and
// with the keys of its data plane, so it works on every host whose transport speaks HTTP; on the in-memory
// transport its deployments fail with greengrassv2.CodeResolverMissing.
func All() []agent.Kind {
	return []agent.Kind{robomaker.Kind{}, greengrassv2.Kind{}, greengrass.Kind{}, opsworks.Kind{}}
}

// CheckArchitecture reports whether the kinds have devices of arch (agent.Options.Architecture), a GOARCH name:
// amd64, arm64 or arm. A dialect's own names of them (RoboMaker's X86_64, ARM64, ARMHF) are not architectures
// of the agent.
func CheckArchitecture(arch string) error {
	_, err := robomaker.Architecture(arch)
	return err
}

// ScriptFile returns the file of the version that step runs as a script for a job document (the envelope, as
// the device saved it), through its kind's agent.ScriptFiler. ok is false when the step runs no file; an error
// names a document no kind reads.
func ScriptFile(document, step string) (file string, ok bool, err error) {
	var env wire.Document
	if err := json.Unmarshal([]byte(document), &env); err != nil {
		return "", false, fmt.Errorf("job document: %w", err)
	}
	for _, k := range All() {
		if k.Name() != env.Kind {
			continue
		}
		j, err := k.Parse(env.Payload)
		if err != nil {
			return "", false, fmt.Errorf("job document of kind %s: %w", env.Kind, err)
		}
		sf, can := j.(agent.ScriptFiler)
		if !can {
			return "", false, nil
		}
		file, ok = sf.ScriptFile(step)
		return file, ok, nil
	}
	return "", false, fmt.Errorf("job document of kind %q: no kind of the agent reads it", env.Kind)
}
