package harness

import (
	"context"
	"fmt"
	"net/http"

	"github.com/fleetlab/fleetlab/harness/dialect"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// host is the environment as its dialect's session sees it.
type host struct{ e *Env }

var _ dialect.Host = host{}

func (h host) Endpoint() string                   { return h.e.Endpoint() }
func (h host) Transport() http.RoundTripper       { return h.e.ownTransport() }
func (h host) PublicTransport() http.RoundTripper { return h.e.transport }
func (h host) Clock() clock.Clock                 { return h.e.clock }
func (h host) Do(f func())                        { h.e.do(f) }
func (h host) CallContext() (context.Context, context.CancelFunc) {
	return h.e.callContext()
}
func (h host) Device(name string) (fleet.Device, bool) {
	if h.e.fleet == nil {
		return nil, false
	}
	return h.e.fleet.Device(name)
}
func (h host) PutBundle(name string) dialect.Object { return h.e.PutBundle(name) }
func (h host) PutScript(name string) dialect.Object { return h.e.PutScript(name) }
func (h host) Logf(format string, args ...any)      { h.e.log(format, args...) }
func (h host) Fatalf(format string, args ...any) {
	h.e.t.Helper()
	h.e.t.Fatalf("harness: %s", fmt.Sprintf(format, args...))
}
func (h host) InfraFatalf(format string, args ...any) {
	h.e.t.Helper()
	infraFatal(h.e.t, format, args...)
}
