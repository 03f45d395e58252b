package greengrassv2

import (
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	ggwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/greengrassv2"
	"github.com/fleetlab/fleetlab/sim/store"
)

// The fleet status service. A core device publishes its components' lifecycle states outside deployments
// (ggwire.FleetStatus) to its thing's topic $aws/things/{thing}/greengrassv2/health/json, over HTTP as the IoT
// data plane's Publish takes a message: POST /topics/{topic}, signed as a device (iotdata). The dialect keeps
// each thing's last message with the service time it arrived (bucketFleetStatus) and applies it to the
// deployment whose component set it describes (its jobId) when it arrived no earlier than that deployment's
// execution ended: the installed components take the states it reports (lifecycleState,
// lifecycleStateDetails, lastStatusChangeTimestamp — the device's time of the change — and lifecycleStatusCodes),
// and the core device is UNHEALTHY while it says so (a component BROKEN). A later deployment's outcome
// overrides it until the device reports again, so a successful deployment makes the device HEALTHY.
const bucketFleetStatus = "greengrass.fleet-status" // <thing> → fleetStatusRec

// fleetStatusRec is the last fleet status message of a thing.
type fleetStatusRec struct {
	Status ggwire.FleetStatus `json:"status"`
	At     time.Time          `json:"at"`
}

// maxFleetStatusBody bounds a fleet status message.
const maxFleetStatusBody = 256 << 10

// topicsPrefix is where devices publish (the IoT data plane's Publish path).
const topicsPrefix = "/topics/"

// fleetStatusHandler serves POST /topics/{topic} for the fleet status topics.
type fleetStatusHandler struct{ s *Service }

// Operation implements awsapi.OperationNamer: cloud faults select a device's publishes as the operation
// "Publish" of the device API.
func (h fleetStatusHandler) Operation(r *http.Request) (awsapi.Call, bool) {
	thing, ok := ggwire.FleetStatusThing(strings.TrimPrefix(r.URL.Path, topicsPrefix))
	if !ok {
		return awsapi.Call{}, false
	}
	return awsapi.Call{Dialect: "device", Operation: "Publish", Thing: thing}, true
}

var _ awsapi.OperationNamer = fleetStatusHandler{}

func (h fleetStatusHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fail := func(e *awsapi.Error) { e.Write(w, "message", "application/json") }
	if r.Method != http.MethodPost {
		fail(awsapi.NewError("MethodNotAllowedException", http.StatusMethodNotAllowed,
			"%s %s: a topic takes POST (Publish)", r.Method, r.URL.Path))
		return
	}
	topic := strings.TrimPrefix(r.URL.Path, topicsPrefix)
	thing, ok := ggwire.FleetStatusThing(topic)
	if !ok {
		fail(awsapi.NewError("ResourceNotFoundException", http.StatusNotFound,
			"topic %q: the service takes only fleet status messages ($aws/things/{thing}/greengrassv2/health/json)", topic))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxFleetStatusBody+1))
	if err != nil {
		fail(awsapi.NewError("InvalidRequestException", http.StatusBadRequest, "request body could not be read: %v", err))
		return
	}
	if len(body) > maxFleetStatusBody {
		fail(awsapi.NewError("RequestEntityTooLargeException", http.StatusRequestEntityTooLarge,
			"the message is larger than the limit of %d bytes", maxFleetStatusBody))
		return
	}
	fs, err := ggwire.ParseFleetStatus(thing, body)
	if err != nil {
		fail(awsapi.NewError("InvalidRequestException", http.StatusBadRequest, "%v", err))
		return
	}
	if err := h.s.putFleetStatus(fs); err != nil {
		fail(awsapi.NewError("InternalFailureException", http.StatusInternalServerError, "%v", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "{}")
}

// putFleetStatus keeps fs as its thing's last message, received now.
func (s *Service) putFleetStatus(fs ggwire.FleetStatus) error {
	rec := fleetStatusRec{Status: fs, At: s.clock.Now()}
	return s.store.Batch(func(tx store.Tx) error { return awsapi.PutJSON(tx, bucketFleetStatus, fs.Thing, rec) })
}

// fleetFor returns the device's last fleet status when it applies to run r (the zero run: none): it describes
// r's component set and arrived no earlier than r ended.
func (c *coreDevice) fleetFor(r deviceRun) (*fleetStatusRec, bool) {
	f := c.Fleet
	if f == nil || r.d == nil || f.Status.JobID != r.d.JobID || f.At.Before(r.x.UpdatedAt) {
		return nil, false
	}
	return f, true
}
