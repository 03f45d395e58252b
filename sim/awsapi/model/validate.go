package model

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ValidationError is the first constraint of the model a request broke. Its message has the form the AWS services
// use:
//
//	1 validation error detected: Value '' at 'fleet' failed to satisfy constraint: Member must have length
//	greater than or equal to 1
//
// Path names the member: top-level members by name, nested ones joined with '.', list elements as
// 'list.N.member' (N from 1), as the services write them.
type ValidationError struct {
	Path string
	// Value is the offending value as decoded from JSON; nil when the member is missing.
	Value any
	// Constraint is the broken constraint, e.g. "Member must not be null".
	Constraint string
}

// Error returns the message in the services' form.
func (e *ValidationError) Error() string {
	v := "null"
	if e.Value != nil {
		v = "'" + render(e.Value, 256) + "'"
	}
	return fmt.Sprintf("1 validation error detected: Value %s at '%s' failed to satisfy constraint: %s",
		v, e.Path, e.Constraint)
}

// ValidateInput checks an operation's input document (as built by Bind) against its input shape.
func (m *Model) ValidateInput(op string, input map[string]any) error {
	o := m.Operations[op]
	if o == nil {
		return fmt.Errorf("model: unknown operation %q", op)
	}
	if o.Input == "" {
		return nil
	}
	return m.Validate(o.Input, input)
}

