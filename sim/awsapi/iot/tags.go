package iot

import (
	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/store"
)

// maxTags is how many tags a resource may carry.
const maxTags = 50

// tagging is the shared tags API (awsapi.Tagging) on IoT's paths (/tags, /untag, with the tags as a list of
// pairs). Of the subset's resources, thing groups carry tags; things do not (IoT gives them attributes).
func (s *Service) tagging() awsapi.Tagging {
	return awsapi.Tagging{Records: s.rec, Store: s.store, Taggable: s.taggable, Pairs: true, MaxTags: maxTags,
		Invalid: func(msg string) *awsapi.Error { return invalidRequest("%s", msg) },
		TooMany: func(msg string) *awsapi.Error { return limitExceeded("%s", msg) }}
}

// taggable checks that arn names an existing thing group.
func (s *Service) taggable(tx store.Tx, arn string) error {
	kind, _, found, err := s.rec.FindByARN(tx, arn)
	switch {
	case err != nil:
		return err
	case !found:
		return notFound("Resource %s does not exist.", arn)
	case kind != kindGroup:
		return invalidRequest("Resource %s is a %s, which does not carry tags.", arn, kind)
	}
	return nil
}
