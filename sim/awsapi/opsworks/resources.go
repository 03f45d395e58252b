package opsworks

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	owwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/opsworks"
	"github.com/fleetlab/fleetlab/sim/store"
)

// MaxCustomJSON is the largest CustomJson a stack, layer or deployment takes.
const MaxCustomJSON = 120 * 1024

// source is a Source as the model spells it.
type source struct {
	Type     string `json:"Type,omitempty"`
	URL      string `json:"Url,omitempty"`
	Revision string `json:"Revision,omitempty"`
}

type recipes struct {
	Setup     []string `json:"Setup,omitempty"`
	Configure []string `json:"Configure,omitempty"`
	Deploy    []string `json:"Deploy,omitempty"`
	Undeploy  []string `json:"Undeploy,omitempty"`
	Shutdown  []string `json:"Shutdown,omitempty"`
}

type stack struct {
	StackID                   string          `json:"StackId"`
	Name                      string          `json:"Name"`
	Arn                       string          `json:"Arn"`
	Region                    string          `json:"Region"`
	ServiceRoleArn            string          `json:"ServiceRoleArn"`
	DefaultInstanceProfileArn string          `json:"DefaultInstanceProfileArn"`
	DefaultOs                 string          `json:"DefaultOs,omitempty"`
	CustomJSON                string          `json:"CustomJson,omitempty"`
	UseCustomCookbooks        bool            `json:"UseCustomCookbooks"`
	CustomCookbooksSource     *source         `json:"CustomCookbooksSource,omitempty"`
	CreatedAt                 awsapi.DateTime `json:"CreatedAt"`
}

type layer struct {
	StackID       string          `json:"StackId"`
	LayerID       string          `json:"LayerId"`
	Arn           string          `json:"Arn"`
	Type          string          `json:"Type"`
	Name          string          `json:"Name"`
	Shortname     string          `json:"Shortname"`
	CustomJSON    string          `json:"CustomJson,omitempty"`
	CustomRecipes *recipes        `json:"CustomRecipes,omitempty"`
	CreatedAt     awsapi.DateTime `json:"CreatedAt"`
}

type envVar struct {
	Key    string `json:"Key"`
	Value  string `json:"Value"`
	Secure bool   `json:"Secure,omitempty"`
}

type app struct {
	AppID       string            `json:"AppId"`
	StackID     string            `json:"StackId"`
	Shortname   string            `json:"Shortname"`
	Name        string            `json:"Name"`
	Description string            `json:"Description,omitempty"`
	Type        string            `json:"Type"`
	AppSource   *source           `json:"AppSource,omitempty"`
	Environment []envVar          `json:"Environment,omitempty"`
	Attributes  map[string]string `json:"Attributes,omitempty"`
	CreatedAt   string            `json:"CreatedAt"`
}

type instance struct {
	InstanceID          string          `json:"InstanceId"`
	Arn                 string          `json:"Arn"`
	StackID             string          `json:"StackId"`
	LayerIDs            []string        `json:"LayerIds"`
	InstanceType        string          `json:"InstanceType,omitempty"`
	Hostname            string          `json:"Hostname"`
	Os                  string          `json:"Os,omitempty"`
	Status              string          `json:"Status"`
	InfrastructureClass string          `json:"InfrastructureClass"`
	RegisteredBy        string          `json:"RegisteredBy,omitempty"`
	PrivateIP           string          `json:"PrivateIp,omitempty"`
	PublicIP            string          `json:"PublicIp,omitempty"`
	CreatedAt           awsapi.DateTime `json:"CreatedAt"`
}

// Instance statuses the simulator uses.
const (
	statusOnline     = "online"
	statusStopped    = "stopped"
	statusRegistered = "registered"
)

func (s *Service) arn(resource string) string {
	return "arn:aws:opsworks:" + s.region + ":" + s.account + ":" + resource
}

func (s *Service) now() awsapi.DateTime {
	return awsapi.DateTime(s.clock.Now().UTC().Truncate(time.Second))
}

func load[T any](tx store.Tx, bucket, id, what string) (*T, error) {
	v, err := awsapi.LoadKey[T](tx, bucket, id)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, notFound("Unable to find %s with ID %s", what, id)
	}
	return v, nil
}

func all[T any](tx store.Tx, bucket string, keep func(*T) bool) ([]T, error) {
	var out []T
	err := awsapi.Each(tx, bucket, func(v *T) error {
		if keep(v) {
			out = append(out, *v)
		}
		return nil
	})
	return out, err
}