// Validate checks a decoded JSON value (json.Number for numbers, as decoded with UseNumber) against the named
// shape and returns the first violation as a *ValidationError, or nil. Members are checked in model order;
// members the shape does not define are ignored, as the services ignore them. A JSON null counts as absent.
func (m *Model) Validate(shape string, value any) error {
	if v := m.check("", shape, value); v != nil {
		return v
	}
	return nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func (m *Model) check(path, shapeName string, v any) *ValidationError {
	s := m.Shapes[shapeName]
	if s == nil {
		return &ValidationError{Path: path, Value: v, Constraint: "Member has an unknown shape " + shapeName}
	}
	fail := func(format string, args ...any) *ValidationError {
		return &ValidationError{Path: path, Value: v, Constraint: fmt.Sprintf(format, args...)}
	}
	switch s.Type {
	case TypeStructure:
		obj, ok := v.(map[string]any)
		if !ok {
			return fail("Member must be a structure")
		}
		for _, mem := range s.Members {
			val := obj[mem.Name]
			if val == nil {
				if s.IsRequired(mem.Name) {
					return &ValidationError{Path: join(path, mem.Name), Constraint: "Member must not be null"}
				}
				continue
			}
			if e := m.check(join(path, mem.Name), mem.Shape, val); e != nil {
				return e
			}
		}
	case TypeList:
		arr, ok := v.([]any)
		if !ok {
			return fail("Member must be a list")
		}
		if e := length(s, len(arr), fail); e != nil {
			return e
		}
		for i, el := range arr {
			p := fmt.Sprintf("%s.%d.member", path, i+1)
			if el == nil {
				return &ValidationError{Path: p, Constraint: "Member must not be null"}
			}
			if e := m.check(p, s.Member.Shape, el); e != nil {
				return e
			}
		}
	case TypeMap:
		obj, ok := v.(map[string]any)
		if !ok {
			return fail("Member must be a map")
		}
		if e := length(s, len(obj), fail); e != nil {
			return e
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if e := m.check(path, s.Key.Shape, k); e != nil {
				return fail("Map keys must satisfy constraint: [%s]", e.Constraint)
			}
			if obj[k] == nil {
				return fail("Map value must satisfy constraint: [Member must not be null]")
			}
			if e := m.check(path, s.Value.Shape, obj[k]); e != nil {
				return fail("Map value must satisfy constraint: [%s]", e.Constraint)
			}
		}
	case TypeString:
		str, ok := v.(string)
		if !ok {
			return fail("Member must be a string")
		}
		if len(s.Enum) > 0 && !slices.Contains(s.Enum, str) {
			return fail("Member must satisfy enum value set: [%s]", strings.Join(s.Enum, ", "))
		}
		if e := length(s, utf8.RuneCountInString(str), fail); e != nil {
			return e
		}
		if s.Pattern != nil && !s.Pattern.MatchString(str) {
			return fail("Member must satisfy regular expression pattern: %s", s.Pattern)
		}
	case TypeInteger, TypeLong:
		n, ok := v.(json.Number)
		if !ok {
			return fail("Member must be a number")
		}
		i, err := strconv.ParseInt(n.String(), 10, 64)
		if err != nil {
			return fail("Member must be an integer")
		}
		if s.Type == TypeInteger && (i < math.MinInt32 || i > math.MaxInt32) {
			return fail("Member must be a 32-bit integer")
		}
		if e := valueRange(s, float64(i), fail); e != nil {
			return e
		}
	case TypeFloat, TypeDouble:
		n, ok := v.(json.Number)
		if !ok {
			return fail("Member must be a number")
		}
		f, err := n.Float64()
		if err != nil {
			return fail("Member must be a number")
		}
		if e := valueRange(s, f, fail); e != nil {
			return e
		}
	case TypeBoolean:
		if _, ok := v.(bool); !ok {
			return fail("Member must be a boolean")
		}
	case TypeTimestamp:
		switch t := v.(type) {
		case json.Number:
			if _, err := t.Float64(); err != nil {
				return fail("Member must be a timestamp")
			}
		case string:
			if _, err := ParseTimestamp(t); err != nil {
				return fail("Member must be a timestamp")
			}
		default:
			return fail("Member must be a timestamp")
		}
	case TypeBlob:
		// A blob is base64 text in a JSON body, or raw bytes when it is the payload (Bind).
		raw, ok := v.([]byte)
		if !ok {
			str, ok := v.(string)
			if !ok {
				return fail("Member must be base64-encoded binary data")
			}
			var err error
			if raw, err = base64.StdEncoding.DecodeString(str); err != nil {
				return fail("Member must be base64-encoded binary data")
			}
		}
		if e := length(s, len(raw), fail); e != nil {
			return e
		}
	}
	return nil
}

func length(s *Shape, n int, fail func(string, ...any) *ValidationError) *ValidationError {
	if s.Min != nil && float64(n) < *s.Min {
		return fail("Member must have length greater than or equal to %s", num(*s.Min))
	}
	if s.Max != nil && float64(n) > *s.Max {
		return fail("Member must have length less than or equal to %s", num(*s.Max))
	}
	return nil
}

func valueRange(s *Shape, f float64, fail func(string, ...any) *ValidationError) *ValidationError {
	if s.Min != nil && f < *s.Min {
		return fail("Member must have value greater than or equal to %s", num(*s.Min))
	}
	if s.Max != nil && f > *s.Max {
		return fail("Member must have value less than or equal to %s", num(*s.Max))
	}
	return nil
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// render writes a decoded JSON value the way the services quote values in validation messages (Java's toString:
// lists as [a, b], maps as {k=v}), cut to at most limit bytes.
func render(v any, limit int) string {
	var b strings.Builder
	var walk func(any)
	walk = func(v any) {
		if b.Len() > limit {
			return
		}
		switch t := v.(type) {
		case nil:
			b.WriteString("null")
		case string:
			b.WriteString(t)
		case []byte:
			b.Write(t)
		case json.Number:
			b.WriteString(t.String())
		case bool:
			b.WriteString(strconv.FormatBool(t))
		case []any:
			b.WriteByte('[')
			for i, el := range t {
				if i > 0 {
					b.WriteString(", ")
				}
				walk(el)
			}
			b.WriteByte(']')
		case map[string]any:
			keys := make([]string, 0, len(t))
			for k := range t {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			b.WriteByte('{')
			for i, k := range keys {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(k)
				b.WriteByte('=')
				walk(t[k])
			}
			b.WriteByte('}')
		default:
			fmt.Fprint(&b, t)
		}
	}
	walk(v)
	s := b.String()
	if len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

// ParseTimestamp reads a timestamp in any of the forms the AWS protocols send: epoch seconds (possibly
// fractional), ISO-8601 / RFC 3339 with or without fractional seconds, or an HTTP date.
func ParseTimestamp(s string) (time.Time, error) {
	if t, ok := parseEpoch(s); ok {
		return t, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", time.RFC1123, time.RFC1123Z} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("timestamp %q is not epoch seconds, ISO-8601 or an HTTP date", s)
}

// parseEpoch reads decimal epoch seconds exactly (no float rounding of the fraction); exponent forms, which the
// real Greengrass V2 service emits, go through float parsing.
func parseEpoch(s string) (time.Time, bool) {
	whole, frac, hasFrac := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(whole, 10, 64)
	if err == nil && (!hasFrac || isDigits(frac)) {
		frac = (frac + "000000000")[:9]
		ns, _ := strconv.ParseInt(frac, 10, 64)
		if strings.HasPrefix(whole, "-") && ns > 0 {
			ns = -ns
		}
		return time.Unix(sec, ns).UTC(), true
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return time.Time{}, false
	}
	ns := new(big.Rat).Mul(r, big.NewRat(1e9, 1))
	q := new(big.Int).Quo(ns.Num(), ns.Denom())
	if !q.IsInt64() {
		return time.Time{}, false
	}
	return time.Unix(0, q.Int64()).UTC(), true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
