package awsapi

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/fleetlab/fleetlab/sim/awsapi/model"
)

// The dialects send timestamps in three forms (api-semantics §0.3). Each type below is a time.Time that encodes
// in one of them; all of them decode from any of the forms. Use them with `json:",omitzero"` for optional members.

// EpochSeconds is a timestamp sent as epoch seconds in a JSON number with millisecond precision, e.g.
// 1551218369.123 (RoboMaker, Greengrass V2).
type EpochSeconds time.Time

// ISO8601 is a timestamp sent as an ISO-8601 string in UTC with milliseconds, e.g. "2019-06-18T17:04:44.761Z"
// (AppConfig, Greengrass V1).
type ISO8601 time.Time

// DateTime is a timestamp sent as an ISO-8601 string without fractions and with a numeric offset, e.g.
// "2013-07-25T18:57:49+00:00" (OpsWorks).
type DateTime time.Time

// Time returns t as a time.Time.
func (t EpochSeconds) Time() time.Time { return time.Time(t) }

// IsZero reports whether t is the zero time, so omitzero leaves it out.
func (t EpochSeconds) IsZero() bool { return time.Time(t).IsZero() }

// MarshalJSON writes epoch seconds with up to three decimals.
func (t EpochSeconds) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	return []byte(strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64)), nil
}

// UnmarshalJSON reads a number or a string in any timestamp form.
func (t *EpochSeconds) UnmarshalJSON(b []byte) error { return decodeTime(b, (*time.Time)(t)) }

// Time returns t as a time.Time.
func (t ISO8601) Time() time.Time { return time.Time(t) }

// IsZero reports whether t is the zero time.
func (t ISO8601) IsZero() bool { return time.Time(t).IsZero() }

// MarshalJSON writes "2006-01-02T15:04:05.000Z".
func (t ISO8601) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Time(t).UTC().Format("2006-01-02T15:04:05.000Z"))
}

// UnmarshalJSON reads a number or a string in any timestamp form.
func (t *ISO8601) UnmarshalJSON(b []byte) error { return decodeTime(b, (*time.Time)(t)) }

// Time returns t as a time.Time.
func (t DateTime) Time() time.Time { return time.Time(t) }

// IsZero reports whether t is the zero time.
func (t DateTime) IsZero() bool { return time.Time(t).IsZero() }

// MarshalJSON writes "2006-01-02T15:04:05+00:00".
func (t DateTime) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Time(t).UTC().Format("2006-01-02T15:04:05+00:00"))
}

// UnmarshalJSON reads a number or a string in any timestamp form.
func (t *DateTime) UnmarshalJSON(b []byte) error { return decodeTime(b, (*time.Time)(t)) }

func decodeTime(b []byte, t *time.Time) error {
	if string(b) == "null" {
		*t = time.Time{}
		return nil
	}
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	v, err := model.ParseTimestamp(s)
	if err != nil {
		return fmt.Errorf("decode timestamp: %w", err)
	}
	*t = v
	return nil
}