// children are the records of bucket that belong to the one named by in[key], a record of parentBucket that must
// exist (what names it in the error); of reports whether a record belongs to a parent id.
func children[P, T any](tx store.Tx, in map[string]any, key, parentBucket, what, bucket string, of func(*T, string) bool) ([]T, error) {
	id, _ := in[key].(string)
	if _, err := load[P](tx, parentBucket, id, what); err != nil {
		return nil, err
	}
	return all(tx, bucket, func(v *T) bool { return of(v, id) })
}

// loadEach loads the records ids of bucket in their order; the first one missing is not found.
func loadEach[T any](tx store.Tx, bucket string, ids []string, what string) ([]T, error) {
	var out []T
	for _, id := range ids {
		v, err := load[T](tx, bucket, id, what)
		if err != nil {
			return nil, err
		}
		out = append(out, *v)
	}
	return out, nil
}

// parseSource reads an s3 or archive source's object: s3://bucket/key or https://s3[.region].amazonaws.com/bucket/key.
func parseSource(member string, src *source) (owwire.Object, error) {
	switch src.Type {
	case "s3", "archive":
	case "git", "svn":
		return owwire.Object{}, validation("%s: %s sources are not served; use an s3 or archive source", member, src.Type)
	default:
		return owwire.Object{}, validation("%s: Type %q is not a source type", member, src.Type)
	}
	u := src.URL
	var rest string
	switch {
	case strings.HasPrefix(u, "s3://"):
		rest = strings.TrimPrefix(u, "s3://")
	case strings.HasPrefix(u, "https://s3.amazonaws.com/"):
		rest = strings.TrimPrefix(u, "https://s3.amazonaws.com/")
	case strings.HasPrefix(u, "https://s3.") && strings.Contains(u, ".amazonaws.com/"):
		_, rest, _ = strings.Cut(u, ".amazonaws.com/")
	default:
		return owwire.Object{}, validation("%s: Url %q is not an S3 URL (s3://bucket/key or https://s3.amazonaws.com/bucket/key)", member, u)
	}
	bucket, key, _ := strings.Cut(rest, "/")
	if bucket == "" || key == "" {
		return owwire.Object{}, validation("%s: Url %q names no object", member, u)
	}
	return owwire.Object{Bucket: bucket, Key: key}, nil
}

func checkCustomJSON(member, v string) error {
	if v == "" {
		return nil
	}
	if len(v) > MaxCustomJSON {
		return validation("%s is larger than 120 KB", member)
	}
	if !json.Valid([]byte(v)) {
		return validation("%s is not valid JSON", member)
	}
	return nil
}

func (s *Service) createStack(r *awsapi.Request) (any, error) {
	var in stack
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	for _, a := range []struct{ member, v string }{{"ServiceRoleArn", in.ServiceRoleArn},
		{"DefaultInstanceProfileArn", in.DefaultInstanceProfileArn}} {
		if _, err := awsapi.ParseARN(a.v); err != nil {
			return nil, validation("%s %q is not an ARN", a.member, a.v)
		}
	}
	if err := checkCustomJSON("CustomJson", in.CustomJSON); err != nil {
		return nil, err
	}
	if in.CustomCookbooksSource != nil {
		if _, err := parseSource("CustomCookbooksSource", in.CustomCookbooksSource); err != nil {
			return nil, err
		}
	}
	in.StackID = s.ids.UUID()
	in.Arn = s.arn("stack/" + in.StackID + "/")
	in.CreatedAt = s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.store.Update(func(tx store.Tx) error { return awsapi.PutJSON(tx, bucketStacks, in.StackID, in) }); err != nil {
		return nil, err
	}
	return map[string]any{"StackId": in.StackID}, nil
}

