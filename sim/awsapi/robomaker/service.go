// Package robomaker is the AWS RoboMaker dialect of the deployment service: fleets, robots, robot applications
// and their versions, deployment jobs and tags, wire-compatible with the AWS SDK for Go v2 robomaker client
// (service/robomaker v1.36.2) and the model in model.json (botocore robomaker 2018-06-29).
//
// A deployment job is an engine deployment (Kind "robomaker", grouped by fleet ARN so a fleet has one active job
// at a time); its job document is the Document of package sim/deviceapi/wire/robomaker, which the device agent
// carries out. The translation of engine states to RoboMaker's job and robot statuses is in status.go, in one
// place.
//
// Everything the dialect owns is kept in the store (buckets named "robomaker.*"), so a restarted service has
// every fleet, robot, application, version, tag, job and idempotency token it had.
//
// Deviations from AWS, each a choice where AWS is silent or gone (the fleet deployment feature ended in 2022):
//   - ListFleets/ListRobots/ListDeploymentJobs/ListRobotApplications accept up to three filter values, as their
//     documentation says, though the model's FilterValues allows one.
//   - Deleting a fleet, robot or application that does not exist is InvalidParameterException: those operations
//     model no ResourceNotFoundException, and the SDK decodes only modeled errors into types.
//   - A job without concurrentDeploymentPercentage deploys to every robot at once.
//   - CreateDeploymentJob and SyncDeploymentJob answer status Pending, as AWS did (the job is accepted and
//     processed asynchronously); DescribeDeploymentJob then shows its progress.
package robomaker

import (
	_ "embed"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/awsapi/model"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/store"
)

//go:embed model.json
var modelJSON []byte

// Kind is the engine deployment kind of RoboMaker deployment jobs.
const Kind = "robomaker"

// Objects reads ETags from the artifact store.
type Objects = awsapi.Objects

// Quotas are the service limits. Zero fields take the AWS defaults.
type Quotas struct {
	// Fleets per region (AWS: 20).
	Fleets int
	// ConcurrentJobs is the number of deployment jobs not yet finished, per region (AWS: 20).
	ConcurrentJobs int
	// RobotsPerFleet (AWS: 1000, the length limit of DescribeFleet's robots).
	RobotsPerFleet int
}

// Options are the dialect's dependencies. Nil and zero fields get defaults in New.
type Options struct {
	// Engine runs the deployment jobs; required.
	Engine *engine.Engine
	// Store keeps the dialect's resources; required. It may be the engine's store.
	Store store.Store
	// Clock is the service clock (nil: the real clock); it stamps resources and expires jobs.
	Clock clock.Clock
	// Objects checks application sources and records their ETags; nil leaves sources unchecked.
	Objects Objects
	// Region and Account appear in ARNs (defaults "us-east-1" and "123456789012").
	Region, Account string
	// Quotas are the service limits.
	Quotas Quotas
	// IDs makes job and revision ids (nil: awsapi.RandomIDs).
	IDs *awsapi.IDs
}

// JobLifetime is how long a deployment job can be described or listed after it was created.
const JobLifetime = 90 * 24 * time.Hour

// Service is the RoboMaker dialect.
type Service struct {
	engine  *engine.Engine
	store   store.Store
	clock   clock.Clock
	objects Objects
	region  string
	account string
	quotas  Quotas
	model   *model.Model
	rec     awsapi.Records
	tokens  awsapi.Tokens
	ids     *awsapi.IDs
	codes   map[string]bool // DeploymentJobErrorCode values

	// jobs serialises the operations that start, cancel or depend on deployment jobs (create, sync, cancel,
	// DeleteFleet), whose checks (a token is unused, a fleet has no active job, the quota) read the engine
	// outside a store transaction. Every other write checks inside its transaction and is group-committed with
	// its concurrent peers (store.Batch), never waiting behind another's disk sync.
	jobs sync.Mutex
}

// New returns the dialect over opts. Deployment jobs whose record was written but whose engine deployment was
// not (a crash between the two) are created in the engine now.
func New(opts Options) (*Service, error) {
	if opts.Engine == nil || opts.Store == nil {
		return nil, errors.New("robomaker: an engine and a store are required")
	}
	m, err := LoadModel()
	if err != nil {
		return nil, err
	}
	s := &Service{
		engine: opts.Engine, store: opts.Store, clock: clock.Or(opts.Clock), objects: opts.Objects,
		region: opts.Region, account: opts.Account, quotas: opts.Quotas, model: m, codes: map[string]bool{},
		ids: opts.IDs,
	}
	if s.ids == nil {
		s.ids = awsapi.RandomIDs()
	}
	if s.region == "" {
		s.region = "us-east-1"
	}
	if s.account == "" {
		s.account = "123456789012"
	}
	if s.quotas.Fleets <= 0 {
		s.quotas.Fleets = 20
	}
	if s.quotas.ConcurrentJobs <= 0 {
		s.quotas.ConcurrentJobs = 20
	}
	if s.quotas.RobotsPerFleet <= 0 {
		s.quotas.RobotsPerFleet = 1000
	}
	s.rec = awsapi.NewRecords("robomaker", s.region, s.account)
	s.tokens = s.rec.Tokens(JobLifetime, s.clock)
	for _, c := range m.Shape("DeploymentJobErrorCode").Enum {
		s.codes[c] = true
	}
	if err := s.recover(); err != nil {
		return nil, fmt.Errorf("robomaker: %w", err)
	}
	return s, nil
}

