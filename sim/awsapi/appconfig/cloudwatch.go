package appconfig

import (
	"compress/gzip"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"

	"github.com/fleetlab/fleetlab/sim/awsapi"
)

// The CloudWatch subset a deployment's monitors need, on the service's one endpoint, in the protocol the AWS SDK
// for Go v2 cloudwatch client speaks (Smithy RPC v2 CBOR: POST /service/GraniteServiceVersion20100801/operation/
// {Operation}, CBOR bodies): PutMetricData, PutMetricAlarm, DescribeAlarms, SetAlarmState, DeleteAlarms. Alarms
// are evaluated on the service clock (alarms.go). The AWS CLI 2.9 speaks CloudWatch's older query protocol, which
// this subset does not serve.

const cloudWatchPrefix = "/service/GraniteServiceVersion20100801/operation/"

// maxEvaluationRange bounds the time an alarm evaluates over, in seconds (CloudWatch: 7 days).
const maxEvaluationRange = 7 * 24 * 3600

// maxCloudWatchBody bounds a CloudWatch request (PutMetricData's limit is 1 MB).
const maxCloudWatchBody = 1 << 20

// cwError is a CloudWatch error as RPC v2 CBOR carries it.
type cwError struct {
	code    string
	status  int
	message string
}

func (e *cwError) Error() string { return e.code + ": " + e.message }

func cwInvalid(format string, args ...any) *cwError {
	return &cwError{"InvalidParameterValueException", http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func cwMissing(member string) *cwError {
	return &cwError{"MissingRequiredParameterException", http.StatusBadRequest,
		"The parameter " + member + " is required."}
}

// CloudWatchSigningName is CloudWatch's signing name: its requests are signed under it, with an operator's key,
// or with a device's for PutMetricData (awsapi.DeviceOperations).
const CloudWatchSigningName = "monitoring"

func (s *Service) registerCloudWatch(h *awsapi.Handler) error {
	return h.MountWith(cloudWatchPrefix, http.HandlerFunc(s.serveCloudWatch), awsapi.MountOptions{
		Services: []string{CloudWatchSigningName}, Dialect: Kind, MaxBody: maxCloudWatchBody,
		Operation: func(r *http.Request) string { return strings.TrimPrefix(r.URL.Path, cloudWatchPrefix) },
		WriteError: func(w http.ResponseWriter, status int, code, message string) {
			writeCloudWatchError(w, &cwError{code, status, message})
		}})
}

// writeCloudWatchError writes e as the RPC v2 CBOR protocol spells errors.
func writeCloudWatchError(w http.ResponseWriter, e *cwError) {
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("Content-Type", "application/cbor")
	w.WriteHeader(e.status)
	_, _ = w.Write(cbor.Encode(cbor.Map{"__type": cbor.String("com.amazonaws.cloudwatch#" + e.code),
		"message": cbor.String(e.message)}))
}

func (s *Service) serveCloudWatch(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.URL.Path, cloudWatchPrefix)
	out, err := s.cloudWatch(op, r)
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	if err != nil {
		e, ok := err.(*cwError)
		if !ok {
			e = &cwError{"InternalServiceError", http.StatusInternalServerError, "Internal service error"}
		}
		writeCloudWatchError(w, e)
		return
	}
	w.Header().Set("Content-Type", "application/cbor")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(cbor.Encode(out))
}

func (s *Service) cloudWatch(op string, r *http.Request) (cbor.Map, error) {
	if r.Method != http.MethodPost {
		return nil, &cwError{"UnknownOperationException", http.StatusNotFound, "No operation " + op}
	}
	var src io.Reader = r.Body
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") { // PutMetricData compresses its body
		zr, err := gzip.NewReader(io.LimitReader(r.Body, maxCloudWatchBody))
		if err != nil {
			return nil, cwInvalid("The request body is not gzip: %v", err)
		}
		defer zr.Close()
		src = zr
	}
	body, err := io.ReadAll(io.LimitReader(src, maxCloudWatchBody+1))
	if err != nil || len(body) > maxCloudWatchBody {
		return nil, cwInvalid("The request body could not be read or is larger than %d bytes", maxCloudWatchBody)
	}
	in := cbor.Map{}
	if len(body) > 0 {
		v, err := cbor.Decode(body)
		if err != nil {
			return nil, cwInvalid("The request body is not CBOR: %v", err)
		}
		m, ok := v.(cbor.Map)
		if !ok {
			return nil, cwInvalid("The request body is not a CBOR map")
		}
		in = m
	}
	now := s.clock.Now()
	switch op {
	case "PutMetricData":
		return s.cwPutMetricData(in, now)
	case "PutMetricAlarm":
		return s.cwPutMetricAlarm(in, now)
	case "DescribeAlarms":
		return s.cwDescribeAlarms(in, now)
	case "SetAlarmState":
		return s.cwSetAlarmState(in, now)
	case "DeleteAlarms":
		names := cwStrings(in["AlarmNames"])
		if len(names) == 0 {
			return nil, cwMissing("AlarmNames")
		}
		missing, err := s.alarms.deleteAlarms(names)
		if err != nil {
			return nil, err
		}
		if missing != "" {
			return nil, &cwError{"ResourceNotFound", http.StatusNotFound, "Alarm " + missing + " does not exist."}
		}
		return cbor.Map{}, nil
	}
	return nil, &cwError{"UnknownOperationException", http.StatusNotFound, "This service does not serve " + op}
}

