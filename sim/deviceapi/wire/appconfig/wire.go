// Package appconfig is what the AppConfig dialect of the service and its device agent share: the header a device
// names itself with on AppConfigData, the health metric a device emits, and the one CloudWatch request the
// agent sends (PutMetricData), in the RPC v2 CBOR form the service's CloudWatch subset reads.
package appconfig

import (
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

// ClientIDHeader is the header a device sends with StartConfigurationSession to be bucketed in a rollout by its
// own identifier (its thing name) rather than by its session, so it keeps its side of a rollout across sessions.
const ClientIDHeader = "X-Fleetlab-Client-Id"

// The health metric: each device puts HealthMetric in HealthNamespace after every poll, 1 while the configuration
// it was last given failed to apply, 0 otherwise, with the dimension Application naming its application id.
const (
	HealthNamespace = "fleetlab/appconfig"
	HealthMetric    = "Unhealthy"
	HealthDimension = "Application"
)

// PutMetricDataPath is the path of CloudWatch's PutMetricData in the RPC v2 CBOR protocol.
const PutMetricDataPath = "/service/GraniteServiceVersion20100801/operation/PutMetricData"

// PutMetricData returns the CBOR body of a PutMetricData of one datapoint, and the headers it needs.
func PutMetricData(namespace, metric string, dims map[string]string, value float64, at time.Time) (body []byte,
	headers map[string]string) {
	ds := cbor.List{}
	for k, v := range dims {
		ds = append(ds, cbor.Map{"Name": cbor.String(k), "Value": cbor.String(v)})
	}
	datum := cbor.Map{"MetricName": cbor.String(metric), "Dimensions": ds, "Value": cbor.Float64(value),
		"Timestamp": &cbor.Tag{ID: 1, Value: cbor.Float64(float64(at.UnixMilli()) / 1000)}}
	body = cbor.Encode(cbor.Map{"Namespace": cbor.String(namespace), "MetricData": cbor.List{datum}})
	return body, map[string]string{"Content-Type": "application/cbor", "Smithy-Protocol": "rpc-v2-cbor",
		"Accept": "application/cbor"}
}
