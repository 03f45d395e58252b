package greengrassv2

import (
	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/store"
)

// MaxTags is the most tags a resource carries (the model's TagMap limit).
const MaxTags = 200

// tagging is the shared tags API over the dialect's records: component versions and components carry tags.
func (s *Service) tagging() awsapi.Tagging {
	return awsapi.Tagging{Records: s.rec, Store: s.store, MaxTags: MaxTags, Taggable: s.taggable,
		Invalid: func(msg string) *awsapi.Error { return fieldInvalid("tags", "%s", msg) }}
}

func (s *Service) taggable(tx store.Tx, arn string) error {
	_, _, found, err := s.rec.FindByARN(tx, arn)
	if err != nil {
		return err
	}
	if !found {
		return notFound(arn, "resource", "The resource %s does not exist.", arn)
	}
	return nil
}
