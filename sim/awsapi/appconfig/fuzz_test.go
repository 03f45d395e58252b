package appconfig

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aws/smithy-go/encoding/cbor"
)

// FuzzCloudWatch sends arbitrary bodies to every CloudWatch operation: each is answered, never with a server
// error, and the alarms stay describable.
func FuzzCloudWatch(f *testing.F) {
	f.Add("PutMetricAlarm", cbor.Encode(cbor.Map{"AlarmName": cbor.String("a"), "Namespace": cbor.String("n"),
		"MetricName": cbor.String("m"), "Statistic": cbor.String("Sum"), "Period": cbor.Uint(60),
		"EvaluationPeriods": cbor.Uint(1), "Threshold": cbor.Float64(1),
		"ComparisonOperator": cbor.String("GreaterThanThreshold")}))
	f.Add("PutMetricData", cbor.Encode(cbor.Map{"Namespace": cbor.String("n"), "MetricData": cbor.List{
		cbor.Map{"MetricName": cbor.String("m"), "Value": cbor.Float64(2)}}}))
	f.Add("SetAlarmState", []byte{0xbf, 0xff})
	f.Add("DescribeAlarms", []byte{})
	e := newEnv(f)
	f.Fuzz(func(t *testing.T, op string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.URL.Path = cloudWatchPrefix + op
		rec := httptest.NewRecorder()
		e.svc.serveCloudWatch(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s: %d %x", op, rec.Code, rec.Body.Bytes())
		}
		if _, err := cbor.Decode(rec.Body.Bytes()); err != nil {
			t.Fatalf("%s: the answer is not CBOR: %v", op, err)
		}
		if _, err := e.svc.alarms.list(nil, "", ""); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzValidators: validators and feature flags of any content refuse or accept, never panic.
func FuzzValidators(f *testing.F) {
	f.Add(`{"type":"object","required":["a"]}`, []byte(`{"a":1}`))
	f.Add(`{"$ref":"http://example.com/x"}`, []byte(`{}`))
	f.Add(`{"version":"1","flags":{}}`, []byte(`{"version":"1","flags":{"a":{}},"values":{"a":{"enabled":1}}}`))
	f.Fuzz(func(t *testing.T, schema string, content []byte) {
		_ = checkValidators([]Validator{{Type: ValidatorJSONSchema, Content: schema}})
		_ = validate([]Validator{{Type: ValidatorJSONSchema, Content: schema}}, content)
		if checkFeatureFlags(content) == nil {
			_ = flagValues(content)
		}
	})
}