func cwString(v cbor.Value) string {
	s, _ := v.(cbor.String)
	return string(s)
}

func cwStrings(v cbor.Value) []string {
	l, _ := v.(cbor.List)
	var out []string
	for _, e := range l {
		out = append(out, cwString(e))
	}
	return out
}

func cwFloat(v cbor.Value) (float64, bool) {
	if v == nil {
		return 0, false
	}
	f, err := cbor.AsFloat64(v)
	return f, err == nil
}

func cwInt(v cbor.Value) (int, bool) {
	if v == nil {
		return 0, false
	}
	n, err := cbor.AsInt64(v)
	if err != nil || n < math.MinInt32 || n > math.MaxInt32 { // the model's members are 32-bit
		return 0, false
	}
	return int(n), true
}

func cwDims(v cbor.Value) []Dimension {
	l, _ := v.(cbor.List)
	var out []Dimension
	for _, e := range l {
		m, _ := e.(cbor.Map)
		out = append(out, Dimension{Name: cwString(m["Name"]), Value: cwString(m["Value"])})
	}
	return out
}

func cwTime(t time.Time) cbor.Value {
	return &cbor.Tag{ID: 1, Value: cbor.Float64(float64(t.UnixMilli()) / 1000)}
}

func (s *Service) cwPutMetricData(in cbor.Map, now time.Time) (cbor.Map, error) {
	ns := cwString(in["Namespace"])
	if ns == "" {
		return nil, cwMissing("Namespace")
	}
	data, _ := in["MetricData"].(cbor.List)
	if len(data) == 0 {
		return nil, cwMissing("MetricData")
	}
	type point struct {
		name   string
		dims   []Dimension
		at     time.Time
		values []float64
		counts []float64
	}
	if len(data) > 1000 {
		return nil, cwInvalid("MetricData has %d members, more than 1000", len(data))
	}
	var points []point
	for i, e := range data {
		m, _ := e.(cbor.Map)
		p := point{name: cwString(m["MetricName"]), dims: cwDims(m["Dimensions"]), at: now}
		if p.name == "" {
			return nil, cwMissing(fmt.Sprintf("MetricData.member.%d.MetricName", i+1))
		}
		if ts, ok := m["Timestamp"]; ok {
			t, err := cbor.AsTime(ts)
			if err != nil {
				return nil, cwInvalid("The timestamp of MetricData.member.%d is not valid", i+1)
			}
			p.at = t
		}
		if v, ok := cwFloat(m["Value"]); ok {
			p.values = []float64{v}
		}
		if l, ok := m["Values"].(cbor.List); ok {
			for _, x := range l {
				v, _ := cwFloat(x)
				p.values = append(p.values, v)
			}
			for _, x := range cwList(m["Counts"]) {
				c, _ := cwFloat(x)
				p.counts = append(p.counts, c)
			}
		}
		if sv, ok := m["StatisticValues"].(cbor.Map); ok {
			n, _ := cwFloat(sv["SampleCount"])
			sum, _ := cwFloat(sv["Sum"])
			if n > 0 {
				p.values, p.counts = []float64{sum / n}, []float64{n}
			}
		}
		for _, v := range p.values {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, cwInvalid("The value of MetricData.member.%d is not a finite number", i+1)
			}
		}
		if len(p.values) > 150 {
			return nil, cwInvalid("MetricData.member.%d has more than 150 values", i+1)
		}
		if len(p.values) == 0 {
			return nil, cwInvalid("MetricData.member.%d has no Value, Values or StatisticValues", i+1)
		}
		points = append(points, p)
	}
	for _, p := range points {
		if !s.alarms.put(ns, p.name, p.dims, p.at, p.values, p.counts, now) {
			return nil, &cwError{"LimitExceededException", http.StatusBadRequest,
				fmt.Sprintf("The service keeps at most %d metrics", maxMetrics)}
		}
	}
	s.watch()
	return cbor.Map{}, nil
}

