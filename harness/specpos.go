package harness

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"
)

// A scenario file's errors say where in the file the problem is: "line 7, column 18: …". positions maps the
// paths of a JSON document's values (fleet.robots, faults[0].params, expect.robots.robot-0002) to where each
// begins, so that a check made on the decoded spec can point back into the file.
type positions struct {
	src []byte
	at  map[string]int // path → byte offset of the value
}

// where returns "line L, column C" for a byte offset (1-based; columns count characters).
func (p *positions) where(off int) string {
	off = min(max(off, 0), len(p.src))
	line := 1 + bytes.Count(p.src[:off], []byte{'\n'})
	start := bytes.LastIndexByte(p.src[:off], '\n') + 1
	return fmt.Sprintf("line %d, column %d", line, 1+utf8.RuneCount(p.src[start:off]))
}

// of returns the position of path, or of the nearest enclosing value the document has, "" when none.
func (p *positions) of(path string) string {
	if p == nil {
		return ""
	}
	for path != "" {
		if off, ok := p.at[path]; ok {
			return p.where(off)
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return ""
}

// positionedError is an error at a place of a scenario file.
type positionedError struct {
	where string
	err   error
}

func (e *positionedError) Error() string { return e.where + ": " + e.err.Error() }
func (e *positionedError) Unwrap() error { return e.err }

// place prefixes err with the position of path, when known.
func (p *positions) place(path string, err error) error {
	if w := p.of(path); w != "" {
		return &positionedError{w, err}
	}
	return err
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// walk records the position of every value of the JSON value b, which begins at byte base of the document and
// lies at path, and checks its members against t, the Go type it decodes into: a member t has no field for is
// an error at the member's name, listing the fields there are; a value a type's own UnmarshalJSON refuses is an
// error at the value. Values of the wrong JSON kind are left to the decoder, which reports them.
func (p *positions) walk(b []byte, base int, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) && t != reflect.TypeFor[json.RawMessage]() {
		if err := json.Unmarshal(b, reflect.New(t).Interface()); err != nil {
			var se *json.SyntaxError
			if !errors.As(err, &se) {
				return &positionedError{p.where(base), fmt.Errorf("%s: %w", path, err)}
			}
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		if len(b) == 0 || b[0] != '{' {
			return nil
		}
		var fields map[string]reflect.Type
		if t.Kind() == reflect.Struct {
			fields = jsonFields(t)
		}
		return members(b, func(key string, keyAt, valAt int, val []byte) error {
			child := key
			if path != "" {
				child = path + "." + key
			}
			p.at[child] = base + valAt
			ft := t
			if t.Kind() == reflect.Map {
				ft = t.Elem()
			} else if ft = fields[key]; ft == nil {
				where := "the scenario"
				if path != "" {
					where = path
				}
				have := "none"
				if len(fields) > 0 {
					have = strings.Join(slices.Sorted(maps.Keys(fields)), ", ")
				}
				return &positionedError{p.where(base + keyAt), fmt.Errorf("unknown field %q in %s (fields: %s)", key,
					where, have)}
			}
			return p.walk(val, base+valAt, ft, child)
		})
	case reflect.Slice, reflect.Array:
		if len(b) == 0 || b[0] != '[' || t.Elem().Kind() == reflect.Uint8 {
			return nil
		}
		return elements(b, func(i, valAt int, val []byte) error {
			child := fmt.Sprintf("%s[%d]", path, i)
			p.at[child] = base + valAt
			return p.walk(val, base+valAt, t.Elem(), child)
		})
	}
	return nil
}

// jsonFields returns the JSON member names of struct t with the types they decode into.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if ft := f.Type; name == "" && f.Anonymous && ft.Kind() == reflect.Struct {
			// An embedded struct's members are the outer object's, as encoding/json reads them (throttle's
			// HTTPError); the outer type's own members win.
			for n, t := range jsonFields(ft) {
				if _, own := out[n]; !own {
					out[n] = t
				}
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// members calls fn for each member of the JSON object b with the key, where the key and the value begin in b,
// and the value's bytes.
func members(b []byte, fn func(key string, keyAt, valAt int, val []byte) error) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil { // {
		return nil
	}
	for dec.More() {
		keyAt := skipSpace(b, int(dec.InputOffset()))
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		key, _ := tok.(string)
		valAt := skipSpace(b, int(dec.InputOffset()))
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil
		}
		if err := fn(key, keyAt, valAt, val); err != nil {
			return err
		}
	}
	return nil
}

// elements calls fn for each element of the JSON array b with its index, where it begins in b, and its bytes.
func elements(b []byte, fn func(i, valAt int, val []byte) error) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil { // [
		return nil
	}
	for i := 0; dec.More(); i++ {
		valAt := skipSpace(b, int(dec.InputOffset()))
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil
		}
		if err := fn(i, valAt, val); err != nil {
			return err
		}
	}
	return nil
}

// skipSpace returns the offset of the next token at or after off: past white space and the separators the
// decoder leaves before a key or a value.
func skipSpace(b []byte, off int) int {
	for off < len(b) {
		switch b[off] {
		case ' ', '\t', '\n', '\r', ',', ':':
			off++
		default:
			return off
		}
	}
	return off
}

// decodeError places an error of the JSON decoder: a syntax error or a value of the wrong kind.
func (p *positions) decodeError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return &positionedError{p.where(int(se.Offset)), fmt.Errorf("JSON syntax: %v", se)}
	case errors.As(err, &te):
		what := fmt.Errorf("a JSON %s where %s wants %s", te.Value, te.Field, kindName(te.Type))
		if te.Field == "" {
			what = fmt.Errorf("a JSON %s where %s belongs", te.Value, kindName(te.Type))
		}
		if w := p.of(te.Field); w != "" && te.Field != "" {
			return &positionedError{w, what}
		}
		return &positionedError{p.where(int(te.Offset)), what}
	}
	return err
}

// kindName says what JSON a Go type takes.
func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8,
		reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}