func strs(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func (s *Service) describeStacks(r *awsapi.Request) (any, error) {
	ids := strs(r.Input["StackIds"])
	var out []stack
	err := s.store.View(func(tx store.Tx) error {
		if len(ids) == 0 {
			var err error
			out, err = all(tx, bucketStacks, func(*stack) bool { return true })
			return err
		}
		for _, id := range ids {
			st, err := load[stack](tx, bucketStacks, id, "stack")
			if err != nil {
				return err
			}
			out = append(out, *st)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"Stacks": orEmpty(out)}, nil
}

func (s *Service) deleteStack(r *awsapi.Request) (any, error) {
	id, _ := r.Input["StackId"].(string)
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.store.Update(func(tx store.Tx) error {
		if _, err := load[stack](tx, bucketStacks, id, "stack"); err != nil {
			return err
		}
		inStack := func(sid string) bool { return sid == id }
		ls, _ := all(tx, bucketLayers, func(l *layer) bool { return inStack(l.StackID) })
		as, _ := all(tx, bucketApps, func(a *app) bool { return inStack(a.StackID) })
		is, _ := all(tx, bucketInstances, func(i *instance) bool { return inStack(i.StackID) })
		if len(ls)+len(as)+len(is) > 0 {
			return validation("Cannot delete stack %s: it still has %d instances, %d layers and %d apps", id,
				len(is), len(ls), len(as))
		}
		return tx.Delete(bucketStacks, id)
	})
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (s *Service) createLayer(r *awsapi.Request) (any, error) {
	var in layer
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	if err := checkCustomJSON("CustomJson", in.CustomJSON); err != nil {
		return nil, err
	}
	in.LayerID = s.ids.UUID()
	in.Arn = s.arn("layer/" + in.LayerID)
	in.CreatedAt = s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.store.Update(func(tx store.Tx) error {
		if _, err := load[stack](tx, bucketStacks, in.StackID, "stack"); err != nil {
			return err
		}
		same, err := all(tx, bucketLayers, func(l *layer) bool { return l.StackID == in.StackID && l.Shortname == in.Shortname })
		if err != nil {
			return err
		}
		if len(same) > 0 {
			return validation("There is already a layer with shortname %s in stack %s", in.Shortname, in.StackID)
		}
		return awsapi.PutJSON(tx, bucketLayers, in.LayerID, in)
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"LayerId": in.LayerID}, nil
}

// oneOf returns the one identifying parameter of a Describe call that accepts only one.
func oneOf(in map[string]any, op string, names ...string) (string, error) {
	var given []string
	for _, n := range names {
		switch v := in[n].(type) {
		case string:
			if v != "" {
				given = append(given, n)
			}
		case []any:
			if len(v) > 0 {
				given = append(given, n)
			}
		}
	}
	if len(given) > 1 {
		return "", validation("Please provide no more than one of %s", strings.Join(names, ", "))
	}
	if len(given) == 0 {
		return "", validation("Please provide one of %s", strings.Join(names, ", "))
	}
	return given[0], nil
}

func (s *Service) describeLayers(r *awsapi.Request) (any, error) {
	by, err := oneOf(r.Input, "DescribeLayers", "StackId", "LayerIds")
	if err != nil {
		return nil, err
	}
	var out []layer
	err = s.store.View(func(tx store.Tx) error {
		if by == "StackId" {
			out, err = children[stack](tx, r.Input, by, bucketStacks, "stack", bucketLayers,
				func(l *layer, id string) bool { return l.StackID == id })
			return err
		}
		out, err = loadEach[layer](tx, bucketLayers, strs(r.Input["LayerIds"]), "layer")
		return err
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"Layers": orEmpty(out)}, nil
}

func (s *Service) createApp(r *awsapi.Request) (any, error) {
	var in app
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	if in.AppSource != nil {
		if _, err := parseSource("AppSource", in.AppSource); err != nil {
			return nil, err
		}
	}
	if in.Shortname == "" {
		in.Shortname = strings.Map(func(c rune) rune {
			if c >= 'A' && c <= 'Z' {
				return c + 'a' - 'A'
			}
			if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') {
				return c
			}
			return '_'
		}, in.Name)
	}
	in.AppID = s.ids.UUID()
	in.CreatedAt = time.Time(s.now()).Format("2006-01-02T15:04:05+00:00")
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.store.Update(func(tx store.Tx) error {
		if _, err := load[stack](tx, bucketStacks, in.StackID, "stack"); err != nil {
			return err
		}
		return awsapi.PutJSON(tx, bucketApps, in.AppID, in)
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"AppId": in.AppID}, nil
}

func (s *Service) describeApps(r *awsapi.Request) (any, error) {
	by, err := oneOf(r.Input, "DescribeApps", "StackId", "AppIds")
	if err != nil {
		return nil, err
	}
	var out []app
	err = s.store.View(func(tx store.Tx) error {
		if by == "StackId" {
			out, err = children[stack](tx, r.Input, by, bucketStacks, "stack", bucketApps,
				func(a *app, id string) bool { return a.StackID == id })
			return err
		}
		out, err = loadEach[app](tx, bucketApps, strs(r.Input["AppIds"]), "app")
		return err
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"Apps": orEmpty(out)}, nil
}

// checkLayers checks that ids are layers of stack sid.
func checkLayers(tx store.Tx, sid string, ids []string) error {
	for _, id := range ids {
		l, err := load[layer](tx, bucketLayers, id, "layer")
		if err != nil {
			return err
		}
		if l.StackID != sid {
			return validation("Layer %s is not in stack %s", id, sid)
		}
	}
	return nil
}

func (s *Service) hostnameFree(tx store.Tx, sid, host string) error {
	same, err := all(tx, bucketInstances, func(i *instance) bool { return i.Hostname == host })
	if err != nil {
		return err
	}
	if len(same) > 0 {
		return validation("Hostname %s is already used by instance %s", host, same[0].InstanceID)
	}
	return nil
}

func (s *Service) createInstance(r *awsapi.Request) (any, error) {
	var in instance
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	in.InstanceID = s.ids.UUID()
	in.Arn = s.arn("instance/" + in.InstanceID)
	in.Status, in.InfrastructureClass, in.CreatedAt = statusStopped, "ec2", s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.store.Update(func(tx store.Tx) error {
		if _, err := load[stack](tx, bucketStacks, in.StackID, "stack"); err != nil {
			return err
		}
		if len(in.LayerIDs) == 0 {
			return validation("LayerIds must name at least one layer")
		}
		if err := checkLayers(tx, in.StackID, in.LayerIDs); err != nil {
			return err
		}
		if in.Hostname == "" {
			l, _ := load[layer](tx, bucketLayers, in.LayerIDs[0], "layer")
			n := 0
			_ = awsapi.Each(tx, bucketInstances, func(*instance) error { n++; return nil })
			in.Hostname = fmt.Sprintf("%s%d", l.Shortname, n+1)
		}
		if err := s.hostnameFree(tx, in.StackID, in.Hostname); err != nil {
			return err
		}
		return awsapi.PutJSON(tx, bucketInstances, in.InstanceID, in)
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"InstanceId": in.InstanceID}, nil
}

func (s *Service) setStatus(r *awsapi.Request, to string) (any, error) {
	id, _ := r.Input["InstanceId"].(string)
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.store.Update(func(tx store.Tx) error {
		in, err := load[instance](tx, bucketInstances, id, "instance")
		if err != nil {
			return err
		}
		if in.InfrastructureClass == "on-premises" {
			return validation("Instance %s is registered: it is started and stopped on its own machine", id)
		}
		in.Status = to
		return awsapi.PutJSON(tx, bucketInstances, id, in)
	})
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (s *Service) startInstance(r *awsapi.Request) (any, error) { return s.setStatus(r, statusOnline) }
func (s *Service) stopInstance(r *awsapi.Request) (any, error)  { return s.setStatus(r, statusStopped) }

func (s *Service) registerInstance(r *awsapi.Request) (any, error) {
	var in instance
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	if in.Hostname == "" {
		return nil, validation("Hostname is required: it is the name the instance's agent runs as")
	}
	in.InstanceID = s.ids.UUID()
	in.Arn = s.arn("instance/" + in.InstanceID)
	in.Status, in.InfrastructureClass, in.CreatedAt = statusOnline, "on-premises", s.now()
	in.RegisteredBy = "arn:aws:iam::" + s.account + ":user/fleetlab"
	in.LayerIDs = []string{}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.store.Update(func(tx store.Tx) error {
		if _, err := load[stack](tx, bucketStacks, in.StackID, "stack"); err != nil {
			return err
		}
		if err := s.hostnameFree(tx, in.StackID, in.Hostname); err != nil {
			return err
		}
		return awsapi.PutJSON(tx, bucketInstances, in.InstanceID, in)
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"InstanceId": in.InstanceID}, nil
}

func (s *Service) assignInstance(r *awsapi.Request) (any, error) {
	id, _ := r.Input["InstanceId"].(string)
	layers := strs(r.Input["LayerIds"])
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.store.Update(func(tx store.Tx) error {
		in, err := load[instance](tx, bucketInstances, id, "instance")
		if err != nil {
			return err
		}
		if in.InfrastructureClass != "on-premises" {
			return validation("Instance %s is not a registered instance", id)
		}
		if err := checkLayers(tx, in.StackID, layers); err != nil {
			return err
		}
		for _, l := range layers {
			if !slices.Contains(in.LayerIDs, l) {
				in.LayerIDs = append(in.LayerIDs, l)
			}
		}
		return awsapi.PutJSON(tx, bucketInstances, id, in)
	})
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (s *Service) describeInstances(r *awsapi.Request) (any, error) {
	by, err := oneOf(r.Input, "DescribeInstances", "StackId", "LayerId", "InstanceIds")
	if err != nil {
		return nil, err
	}
	var out []instance
	err = s.store.View(func(tx store.Tx) error {
		switch by {
		case "StackId":
			out, err = children[stack](tx, r.Input, by, bucketStacks, "stack", bucketInstances,
				func(i *instance, id string) bool { return i.StackID == id })
			return err
		case "LayerId":
			out, err = children[layer](tx, r.Input, by, bucketLayers, "layer", bucketInstances,
				func(i *instance, id string) bool { return slices.Contains(i.LayerIDs, id) })
			return err
		}
		out, err = loadEach[instance](tx, bucketInstances, strs(r.Input["InstanceIds"]), "instance")
		return err
	})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Hostname < out[j].Hostname })
	return map[string]any{"Instances": orEmpty(out)}, nil
}

func orEmpty[T any](l []T) []T {
	if l == nil {
		return []T{}
	}
	return l
}