func cwList(v cbor.Value) cbor.List {
	l, _ := v.(cbor.List)
	return l
}

var (
	cwStatistics = []string{"SampleCount", "Average", "Sum", "Minimum", "Maximum"}
	cwOperators  = []string{"GreaterThanOrEqualToThreshold", "GreaterThanThreshold", "LessThanThreshold",
		"LessThanOrEqualToThreshold"}
	cwMissingData = []string{"breaching", "notBreaching", "ignore", "missing"}
	cwStates      = []string{AlarmStateOK, AlarmStateAlarm, AlarmStateInsufficient}
)

func (s *Service) cwPutMetricAlarm(in cbor.Map, now time.Time) (cbor.Map, error) {
	al := Alarm{AlarmName: cwString(in["AlarmName"]), AlarmDescription: cwString(in["AlarmDescription"]),
		Namespace: cwString(in["Namespace"]), MetricName: cwString(in["MetricName"]),
		Dimensions: cwDims(in["Dimensions"]), Statistic: cwString(in["Statistic"]),
		ComparisonOperator: cwString(in["ComparisonOperator"]), TreatMissingData: cwString(in["TreatMissingData"]),
		ActionsEnabled: true}
	if b, ok := in["ActionsEnabled"].(cbor.Bool); ok {
		al.ActionsEnabled = bool(b)
	}
	for member, v := range map[string]string{"AlarmName": al.AlarmName, "ComparisonOperator": al.ComparisonOperator,
		"MetricName": al.MetricName, "Namespace": al.Namespace, "Statistic": al.Statistic} {
		if v == "" {
			return nil, cwMissing(member)
		}
	}
	var ok bool
	if al.Period, ok = cwInt(in["Period"]); !ok || al.Period < 10 || (al.Period > 30 && al.Period%60 != 0) {
		return nil, cwInvalid("Period must be 10, 20, 30 or a multiple of 60 seconds")
	}
	if al.Period > 86400 {
		return nil, cwInvalid("Period must be at most 86400 seconds")
	}
	if al.EvaluationPeriods, ok = cwInt(in["EvaluationPeriods"]); !ok || al.EvaluationPeriods < 1 {
		return nil, cwInvalid("EvaluationPeriods must be at least 1")
	}
	if al.Period*al.EvaluationPeriods > maxEvaluationRange {
		return nil, cwInvalid("Period times EvaluationPeriods must be at most %d seconds (7 days)", maxEvaluationRange)
	}
	al.DatapointsToAlarm, _ = cwInt(in["DatapointsToAlarm"])
	if al.DatapointsToAlarm == 0 {
		al.DatapointsToAlarm = al.EvaluationPeriods
	}
	if al.DatapointsToAlarm < 1 || al.DatapointsToAlarm > al.EvaluationPeriods {
		return nil, cwInvalid("DatapointsToAlarm must be between 1 and EvaluationPeriods (%d)", al.EvaluationPeriods)
	}
	if al.Threshold, ok = cwFloat(in["Threshold"]); !ok {
		return nil, cwMissing("Threshold")
	}
	if !slices.Contains(cwStatistics, al.Statistic) {
		return nil, cwInvalid("Statistic %s is not one of %s", al.Statistic, strings.Join(cwStatistics, ", "))
	}
	if !slices.Contains(cwOperators, al.ComparisonOperator) {
		return nil, cwInvalid("ComparisonOperator %s is not one of %s", al.ComparisonOperator,
			strings.Join(cwOperators, ", "))
	}
	if al.TreatMissingData == "" {
		al.TreatMissingData = "missing"
	}
	if !slices.Contains(cwMissingData, al.TreatMissingData) {
		return nil, cwInvalid("TreatMissingData %s is not one of %s", al.TreatMissingData,
			strings.Join(cwMissingData, ", "))
	}
	if err := s.alarms.putAlarm(al, now); err != nil {
		return nil, err
	}
	return cbor.Map{}, nil
}

