// Package iot is the AWS IoT control-plane subset the deployment service serves for Greengrass V2: things and
// thing groups (a hierarchy), membership, their tags, and the jobs views over the engine's deployments (jobs.go),
// wire-compatible with the AWS SDK for Go v2 iot client (service/iot v1.75.0), the AWS CLI 2 (`aws iot`, which
// signs for execute-api) and the model in model.json (botocore iot 2015-05-28). It is also the service's thing registry (awsapi.Registry): Greengrass V2 resolves
// thing-group targets through it and follows membership changes.
//
// Everything it owns is kept in the store (buckets named "iot.*"), so a restarted service has every thing, group,
// membership and tag it had. Things and groups are keyed by name, so listings are in name order.
//
// Choices where AWS is silent, or where the subset stops:
//   - There are no thing types and no billing groups: a thingTypeName or billingGroupName names none, and is
//     ResourceNotFoundException (404) on CreateThing and UpdateThing, as AWS answers an unknown one.
//   - A thing carries at most three attributes (AttributePayload's documentation for things without a type); a
//     thing group at most 50.
//   - ListThings with attributeValue but no attributeName is InvalidRequestException; with attributeName alone
//     it lists the things that have the attribute.
//   - Dynamic thing groups are not served; overrideDynamicGroups is accepted and has no effect.
//   - Of the subset's resources only thing groups carry tags; TagResource on a thing's ARN is
//     InvalidRequestException.
//   - CreateThingGroup with a parent that does not exist is InvalidRequestException, the operation modeling no
//     ResourceNotFoundException; DeleteThingGroup of a group that does not exist succeeds, as DeleteThing does.
//   - The jobs views show every engine deployment, of any dialect, under its own id; CancelJob refuses force
//     (the engine lets executions in progress run on when it cancels).
package iot

import (
	_ "embed"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/awsapi/model"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/store"
)

//go:embed model.json
var modelJSON []byte

// Name is the dialect's name in the service's list.
const Name = "iot"

// Limits of the registry, from the AWS IoT quotas.
const (
	// MaxGroupsPerThing is how many thing groups a thing may belong to directly.
	MaxGroupsPerThing = 10
	// MaxGroupDepth is how deep a thing-group hierarchy may be (a root group is depth 1).
	MaxGroupDepth = 7
	// maxThingAttributes and maxGroupAttributes bound the attributes of a thing and of a thing group.
	maxThingAttributes = 3
	maxGroupAttributes = 50
	// defaultPage is the page size of a listing without maxResults.
	defaultPage = 50
)

// Options are the dialect's dependencies. Nil and zero fields get defaults in New.
type Options struct {
	// Store keeps the registry; required.
	Store store.Store
	// Engine is the rollout engine whose deployments the jobs views show (DescribeJob, ListJobs,
	// ListJobExecutionsForJob, DescribeJobExecution, CancelJob); nil serves no jobs views.
	Engine *engine.Engine
	// Clock is the service clock (nil: the real clock); it stamps thing groups.
	Clock clock.Clock
	// Region and Account appear in ARNs (defaults "us-east-1" and "123456789012").
	Region, Account string
	// IDs makes thing and thing-group ids (nil: awsapi.RandomIDs).
	IDs *awsapi.IDs
}

// Service is the IoT dialect and the service's thing registry.
type Service struct {
	engine *engine.Engine
	store  store.Store
	clock  clock.Clock
	model  *model.Model
	rec    awsapi.Records
	ids    *awsapi.IDs
	region string

	// writes serialises the writes of the registry with the notification of their membership changes, so
	// watchers see the changes in the order they were stored.
	writes   sync.Mutex
	watchMu  sync.Mutex
	watchers map[int]func(awsapi.MembershipChange)
	nextW    int
}

// New returns the dialect over opts.
func New(opts Options) (*Service, error) {
	if opts.Store == nil {
		return nil, errors.New("iot: a store is required")
	}
	m, err := LoadModel()
	if err != nil {
		return nil, err
	}
	s := &Service{engine: opts.Engine, store: opts.Store, clock: clock.Or(opts.Clock), model: m, ids: opts.IDs, region: opts.Region,
		watchers: map[int]func(awsapi.MembershipChange){}}
	if s.ids == nil {
		s.ids = awsapi.RandomIDs()
	}
	if s.region == "" {
		s.region = "us-east-1"
	}
	account := opts.Account
	if account == "" {
		account = "123456789012"
	}
	s.rec = awsapi.NewRecords(Name, s.region, account)
	return s, nil
}

