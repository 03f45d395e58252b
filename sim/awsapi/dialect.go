package awsapi

import (
	"github.com/fleetlab/fleetlab/sim/awsapi/model"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/store"
)

// Dialect is one API dialect of the deployment service (RoboMaker, Greengrass V2, …) as the service assembles
// it: a name, the service model it serves, and how it mounts on the one Handler. The service builds every dialect
// of its list (DialectSpec) over the same engine and store; adding a dialect is its package and one line in that
// list.
type Dialect interface {
	// Name is the dialect's name: the engine deployment kind it owns, the key of its options, and the API cloud
	// faults select ("robomaker").
	Name() string
	// Model is the service model the dialect serves; its routes come from it.
	Model() *model.Model
	// Register adds the dialect's operations to h (Handler.Register with the dialect's Service).
	Register(h *Handler) error
	// KnowsThing reports whether the dialect knows a device of that thing name (a RoboMaker robot): the device
	// API answers a thing that no dialect knows ResourceNotFoundException.
	KnowsThing(thing string) bool
}

// DialectSpec is an entry of the service's list of dialects.
type DialectSpec struct {
	// Name is the dialect's name, as Dialect.Name gives it.
	Name string
	// New builds the dialect over deps. options are the dialect's own options (a value of the type its package
	// documents, robomaker.Quotas say), nil for its defaults; a value of another type is an error.
	New func(deps DialectDeps, options any) (Dialect, error)
}

// DialectDeps are what the service gives every dialect it builds.
type DialectDeps struct {
	// Engine runs the dialect's deployments; Store keeps its resources (the engine's store).
	Engine *engine.Engine
	Store  store.Store
	// Clock is the service clock.
	Clock clock.Clock
	// Objects is the artifact store, for checking the objects a dialect's resources name.
	Objects Objects
	// Region and Account appear in ARNs ("" for the dialect's defaults).
	Region, Account string
	// IDs is the dialect's stream of generated ids.
	IDs *IDs
	// Registry is the registry of things and thing groups, for the dialects built after the one that keeps it
	// (IoT); nil when the service has none or the dialect is built before it.
	Registry Registry
}

// Objects reads ETags from the artifact store. ETag returns the object's ETag as S3 sends it (quoted), or an
// error when the object does not exist.
type Objects interface {
	ETag(bucket, key string) (string, error)
}
