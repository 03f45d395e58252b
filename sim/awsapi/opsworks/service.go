// Package opsworks is the AWS OpsWorks Stacks dialect of the deployment service: stacks, layers, apps and
// instances (created and started, or registered on-premises boards), and deployments — CreateDeployment with
// every command, DescribeDeployments and DescribeCommands — wire-compatible with the AWS SDK for Go v2 opsworks
// client (service/opsworks v1.31.0), the AWS CLI, and the model in model.json (botocore opsworks 2013-02-18).
// The protocol is awsJson1_1: POST / with X-Amz-Target OpsWorks_20130218.<Operation>; every error is HTTP 400
// with __type (ValidationException, ResourceNotFoundException) and a lowercase message.
//
// Everything the dialect owns is kept in the store (buckets "opsworks.*"), so a restarted service has it all.
//
// Deployments. A deployment's targets are the instances it lists, plus those of the layers it lists, else every
// online instance of the stack; each gets a command of the deployment's command name. The online targets are
// the targets of one engine deployment, whose document (wire/opsworks.Document) holds the command and its args,
// the app with its releases (its last successful deploys on the stack, newest first, at most five: a deploy's
// first is the one it deploys), the stack's custom cookbooks and each target's layers' custom recipes. A listed
// target that is not online gets a command that is skipped at once. A command is pending until its instance
// ends it, then successful or failed with the exit code and log the instance reported (LogUrl is a data: URL of
// the log's text); the deployment is running until every command ended, then failed if any failed, else
// successful, with CompletedAt and Duration (whole seconds from CreatedAt).
//
// Deviations from AWS, each a choice where the simulator has less than AWS or AWS is silent:
//   - App sources and custom cookbooks are archives (tar.gz) in the artifact store, named s3://bucket/key or
//     https://s3.amazonaws.com/bucket/key (Type s3 or archive); git and svn are refused (ValidationException).
//   - An instance has no EC2 behind it: StartInstance makes it online at once and StopInstance stopped; a
//     registered instance is online from RegisterInstance, and its Hostname is the thing name its agent runs as.
//     An instance is a device the device API knows by its Hostname.
//   - A deployment that would have no target at all (no instance listed, no online instance) is refused with
//     ValidationException.
package opsworks

import (
	_ "embed"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/awsapi/model"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/store"
)

//go:embed model.json
var modelJSON []byte

// Kind is the dialect's name in the service's list of dialects and its engine deployments' kind.
const Kind = "opsworks"

// Store buckets.
const (
	bucketStacks      = "opsworks.stacks"
	bucketLayers      = "opsworks.layers"
	bucketApps        = "opsworks.apps"
	bucketInstances   = "opsworks.instances"
	bucketDeployments = "opsworks.deployments" // "<seq>" → deployment
	bucketMeta        = "opsworks.meta"
)

// Options are the dialect's dependencies.
type Options struct {
	// Store keeps the dialect's resources; required.
	Store store.Store
	// Clock is the service clock (nil: the real clock).
	Clock clock.Clock
	// Objects reads the ETags of app sources and cookbooks; nil leaves them unchecked.
	Objects awsapi.Objects
	// Region and Account appear in ARNs (defaults "us-east-1" and "123456789012").
	Region, Account string
	// Engine runs deployments; nil serves stacks, layers, apps and instances only.
	Engine *engine.Engine
	// IDs makes ids (nil: awsapi.RandomIDs).
	IDs *awsapi.IDs
}

// Service is the OpsWorks dialect.
type Service struct {
	store   store.Store
	clock   clock.Clock
	objects awsapi.Objects
	region  string
	account string
	model   *model.Model
	engine  *engine.Engine
	ids     *awsapi.IDs
	mu      sync.Mutex // serialises writes that check first
}

var _ awsapi.Dialect = (*Service)(nil)

