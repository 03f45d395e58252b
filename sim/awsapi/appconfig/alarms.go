package appconfig

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/store"
)

// Alarm states (StateValue).
const (
	AlarmStateOK           = "OK"
	AlarmStateAlarm        = "ALARM"
	AlarmStateInsufficient = "INSUFFICIENT_DATA"
)

const bucketAlarms = "appconfig.cloudwatch.alarms" // alarm name

// maxMetrics and maxDatapoints bound what the metrics hold in memory: distinct metrics, and datapoints of one
// metric (the oldest go first).
const (
	maxMetrics    = 10000
	maxDatapoints = 100000
)

// metricRetention is how long datapoints are kept: longer than any period an alarm here evaluates over.
const metricRetention = 24 * time.Hour

// Dimension is a CloudWatch metric dimension.
type Dimension struct {
	Name  string `json:"Name"`
	Value string `json:"Value"`
}

// Alarm is a CloudWatch metric alarm (MetricAlarm), as far as this service evaluates it: one metric, one
// statistic over Period seconds, EvaluationPeriods periods of which DatapointsToAlarm must breach.
type Alarm struct {
	AlarmName          string      `json:"AlarmName"`
	AlarmArn           string      `json:"AlarmArn"`
	AlarmDescription   string      `json:"AlarmDescription,omitempty"`
	Namespace          string      `json:"Namespace"`
	MetricName         string      `json:"MetricName"`
	Dimensions         []Dimension `json:"Dimensions,omitempty"`
	Statistic          string      `json:"Statistic"`
	Period             int         `json:"Period"`
	EvaluationPeriods  int         `json:"EvaluationPeriods"`
	DatapointsToAlarm  int         `json:"DatapointsToAlarm"`
	Threshold          float64     `json:"Threshold"`
	ComparisonOperator string      `json:"ComparisonOperator"`
	TreatMissingData   string      `json:"TreatMissingData"`
	ActionsEnabled     bool        `json:"ActionsEnabled"`
	StateValue         string      `json:"StateValue"`
	StateReason        string      `json:"StateReason"`
	StateUpdated       time.Time   `json:"StateUpdated"`
	ConfigUpdated      time.Time   `json:"ConfigUpdated"`
	// Evaluated is the end of the last period evaluated: the alarm is evaluated again once the next one ends.
	Evaluated time.Time `json:"Evaluated,omitzero"`
}

type datum struct {
	at    time.Time
	value float64
	count float64
}

// alarmStore keeps the alarms (in the store, and in memory for the watch) and the metrics' datapoints (in memory
// only: a restarted service starts its metrics afresh, as alarms then see missing data).
type alarmStore struct {
	store           store.Store
	region, account string

	mu      sync.Mutex
	loaded  bool
	alarms  map[string]*Alarm  // by name
	metrics map[string][]datum // by metricKey, in time order
}

func newAlarmStore(st store.Store, region, account string) *alarmStore {
	return &alarmStore{store: st, region: region, account: account, alarms: map[string]*Alarm{},
		metrics: map[string][]datum{}}
}

func (a *alarmStore) arn(name string) string {
	return awsapi.ARN{Partition: "aws", Service: "cloudwatch", Region: a.region, Account: a.account,
		Resource: "alarm:" + name}.String()
}

// load reads the alarms from the store once. Called with a.mu held.
func (a *alarmStore) load() error {
	if a.loaded {
		return nil
	}
	err := a.store.View(func(tx store.Tx) error {
		return awsapi.Each(tx, bucketAlarms, func(al *Alarm) error { a.alarms[al.AlarmName] = al; return nil })
	})
	if err == nil {
		a.loaded = true
	}
	return err
}

func (a *alarmStore) save(al *Alarm) error {
	return a.store.Batch(func(tx store.Tx) error { return awsapi.PutJSON(tx, bucketAlarms, al.AlarmName, al) })
}

