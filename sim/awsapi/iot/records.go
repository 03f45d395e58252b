package iot

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/store"
)

// Store layout. Things and groups are keyed by name (names are unique in an account and region, and may hold
// neither '/' nor '\x00'), so iterating a bucket is name order; the shared records (awsapi.Records, buckets
// "iot.index", "iot.tags", …) find them by ARN and keep the groups' tags. A membership is written twice, once
// for each side, in one transaction.
const (
	bucketThings      = "iot.things"       // thing name → thingRec
	bucketGroups      = "iot.groups"       // group name → groupRec
	bucketGroupThings = "iot.group-things" // group/thing → present
	bucketThingGroups = "iot.thing-groups" // thing/group → present
	bucketChildren    = "iot.children"     // parent/child → present
)

// Resource kinds in the index.
const (
	kindThing = "thing"
	kindGroup = "thinggroup"
)

type thingRec struct {
	Name       string            `json:"name"`
	ARN        string            `json:"arn"`
	ID         string            `json:"id"`
	Attributes map[string]string `json:"attributes,omitempty"`
	Version    int64             `json:"version"`
}

type groupRec struct {
	Name        string            `json:"name"`
	ARN         string            `json:"arn"`
	ID          string            `json:"id"`
	Parent      string            `json:"parent,omitempty"`
	Description string            `json:"description,omitempty"`
	Attributes  map[string]string `json:"attributes,omitempty"`
	Version     int64             `json:"version"`
	CreatedAt   time.Time         `json:"createdAt"`
}

func (s *Service) loadThing(tx store.Tx, name string) (*thingRec, error) {
	return awsapi.LoadKey[thingRec](tx, bucketThings, name)
}

func (s *Service) loadGroup(tx store.Tx, name string) (*groupRec, error) {
	return awsapi.LoadKey[groupRec](tx, bucketGroups, name)
}

// thingByRef finds a thing by name or, when name is empty, by ARN.
func (s *Service) thingByRef(tx store.Tx, name, arn string) (*thingRec, error) {
	if name != "" {
		return s.loadThing(tx, name)
	}
	return awsapi.LoadByARN[thingRec](s.rec, tx, arn, kindThing, bucketThings)
}

// groupByRef finds a thing group by name or, when name is empty, by ARN.
func (s *Service) groupByRef(tx store.Tx, name, arn string) (*groupRec, error) {
	if name != "" {
		return s.loadGroup(tx, name)
	}
	return awsapi.LoadByARN[groupRec](s.rec, tx, arn, kindGroup, bucketGroups)
}

// groupByNameOrARN finds a thing group by a reference that is either.
func (s *Service) groupByNameOrARN(tx store.Tx, ref string) (*groupRec, error) {
	if strings.HasPrefix(ref, "arn:") {
		return s.groupByRef(tx, "", ref)
	}
	return s.groupByRef(tx, ref, "")
}

// keysAfter returns the second halves of the keys "<first>/<second>" of bucket.
func keysAfter(tx store.Tx, bucket, first string) ([]string, error) {
	var out []string
	if err := tx.ForEach(bucket, first+"/", func(k string, _ []byte) error {
		out = append(out, strings.TrimPrefix(k, first+"/"))
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read %s: %w", bucket, err)
	}
	return out, nil
}

// ancestry returns the group's ancestors from the root down to its parent.
func (s *Service) ancestry(tx store.Tx, g *groupRec) ([]*groupRec, error) {
	var chain []*groupRec
	for parent := g.Parent; parent != ""; {
		p, err := s.loadGroup(tx, parent)
		if err != nil {
			return nil, err
		}
		if p == nil {
			return nil, fmt.Errorf("thing group %s has a parent %s that is not stored", g.Name, parent)
		}
		chain = append([]*groupRec{p}, chain...)
		parent = p.Parent
	}
	return chain, nil
}

// root returns the name of the root group of g's hierarchy.
func (s *Service) root(tx store.Tx, g *groupRec) (string, error) {
	chain, err := s.ancestry(tx, g)
	if err != nil || len(chain) == 0 {
		return g.Name, err
	}
	return chain[0].Name, nil
}

// members returns the things of a group, sorted, with recursive those of its descendants too.
func (s *Service) members(tx store.Tx, group string, recursive bool) ([]string, error) {
	seen := map[string]bool{}
	queue := []string{group}
	for len(queue) > 0 {
		g := queue[0]
		queue = queue[1:]
		things, err := keysAfter(tx, bucketGroupThings, g)
		if err != nil {
			return nil, err
		}
		for _, t := range things {
			seen[t] = true
		}
		if recursive {
			children, err := keysAfter(tx, bucketChildren, g)
			if err != nil {
				return nil, err
			}
			queue = append(queue, children...)
		}
	}
	return slices.Sorted(maps.Keys(seen)), nil
}

// present is the value of the keys of the membership and children buckets: their keys say everything, and a
// value that is not empty reads back the same from every store.
var present = []byte("1")

// join and leave write or delete one membership, both sides.
func join(tx store.Tx, group, thing string) error {
	if err := tx.Put(bucketGroupThings, group+"/"+thing, present); err != nil {
		return fmt.Errorf("write membership: %w", err)
	}
	if err := tx.Put(bucketThingGroups, thing+"/"+group, present); err != nil {
		return fmt.Errorf("write membership: %w", err)
	}
	return nil
}

func leave(tx store.Tx, group, thing string) error {
	if err := tx.Delete(bucketGroupThings, group+"/"+thing); err != nil {
		return fmt.Errorf("delete membership: %w", err)
	}
	if err := tx.Delete(bucketThingGroups, thing+"/"+group); err != nil {
		return fmt.Errorf("delete membership: %w", err)
	}
	return nil
}