// ModelJSON returns the botocore service model the dialect implements, as the AWS CLI takes it:
// `aws configure add-model --service-name robomaker --service-model file://robomaker.json` gives RoboMaker, which
// has left the CLI, back to it.
func ModelJSON() []byte { return slices.Clone(modelJSON) }

// LoadModel returns the RoboMaker model as the dialect validates with it: the embedded botocore model, with
// FilterValues allowing the three values the List operations document.
func LoadModel() (*model.Model, error) {
	m, err := model.Load(modelJSON)
	if err != nil {
		return nil, fmt.Errorf("robomaker: load model: %w", err)
	}
	three := 3.0
	m.Shape("FilterValues").Max = &three
	return m, nil
}

// Register adds the dialect's operations to h.
func (s *Service) Register(h *awsapi.Handler) error {
	return h.Register(awsapi.Service{
		Model:         s.model,
		Dialect:       Kind,
		MessageMember: "message",
		Invalid:       func(msg string) *awsapi.Error { return invalidParameter("%s", msg) },
		Unknown:       unknownOperation,
		Internal: func(err error) *awsapi.Error {
			return awsapi.NewError("InternalServerException", http.StatusInternalServerError, "%s", err)
		},
		Unavailable: func(msg string) *awsapi.Error {
			return awsapi.NewError("InternalServerException", http.StatusInternalServerError, "%s", msg)
		},
		// RoboMaker's modeled errors are all HTTP 400, ThrottlingException too.
		Throttled: func(msg string) *awsapi.Error { return rmError("ThrottlingException", "%s", msg) },
	}, s.operations())
}

// operations are the dialect's operations by model name: its own and the shared tags API.
func (s *Service) operations() map[string]awsapi.Operation {
	op := awsapi.Handle
	ops := map[string]awsapi.Operation{
		"CreateFleet":                   op(s.createFleet),
		"DeleteFleet":                   op(s.deleteFleet),
		"DescribeFleet":                 op(s.describeFleet),
		"ListFleets":                    op(s.listFleets),
		"CreateRobot":                   op(s.createRobot),
		"DeleteRobot":                   op(s.deleteRobot),
		"DescribeRobot":                 op(s.describeRobot),
		"ListRobots":                    op(s.listRobots),
		"RegisterRobot":                 op(s.registerRobot),
		"DeregisterRobot":               op(s.deregisterRobot),
		"CreateRobotApplication":        op(s.createRobotApplication),
		"CreateRobotApplicationVersion": op(s.createRobotApplicationVersion),
		"DescribeRobotApplication":      op(s.describeRobotApplication),
		"ListRobotApplications":         op(s.listRobotApplications),
		"DeleteRobotApplication":        op(s.deleteRobotApplication),
		"CreateDeploymentJob":           op(s.createDeploymentJob),
		"DescribeDeploymentJob":         op(s.describeDeploymentJob),
		"ListDeploymentJobs":            op(s.listDeploymentJobs),
		"CancelDeploymentJob":           op(s.cancelDeploymentJob),
		"SyncDeploymentJob":             op(s.syncDeploymentJob),
	}
	for name, o := range s.tagging().Operations() {
		ops[name] = o
	}
	return ops
}

// The dialect's errors: all HTTP 400 but InternalServerException, with the member "message".
func rmError(code, format string, args ...any) *awsapi.Error {
	e := awsapi.NewError(code, http.StatusBadRequest, format, args...)
	e.MessageMember = "message"
	return e
}

func invalidParameter(format string, args ...any) *awsapi.Error {
	return rmError("InvalidParameterException", format, args...)
}

func notFound(format string, args ...any) *awsapi.Error {
	return rmError("ResourceNotFoundException", format, args...)
}

func alreadyExists(format string, args ...any) *awsapi.Error {
	return rmError("ResourceAlreadyExistsException", format, args...)
}

func limitExceeded(format string, args ...any) *awsapi.Error {
	return rmError("LimitExceededException", format, args...)
}

func concurrentDeployment(format string, args ...any) *awsapi.Error {
	return rmError("ConcurrentDeploymentException", format, args...)
}

func idempotentMismatch() *awsapi.Error {
	return rmError("IdempotentParameterMismatchException",
		"The request uses the same client token as a previous, but non-identical request.")
}

// unknownOperation is what RoboMaker's front door answers for a path it does not serve.
func unknownOperation(method, path string) *awsapi.Error {
	e := awsapi.UnknownOperation(method, path)
	e.MessageMember = "message"
	return e
}
