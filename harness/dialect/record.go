package dialect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fleetlab/fleetlab/harness/faults"
)

// A field record is what a rollout in the field left behind, as a team collects it: a directory of the AWS
// CLI's JSON outputs (`--output json`), each file named after its command (describe-deployment-job.json), and
// optionally device logs under logs/. A dialect that can replay field failures reads its own records into a
// FieldRecord — the fleet, the policy, and per device what happened and the faults that reproduce it — and
// collects them from a service.

// Replayer is a Driver that reads and collects field records of its dialect.
type Replayer interface {
	// RecordFiles names the files of a record of the dialect, the required ones first: the commands whose
	// outputs they are, for the README and for the error that finds none of them.
	RecordFiles() []RecordFile
	// ReadRecord reads a record from dir. ok is false when dir holds none of the dialect's required files (it
	// is another dialect's record); err, a *RecordError, says which file and field could not be read.
	ReadRecord(dir fs.FS) (rec FieldRecord, ok bool, err error)
	// Collect writes the record of job, as the service at endpoint answers over rt, into dir: the same files a
	// team would collect with the CLI commands of RecordFiles.
	Collect(ctx context.Context, endpoint string, rt http.RoundTripper, job, dir string) error
}

// RecordFile is one file of a record and the AWS CLI command that writes it.
type RecordFile struct {
	// Name is the path in the record ("describe-deployment-job.json", "list-effective-deployments/<thing>.json").
	Name string
	// Command is the CLI command, with placeholders in capitals ("aws robomaker describe-deployment-job --job JOB").
	Command  string
	Optional bool
}

// FieldRecord is what a dialect read from a field record.
type FieldRecord struct {
	// Dialect is the driver's name.
	Dialect string
	// Job is the deployment as fleetlab can run it: the policy read from the record, a fixture bundle standing
	// in for the field's application.
	Job JobSpec
	// Status and FailureCode are the deployment's final ones in the record.
	Status, FailureCode string
	// Devices are the record's devices, in the order the deployment released them when the record tells.
	Devices []FieldDevice
	// Faults act on every device (a cloud fault: the object served with another ETag); a device's own are in
	// its FieldDevice.
	Faults []faults.Spec
	// Ordered says the order in which devices failed decided the outcome (a failure threshold that stopped the
	// rollout), so a replay must fail them in the same order.
	Ordered bool
	// Unmapped names everything in the record fleetlab read but cannot reproduce, each as "file: field: why".
	Unmapped []string
}

// FieldDevice is one device of a field record: how it ended and the faults that make it end so.
type FieldDevice struct {
	Name, Architecture string
	// Status, FailureCode, FailureReason and Step are as the record gives them (Step: the last step reached).
	Status, FailureCode, FailureReason, Step string
	// Started and Finished are the device's deployment times, zero when the record has none.
	Started, Finished time.Time
	// Stopped says the rollout ended the device's deployment (an abort, a cancel), not the device.
	Stopped bool
	// Faults reproduce the device's failure; their targets are filled in with the device when the scenario is
	// built.
	Faults []faults.Spec
}

// RecordError says which file of a record, and which field of it, could not be read.
type RecordError struct {
	File, Field string
	Err         error
}

func (e *RecordError) Error() string {
	switch {
	case e.File == "":
		return e.Err.Error()
	case e.Field == "":
		return fmt.Sprintf("%s: %v", e.File, e.Err)
	}
	return fmt.Sprintf("%s: %s: %v", e.File, e.Field, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }

// ReadJSON reads the JSON file name of a record into v, a pointer to a struct whose json tags name the members
// the dialect reads. It returns a note for each member of the file's object, and of the objects of its
// members' arrays and objects that v describes by a struct, that v has no field for: what fleetlab reads
// past. A file that is absent or not JSON of v's shape is a *RecordError naming it (and the field, when the
// decoder knows it); a missing file wraps fs.ErrNotExist.
func ReadJSON(dir fs.FS, name string, v any) (unknown []string, err error) {
	b, err := fs.ReadFile(dir, name)
	if err != nil {
		return nil, &RecordError{File: name, Err: err}
	}
	if err := json.Unmarshal(b, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, &RecordError{File: name, Field: te.Field, Err: fmt.Errorf("a JSON %s, where the CLI writes a %s", te.Value, jsonKind(te.Type))}
		}
		return nil, &RecordError{File: name, Err: fmt.Errorf("not the JSON the CLI writes: %w", err)}
	}
	var raw any
	_ = json.Unmarshal(b, &raw)
	for _, m := range unknownMembers(raw, reflect.TypeOf(v), "") {
		unknown = append(unknown, name+": "+m+": not read by fleetlab")
	}
	return unknown, nil
}

