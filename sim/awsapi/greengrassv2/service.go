// Package greengrassv2 is the AWS IoT Greengrass V2 dialect of the deployment service: components (recipes in
// JSON or YAML, their versions, artifacts, resolution for a device), deployments, core devices and tags,
// wire-compatible with the AWS SDK for
// Go v2 greengrassv2 client (service/greengrassv2 v1.45.3), the AWS CLI, and the model in model.json (botocore
// greengrassv2 2020-11-30). Recipes, versions and requirements are those of package
// sim/deviceapi/wire/greengrassv2, which the device's agent shares.
//
// Everything the dialect owns is kept in the store (buckets named "greengrass.*"), so a restarted service has
// every component version, tag and idempotency token it had.
//
// Deviations from AWS, each a choice where the simulator has less than AWS or AWS is silent:
//   - A component version is DEPLOYABLE as soon as CreateComponentVersion answers (AWS answers REQUESTED and
//     checks asynchronously); a recipe whose s3:// artifact the artifact store does not hold is refused with
//     ValidationException, as AWS does ("Specified artifact resource cannot be accessed").
//   - Digests are kept as the recipe gives them; AWS computes the SHA-256 of each artifact and adds it.
//   - lambdaFunction components are not supported (ValidationException reason OTHER).
//   - The PUBLIC scope lists nothing: the simulator has no AWS-published components.
//   - A clientToken seen in the last 8 hours answers the response of the request that first used it, whatever
//     the request (AWS: "returns the successful response that it caches").
//   - ResolveComponentCandidates keeps a candidate's componentVersion when it exists, runs on the platform and
//     satisfies every requirement, else takes the highest version that does; when none does the answer is
//     ResourceNotFoundException, which the nucleus reads as "no available component version".
//   - GetComponentVersionArtifact answers any artifact of the version, named by its file name or its s3 path,
//     with a URL on the service's own endpoint (/artifacts/{bucket}/{key}, the device API's download path).
//
// Deployments. A deployment is a revision of its target (a thing or a thing group, resolved through the
// awsapi.Registry); its job is an engine deployment whose id is the iotJobId, so the IoT dialect's jobs views show
// it under that id. A new revision supersedes the target's previous one (engine Supersede: its job CANCELED,
// isLatestForTarget false). A thing-group revision is continuous: a thing that joins the group, or a child
// group, gets it; one that leaves has its unfinished execution REMOVED; a restarted service reads the members
// again. deploymentStatus is ACTIVE while the job runs (always, for a thing group), INACTIVE once superseded,
// CANCELED when canceled or aborted, COMPLETED or FAILED when a thing target's one execution ended. Choices
// where AWS is silent or the simulator differs:
//   - No jobExecutionsRolloutConfig releases every execution at once (AWS paces at 1000 a minute); one without
//     maximumPerMinute paces at 1000.
//   - abortConfig counts the things notified so far and fires when the failed percentage exceeds the threshold.
//   - A deleted revision leaves its target without a latest one; the next revision still numbers on.
//   - coreDeviceExecutionStatus is the job execution's status, COMPLETED for a thing target's success, and
//     CANCELED for a thing that left the group; reason is the device's detailed-deployment-status.
//
// Core devices are read from the deployments' executions: a thing is one once a deployment targets it by its
// thing ARN or it reports on a deployment's execution. It is UNHEALTHY when its last deployment outcome is a
// failure, or when the fleet status it published since says so, else HEALTHY; platform and architecture are
// the ones it reported last, core version is unknown. Its installed components are the root components of its
// last succeeded deployment, in the lifecycle states its fleet status reports for that deployment's set
// (RUNNING until it reports), or BROKEN when a later deployment failed with COMPONENT_BROKEN naming the
// component. DeleteCoreDevice forgets the device until it is targeted or reports again.
//
// The fleet status service: devices publish their components' lifecycle states outside deployments to
// POST /topics/$aws/things/{thing}/greengrassv2/health/json (fleetstatus.go), a fleetlab route modeled on the
// nucleus's MQTT message and the IoT data plane's Publish; the dialect mounts it beside the device API.
package greengrassv2

