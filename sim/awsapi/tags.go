package awsapi

import (
	"fmt"
	"maps"
	"slices"

	"github.com/fleetlab/fleetlab/sim/store"
)

// Tagging serves the tags API of the restJson dialects (TagResource, UntagResource, ListTagsForResource) over a
// dialect's Records, on the paths its model gives them: most share /tags/{resourceArn}, and the handler routes a
// request on that path to the dialect whose SigV4 scope, or whose ARN service, it names; IoT has /tags and
// /untag, and its tags travel as a list of pairs (Pairs). The tags are the dialect's.
type Tagging struct {
	// Records keep the tags; Store is where.
	Records Records
	Store   store.Store
	// Taggable returns nil when arn names a resource of the dialect that may carry tags, else the dialect's
	// not-found error. Required.
	Taggable func(tx store.Tx, arn string) error
	// Invalid is the dialect's validation error, for a request that would give a resource more than MaxTags.
	// Required.
	Invalid func(msg string) *Error
	// MaxTags is the most tags a resource may carry (default 50, the TagMap length limit of the models).
	MaxTags int
	// Members are the input and output member names as the dialect's model spells them (default resourceArn,
	// tags, tagKeys).
	Members TagMembers
	// Pairs means the tags travel as a list of {"Key": k, "Value": v} (IoT's TagList), not as a map.
	Pairs bool
	// TooMany is the error for a request that would give a resource more than MaxTags (default: Invalid).
	TooMany func(msg string) *Error
}

// TagMembers name the members of the tags API in a dialect's model.
type TagMembers struct {
	ARN, Tags, TagKeys string
}

// Operations returns TagResource, UntagResource and ListTagsForResource, for Handler.Register.
func (t Tagging) Operations() map[string]Operation {
	if t.MaxTags <= 0 {
		t.MaxTags = 50
	}
	if t.TooMany == nil {
		t.TooMany = t.Invalid
	}
	if t.Members == (TagMembers{}) {
		t.Members = TagMembers{ARN: "resourceArn", Tags: "tags", TagKeys: "tagKeys"}
	}
	return map[string]Operation{
		"TagResource":         {Handle: t.tag},
		"UntagResource":       {Handle: t.untag},
		"ListTagsForResource": {Handle: t.list},
	}
}

func (t Tagging) tag(r *Request) (any, error) {
	add := t.inputTags(r.Input[t.Members.Tags])
	return t.edit(r, func(tags map[string]string) error {
		for k, v := range add {
			tags[k] = v
		}
		if len(tags) > t.MaxTags {
			return t.TooMany(fmt.Sprintf("A resource can have at most %d tags; this request would give it %d.",
				t.MaxTags, len(tags)))
		}
		return nil
	})
}

func (t Tagging) untag(r *Request) (any, error) {
	keys, _ := r.Input[t.Members.TagKeys].([]any)
	return t.edit(r, func(tags map[string]string) error {
		for _, k := range keys {
			if k, ok := k.(string); ok {
				delete(tags, k)
			}
		}
		return nil
	})
}

// edit changes a taggable resource's tags with fn, in one transaction; an error from fn stores nothing.
func (t Tagging) edit(r *Request, fn func(tags map[string]string) error) (any, error) {
	arn, _ := r.Input[t.Members.ARN].(string)
	err := t.Store.Batch(func(tx store.Tx) error {
		if err := t.Taggable(tx, arn); err != nil {
			return err
		}
		tags, err := t.Records.Tags(tx, arn)
		if err != nil {
			return err
		}
		if err := fn(tags); err != nil {
			return err
		}
		return t.Records.PutTags(tx, arn, tags)
	})
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (t Tagging) list(r *Request) (any, error) {
	arn, _ := r.Input[t.Members.ARN].(string)
	var tags map[string]string
	err := t.Store.View(func(tx store.Tx) error {
		if err := t.Taggable(tx, arn); err != nil {
			return err
		}
		var err error
		tags, err = t.Records.Tags(tx, arn)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !t.Pairs {
		return map[string]map[string]string{t.Members.Tags: tags}, nil
	}
	return map[string][]TagPair{t.Members.Tags: tagPairs(tags)}, nil
}

// TagPair is a tag as a list of tags carries it (IoT's Tag shape).
type TagPair struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// tagPairs returns tags as a list sorted by key.
func tagPairs(tags map[string]string) []TagPair {
	out := make([]TagPair, 0, len(tags))
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		out = append(out, TagPair{Key: k, Value: tags[k]})
	}
	return out
}

// inputTags reads the validated tags member of a request, a map or (Pairs) a list of pairs; a later pair of a
// key replaces an earlier one.
func (t Tagging) inputTags(v any) map[string]string {
	tags := map[string]string{}
	if !t.Pairs {
		m, _ := v.(map[string]any)
		for k, v := range m {
			tags[k], _ = v.(string)
		}
		return tags
	}
	list, _ := v.([]any)
	for _, p := range list {
		p, _ := p.(map[string]any)
		k, _ := p["Key"].(string)
		tags[k], _ = p["Value"].(string)
	}
	return tags
}
