package robomaker

import (
	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/store"
)

// tagging is the shared tags API (awsapi.Tagging) over the dialect's records: fleets, robots, applications and
// deployment jobs that have not expired carry tags.
func (s *Service) tagging() awsapi.Tagging {
	return awsapi.Tagging{Records: s.rec, Store: s.store, Taggable: s.taggable,
		Invalid: func(msg string) *awsapi.Error { return invalidParameter("%s", msg) }}
}

// taggable checks that arn names an existing fleet, robot, application or live deployment job.
func (s *Service) taggable(tx store.Tx, arn string) error {
	kind, key, found, err := s.rec.FindByARN(tx, arn)
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
