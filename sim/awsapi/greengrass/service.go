// Package greengrass is the AWS IoT Greengrass V1 dialect of the deployment service: core, function,
// subscription and resource definitions and their versions, groups and group versions, and group deployments
// (CreateDeployment, GetDeploymentStatus, ListDeployments, ResetDeployments), wire-compatible with the AWS SDK
// for Go v2 greengrass client (service/greengrass v1.33.0), the AWS CLI, and the model in model.json (botocore
// greengrass 2017-06-07). The job document its deployments hand the group's core is package
// sim/deviceapi/wire/greengrass's.
//
// Greengrass V1 and V2 sign alike (greengrass) and share the /greengrass/ path prefix; V1's routes
// (/greengrass/groups, /greengrass/definition/...) and V2's (/greengrass/v2/...) do not overlap, so both
// dialects serve one endpoint. The routes the two models share (the service role, connectivity info, /tags) are
// left to V2: this dialect registers none of them, and its resources carry no tags.
//
// Everything the dialect owns is kept in the store, in buckets named "greengrassv1.*" (V2's are
// "greengrass.*"), so a restarted service has every definition, group, deployment and idempotency token.
//
// Errors carry the message under Message, as the model's GeneralError spells it, with ErrorDetails where there
// are any: BadRequestException (400) for a request the model refuses, and the codes of the real service as
// moto mirrors them — InvalidInputException (400), IdNotFoundException (404) for an unknown definition or group,
// VersionNotFoundException (404) for an unknown version, ResourceNotFoundException (404) for a reset of a group
// that has nothing to reset, and MissingCoreException (400, ErrorDetails GG-303) for a deployment of a group
// version without a core.
//
// Deployments. A NewDeployment deploys a group version to the thing its core definition version names: an
// engine deployment with the group's core as its one target, whose document (wire/greengrass.Document) holds the
// group version resolved — the core, the functions, the subscriptions, the resources with the ETag each S3
// object has when the deployment is made. A Redeployment deploys the group version of an earlier deployment
// again, under a new DeploymentId. GetDeploymentStatus reads what the core did from the engine's execution:
// Building while the core has not taken the deployment, InProgress once it has, Success or Failure when it
// reported the end (ErrorMessage and ErrorDetails from its failure code and reason); UpdatedAt is the time of
// that transition. ResetDeployments is refused while the group's latest deployment is Building or InProgress;
// a reset sends the core a ResetDeployment document, and a forced one (ForceResetDeployment) is Success at
// once without the core. A CreateDeployment or ResetDeployments whose X-Amzn-Client-Token was seen with the
// same request answers that request's deployment; with another request it is InvalidInputException.
//
// Deviations from AWS, each a choice where the simulator has less than AWS or AWS is silent:
//   - There is no Lambda: a function's code is its FunctionConfiguration.Executable, a shell command line the
//     core runs (see the agent's Greengrass V1 kind), which must be present.
//   - Of the resource kinds, S3 machine-learning resources (a tar.gz the core unpacks) and local volumes are
//     served; the others, and device, logger and connector definitions, are refused with BadRequestException.
//   - A core definition version has exactly one core, whose ThingArn names a thing the core runs as.
//   - The service role, connectivity info and tags are not served by this dialect.
//   - A bulk deployment (StartBulkDeployment) reads its input file from the artifact store at once and is one
//     engine deployment whose targets are the records' cores: a record that names no group version of a group
//     with a core, a deployment type other than NewDeployment, or a core another record already names, is an
//     invalid input record. Nothing throttles it, so RetryAttempts is 0. It is Running until every core has
//     ended its group's deployment, then Completed, or Stopped by StopBulkDeployment (the deployments its cores
//     had not taken end as Failure).
//   - A deployment has no timeout: a core that never takes it leaves it Building.
package greengrass

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
const Kind = "greengrass"

// bucketPrefix names the dialect's store buckets, apart from Greengrass V2's "greengrass.*".
const bucketPrefix = "greengrassv1"

