package robomaker

import (
	"fmt"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/awsapi/model"
)

var _ awsapi.Dialect = (*Service)(nil)

// NewDialect builds the dialect as the service's list of dialects does: over deps, with options a Quotas (nil:
// the AWS defaults).
func NewDialect(deps awsapi.DialectDeps, options any) (awsapi.Dialect, error) {
	var quotas Quotas
	switch o := options.(type) {
	case nil:
	case Quotas:
		quotas = o
	default:
		return nil, fmt.Errorf("robomaker: options are a %T, want a robomaker.Quotas", options)
	}
	return New(Options{Engine: deps.Engine, Store: deps.Store, Clock: deps.Clock, Objects: deps.Objects,
		Region: deps.Region, Account: deps.Account, Quotas: quotas, IDs: deps.IDs})
}

// Name returns Kind.
func (s *Service) Name() string { return Kind }

// Model returns the model the dialect serves (LoadModel's).
func (s *Service) Model() *model.Model { return s.model }
