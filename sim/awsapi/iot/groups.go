package iot

import (
	"maps"
	"slices"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/store"
)

// groupNameAndARN is the model's GroupNameAndArn.
type groupNameAndARN struct {
	GroupName string `json:"groupName"`
	GroupARN  string `json:"groupArn"`
}

// thingGroupProperties is the model's ThingGroupProperties.
type thingGroupProperties struct {
	ThingGroupDescription string            `json:"thingGroupDescription,omitempty"`
	AttributePayload      *attributePayload `json:"attributePayload,omitempty"`
}

func groupNotFound(name string) error {
	return notFound("Thing group %s cannot be found.", name)
}

func (s *Service) createThingGroup(r *awsapi.Request) (any, error) {
	var in struct {
		ThingGroupName       string               `json:"thingGroupName"`
		ParentGroupName      string               `json:"parentGroupName"`
		ThingGroupProperties thingGroupProperties `json:"thingGroupProperties"`
		Tags                 []awsapi.TagPair     `json:"tags"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	var attrs map[string]string
	if p := in.ThingGroupProperties.AttributePayload; p != nil {
		attrs = p.Attributes
	}
	if len(attrs) > maxGroupAttributes {
		return nil, invalidRequest("A thing group can have at most %d attributes; the request gives it %d.",
			maxGroupAttributes, len(attrs))
	}
	tags := map[string]string{}
	for _, t := range in.Tags {
		tags[t.Key] = t.Value
	}
	if len(tags) > maxTags {
		return nil, invalidRequest("A resource can have at most %d tags; the request gives it %d.", maxTags, len(tags))
	}
	if in.ParentGroupName == in.ThingGroupName {
		return nil, invalidRequest("Thing group %s cannot be its own parent.", in.ThingGroupName)
	}
	type output struct {
		ThingGroupName string `json:"thingGroupName"`
		ThingGroupARN  string `json:"thingGroupArn"`
		ThingGroupID   string `json:"thingGroupId"`
	}
	var g *groupRec
	err := s.write(func(tx store.Tx, _ *[]awsapi.MembershipChange) error {
		old, err := s.loadGroup(tx, in.ThingGroupName)
		if err != nil {
			return err
		}
		if old != nil {
			// The same group again succeeds (its documentation); another one of that name is a conflict.
			if old.Parent != in.ParentGroupName || old.Description != in.ThingGroupProperties.ThingGroupDescription ||
				!maps.Equal(old.Attributes, attrs) {
				return alreadyExists(old.ID, old.ARN, "Thing group %s already exists with different properties",
					in.ThingGroupName)
			}
			g = old
			return nil
		}
		if in.ParentGroupName != "" {
			parent, err := s.loadGroup(tx, in.ParentGroupName)
			if err != nil {
				return err
			}
			// CreateThingGroup models no ResourceNotFoundException.
			if parent == nil {
				return invalidRequest("Parent thing group %s does not exist.", in.ParentGroupName)
			}
			chain, err := s.ancestry(tx, parent)
			if err != nil {
				return err
			}
			if len(chain)+2 > MaxGroupDepth {
				return invalidRequest("Thing group %s would be at depth %d; a hierarchy may be %d deep.",
					in.ThingGroupName, len(chain)+2, MaxGroupDepth)
			}
			if err := tx.Put(bucketChildren, parent.Name+"/"+in.ThingGroupName, present); err != nil {
				return err
			}
		}
		g = &groupRec{Name: in.ThingGroupName, ARN: s.rec.ARN("thinggroup/" + in.ThingGroupName), ID: s.ids.UUID(),
			Parent: in.ParentGroupName, Description: in.ThingGroupProperties.ThingGroupDescription,
			Attributes: attrs, Version: 1, CreatedAt: s.clock.Now()}
		return s.rec.Insert(tx, bucketGroups, kindGroup, g.Name, g.ARN, g, tags)
	})
	if err != nil {
		return nil, err
	}
	return output{ThingGroupName: g.Name, ThingGroupARN: g.ARN, ThingGroupID: g.ID}, nil
}

func (s *Service) describeThingGroup(r *awsapi.Request) (any, error) {
	var in struct {
		ThingGroupName string `json:"thingGroupName"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	type metadata struct {
		ParentGroupName         string              `json:"parentGroupName,omitempty"`
		RootToParentThingGroups []groupNameAndARN   `json:"rootToParentThingGroups"`
		CreationDate            awsapi.EpochSeconds `json:"creationDate"`
	}
	type output struct {
		ThingGroupName       string               `json:"thingGroupName"`
		ThingGroupID         string               `json:"thingGroupId"`
		ThingGroupARN        string               `json:"thingGroupArn"`
		Version              int64                `json:"version"`
		ThingGroupProperties thingGroupProperties `json:"thingGroupProperties"`
		ThingGroupMetadata   metadata             `json:"thingGroupMetadata"`
	}
	var out output
	err := s.store.View(func(tx store.Tx) error {
		g, err := s.loadGroup(tx, in.ThingGroupName)
		if err != nil {
			return err
		}
		if g == nil {
			return groupNotFound(in.ThingGroupName)
		}
		chain, err := s.ancestry(tx, g)
		if err != nil {
			return err
		}
		roots := make([]groupNameAndARN, 0, len(chain))
		for _, p := range chain {
			roots = append(roots, groupNameAndARN{GroupName: p.Name, GroupARN: p.ARN})
		}
		out = output{ThingGroupName: g.Name, ThingGroupID: g.ID, ThingGroupARN: g.ARN, Version: g.Version,
			ThingGroupProperties: thingGroupProperties{ThingGroupDescription: g.Description,
				AttributePayload: &attributePayload{Attributes: orEmpty(g.Attributes)}},
			ThingGroupMetadata: metadata{ParentGroupName: g.Parent, RootToParentThingGroups: roots,
				CreationDate: awsapi.EpochSeconds(g.CreatedAt)}}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// deleteThingGroup deletes a thing group and its memberships. A group that does not exist is deleted already
// (the operation models no ResourceNotFoundException); one with child groups is refused.
func (s *Service) deleteThingGroup(r *awsapi.Request) (any, error) {
	var in struct {
		ThingGroupName  string `json:"thingGroupName"`
		ExpectedVersion *int64 `json:"expectedVersion"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	err := s.write(func(tx store.Tx, changes *[]awsapi.MembershipChange) error {
		g, err := s.loadGroup(tx, in.ThingGroupName)
		if err != nil || g == nil {
			return err
		}
		if in.ExpectedVersion != nil && *in.ExpectedVersion != g.Version {
			return versionConflict("The version for thing group %s does not match the expected version.", g.Name)
		}
		children, err := keysAfter(tx, bucketChildren, g.Name)
		if err != nil {
			return err
		}
		if len(children) > 0 {
			return invalidRequest("Cannot delete thing group %s when there are still child groups attached to it.",
				g.Name)
		}
		things, err := keysAfter(tx, bucketGroupThings, g.Name)
		if err != nil {
			return err
		}
		for _, name := range things {
			t, err := s.loadThing(tx, name)
			if err != nil {
				return err
			}
			if err := leave(tx, g.Name, name); err != nil {
				return err
			}
			if t != nil {
				if err := s.record(tx, changes, g, t, false); err != nil {
					return err
				}
			}
		}
		if g.Parent != "" {
			if err := tx.Delete(bucketChildren, g.Parent+"/"+g.Name); err != nil {
				return err
			}
		}
		return s.rec.Remove(tx, bucketGroups, g.Name, g.ARN)
	})
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// membershipInput is the input of AddThingToThingGroup and RemoveThingFromThingGroup: each side by name or ARN.
type membershipInput struct {
	ThingGroupName string `json:"thingGroupName"`
	ThingGroupARN  string `json:"thingGroupArn"`
	ThingName      string `json:"thingName"`
	ThingARN       string `json:"thingArn"`
}

// resolve finds the group and the thing a membership input names.
func (s *Service) resolve(tx store.Tx, in membershipInput) (*groupRec, *thingRec, error) {
	if in.ThingGroupName == "" && in.ThingGroupARN == "" {
		return nil, nil, invalidRequest("Either thingGroupName or thingGroupArn is required.")
	}
	if in.ThingName == "" && in.ThingARN == "" {
		return nil, nil, invalidRequest("Either thingName or thingArn is required.")
	}
	g, err := s.groupByRef(tx, in.ThingGroupName, in.ThingGroupARN)
	if err != nil {
		return nil, nil, err
	}
	if g == nil || (in.ThingGroupName != "" && in.ThingGroupARN != "" && g.ARN != in.ThingGroupARN) {
		return nil, nil, groupNotFound(firstOf(in.ThingGroupName, in.ThingGroupARN))
	}
	t, err := s.thingByRef(tx, in.ThingName, in.ThingARN)
	if err != nil {
		return nil, nil, err
	}
	if t == nil || (in.ThingName != "" && in.ThingARN != "" && t.ARN != in.ThingARN) {
		return nil, nil, thingNotFound(firstOf(in.ThingName, in.ThingARN))
	}
	return g, t, nil
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// addThingToThingGroup adds a thing to a group: a thing may be in at most MaxGroupsPerThing groups, and in at
// most one group of a hierarchy. Adding a member again succeeds and changes nothing.
func (s *Service) addThingToThingGroup(r *awsapi.Request) (any, error) {
	var in membershipInput
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	err := s.write(func(tx store.Tx, changes *[]awsapi.MembershipChange) error {
		g, t, err := s.resolve(tx, in)
		if err != nil {
			return err
		}
		groups, err := keysAfter(tx, bucketThingGroups, t.Name)
		if err != nil {
			return err
		}
		if slices.Contains(groups, g.Name) {
			return nil
		}
		if len(groups) >= MaxGroupsPerThing {
			return invalidRequest("Thing %s is already in %d thing groups, the most a thing can be in.", t.Name,
				MaxGroupsPerThing)
		}
		root, err := s.root(tx, g)
		if err != nil {
			return err
		}
		for _, name := range groups {
			other, err := s.loadGroup(tx, name)
			if err != nil {
				return err
			}
			if other == nil {
				continue
			}
			otherRoot, err := s.root(tx, other)
			if err != nil {
				return err
			}
			if otherRoot == root {
				return invalidRequest("Thing %s is already in thing group %s of the same hierarchy; a thing "+
					"can be in only one group of a hierarchy.", t.Name, other.Name)
			}
		}
		if err := join(tx, g.Name, t.Name); err != nil {
			return err
		}
		return s.record(tx, changes, g, t, true)
	})
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// removeThingFromThingGroup removes a thing from a group; removing a thing that is not a member succeeds.
func (s *Service) removeThingFromThingGroup(r *awsapi.Request) (any, error) {
	var in membershipInput
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	err := s.write(func(tx store.Tx, changes *[]awsapi.MembershipChange) error {
		g, t, err := s.resolve(tx, in)
		if err != nil {
			return err
		}
		if _, err := tx.Get(bucketGroupThings, g.Name+"/"+t.Name); err != nil {
			return ignoreNotFound(err)
		}
		if err := leave(tx, g.Name, t.Name); err != nil {
			return err
		}
		return s.record(tx, changes, g, t, false)
	})
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (s *Service) listThingsInThingGroup(r *awsapi.Request) (any, error) {
	var in struct {
		ThingGroupName string `json:"thingGroupName"`
		Recursive      bool   `json:"recursive"`
		NextToken      string `json:"nextToken"`
		MaxResults     int    `json:"maxResults"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	var things []string
	err := s.store.View(func(tx store.Tx) error {
		g, err := s.loadGroup(tx, in.ThingGroupName)
		if err != nil {
			return err
		}
		if g == nil {
			return groupNotFound(in.ThingGroupName)
		}
		things, err = s.members(tx, g.Name, in.Recursive)
		return err
	})
	if err != nil {
		return nil, err
	}
	scope := "ListThingsInThingGroup\x00" + in.ThingGroupName
	if in.Recursive {
		scope += "\x00recursive"
	}
	out, next, err := page(things, func(t string) string { return t }, scope, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	return struct {
		Things    []string `json:"things"`
		NextToken string   `json:"nextToken,omitempty"`
	}{orNone(out), next}, nil
}

func (s *Service) listThingGroupsForThing(r *awsapi.Request) (any, error) {
	var in struct {
		ThingName  string `json:"thingName"`
		NextToken  string `json:"nextToken"`
		MaxResults int    `json:"maxResults"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	var groups []groupNameAndARN
	err := s.store.View(func(tx store.Tx) error {
		t, err := s.loadThing(tx, in.ThingName)
		if err != nil {
			return err
		}
		if t == nil {
			return thingNotFound(in.ThingName)
		}
		names, err := keysAfter(tx, bucketThingGroups, t.Name)
		if err != nil {
			return err
		}
		for _, name := range names {
			g, err := s.loadGroup(tx, name)
			if err != nil {
				return err
			}
			if g != nil {
				groups = append(groups, groupNameAndARN{GroupName: g.Name, GroupARN: g.ARN})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out, next, err := page(groups, func(g groupNameAndARN) string { return g.GroupName },
		"ListThingGroupsForThing\x00"+in.ThingName, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	return struct {
		ThingGroups []groupNameAndARN `json:"thingGroups"`
		NextToken   string            `json:"nextToken,omitempty"`
	}{orNone(out), next}, nil
}

// orNone keeps an empty listing an empty array on the wire.
func orNone[T any](items []T) []T {
	if items == nil {
		return []T{}
	}
	return items
}