// Store buckets.
const (
	bucketDefinitions = bucketPrefix + ".definitions" // "<type>/<id>" → definition
	bucketDefVersions = bucketPrefix + ".defversions" // "<type>/<id>/<seq>" → defVersion
	bucketGroups      = bucketPrefix + ".groups"      // "<id>" → group
	bucketGroupVers   = bucketPrefix + ".groupversions"
	bucketDeployments = bucketPrefix + ".deployments" // "<groupId>/<seq>" → deployment
)

// Options are the dialect's dependencies. Nil and zero fields get defaults in New.
type Options struct {
	// Store keeps the dialect's resources; required.
	Store store.Store
	// Clock is the service clock (nil: the real clock).
	Clock clock.Clock
	// Objects reads the ETags of S3 resources; nil leaves them unchecked.
	Objects awsapi.Objects
	// Region and Account appear in ARNs (defaults "us-east-1" and "123456789012").
	Region, Account string
	// Engine runs deployments; nil serves definitions and groups only.
	Engine *engine.Engine
	// IDs makes ids (nil: awsapi.RandomIDs).
	IDs *awsapi.IDs
}

// Service is the Greengrass V1 dialect.
type Service struct {
	store   store.Store
	clock   clock.Clock
	objects awsapi.Objects
	region  string
	account string
	model   *model.Model
	rec     awsapi.Records
	tokens  awsapi.Tokens
	engine  *engine.Engine
	ids     *awsapi.IDs
	// mu serialises the writes that check something first: a deployment against its group's latest, a token
	// against its first use.
	mu sync.Mutex
}

var _ awsapi.Dialect = (*Service)(nil)

