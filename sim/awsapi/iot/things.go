package iot

import (
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/store"
)

// attributePayload is the model's AttributePayload.
type attributePayload struct {
	Attributes map[string]string `json:"attributes"`
	Merge      bool              `json:"merge"`
}

// thingAttribute is the model's ThingAttribute, a thing as ListThings shows it.
type thingAttribute struct {
	ThingName  string            `json:"thingName"`
	ThingARN   string            `json:"thingArn"`
	Attributes map[string]string `json:"attributes"`
	Version    int64             `json:"version"`
}

// noThingTypes and noBillingGroups answer a reference to a thing type or billing group: the subset has none.
func noThingTypes(name string) error {
	return notFound("Thing type %s is not found", name)
}

func noBillingGroups(name string) error {
	return notFound("Billing group %s is not found", name)
}

func tooManyAttributes(max, n int) error {
	return invalidRequest("A thing can have at most %d attributes; the request gives it %d.", max, n)
}

func (s *Service) createThing(r *awsapi.Request) (any, error) {
	var in struct {
		ThingName        string            `json:"thingName"`
		ThingTypeName    string            `json:"thingTypeName"`
		BillingGroupName string            `json:"billingGroupName"`
		AttributePayload *attributePayload `json:"attributePayload"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	if in.ThingTypeName != "" {
		return nil, noThingTypes(in.ThingTypeName)
	}
	if in.BillingGroupName != "" {
		return nil, noBillingGroups(in.BillingGroupName)
	}
	var attrs map[string]string
	if in.AttributePayload != nil {
		attrs = in.AttributePayload.Attributes
	}
	if len(attrs) > maxThingAttributes {
		return nil, tooManyAttributes(maxThingAttributes, len(attrs))
	}
	type output struct {
		ThingName string `json:"thingName"`
		ThingARN  string `json:"thingArn"`
		ThingID   string `json:"thingId"`
	}
	var t *thingRec
	err := s.write(func(tx store.Tx, _ *[]awsapi.MembershipChange) error {
		old, err := s.loadThing(tx, in.ThingName)
		if err != nil {
			return err
		}
		if old != nil {
			// The same name and configuration again succeeds; another configuration is a conflict.
			if !maps.Equal(old.Attributes, attrs) {
				return alreadyExists(old.ID, old.ARN, "Thing %s already exists in account with different attributes",
					in.ThingName)
			}
			t = old
			return nil
		}
		t = &thingRec{Name: in.ThingName, ARN: s.rec.ARN("thing/" + in.ThingName), ID: s.ids.UUID(),
			Attributes: attrs, Version: 1}
		return s.rec.Insert(tx, bucketThings, kindThing, t.Name, t.ARN, t, nil)
	})
	if err != nil {
		return nil, err
	}
	return output{ThingName: t.Name, ThingARN: t.ARN, ThingID: t.ID}, nil
}

func (s *Service) describeThing(r *awsapi.Request) (any, error) {
	var in struct {
		ThingName string `json:"thingName"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	type output struct {
		DefaultClientID string            `json:"defaultClientId"`
		ThingName       string            `json:"thingName"`
		ThingID         string            `json:"thingId"`
		ThingARN        string            `json:"thingArn"`
		Attributes      map[string]string `json:"attributes"`
		Version         int64             `json:"version"`
	}
	var t *thingRec
	if err := s.store.View(func(tx store.Tx) error {
		var err error
		t, err = s.loadThing(tx, in.ThingName)
		return err
	}); err != nil {
		return nil, err
	}
	if t == nil {
		return nil, thingNotFound(in.ThingName)
	}
	return output{DefaultClientID: t.Name, ThingName: t.Name, ThingID: t.ID, ThingARN: t.ARN,
		Attributes: orEmpty(t.Attributes), Version: t.Version}, nil
}

func thingNotFound(name string) error {
	return notFound("Thing %s cannot be found.", name)
}

// orEmpty keeps a missing map an empty object on the wire, as AWS sends it.
func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func (s *Service) updateThing(r *awsapi.Request) (any, error) {
	var in struct {
		ThingName        string            `json:"thingName"`
		ThingTypeName    string            `json:"thingTypeName"`
		AttributePayload *attributePayload `json:"attributePayload"`
		ExpectedVersion  *int64            `json:"expectedVersion"`
		RemoveThingType  bool              `json:"removeThingType"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	if in.RemoveThingType && in.ThingTypeName != "" {
		return nil, invalidRequest("removeThingType and thingTypeName cannot both be given")
	}
	err := s.write(func(tx store.Tx, _ *[]awsapi.MembershipChange) error {
		t, err := s.loadThing(tx, in.ThingName)
		if err != nil {
			return err
		}
		if t == nil {
			return thingNotFound(in.ThingName)
		}
		if in.ExpectedVersion != nil && *in.ExpectedVersion != t.Version {
			return versionConflict("The version for thing %s does not match the expected version.", t.Name)
		}
		if in.ThingTypeName != "" {
			return noThingTypes(in.ThingTypeName)
		}
		if p := in.AttributePayload; p != nil {
			t.Attributes = mergeAttributes(t.Attributes, p)
		}
		if len(t.Attributes) > maxThingAttributes {
			return tooManyAttributes(maxThingAttributes, len(t.Attributes))
		}
		t.Version++
		return awsapi.PutJSON(tx, bucketThings, t.Name, t)
	})
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// mergeAttributes applies an attribute payload to attributes: with merge, the payload's attributes are added
// and those with an empty value removed; without, the payload's attributes replace them.
func mergeAttributes(attributes map[string]string, p *attributePayload) map[string]string {
	if !p.Merge {
		return maps.Clone(p.Attributes)
	}
	out := maps.Clone(attributes)
	if out == nil {
		out = map[string]string{}
	}
	for k, v := range p.Attributes {
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// deleteThing deletes a thing and its memberships. A thing that does not exist is deleted already: the
// operation succeeds, as its documentation says.
func (s *Service) deleteThing(r *awsapi.Request) (any, error) {
	var in struct {
		ThingName       string `json:"thingName"`
		ExpectedVersion *int64 `json:"expectedVersion"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	err := s.write(func(tx store.Tx, changes *[]awsapi.MembershipChange) error {
		t, err := s.loadThing(tx, in.ThingName)
		if err != nil || t == nil {
			return err
		}
		if in.ExpectedVersion != nil && *in.ExpectedVersion != t.Version {
			return versionConflict("The version for thing %s does not match the expected version.", t.Name)
		}
		groups, err := keysAfter(tx, bucketThingGroups, t.Name)
		if err != nil {
			return err
		}
		for _, name := range groups {
			g, err := s.loadGroup(tx, name)
			if err != nil {
				return err
			}
			if err := leave(tx, name, t.Name); err != nil {
				return err
			}
			if g != nil {
				if err := s.record(tx, changes, g, t, false); err != nil {
					return err
				}
			}
		}
		return s.rec.Remove(tx, bucketThings, t.Name, t.ARN)
	})
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// change is the membership change of t joining or leaving g.
func (s *Service) change(tx store.Tx, g *groupRec, t *thingRec, joined bool) (awsapi.MembershipChange, error) {
	chain, err := s.ancestry(tx, g)
	if err != nil {
		return awsapi.MembershipChange{}, err
	}
	c := awsapi.MembershipChange{Group: g.Name, GroupARN: g.ARN, Thing: t.Name, ThingARN: t.ARN, Joined: joined}
	for _, a := range chain {
		c.Ancestors = append(c.Ancestors, a.ARN)
	}
	return c, nil
}

// record appends the change of t joining or leaving g to changes.
func (s *Service) record(tx store.Tx, changes *[]awsapi.MembershipChange, g *groupRec, t *thingRec, joined bool) error {
	c, err := s.change(tx, g, t, joined)
	if err != nil {
		return err
	}
	*changes = append(*changes, c)
	return nil
}

func (s *Service) listThings(r *awsapi.Request) (any, error) {
	var in struct {
		NextToken      string `json:"nextToken"`
		MaxResults     int    `json:"maxResults"`
		AttributeName  string `json:"attributeName"`
		AttributeValue string `json:"attributeValue"`
		ThingTypeName  string `json:"thingTypeName"`
		UsePrefix      bool   `json:"usePrefixAttributeValue"`
		valueGiven     bool   // attributeValue was sent, possibly empty
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	_, in.valueGiven = r.Input["attributeValue"]
	if in.valueGiven && in.AttributeName == "" {
		return nil, invalidRequest("attributeValue requires attributeName")
	}
	match := func(t *thingRec) bool {
		if in.ThingTypeName != "" {
			return false // the subset has no thing types, so no thing has one
		}
		if in.AttributeName == "" {
			return true
		}
		v, ok := t.Attributes[in.AttributeName]
		switch {
		case !ok:
			return false
		case !in.valueGiven:
			return true
		case in.UsePrefix:
			return strings.HasPrefix(v, in.AttributeValue)
		default:
			return v == in.AttributeValue
		}
	}
	var things []thingAttribute
	if err := s.store.View(func(tx store.Tx) error {
		return awsapi.Each(tx, bucketThings, func(t *thingRec) error {
			if match(t) {
				things = append(things, thingAttribute{ThingName: t.Name, ThingARN: t.ARN,
					Attributes: orEmpty(t.Attributes), Version: t.Version})
			}
			return nil
		})
	}); err != nil {
		return nil, err
	}
	scope := fmt.Sprintf("ListThings\x00%s\x00%s\x00%t\x00%t\x00%s", in.AttributeName, in.AttributeValue,
		in.valueGiven, in.UsePrefix, in.ThingTypeName)
	page, next, err := page(things, func(t thingAttribute) string { return t.ThingName }, scope, in.NextToken,
		in.MaxResults)
	if err != nil {
		return nil, err
	}
	return struct {
		Things    []thingAttribute `json:"things"`
		NextToken string           `json:"nextToken,omitempty"`
	}{page, next}, nil
}

// page is awsapi.Page with the dialect's default page size and its error for a token it did not issue.
func page[T any](items []T, key func(T) string, scope, token string, limit int) ([]T, string, error) {
	if limit <= 0 {
		limit = defaultPage
	}
	out, next, err := awsapi.Page(items, key, scope, token, limit)
	if errors.Is(err, awsapi.ErrBadToken) {
		return nil, "", invalidRequest("The nextToken %q is not valid for this request.", token)
	}
	return out, next, err
}
