package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// BindError says why a request could not be turned into an input document (a body that is not a JSON object,
// say). Its message is meant for the caller.
type BindError struct{ Msg string }

// Error returns the message.
func (e *BindError) Error() string { return e.Msg }

// Match matches an escaped request path against the URI template and returns the unescaped label values.
func (u URI) Match(escapedPath string) (map[string]string, bool) {
	path := strings.TrimPrefix(escapedPath, "/")
	if len(u.Segments) == 0 {
		return map[string]string{}, path == ""
	}
	parts := strings.Split(path, "/")
	labels := map[string]string{}
	for i, seg := range u.Segments {
		if seg.Greedy {
			if i >= len(parts) {
				return nil, false
			}
			v, err := url.PathUnescape(strings.Join(parts[i:], "/"))
			if err != nil || v == "" {
				return nil, false
			}
			labels[seg.Label] = v
			return labels, true
		}
		if i >= len(parts) {
			return nil, false
		}
		v, err := url.PathUnescape(parts[i])
		if err != nil {
			return nil, false
		}
		if seg.Label == "" {
			if v != seg.Literal {
				return nil, false
			}
			continue
		}
		if v == "" {
			return nil, false
		}
		labels[seg.Label] = v
	}
	if len(parts) != len(u.Segments) {
		return nil, false
	}
	return labels, true
}

// MatchQuery reports whether the request query carries the literal parameters the template requires.
func (u URI) MatchQuery(q url.Values) bool {
	for k, v := range u.Query {
		got, ok := q[k]
		if !ok || (v != "" && (len(got) == 0 || got[0] != v)) {
			return false
		}
	}
	return true
}

// Bind builds the input document of op from a request, the way the protocol lays it out: for awsJson the body
// is the input; for restJson the body holds the unbound members (or is the payload member), and members bound to
// the URI, the query string and headers are taken from there, under their member names. labels are the URI
// label values from Match. Numbers decode as json.Number, ready for Validate. An empty body is an empty object.
// A payload member takes the whole body: decoded when it is a structure, the body's bytes ([]byte) when it is a
// blob, its text when it is a string.
func (m *Model) Bind(op *Operation, r *http.Request, labels map[string]string, body []byte) (map[string]any, error) {
	if op.Input == "" {
		return map[string]any{}, nil
	}
	in := m.Shapes[op.Input]
	if m.Metadata.Protocol == ProtocolJSON {
		return decodeObject(body)
	}
	doc := map[string]any{}
	if in.Payload != "" {
		mem := in.Lookup(in.Payload)
		ps := m.Shapes[mem.Shape]
		switch {
		case ps.Type == TypeStructure:
			obj, err := decodeObject(body)
			if err != nil {
				return nil, err
			}
			if len(body) > 0 {
				doc[mem.Name] = obj
			}
		case ps.Type == TypeBlob && len(body) > 0:
			// A blob payload is the body's bytes as sent, not base64 text: it stays []byte, which Validate
			// measures as is.
			doc[mem.Name] = slices.Clone(body)
		case len(body) > 0:
			doc[mem.Name] = string(body)
		}
	} else {
		obj, err := decodeObject(body)
		if err != nil {
			return nil, err
		}
		for _, mem := range in.Members {
			if mem.Location == "" {
				if v, ok := obj[mem.Name]; ok {
					doc[mem.Name] = v
				}
			}
		}
	}
	query := r.URL.Query()
	bound := map[string]bool{}
	for _, mem := range in.Members {
		if mem.Location == "querystring" && m.Shapes[mem.Shape].Type != TypeMap {
			bound[mem.LocationName] = true
		}
	}
	for _, mem := range in.Members {
		s := m.Shapes[mem.Shape]
		switch mem.Location {
		case "uri":
			if v, ok := labels[mem.LocationName]; ok {
				doc[mem.Name] = scalar(s, v)
			}
		case "querystring":
			switch s.Type {
			case TypeMap:
				params := map[string]any{}
				for k, vs := range query {
					if bound[k] || len(vs) == 0 {
						continue
					}
					if m.Shapes[s.Value.Shape].Type == TypeList {
						params[k] = strings2any(vs)
					} else {
						params[k] = vs[0]
					}
				}
				if len(params) > 0 {
					doc[mem.Name] = params
				}
			case TypeList:
				if vs, ok := query[mem.LocationName]; ok {
					el := m.Shapes[s.Member.Shape]
					list := make([]any, len(vs))
					for i, v := range vs {
						list[i] = scalar(el, v)
					}
					doc[mem.Name] = list
				}
			default:
				if vs, ok := query[mem.LocationName]; ok && len(vs) > 0 {
					doc[mem.Name] = scalar(s, vs[0])
				}
			}
		case "header":
			vs := r.Header.Values(mem.LocationName)
			if len(vs) == 0 {
				continue
			}
			if s.Type == TypeList {
				var list []any
				for _, v := range vs {
					for _, part := range strings.Split(v, ",") {
						list = append(list, scalar(m.Shapes[s.Member.Shape], strings.TrimSpace(part)))
					}
				}
				doc[mem.Name] = list
				continue
			}
			doc[mem.Name] = scalar(s, vs[0])
		case "headers":
			prefix := strings.ToLower(mem.LocationName)
			h := map[string]any{}
			for k, vs := range r.Header {
				if lk := strings.ToLower(k); strings.HasPrefix(lk, prefix) && len(vs) > 0 {
					h[lk[len(prefix):]] = vs[0]
				}
			}
			if len(h) > 0 {
				doc[mem.Name] = h
			}
		}
	}
	return doc, nil
}

// scalar converts a string from a URI label, query parameter or header to the JSON value of its shape's type.
// A string that does not convert stays a string, so Validate reports the type.
func scalar(s *Shape, v string) any {
	switch s.Type {
	case TypeInteger, TypeLong, TypeFloat, TypeDouble:
		var n json.Number
		if json.Unmarshal([]byte(v), &n) == nil {
			return n
		}
	case TypeBoolean:
		switch v {
		case "true":
			return true
		case "false":
			return false
		}
	}
	return v
}

func strings2any(vs []string) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = v
	}
	return out
}

// decodeObject decodes a JSON object body; an empty body is an empty object.
func decodeObject(body []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return map[string]any{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, &BindError{Msg: "request body is not valid JSON: " + err.Error()}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &BindError{Msg: "request body has data after the JSON object"}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, &BindError{Msg: fmt.Sprintf("request body must be a JSON object, not %s", jsonKind(v))}
	}
	return obj, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	default:
		return "a number"
	}
}