// LoadModel returns the IoT model as the dialect validates with it: the embedded botocore model.
func LoadModel() (*model.Model, error) {
	m, err := model.Load(modelJSON)
	if err != nil {
		return nil, fmt.Errorf("iot: load model: %w", err)
	}
	return m, nil
}

// Register adds the dialect's operations to h.
func (s *Service) Register(h *awsapi.Handler) error {
	return h.Register(awsapi.Service{
		Model: s.model,
		// The SDK signs with the model's signing name (iot); the AWS CLI 2 with IoT's credential scope in its
		// endpoint data, execute-api.
		Aliases:       []string{"execute-api"},
		Dialect:       Name,
		MessageMember: "message",
		Invalid:       func(msg string) *awsapi.Error { return invalidRequest("%s", msg) },
		Internal: func(err error) *awsapi.Error {
			return iotError("InternalFailureException", http.StatusInternalServerError, "%s", err)
		},
		Unavailable: func(msg string) *awsapi.Error {
			return iotError("ServiceUnavailableException", http.StatusServiceUnavailable, "%s", msg)
		},
		// IoT models ThrottlingException as HTTP 400.
		Throttled: func(msg string) *awsapi.Error {
			return iotError("ThrottlingException", http.StatusBadRequest, "%s", msg)
		},
	}, s.operations())
}

// operations are the dialect's operations by model name.
func (s *Service) operations() map[string]awsapi.Operation {
	op := awsapi.Handle
	ops := map[string]awsapi.Operation{
		"CreateThing":               op(s.createThing),
		"DescribeThing":             op(s.describeThing),
		"UpdateThing":               op(s.updateThing),
		"DeleteThing":               op(s.deleteThing),
		"ListThings":                op(s.listThings),
		"CreateThingGroup":          op(s.createThingGroup),
		"DescribeThingGroup":        op(s.describeThingGroup),
		"DeleteThingGroup":          op(s.deleteThingGroup),
		"AddThingToThingGroup":      op(s.addThingToThingGroup),
		"RemoveThingFromThingGroup": op(s.removeThingFromThingGroup),
		"ListThingsInThingGroup":    op(s.listThingsInThingGroup),
		"ListThingGroupsForThing":   op(s.listThingGroupsForThing),
	}
	for name, o := range s.tagging().Operations() {
		ops[name] = o
	}
	if s.engine != nil {
		ops["DescribeJob"] = op(s.describeJob)
		ops["ListJobs"] = op(s.listJobs)
		ops["ListJobExecutionsForJob"] = op(s.listJobExecutionsForJob)
		ops["DescribeJobExecution"] = op(s.describeJobExecution)
		ops["CancelJob"] = op(s.cancelJob)
	}
	return ops
}

// iotError is an IoT error; the model spells the message member "message".
func iotError(code string, status int, format string, args ...any) *awsapi.Error {
	e := awsapi.NewError(code, status, format, args...)
	e.MessageMember = "message"
	return e
}

func invalidRequest(format string, args ...any) *awsapi.Error {
	return iotError("InvalidRequestException", http.StatusBadRequest, format, args...)
}

func notFound(format string, args ...any) *awsapi.Error {
	return iotError("ResourceNotFoundException", http.StatusNotFound, format, args...)
}

func versionConflict(format string, args ...any) *awsapi.Error {
	return iotError("VersionConflictException", http.StatusConflict, format, args...)
}

func limitExceeded(format string, args ...any) *awsapi.Error {
	return iotError("LimitExceededException", http.StatusGone, format, args...)
}

// alreadyExists is ResourceAlreadyExistsException naming the resource that exists.
func alreadyExists(id, arn, format string, args ...any) *awsapi.Error {
	return iotError("ResourceAlreadyExistsException", http.StatusConflict, format, args...).
		With("resourceId", id).With("resourceArn", arn)
}
