package engine

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
)

// appendExecution appends x as the JSON encoding/json would produce for it, without reflection: executions are
// written on every transition, and this encoding is the larger part of the engine's cost per transition.
// TestExecutionEncoding holds the two encodings equal.
func appendExecution(b []byte, x *Execution) []byte {
	b = append(b, `{"deployment":`...)
	b = appendString(b, x.Deployment)
	b = append(b, `,"device":`...)
	b = appendString(b, x.Device)
	b = append(b, `,"status":`...)
	b = appendString(b, string(x.Status))
	if x.Released {
		b = append(b, `,"released":true`...)
	}
	if len(x.Details) > 0 {
		b = append(b, `,"details":{`...)
		keys := make([]string, 0, len(x.Details))
		for k := range x.Details {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, x.Details[k])
		}
		b = append(b, '}')
	}
	if x.Reported != (StepReport{}) {
		b = appendReported(b, x.Reported)
	}
	if x.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, x.Reason)
	}
	b = append(b, `,"number":`...)
	b = strconv.AppendInt(b, x.Number, 10)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, x.Version, 10)
	b = append(b, `,"queuedAt":`...)
	b = appendTime(b, x.QueuedAt)
	if !x.ReleasedAt.IsZero() {
		b = append(b, `,"releasedAt":`...)
		b = appendTime(b, x.ReleasedAt)
	}
	if !x.StartedAt.IsZero() {
		b = append(b, `,"startedAt":`...)
		b = appendTime(b, x.StartedAt)
	}
	b = append(b, `,"updatedAt":`...)
	b = appendTime(b, x.UpdatedAt)
	if !x.StepDeadline.IsZero() {
		b = append(b, `,"stepDeadline":`...)
		b = appendTime(b, x.StepDeadline)
	}
	b = append(b, `,"order":`...)
	b = strconv.AppendInt(b, int64(x.Order), 10)
	return append(b, '}')
}

func appendReported(b []byte, r StepReport) []byte {
	b = append(b, `,"reported":{`...)
	n := len(b)
	field := func(name string) {
		if len(b) > n {
			b = append(b, ',')
		}
		b = append(b, name...)
	}
	if r.Step != "" {
		field(`"step":`)
		b = appendString(b, r.Step)
	}
	if r.Percent != 0 {
		field(`"percent":`)
		b = appendFloat(b, r.Percent)
	}
	if r.Code != "" {
		field(`"code":`)
		b = appendString(b, r.Code)
	}
	if r.Reason != "" {
		field(`"reason":`)
		b = appendString(b, r.Reason)
	}
	return append(b, '}')
}

// appendFloat appends f as encoding/json does: plain decimal in [1e-6, 1e21), which a percentage always is, and
// encoding/json's own output otherwise. A value it cannot encode (NaN, ±Inf) is written as 0: the device API
// never reports one.
func appendFloat(b []byte, f float64) []byte {
	if a := math.Abs(f); a >= 1e-6 && a < 1e21 {
		return strconv.AppendFloat(b, f, 'f', -1, 64)
	}
	q, err := json.Marshal(f)
	if err != nil {
		return append(b, '0')
	}
	return append(b, q...)
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendString appends s as a JSON string. Plain ASCII is copied as is; anything else goes through encoding/json
// so escaping (HTML-safe, invalid UTF-8, U+2028) matches it exactly.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