import (
	_ "embed"
	"errors"
	"fmt"
	"net/http"
	"regexp"
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

// Kind is the dialect's name in the service's list of dialects.
const Kind = "greengrassv2"

// TokenLifetime is how long a clientToken's response is remembered.
const TokenLifetime = 8 * time.Hour

// Options are the dialect's dependencies. Nil and zero fields get defaults in New.
type Options struct {
	// Store keeps the dialect's resources; required.
	Store store.Store
	// Clock is the service clock (nil: the real clock).
	Clock clock.Clock
	// Objects checks the s3:// artifacts of recipes; nil leaves them unchecked.
	Objects awsapi.Objects
	// Region and Account appear in ARNs (defaults "us-east-1" and "123456789012").
	Region, Account string
	// Engine runs deployments; nil serves the components API only.
	Engine *engine.Engine
	// Registry resolves deployment targets and tells of things joining and leaving thing groups; nil makes
	// every target unknown.
	Registry awsapi.Registry
	// IDs makes deployment and job ids (nil: awsapi.RandomIDs).
	IDs *awsapi.IDs
}

// Service is the Greengrass V2 dialect.
type Service struct {
	store   store.Store
	clock   clock.Clock
	objects awsapi.Objects
	region  string
	account string
	model   *model.Model
	rec     awsapi.Records
	tokens  awsapi.Tokens

	engine   *engine.Engine
	registry awsapi.Registry
	ids      *awsapi.IDs
	// deploying serialises the creation and deletion of deployments, which read and write a target's revisions.
	deploying sync.Mutex
	stopWatch func()
}

var _ awsapi.Dialect = (*Service)(nil)

// New returns the dialect over opts.
func New(opts Options) (*Service, error) {
	if opts.Store == nil {
		return nil, errors.New("greengrassv2: a store is required")
	}
	m, err := LoadModel()
	if err != nil {
		return nil, err
	}
	s := &Service{store: opts.Store, clock: clock.Or(opts.Clock), objects: opts.Objects, region: opts.Region,
		account: opts.Account, model: m}
	if s.region == "" {
		s.region = "us-east-1"
	}
	if s.account == "" {
		s.account = "123456789012"
	}
	s.rec = awsapi.NewRecords("greengrass", s.region, s.account)
	s.tokens = s.rec.Tokens(TokenLifetime, s.clock)
	s.engine, s.registry, s.ids = opts.Engine, opts.Registry, opts.IDs
	if s.ids == nil {
		s.ids = awsapi.RandomIDs()
	}
	if s.engine != nil && s.registry != nil {
		s.stopWatch = s.registry.WatchMembership(s.membershipChanged)
		if err := s.reconcile(); err != nil {
			s.Close()
			return nil, fmt.Errorf("greengrassv2: follow thing-group targets: %w", err)
		}
	}
	return s, nil
}

// Close stops following the registry's thing groups.
func (s *Service) Close() {
	if s.stopWatch != nil {
		s.stopWatch()
		s.stopWatch = nil
	}
}

// NewDialect builds the dialect as the service's list of dialects does: over deps; it has no options (nil).
func NewDialect(deps awsapi.DialectDeps, options any) (awsapi.Dialect, error) {
	if options != nil {
		return nil, fmt.Errorf("greengrassv2: options are a %T, want none", options)
	}
	return New(Options{Store: deps.Store, Clock: deps.Clock, Objects: deps.Objects, Region: deps.Region,
		Account: deps.Account, Engine: deps.Engine, Registry: deps.Registry, IDs: deps.IDs})
}

// LoadModel returns the Greengrass V2 model the dialect validates with.
func LoadModel() (*model.Model, error) {
	m, err := model.Load(modelJSON)
	if err != nil {
		return nil, fmt.Errorf("greengrassv2: load model: %w", err)
	}
	return m, nil
}

// ModelJSON returns the botocore service model the dialect implements.
func ModelJSON() []byte { return slices.Clone(modelJSON) }

// Name returns Kind.
func (s *Service) Name() string { return Kind }

// Model returns the model the dialect serves.
func (s *Service) Model() *model.Model { return s.model }

// KnowsThing reports whether the thing is a device of a Greengrass deployment: a core device, or a thing a
// deployment's job has an execution for.
func (s *Service) KnowsThing(thing string) bool { return s.knowsDevice(thing) }

// Register adds the dialect's operations to h.
func (s *Service) Register(h *awsapi.Handler) error {
	if s.engine != nil {
		if err := h.Mount(topicsPrefix, fleetStatusHandler{s}); err != nil {
			return fmt.Errorf("greengrassv2: %w", err)
		}
	}
	return h.Register(awsapi.Service{
		Model:         s.model,
		Name:          "greengrass",
		Dialect:       Kind,
		ARNService:    "greengrass",
		MessageMember: "message",
		Invalid:       invalidRequest,
	}, s.operations())
}

func (s *Service) operations() map[string]awsapi.Operation {
	op := awsapi.Handle
	ops := map[string]awsapi.Operation{
		"CreateComponentVersion":      op(s.createComponentVersion),
		"DescribeComponent":           op(s.describeComponent),
		"GetComponent":                op(s.getComponent),
		"ListComponents":              op(s.listComponents),
		"ListComponentVersions":       op(s.listComponentVersions),
		"DeleteComponent":             op(s.deleteComponent),
		"GetComponentVersionArtifact": op(s.getComponentVersionArtifact),
		"ResolveComponentCandidates":  op(s.resolveComponentCandidates),
	}
	if s.engine != nil {
		ops["CreateDeployment"] = op(s.createDeployment)
		ops["GetDeployment"] = op(s.getDeployment)
		ops["ListDeployments"] = op(s.listDeployments)
		ops["CancelDeployment"] = op(s.cancelDeployment)
		ops["DeleteDeployment"] = op(s.deleteDeployment)
		ops["ListEffectiveDeployments"] = op(s.listEffectiveDeployments)
		ops["GetCoreDevice"] = op(s.getCoreDevice)
		ops["ListCoreDevices"] = op(s.listCoreDevices)
		ops["DeleteCoreDevice"] = op(s.deleteCoreDevice)
		ops["ListInstalledComponents"] = op(s.listInstalledComponents)
	}
	for name, o := range s.tagging().Operations() {
		ops[name] = o
	}
	return ops
}

// Validation reasons (ValidationExceptionReason).
const (
	reasonCannotParse = "CANNOT_PARSE"
	reasonField       = "FIELD_VALIDATION_FAILED"
	reasonOther       = "OTHER"
)

// fieldError is a ValidationExceptionField.
type fieldError struct {
	Name    string `json:"name"`
	Message string `json:"message"`
}

// validation returns a ValidationException with reason and fields.
func validation(reason, msg string, fields ...fieldError) *awsapi.Error {
	e := awsapi.NewError("ValidationException", http.StatusBadRequest, "%s", msg).With("reason", reason)
	if len(fields) > 0 {
		e = e.With("fields", fields)
	}
	return e
}

// fieldInvalid is a ValidationException for one member.
func fieldInvalid(member, format string, args ...any) *awsapi.Error {
	msg := fmt.Sprintf(format, args...)
	return validation(reasonField, msg, fieldError{Name: member, Message: msg})
}

// modelViolation reads the handler's model-validation message ("1 validation error detected: Value … at
// 'member' failed to satisfy constraint: …").
var modelViolation = regexp.MustCompile(`(?s)^1 validation error detected: Value .* at '([^']*)' failed to ` +
	`satisfy constraint: (.*)$`)

// bodyUnread is the handler's message for a body too large or unreadable.
var bodyUnread = regexp.MustCompile(`^request body (is larger|could not be read)`)

// invalidRequest is the dialect's answer to a request the handler refuses before the operation: a broken model
// constraint names its member in fields (FIELD_VALIDATION_FAILED); anything else is a body that does not parse
// (CANNOT_PARSE) or is too large (OTHER).
func invalidRequest(msg string) *awsapi.Error {
	if m := modelViolation.FindStringSubmatch(msg); m != nil {
		return validation(reasonField, msg, fieldError{Name: m[1], Message: m[2]})
	}
	if bodyUnread.MatchString(msg) {
		return validation(reasonOther, msg)
	}
	return validation(reasonCannotParse, msg)
}

// Resource types in the errors' resourceType.
const (
	typeComponent        = "component"
	typeComponentVersion = "componentVersion"
	typeArtifact         = "artifact"
)

func notFound(id, resourceType, format string, args ...any) *awsapi.Error {
	return awsapi.NewError("ResourceNotFoundException", http.StatusNotFound, format, args...).
		With("resourceId", id).With("resourceType", resourceType)
}

func conflict(id, resourceType, format string, args ...any) *awsapi.Error {
	return awsapi.NewError("ConflictException", http.StatusConflict, format, args...).
		With("resourceId", id).With("resourceType", resourceType)
}
