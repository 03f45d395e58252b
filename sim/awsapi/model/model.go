// Package model reads botocore service models (service-2.json) and checks requests against them: the HTTP binding
// of each operation (method, URI, success status, where each input member travels) and every constraint the model
// puts on an input shape (required members, lengths, ranges, patterns, enums, JSON types).
//
// A dialect embeds its service's model, loads it once with Load and hands it to the wire layer, which routes,
// binds and validates from it; so "every constraint of the model" holds for every operation without per-operation
// code.
package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Protocols of a model's metadata.protocol.
const (
	ProtocolRestJSON = "rest-json" // restJson1: operations routed by method and URI
	ProtocolJSON     = "json"      // awsJson1_1: POST / routed by X-Amz-Target
)

// Model is a loaded service model.
type Model struct {
	Metadata   Metadata
	Operations map[string]*Operation
	Shapes     map[string]*Shape
}

// Metadata is the model's metadata block.
type Metadata struct {
	APIVersion     string `json:"apiVersion"`
	EndpointPrefix string `json:"endpointPrefix"`
	JSONVersion    string `json:"jsonVersion"`
	Protocol       string `json:"protocol"`
	ServiceID      string `json:"serviceId"`
	SigningName    string `json:"signingName"`
	TargetPrefix   string `json:"targetPrefix"`
}

// Signing returns the SigV4 signing name: signingName, or endpointPrefix when the model has none.
func (m Metadata) Signing() string {
	if m.SigningName != "" {
		return m.SigningName
	}
	return m.EndpointPrefix
}

// Operation is one operation of the model.
type Operation struct {
	Name       string
	HTTP       HTTP
	Input      string // input shape name; empty when the operation takes none
	Output     string // output shape name
	Errors     []string
	Deprecated bool
}

// HTTP is an operation's HTTP binding.
type HTTP struct {
	Method       string `json:"method"`
	RequestURI   string `json:"requestUri"`
	ResponseCode int    `json:"responseCode"`
}

// Status returns the success status: responseCode, or 200 when the model does not give one.
func (h HTTP) Status() int {
	if h.ResponseCode == 0 {
		return 200
	}
	return h.ResponseCode
}

// Shape types.
const (
	TypeStructure = "structure"
	TypeList      = "list"
	TypeMap       = "map"
	TypeString    = "string"
	TypeInteger   = "integer"
	TypeLong      = "long"
	TypeFloat     = "float"
	TypeDouble    = "double"
	TypeBoolean   = "boolean"
	TypeTimestamp = "timestamp"
	TypeBlob      = "blob"
)

// Shape is one shape of the model. Min and Max are lengths for strings, blobs, lists and maps, and values for
// numbers; nil means no bound. A dialect may adjust a shape after Load (say, to follow the documented behaviour
// where the model is stricter) before the model is in use; a Model is read-only afterwards.
type Shape struct {
	Name      string
	Type      string
	Members   []*Member // structure members in model order
	Required  []string
	Member    *Ref // list element
	Key       *Ref // map key
	Value     *Ref // map value
	Min       *float64
	Max       *float64
	Enum      []string
	Pattern   *Pattern
	Payload   string // structure: the member bound to the whole HTTP body
	Exception bool
	// ErrorStatus is the HTTP status of an exception shape (0 when the model gives none).
	ErrorStatus int
	byName      map[string]*Member
}

// Ref points at a shape.
type Ref struct {
	Shape string `json:"shape"`
}

// Member is a structure member.
type Member struct {
	Name string
	// Shape names the member's shape.
	Shape string
	// Location is where the member travels on the wire: "" (the JSON body), "uri", "querystring", "header",
	// "headers" (a map of prefixed headers) or "statusCode".
	Location string
	// LocationName is the URI label, query parameter or header name ("" for body members).
	LocationName     string
	IdempotencyToken bool
}

// Lookup returns the member named name, or nil.
func (s *Shape) Lookup(name string) *Member { return s.byName[name] }

// IsRequired reports whether name is a required member.
func (s *Shape) IsRequired(name string) bool {
	for _, r := range s.Required {
		if r == name {
			return true
		}
	}
	return false
}

// Operation returns the operation named name, or nil.
func (m *Model) Operation(name string) *Operation { return m.Operations[name] }

// Shape returns the shape named name, or nil.
func (m *Model) Shape(name string) *Shape { return m.Shapes[name] }