// New returns the dialect over opts.
func New(opts Options) (*Service, error) {
	if opts.Store == nil {
		return nil, errors.New("opsworks: a store is required")
	}
	m, err := LoadModel()
	if err != nil {
		return nil, err
	}
	s := &Service{store: opts.Store, clock: clock.Or(opts.Clock), objects: opts.Objects, region: opts.Region,
		account: opts.Account, model: m, engine: opts.Engine, ids: opts.IDs}
	if s.region == "" {
		s.region = "us-east-1"
	}
	if s.account == "" {
		s.account = "123456789012"
	}
	if s.ids == nil {
		s.ids = awsapi.RandomIDs()
	}
	return s, nil
}

// NewDialect builds the dialect as the service's list of dialects does; it has no options (nil).
func NewDialect(deps awsapi.DialectDeps, options any) (awsapi.Dialect, error) {
	if options != nil {
		return nil, fmt.Errorf("opsworks: options are a %T, want none", options)
	}
	return New(Options{Store: deps.Store, Clock: deps.Clock, Objects: deps.Objects, Region: deps.Region,
		Account: deps.Account, Engine: deps.Engine, IDs: deps.IDs})
}

// LoadModel returns the OpsWorks model the dialect validates with.
func LoadModel() (*model.Model, error) {
	m, err := model.Load(modelJSON)
	if err != nil {
		return nil, fmt.Errorf("opsworks: load model: %w", err)
	}
	return m, nil
}

// ModelJSON returns the botocore service model the dialect implements.
func ModelJSON() []byte { return slices.Clone(modelJSON) }

// Name returns Kind.
func (s *Service) Name() string { return Kind }

// Model returns the model the dialect serves.
func (s *Service) Model() *model.Model { return s.model }

// KnowsThing reports whether thing is the Hostname of an instance.
func (s *Service) KnowsThing(thing string) bool {
	found := false
	_ = s.store.View(func(tx store.Tx) error {
		return awsapi.Each(tx, bucketInstances, func(in *instance) error {
			if in.Hostname == thing {
				found = true
			}
			return nil
		})
	})
	return found
}

// Register adds the dialect's operations to h.
func (s *Service) Register(h *awsapi.Handler) error {
	op := awsapi.Handle
	ops := map[string]awsapi.Operation{
		"CreateStack": op(s.createStack), "DescribeStacks": op(s.describeStacks), "DeleteStack": op(s.deleteStack),
		"CreateLayer": op(s.createLayer), "DescribeLayers": op(s.describeLayers),
		"CreateApp": op(s.createApp), "DescribeApps": op(s.describeApps),
		"CreateInstance": op(s.createInstance), "StartInstance": op(s.startInstance),
		"StopInstance": op(s.stopInstance), "RegisterInstance": op(s.registerInstance),
		"AssignInstance": op(s.assignInstance), "DescribeInstances": op(s.describeInstances),
	}
	if s.engine != nil {
		ops["CreateDeployment"] = op(s.createDeployment)
		ops["DescribeDeployments"] = op(s.describeDeployments)
		ops["DescribeCommands"] = op(s.describeCommands)
	}
	return h.Register(awsapi.Service{Model: s.model, Name: "opsworks", Dialect: Kind, MessageMember: "message",
		Invalid: func(msg string) *awsapi.Error { return validation("%s", msg) },
		Unknown: func(method, target string) *awsapi.Error {
			return awsapi.NewError("UnknownOperationException", http.StatusBadRequest, "No operation matches %s %s", method, target)
		},
		Throttled: func(msg string) *awsapi.Error {
			return awsapi.NewError("ThrottlingException", http.StatusBadRequest, "%s", msg)
		},
	}, ops)
}

func validation(format string, args ...any) *awsapi.Error {
	return awsapi.NewError("ValidationException", http.StatusBadRequest, format, args...)
}

func notFound(format string, args ...any) *awsapi.Error {
	return awsapi.NewError("ResourceNotFoundException", http.StatusBadRequest, format, args...)
}
