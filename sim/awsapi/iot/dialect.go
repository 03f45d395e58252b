package iot

import (
	"fmt"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/awsapi/model"
)

var _ awsapi.Dialect = (*Service)(nil)

// NewDialect builds the dialect as the service's list of dialects does: over deps; it takes no options.
func NewDialect(deps awsapi.DialectDeps, options any) (awsapi.Dialect, error) {
	if options != nil {
		return nil, fmt.Errorf("iot: options are a %T; the dialect takes none", options)
	}
	return New(Options{Engine: deps.Engine, Store: deps.Store, Clock: deps.Clock, Region: deps.Region, Account: deps.Account,
		IDs: deps.IDs})
}

// Name returns Name.
func (s *Service) Name() string { return Name }

// Model returns the model the dialect serves (LoadModel's).
func (s *Service) Model() *model.Model { return s.model }

// KnowsThing reports whether the registry has a thing of that name, so the device API serves it. A store that
// cannot be read knows no thing.
func (s *Service) KnowsThing(thing string) bool {
	_, found, err := s.Thing(thing)
	return err == nil && found
}