// OperationNames returns the operation names in sorted order.
func (m *Model) OperationNames() []string {
	names := make([]string, 0, len(m.Operations))
	for n := range m.Operations {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Load parses a botocore service model. Every pattern is translated to Go's regexp syntax and compiled here, so
// a pattern Go cannot take is an error at load time, never at request time.
func Load(data []byte) (*Model, error) {
	var raw struct {
		Metadata   Metadata `json:"metadata"`
		Operations map[string]struct {
			Name       string `json:"name"`
			HTTP       HTTP   `json:"http"`
			Input      *Ref   `json:"input"`
			Output     *Ref   `json:"output"`
			Errors     []Ref  `json:"errors"`
			Deprecated bool   `json:"deprecated"`
		} `json:"operations"`
		Shapes map[string]json.RawMessage `json:"shapes"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("parse model: %w", err)
	}
	m := &Model{Metadata: raw.Metadata, Operations: map[string]*Operation{}, Shapes: map[string]*Shape{}}
	for name, body := range raw.Shapes {
		s, err := parseShape(name, body)
		if err != nil {
			return nil, fmt.Errorf("shape %s: %w", name, err)
		}
		m.Shapes[name] = s
	}
	for name, o := range raw.Operations {
		op := &Operation{Name: name, HTTP: o.HTTP, Deprecated: o.Deprecated}
		if o.Input != nil {
			op.Input = o.Input.Shape
		}
		if o.Output != nil {
			op.Output = o.Output.Shape
		}
		for _, e := range o.Errors {
			op.Errors = append(op.Errors, e.Shape)
		}
		m.Operations[name] = op
	}
	if err := m.resolve(); err != nil {
		return nil, err
	}
	return m, nil
}

// resolve verifies that every shape reference resolves.
func (m *Model) resolve() error {
	ref := func(from, to string) error {
		if _, ok := m.Shapes[to]; !ok {
			return fmt.Errorf("%s refers to unknown shape %q", from, to)
		}
		return nil
	}
	for _, s := range m.Shapes {
		for _, mem := range s.Members {
			if err := ref(s.Name+"."+mem.Name, mem.Shape); err != nil {
				return err
			}
		}
		for _, r := range []*Ref{s.Member, s.Key, s.Value} {
			if r != nil {
				if err := ref(s.Name, r.Shape); err != nil {
					return err
				}
			}
		}
	}
	for _, op := range m.Operations {
		for _, n := range append([]string{op.Input, op.Output}, op.Errors...) {
			if n != "" {
				if err := ref(op.Name, n); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func parseShape(name string, body json.RawMessage) (*Shape, error) {
	var raw struct {
		Type     string   `json:"type"`
		Required []string `json:"required"`
		Member   *Ref     `json:"member"`
		Key      *Ref     `json:"key"`
		Value    *Ref     `json:"value"`
		Min      *float64 `json:"min"`
		Max      *float64 `json:"max"`
		Enum     []string `json:"enum"`
		Pattern  *string  `json:"pattern"`
		Payload  string   `json:"payload"`
		Error    *struct {
			HTTPStatusCode int `json:"httpStatusCode"`
		} `json:"error"`
		Exception bool            `json:"exception"`
		Members   json.RawMessage `json:"members"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, err
	}
	s := &Shape{
		Name: name, Type: raw.Type, Required: raw.Required, Member: raw.Member, Key: raw.Key, Value: raw.Value,
		Min: raw.Min, Max: raw.Max, Enum: raw.Enum, Payload: raw.Payload, Exception: raw.Exception,
		byName: map[string]*Member{},
	}
	if raw.Error != nil {
		s.ErrorStatus = raw.Error.HTTPStatusCode
	}
	if raw.Pattern != nil {
		p, err := CompilePattern(*raw.Pattern)
		if err != nil {
			return nil, err
		}
		s.Pattern = p
	}
	if len(raw.Members) > 0 {
		members, err := orderedMembers(raw.Members)
		if err != nil {
			return nil, fmt.Errorf("members: %w", err)
		}
		s.Members = members
		for _, mem := range members {
			s.byName[mem.Name] = mem
		}
	}
	return s, nil
}

// orderedMembers decodes a members object keeping the model's order, so validation reports the first violation
// in the same order every time.
func orderedMembers(data json.RawMessage) ([]*Member, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("members is not an object")
	}
	var out []*Member
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, _ := t.(string)
		var raw struct {
			Shape            string `json:"shape"`
			Location         string `json:"location"`
			LocationName     string `json:"locationName"`
			IdempotencyToken bool   `json:"idempotencyToken"`
		}
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("member %s: %w", name, err)
		}
		out = append(out, &Member{Name: name, Shape: raw.Shape, Location: raw.Location,
			LocationName: raw.LocationName, IdempotencyToken: raw.IdempotencyToken})
	}
	return out, nil
}

// URI is an operation's request URI split into its path template and the literal query it requires.
type URI struct {
	Segments []Segment
	Query    map[string]string // literal query parameters of the template ("/{Bucket}?acl" → acl: "")
}

// Segment is one path segment of a URI template.
type Segment struct {
	Literal string // the literal text, when Label is empty
	Label   string // the label name of {Label} or {Label+}
	Greedy  bool   // {Label+}: matches one or more segments
}

// ParseURI parses a requestUri template.
func ParseURI(template string) (URI, error) {
	path, query, _ := strings.Cut(template, "?")
	u := URI{Query: map[string]string{}}
	if query != "" {
		for _, kv := range strings.Split(query, "&") {
			k, v, _ := strings.Cut(kv, "=")
			u.Query[k] = v
		}
	}
	if !strings.HasPrefix(path, "/") {
		return URI{}, fmt.Errorf("uri %q does not start with /", template)
	}
	if path == "/" {
		return u, nil
	}
	for i, seg := range strings.Split(path[1:], "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			label := seg[1 : len(seg)-1]
			greedy := strings.HasSuffix(label, "+")
			label = strings.TrimSuffix(label, "+")
			if label == "" {
				return URI{}, fmt.Errorf("uri %q: empty label", template)
			}
			if greedy && i != len(strings.Split(path[1:], "/"))-1 {
				return URI{}, fmt.Errorf("uri %q: greedy label %s is not last", template, label)
			}
			u.Segments = append(u.Segments, Segment{Label: label, Greedy: greedy})
			continue
		}
		u.Segments = append(u.Segments, Segment{Literal: seg})
	}
	return u, nil
}

// Literals counts the literal segments; a route with more of them is more specific.
func (u URI) Literals() int {
	n := 0
	for _, s := range u.Segments {
		if s.Label == "" {
			n++
		}
	}
	return n
}