// unknownMembers lists the members of raw, a decoded JSON value, that t (a struct type, or a pointer, slice or
// map of one) has no json field for, as paths from at.
func unknownMembers(raw any, t reflect.Type, at string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		if arr, ok := raw.([]any); ok {
			for i, el := range arr {
				out = append(out, unknownMembers(el, t.Elem(), fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	case reflect.Map:
		if obj, ok := raw.(map[string]any); ok && t.Elem().Kind() != reflect.Interface {
			for _, k := range slices.Sorted(maps.Keys(obj)) {
				out = append(out, unknownMembers(obj[k], t.Elem(), join(at, k))...)
			}
		}
	case reflect.Struct:
		obj, ok := raw.(map[string]any)
		if !ok || t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) {
			return nil
		}
		fields := map[string]reflect.Type{}
		for i := range t.NumField() {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if tag == "-" || !f.IsExported() {
				continue
			}
			if tag == "" {
				tag = f.Name
			}
			fields[strings.ToLower(tag)] = f.Type
		}
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			ft, known := fields[strings.ToLower(k)]
			if !known {
				out = append(out, join(at, k))
				continue
			}
			out = append(out, unknownMembers(obj[k], ft, join(at, k))...)
		}
	}
	return out
}

// jsonKind names the JSON value a Go type is read from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "number"
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

func join(at, k string) string {
	if at == "" {
		return k
	}
	return at + "." + k
}

// Time is a timestamp in a CLI output: epoch seconds, as the wire and the CLI v1 give it, or ISO 8601 text,
// as the CLI v2 prints it by default. A value that is neither is kept in Bad, for the reader to report with
// the field it is in (Check).
type Time struct {
	time.Time
	Bad string
}

// UnmarshalJSON reads 1540834232.469 or "2018-10-29T17:30:32.469000+00:00".
func (t *Time) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		var text string
		if err := json.Unmarshal(b, &text); err != nil {
			return err
		}
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700", "2006-01-02T15:04:05.999999999"} {
			if v, err := time.Parse(layout, text); err == nil {
				t.Time = v.UTC()
				return nil
			}
		}
		t.Bad = s
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f > 1e11 {
		t.Bad = s
		return nil
	}
	sec, frac := math.Modf(f)
	t.Time = time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC()
	return nil
}

// Check returns a *RecordError naming file and field when the time could not be read.
func (t Time) Check(file, field string) error {
	if t.Bad == "" {
		return nil
	}
	return &RecordError{File: file, Field: field,
		Err: fmt.Errorf("time %s: want ISO 8601 (2018-10-29T17:30:32+00:00) or epoch seconds", t.Bad)}
}

// MarshalJSON writes the time as the CLI v2 does.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(t.UTC().Format("2006-01-02T15:04:05.000000-07:00"))
}

// CaptureAnswers wraps rt so that last returns the body of the last answer it carried: a collector calls the
// service through an SDK client over it and keeps the service's own JSON, which is what the CLI prints.
func CaptureAnswers(rt http.RoundTripper) (wrapped http.RoundTripper, last func() []byte) {
	c := &capture{base: rt}
	return c, func() []byte {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.last
	}
}

type capture struct {
	base http.RoundTripper
	mu   sync.Mutex
	last []byte
}

func (c *capture) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.last = b
	c.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

// WriteAnswer saves an answer's JSON body at path, indented as the CLI prints it, making its directory.
func WriteAnswer(path string, body []byte) error {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("%s: the service's answer is not JSON: %w", filepath.Base(path), err)
	}
	b, _ := json.MarshalIndent(v, "", "    ")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