func (s *Service) cwDescribeAlarms(in cbor.Map, now time.Time) (cbor.Map, error) {
	state := cwString(in["StateValue"])
	if state != "" && !slices.Contains(cwStates, state) {
		return nil, cwInvalid("StateValue %s is not one of %s", state, strings.Join(cwStates, ", "))
	}
	s.watch()
	alarms, err := s.alarms.list(cwStrings(in["AlarmNames"]), cwString(in["AlarmNamePrefix"]), state)
	if err != nil {
		return nil, err
	}
	out := cbor.List{}
	for _, a := range alarms {
		dims := cbor.List{}
		for _, d := range a.Dimensions {
			dims = append(dims, cbor.Map{"Name": cbor.String(d.Name), "Value": cbor.String(d.Value)})
		}
		m := cbor.Map{
			"AlarmName": cbor.String(a.AlarmName), "AlarmArn": cbor.String(a.AlarmArn),
			"Namespace": cbor.String(a.Namespace), "MetricName": cbor.String(a.MetricName), "Dimensions": dims,
			"Statistic": cbor.String(a.Statistic), "Period": cbor.Uint(a.Period),
			"EvaluationPeriods": cbor.Uint(a.EvaluationPeriods), "DatapointsToAlarm": cbor.Uint(a.DatapointsToAlarm),
			"Threshold": cbor.Float64(a.Threshold), "ComparisonOperator": cbor.String(a.ComparisonOperator),
			"TreatMissingData": cbor.String(a.TreatMissingData), "ActionsEnabled": cbor.Bool(a.ActionsEnabled),
			"StateValue": cbor.String(a.StateValue), "StateReason": cbor.String(a.StateReason),
			"StateUpdatedTimestamp":              cwTime(a.StateUpdated),
			"AlarmConfigurationUpdatedTimestamp": cwTime(a.ConfigUpdated),
			"OKActions":                          cbor.List{}, "AlarmActions": cbor.List{},
			"InsufficientDataActions": cbor.List{},
		}
		if a.AlarmDescription != "" {
			m["AlarmDescription"] = cbor.String(a.AlarmDescription)
		}
		out = append(out, m)
	}
	return cbor.Map{"MetricAlarms": out, "CompositeAlarms": cbor.List{}}, nil
}

func (s *Service) cwSetAlarmState(in cbor.Map, now time.Time) (cbor.Map, error) {
	name, state, reason := cwString(in["AlarmName"]), cwString(in["StateValue"]), cwString(in["StateReason"])
	switch {
	case name == "":
		return nil, cwMissing("AlarmName")
	case state == "":
		return nil, cwMissing("StateValue")
	case reason == "":
		return nil, cwMissing("StateReason")
	case !slices.Contains(cwStates, state):
		return nil, cwInvalid("StateValue %s is not one of %s", state, strings.Join(cwStates, ", "))
	}
	found, err := s.alarms.setState(name, state, reason, now)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, &cwError{"ResourceNotFound", http.StatusNotFound, "Alarm " + name + " does not exist."}
	}
	s.watch()
	return cbor.Map{}, nil
}