func metricKey(namespace, name string, dims []Dimension) string {
	d := slices.Clone(dims)
	sort.Slice(d, func(i, j int) bool { return d[i].Name < d[j].Name })
	data, _ := json.Marshal(d)
	return namespace + "\x00" + name + "\x00" + string(data)
}

// put records datapoints of a metric; false when the metric is new and the service holds maxMetrics already.
func (a *alarmStore) put(namespace, name string, dims []Dimension, at time.Time, values, counts []float64,
	now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := metricKey(namespace, name, dims)
	ds, known := a.metrics[k]
	if !known && len(a.metrics) >= maxMetrics {
		return false
	}
	for i, v := range values {
		c := 1.0
		if i < len(counts) {
			c = counts[i]
		}
		ds = append(ds, datum{at: at, value: v, count: c})
	}
	sort.SliceStable(ds, func(i, j int) bool { return ds[i].at.Before(ds[j].at) })
	cut := now.Add(-metricRetention)
	for len(ds) > 0 && ds[0].at.Before(cut) {
		ds = ds[1:]
	}
	if len(ds) > maxDatapoints {
		ds = ds[len(ds)-maxDatapoints:]
	}
	a.metrics[k] = slices.Clip(ds)
	return true
}

// putAlarm creates or replaces an alarm; a new one starts INSUFFICIENT_DATA.
func (a *alarmStore) putAlarm(al Alarm, now time.Time) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.load(); err != nil {
		return err
	}
	al.AlarmArn = a.arn(al.AlarmName)
	al.ConfigUpdated = now
	if old, ok := a.alarms[al.AlarmName]; ok {
		al.StateValue, al.StateReason, al.StateUpdated = old.StateValue, old.StateReason, old.StateUpdated
	} else {
		al.StateValue, al.StateReason, al.StateUpdated = AlarmStateInsufficient, "Unchecked: Initial alarm creation", now
	}
	if err := a.save(&al); err != nil {
		return err
	}
	a.alarms[al.AlarmName] = &al
	return nil
}

// setState sets an alarm's state by hand (SetAlarmState); it holds until the alarm's next evaluation, at the end
// of its next period. found is false for an unknown alarm.
func (a *alarmStore) setState(name, state, reason string, now time.Time) (found bool, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.load(); err != nil {
		return false, err
	}
	al, ok := a.alarms[name]
	if !ok {
		return false, nil
	}
	c := *al
	c.StateValue, c.StateReason, c.StateUpdated = state, reason, now
	if c.Period > 0 {
		c.Evaluated = periodEnd(now, c.Period)
	}
	if err := a.save(&c); err != nil {
		return true, err
	}
	a.alarms[name] = &c
	return true, nil
}

