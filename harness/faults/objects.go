package faults

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/fleetlab/fleetlab/sim/artifacts"
	"github.com/fleetlab/fleetlab/sim/event"
)

// objectFault is what the two object faults share: an artifact store intercept that answers reads of the
// matching objects with fault while injected.
type objectFault struct {
	a      Arming
	bucket string
	key    string
	fault  artifacts.Fault
	active atomic.Bool
	seen   atomic.Bool // the first strike is recorded
	remove func()
}

func armObject(a Arming, bucket, key string, f artifacts.Fault) (Armed, error) {
	if err := a.World.DevicesOverHTTP(); err != nil {
		return nil, fmt.Errorf("fault %s acts on device downloads at the artifact store: %w", a.Name, err)
	}
	o := &objectFault{a: a, bucket: bucket, key: key, fault: f}
	o.remove = a.World.InterceptArtifacts(o.intercept)
	return o, nil
}

// intercept answers object reads (GetObject, HeadObject) of the matching objects.
func (o *objectFault) intercept(op artifacts.Op, bucket, key string) *artifacts.Fault {
	if !o.active.Load() || (op != artifacts.OpGetObject && op != artifacts.OpHeadObject) ||
		(o.bucket != "" && bucket != o.bucket) || (o.key != "" && key != o.key) {
		return nil
	}
	if o.seen.CompareAndSwap(false, true) {
		o.a.emit(event.FaultInjected, "", "", fmt.Sprintf("%s %s/%s", op, bucket, key))
	}
	f := o.fault
	return &f
}

func (o *objectFault) Inject(context.Context) error {
	o.seen.Store(false)
	o.active.Store(true)
	return nil
}
func (o *objectFault) Recover(context.Context) error { o.active.Store(false); return nil }
func (o *objectFault) Disarm()                       { o.remove() }

// EtagMismatch serves, in place of the matching objects, bytes that are not what the deployment job names: the
// object's ETag is no longer the one the job recorded, as when a bundle is overwritten after the application
// version was created. Robots fail with EtagMismatch. Without Bucket and Key, every object read is affected.
type EtagMismatch struct {
	// Bucket and Key select the objects; empty matches any.
	Bucket string `json:"bucket,omitempty"`
	Key    string `json:"key,omitempty"`
	// Body is what is served instead (default: a line saying it is not the object).
	Body string `json:"body,omitempty"`
}

// Check implements Fault.
func (e *EtagMismatch) Check(sel Selector, _ Dialect) error { return noStep(sel) }

// Arm implements Fault.
func (e *EtagMismatch) Arm(a Arming) (Armed, error) {
	body := e.Body
	if body == "" {
		body = "fleetlab etag-mismatch: these are not the bytes the deployment job names\n"
	}
	return armObject(a, e.Bucket, e.Key, artifacts.Fault{Body: []byte(body)})
}

// MissingObject answers reads of the matching objects as if they had been deleted (NoSuchKey): robots fail
// their download with ResourceNotFound. Without Bucket and Key, every object read is affected.
type MissingObject struct {
	// Bucket and Key select the objects; empty matches any.
	Bucket string `json:"bucket,omitempty"`
	Key    string `json:"key,omitempty"`
}

// Check implements Fault.
func (m *MissingObject) Check(sel Selector, _ Dialect) error { return noStep(sel) }

// Arm implements Fault.
func (m *MissingObject) Arm(a Arming) (Armed, error) {
	return armObject(a, m.Bucket, m.Key, artifacts.Fault{Missing: true})
}

// noStep refuses a step on a fault that acts on the cloud.
func noStep(sel Selector) error {
	if sel.Step != "" {
		return fmt.Errorf("a cloud fault takes no step (%s)", sel.Step)
	}
	return nil
}
