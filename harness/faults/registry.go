package faults

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// Definition registers a fault: its name, its layer, a one-line summary, and a constructor returning the fault
// with its default parameters, into which a Spec's params are decoded.
type Definition struct {
	Name    string
	Layer   Layer
	Summary string
	New     func() Fault
}

// Registry maps fault names to definitions. Build it with NewRegistry or Catalog; it is not safe to Register
// while other goroutines use it.
type Registry struct {
	defs map[string]Definition
}

// NewRegistry returns a registry of defs; a duplicate or malformed definition is an error.
func NewRegistry(defs ...Definition) (*Registry, error) {
	r := &Registry{defs: map[string]Definition{}}
	for _, d := range defs {
		if err := r.Register(d); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Register adds d; a name already registered is an error.
func (r *Registry) Register(d Definition) error {
	switch {
	case d.Name == "" || strings.TrimSpace(d.Name) != d.Name:
		return fmt.Errorf("register fault %q: bad name", d.Name)
	case d.New == nil:
		return fmt.Errorf("register fault %s: no constructor", d.Name)
	case d.Layer != LayerDevice && d.Layer != LayerLink && d.Layer != LayerCloud:
		return fmt.Errorf("register fault %s: layer %q", d.Name, d.Layer)
	}
	if _, dup := r.defs[d.Name]; dup {
		return fmt.Errorf("register fault %s: already registered", d.Name)
	}
	r.defs[d.Name] = d
	return nil
}

// Lookup returns the definition of name.
func (r *Registry) Lookup(name string) (Definition, bool) {
	d, ok := r.defs[name]
	return d, ok
}

// Definitions returns every definition, by layer (device, link, cloud) then name.
func (r *Registry) Definitions() []Definition {
	order := map[Layer]int{LayerDevice: 0, LayerLink: 1, LayerCloud: 2}
	out := make([]Definition, 0, len(r.defs))
	for _, d := range r.defs {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Layer != out[j].Layer {
			return order[out[i].Layer] < order[out[j].Layer]
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// New decodes s into a Handle, ready to arm in a world of the dialect dl: the params strictly into the fault's
// type (an unknown member is an error), then checks them with the selector against the dialect's steps.
func (r *Registry) New(s Spec, dl Dialect) (*Handle, error) {
	if err := dl.check(); err != nil {
		return nil, err
	}
	d, ok := r.defs[s.Fault]
	if !ok {
		names := make([]string, 0, len(r.defs))
		for n := range r.defs {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("fault %q: %w (have %s)", s.Fault, ErrUnknown, strings.Join(names, ", "))
	}
	f := d.New()
	if p := bytes.TrimSpace(s.Params); len(p) > 0 && !bytes.Equal(p, []byte("null")) {
		dec := json.NewDecoder(bytes.NewReader(p))
		dec.DisallowUnknownFields()
		if err := dec.Decode(f); err != nil {
			if strings.HasPrefix(err.Error(), "json: unknown field") {
				have := "none"
				if ps := Params(d); len(ps) > 0 {
					have = strings.Join(ps, ", ")
				}
				err = fmt.Errorf("%w (params of %s: %s)", err, s.Fault, have)
			}
			return nil, paramsError{fmt.Errorf("fault %s: params: %w", s.Fault, err)}
		}
	}
	if err := s.Target.check(dl); err != nil {
		return nil, targetError{fmt.Errorf("fault %s: %w", s.Fault, err)}
	}
	if d.Layer == LayerCloud && s.Target.selectsDevices() {
		if _, ok := f.(deviceTargeted); !ok {
			return nil, targetError{fmt.Errorf("fault %s: a cloud fault acts on an API or an object; it takes no device target", s.Fault)}
		}
	}
	if err := f.Check(s.Target, dl); err != nil {
		return nil, paramsError{fmt.Errorf("fault %s: %w", s.Fault, err)}
	}
	return &Handle{name: d.Name, def: d, fault: f, sel: s.Target, dialect: dl, state: StateDefined}, nil
}

// Params returns the names of the parameters of the fault d defines: the JSON members its params decode into.
func Params(d Definition) []string {
	t := reflect.TypeOf(d.New())
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	if t.Kind() != reflect.Struct {
		return nil
	}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// paramsError is a fault's params that do not decode or do not pass its Check; errors.Is(err, ErrParams).
type paramsError struct{ error }

func (e paramsError) Is(target error) bool { return target == ErrParams }
func (e paramsError) Unwrap() error        { return e.error }

// targetError is a target selector the fault cannot take; errors.Is(err, ErrTarget).
type targetError struct{ error }

func (e targetError) Is(target error) bool { return target == ErrTarget }
func (e targetError) Unwrap() error        { return e.error }

// deviceTargeted is a cloud fault that can be aimed at devices (the device API names the thing).
type deviceTargeted interface{ targetsDevices() }