func (a *alarmStore) deleteAlarms(names []string) (missing string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.load(); err != nil {
		return "", err
	}
	for _, n := range names {
		if _, ok := a.alarms[n]; !ok {
			return n, nil
		}
	}
	err = a.store.Batch(func(tx store.Tx) error {
		for _, n := range names {
			if err := tx.Delete(bucketAlarms, n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	for _, n := range names {
		delete(a.alarms, n)
	}
	return "", nil
}

// list returns the alarms, by name, whose names start with prefix (or are in names), in the state given.
func (a *alarmStore) list(names []string, prefix, state string) ([]Alarm, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.load(); err != nil {
		return nil, err
	}
	var out []Alarm
	for _, n := range slices.Sorted(mapKeys(a.alarms)) {
		al := a.alarms[n]
		if len(names) > 0 && !slices.Contains(names, n) {
			continue
		}
		if prefix != "" && !strings.HasPrefix(n, prefix) {
			continue
		}
		if state != "" && al.StateValue != state {
			continue
		}
		out = append(out, *al)
	}
	return out, nil
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// state returns the state of the alarm of that ARN ("" for an unknown one).
func (a *alarmStore) state(arn string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.load() != nil {
		return ""
	}
	for _, al := range a.alarms {
		if al.AlarmArn == arn {
			return al.StateValue
		}
	}
	return ""
}

// periodEnd is the end of the last period of p seconds (aligned to the epoch) that ended at or before now.
func periodEnd(now time.Time, p int) time.Time {
	sec := now.Unix()
	return time.Unix(sec-sec%int64(p), 0).UTC()
}

// evaluate evaluates every alarm whose next period has ended by now.
func (a *alarmStore) evaluate(now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.load() != nil {
		return
	}
	for _, n := range slices.Sorted(mapKeys(a.alarms)) {
		al := a.alarms[n]
		if al.Period <= 0 || al.EvaluationPeriods <= 0 {
			continue
		}
		end := periodEnd(now, al.Period)
		if !end.After(al.Evaluated) {
			continue
		}
		c := *al
		c.Evaluated = end
		state, reason := a.verdict(&c, end)
		if state != "" && state != c.StateValue {
			c.StateValue, c.StateReason, c.StateUpdated = state, reason, now
		}
		if a.save(&c) == nil {
			a.alarms[n] = &c
		}
	}
}

// verdict evaluates an alarm over its EvaluationPeriods periods ending at end. "" keeps the state (missing data
// treated as ignore).
func (a *alarmStore) verdict(al *Alarm, end time.Time) (string, string) {
	ds := a.metrics[metricKey(al.Namespace, al.MetricName, al.Dimensions)]
	p := time.Duration(al.Period) * time.Second
	need := al.DatapointsToAlarm
	if need <= 0 {
		need = al.EvaluationPeriods
	}
	breaching, present := 0, 0
	var last float64
	for k := al.EvaluationPeriods; k >= 1; k-- {
		from, to := end.Add(-p*time.Duration(k)), end.Add(-p*time.Duration(k-1))
		v, ok := statistic(al.Statistic, ds, from, to)
		if !ok {
			switch al.TreatMissingData {
			case "breaching":
				breaching++
				present++
			case "notBreaching":
				present++
			}
			continue
		}
		present++
		last = v
		if compare(al.ComparisonOperator, v, al.Threshold) {
			breaching++
		}
	}
	switch {
	case breaching >= need:
		return AlarmStateAlarm, fmt.Sprintf("Threshold Crossed: %d out of the last %d datapoints were %s the "+
			"threshold (%v); the last was %v", breaching, al.EvaluationPeriods, opWords(al.ComparisonOperator),
			al.Threshold, last)
	case present > 0:
		return AlarmStateOK, fmt.Sprintf("Threshold not crossed: %d out of the last %d datapoints breached the "+
			"threshold (%v)", breaching, al.EvaluationPeriods, al.Threshold)
	case al.TreatMissingData == "ignore":
		return "", ""
	}
	return AlarmStateInsufficient, "Insufficient Data: no datapoints were received for the evaluation periods"
}

func statistic(stat string, ds []datum, from, to time.Time) (float64, bool) {
	var sum, n, lo, hi float64
	lo, hi = math.Inf(1), math.Inf(-1)
	i := sort.Search(len(ds), func(i int) bool { return !ds[i].at.Before(from) })
	for _, d := range ds[i:] {
		if !d.at.Before(to) {
			break
		}
		sum += d.value * d.count
		n += d.count
		lo, hi = math.Min(lo, d.value), math.Max(hi, d.value)
	}
	if n == 0 {
		return 0, false
	}
	switch stat {
	case "Sum":
		return sum, true
	case "SampleCount":
		return n, true
	case "Minimum":
		return lo, true
	case "Maximum":
		return hi, true
	}
	return sum / n, true
}

func compare(op string, v, t float64) bool {
	switch op {
	case "GreaterThanOrEqualToThreshold":
		return v >= t
	case "GreaterThanThreshold":
		return v > t
	case "LessThanThreshold":
		return v < t
	case "LessThanOrEqualToThreshold":
		return v <= t
	}
	return false
}

func opWords(op string) string {
	switch op {
	case "GreaterThanOrEqualToThreshold":
		return "greater than or equal to"
	case "GreaterThanThreshold":
		return "greater than"
	case "LessThanThreshold":
		return "less than"
	}
	return "less than or equal to"
}
