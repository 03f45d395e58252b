package robomaker

import (
	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/store"
)

// maxTags is the most tags a resource may carry (TagMap's length limit).
const maxTags = 50

type tagsInput struct {
	ResourceARN string            `json:"resourceArn"`
	Tags        map[string]string `json:"tags"`
	TagKeys     []string          `json:"tagKeys"`
}

// taggable checks that arn names an existing fleet, robot, application or live deployment job.
func (s *Service) taggable(tx store.Tx, arn string) error {
	kind, key, found, err := s.findByARN(tx, arn)
	if err != nil {
		return err
	}
	if found && kind == kindJob {
		j, err := loadJobKey(tx, key)
		if err != nil {
			return err
		}
		found = j != nil && !j.expired(s.clock.Now())
	}
	if !found {
		return notFound("Resource %s does not exist.", arn)
	}
	return nil
}

func (s *Service) tagResource(r *awsapi.Request) (any, error) {
	return s.editTags(r, func(in tagsInput, tags map[string]string) error {
		for k, v := range in.Tags {
			tags[k] = v
		}
		if len(tags) > maxTags {
			return invalidParameter("A resource can have at most %d tags; this request would give it %d.",
				maxTags, len(tags))
		}
		return nil
	})
}

func (s *Service) untagResource(r *awsapi.Request) (any, error) {
	return s.editTags(r, func(in tagsInput, tags map[string]string) error {
		for _, k := range in.TagKeys {
			delete(tags, k)
		}
		return nil
	})
}

// editTags changes a taggable resource's tags with edit, in one transaction; an error from edit stores nothing.
func (s *Service) editTags(r *awsapi.Request, edit func(in tagsInput, tags map[string]string) error) (any, error) {
	var in tagsInput
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	err := s.store.Batch(func(tx store.Tx) error {
		if err := s.taggable(tx, in.ResourceARN); err != nil {
			return err
		}
		tags, err := getTags(tx, in.ResourceARN)
		if err != nil {
			return err
		}
		if err := edit(in, tags); err != nil {
			return err
		}
		return putTags(tx, in.ResourceARN, tags)
	})
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (s *Service) listTagsForResource(r *awsapi.Request) (any, error) {
	var in tagsInput
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	var tags map[string]string
	err := s.store.View(func(tx store.Tx) error {
		if err := s.taggable(tx, in.ResourceARN); err != nil {
			return err
		}
		var err error
		tags, err = getTags(tx, in.ResourceARN)
		return err
	})
	if err != nil {
		return nil, err
	}
	return struct {
		Tags map[string]string `json:"tags"`
	}{tags}, nil
}