// New returns the dialect over opts.
func New(opts Options) (*Service, error) {
	if opts.Store == nil {
		return nil, errors.New("greengrass: a store is required")
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
	s.rec = awsapi.NewRecords(bucketPrefix, s.region, s.account)
	s.tokens = s.rec.Tokens(0, s.clock)
	return s, nil
}

// NewDialect builds the dialect as the service's list of dialects does: over deps; it has no options (nil).
func NewDialect(deps awsapi.DialectDeps, options any) (awsapi.Dialect, error) {
	if options != nil {
		return nil, fmt.Errorf("greengrass: options are a %T, want none", options)
	}
	return New(Options{Store: deps.Store, Clock: deps.Clock, Objects: deps.Objects, Region: deps.Region,
		Account: deps.Account, Engine: deps.Engine, IDs: deps.IDs})
}

// LoadModel returns the Greengrass V1 model the dialect validates with.
func LoadModel() (*model.Model, error) {
	m, err := model.Load(modelJSON)
	if err != nil {
		return nil, fmt.Errorf("greengrass: load model: %w", err)
	}
	return m, nil
}

// ModelJSON returns the botocore service model the dialect implements.
func ModelJSON() []byte { return slices.Clone(modelJSON) }

// Name returns Kind.
func (s *Service) Name() string { return Kind }

// Model returns the model the dialect serves.
func (s *Service) Model() *model.Model { return s.model }

// KnowsThing reports whether the thing is the core of a core definition version.
func (s *Service) KnowsThing(thing string) bool {
	found := false
	_ = s.store.View(func(tx store.Tx) error {
		_, _, found, _ = s.rec.Lookup(tx, "thing/"+thing)
		return nil
	})
	return found
}

// Register adds the dialect's operations to h.
func (s *Service) Register(h *awsapi.Handler) error {
	return h.Register(awsapi.Service{
		Model:         s.model,
		Name:          "greengrass",
		Dialect:       Kind,
		ARNService:    "greengrass",
		MessageMember: "Message",
		Invalid:       badRequest,
		Internal: func(error) *awsapi.Error {
			return awsapi.NewError("InternalServerErrorException", http.StatusInternalServerError, "Internal server error")
		},
		Unavailable: func(msg string) *awsapi.Error {
			return awsapi.NewError("InternalServerErrorException", http.StatusInternalServerError, "%s", msg)
		},
	}, s.operations())
}

func (s *Service) operations() map[string]awsapi.Operation {
	op := awsapi.Handle
	ops := map[string]awsapi.Operation{
		"CreateGroup":        op(s.createGroup),
		"GetGroup":           op(s.getGroup),
		"ListGroups":         op(s.listGroups),
		"DeleteGroup":        op(s.deleteGroup),
		"UpdateGroup":        op(s.updateGroup),
		"CreateGroupVersion": op(s.createGroupVersion),
		"GetGroupVersion":    op(s.getGroupVersion),
		"ListGroupVersions":  op(s.listGroupVersions),
	}
	for _, t := range defTypes {
		ops["Create"+t.op+"Definition"] = op(s.createDefinition(t))
		ops["Create"+t.op+"DefinitionVersion"] = op(s.createDefinitionVersion(t))
		ops["Get"+t.op+"Definition"] = op(s.getDefinition(t))
		ops["Get"+t.op+"DefinitionVersion"] = op(s.getDefinitionVersion(t))
		ops["List"+t.op+"Definitions"] = op(s.listDefinitions(t))
		ops["List"+t.op+"DefinitionVersions"] = op(s.listDefinitionVersions(t))
		ops["Delete"+t.op+"Definition"] = op(s.deleteDefinition(t))
		ops["Update"+t.op+"Definition"] = op(s.updateDefinition(t))
	}
	if s.engine != nil {
		ops["CreateDeployment"] = op(s.createDeployment)
		ops["GetDeploymentStatus"] = op(s.getDeploymentStatus)
		ops["ListDeployments"] = op(s.listDeployments)
		ops["ResetDeployments"] = op(s.resetDeployments)
		ops["StartBulkDeployment"] = op(s.startBulkDeployment)
		ops["GetBulkDeploymentStatus"] = op(s.getBulkDeploymentStatus)
		ops["ListBulkDeploymentDetailedReports"] = op(s.listBulkDeploymentDetailedReports)
		ops["ListBulkDeployments"] = op(s.listBulkDeployments)
		ops["StopBulkDeployment"] = op(s.stopBulkDeployment)
	}
	return ops
}

// ErrorDetail is an entry of an error's ErrorDetails.
type ErrorDetail struct {
	DetailedErrorCode    string `json:"DetailedErrorCode,omitempty"`
	DetailedErrorMessage string `json:"DetailedErrorMessage,omitempty"`
}

// badRequest is BadRequestException: the model's error for a request it refuses.
func badRequest(msg string) *awsapi.Error {
	return awsapi.NewError("BadRequestException", http.StatusBadRequest, "%s", msg)
}

func badRequestf(format string, args ...any) *awsapi.Error {
	return badRequest(fmt.Sprintf(format, args...))
}

func invalidInput(format string, args ...any) *awsapi.Error {
	return awsapi.NewError("InvalidInputException", http.StatusBadRequest, format, args...)
}

func idNotFound(format string, args ...any) *awsapi.Error {
	return awsapi.NewError("IdNotFoundException", http.StatusNotFound, format, args...)
}

func versionNotFound(format string, args ...any) *awsapi.Error {
	return awsapi.NewError("VersionNotFoundException", http.StatusNotFound, format, args...)
}

func resourceNotFound(format string, args ...any) *awsapi.Error {
	return awsapi.NewError("ResourceNotFoundException", http.StatusNotFound, format, args...)
}

// missingCore is the answer to a deployment of a group version without a core.
func missingCore() *awsapi.Error {
	const msg = "You need a Greengrass Core in this Group before you can deploy."
	return awsapi.NewError("MissingCoreException", http.StatusBadRequest, "%s", msg).
		With("ErrorDetails", []ErrorDetail{{DetailedErrorCode: "GG-303", DetailedErrorMessage: msg}})
}

// arn returns the dialect's ARN of a resource path ("/greengrass/groups/<id>").
func (s *Service) arn(resource string) string {
	return "arn:aws:greengrass:" + s.region + ":" + s.account + ":" + resource
}
