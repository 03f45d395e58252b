// Package appconfig is the AWS AppConfig dialect of the deployment service: applications, environments with
// monitors, hosted configuration profiles with JSON_SCHEMA validators, hosted configuration versions, deployment
// strategies (the predefined AppConfig.* ones and custom ones), deployments and tags, wire-compatible with the AWS
// SDK for Go v2 appconfig client (service/appconfig v1.44.2) and the model in model.json (botocore appconfig
// 2019-10-09). On the same endpoint it serves AppConfigData for the devices (StartConfigurationSession,
// GetLatestConfiguration; datamodel.json, botocore appconfigdata 2021-11-11) and the subset of CloudWatch a
// deployment's monitors need (metrics and alarms, alarms.go and cloudwatch.go).
//
// A deployment is an engine deployment of Kind "appconfig" with Growth pacing, grouped by environment so an
// environment has one deployment in progress at a time. It has no targets: AppConfig clients are anonymous
// sessions, and which of them see the new version follows the deployment's percentage, each client bucketed
// stably by its identifier (data.go). The engine keeps the clock-driven part — the growth schedule, bake, the
// alarm that rolls back, the stop — and the dialect reads AppConfig's states, PercentageComplete and EventLog off
// it (deployments.go, in one place).
//
// Deviations from AWS, each a choice where AWS is silent:
//   - ROLLING_BACK is not observable: a rollback (an alarm, a stop) takes no time, so a deployment goes from
//     DEPLOYING or BAKING to ROLLED_BACK at one instant, with ROLLBACK_STARTED and ROLLBACK_COMPLETED both in its
//     event log. PercentageComplete of a rolled-back deployment is the percentage it had reached.
//   - VALIDATING is not observable either: validators run inside StartDeployment, which refuses a version that
//     fails them (BadRequestException).
//   - Only hosted configurations ("hosted" location) are deployed; a profile of another location is refused at
//     StartDeployment. LAMBDA validators are stored but cannot run here, so StartDeployment refuses a profile
//     that has one.
//   - Alarms are evaluated whenever the service is called — every device poll, every metric a device puts, every
//     control call — at the instant of the call, not by a timer of their own.
package appconfig

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

//go:embed datamodel.json
var dataModelJSON []byte

// Kind is the engine deployment kind of AppConfig deployments.
const Kind = "appconfig"

// Quotas are the service limits. Zero fields take the AWS defaults.
type Quotas struct {
	Applications          int // per account (AWS: 100)
	EnvironmentsPerApp    int // (AWS: 20)
	ProfilesPerApp        int // (AWS: 100)
	DeploymentStrategies  int // custom ones, per account (AWS: 20)
	HostedVersionsPerProf int // hosted versions per profile (default 1000)
	// MaxHostedSize is the largest hosted configuration in bytes (AWS: 2 MB).
	MaxHostedSize int
}

// Options are the dialect's dependencies and choices. Nil and zero fields get defaults in New.
type Options struct {
	// Engine runs the deployments; Store keeps the dialect's resources. Both required.
	Engine *engine.Engine
	Store  store.Store
	// Clock is the service clock (nil: the real clock).
	Clock clock.Clock
	// Region and Account appear in ARNs (defaults "us-east-1" and "123456789012").
	Region, Account string
	// IDs makes resource ids and session ids (nil: awsapi.RandomIDs).
	IDs *awsapi.IDs
	// Quotas are the service limits.
	Quotas Quotas
	// HoldLastStep spaces a strategy's growth steps D/(N+1) apart and holds at 100 % until D, as AWS's one
	// captured timeline shows, instead of the documented D/N (the default).
	HoldLastStep bool
}

// DialectOptions are the options the service's list of dialects passes (nil: defaults).
type DialectOptions struct {
	Quotas       Quotas
	HoldLastStep bool
}

// RevertWindow is how long after completion a deployment may be reverted (StopDeployment with Allow-Revert).
const RevertWindow = 72 * time.Hour

// Service is the AppConfig dialect.
type Service struct {
	engine  *engine.Engine
	store   store.Store
	clock   clock.Clock
	region  string
	account string
	ids     *awsapi.IDs
	quotas  Quotas
	hold    bool
	model   *model.Model
	data    *model.Model
	rec     awsapi.Records

	// deploys serialises starting, stopping and rolling back deployments and the alarm watch, whose checks read
	// the engine outside a store transaction.
	deploys sync.Mutex
	// alarms are the CloudWatch alarms and metrics (alarms.go).
	alarms *alarmStore
}

var _ awsapi.Dialect = (*Service)(nil)

// New returns the dialect over opts.
func New(opts Options) (*Service, error) {
	if opts.Engine == nil || opts.Store == nil {
		return nil, errors.New("appconfig: an engine and a store are required")
	}
	m, err := model.Load(modelJSON)
	if err != nil {
		return nil, fmt.Errorf("appconfig: load model: %w", err)
	}
	dm, err := model.Load(dataModelJSON)
	if err != nil {
		return nil, fmt.Errorf("appconfig: load appconfigdata model: %w", err)
	}
	s := &Service{engine: opts.Engine, store: opts.Store, clock: clock.Or(opts.Clock), region: opts.Region,
		account: opts.Account, ids: opts.IDs, quotas: opts.Quotas, hold: opts.HoldLastStep, model: m, data: dm}
	if s.ids == nil {
		s.ids = awsapi.RandomIDs()
	}
	if s.region == "" {
		s.region = "us-east-1"
	}
	if s.account == "" {
		s.account = "123456789012"
	}
	q := &s.quotas
	q.Applications = cmpOr(q.Applications, 100)
	q.EnvironmentsPerApp = cmpOr(q.EnvironmentsPerApp, 20)
	q.ProfilesPerApp = cmpOr(q.ProfilesPerApp, 100)
	q.DeploymentStrategies = cmpOr(q.DeploymentStrategies, 20)
	q.HostedVersionsPerProf = cmpOr(q.HostedVersionsPerProf, 1000)
	q.MaxHostedSize = cmpOr(q.MaxHostedSize, 2<<20)
	s.rec = awsapi.NewRecords("appconfig", s.region, s.account)
	s.alarms = newAlarmStore(s.store, s.region, s.account)
	return s, nil
}

func cmpOr(v, d int) int {
	if v <= 0 {
		return d
	}
	return v
}

// NewDialect builds the dialect as the service's list of dialects does: over deps, with options a DialectOptions
// (nil: the defaults).
func NewDialect(deps awsapi.DialectDeps, options any) (awsapi.Dialect, error) {
	var o DialectOptions
	switch v := options.(type) {
	case nil:
	case DialectOptions:
		o = v
	default:
		return nil, fmt.Errorf("appconfig: options are a %T, want an appconfig.DialectOptions", options)
	}
	return New(Options{Engine: deps.Engine, Store: deps.Store, Clock: deps.Clock, Region: deps.Region,
		Account: deps.Account, IDs: deps.IDs, Quotas: o.Quotas, HoldLastStep: o.HoldLastStep})
}

// Name returns Kind.
func (s *Service) Name() string { return Kind }

// Model returns the AppConfig model the dialect serves (it serves AppConfigData's beside it: DataModel).
func (s *Service) Model() *model.Model { return s.model }

// DataModel returns the AppConfigData model the dialect serves for devices.
func (s *Service) DataModel() *model.Model { return s.data }

// ModelJSON returns the botocore AppConfig model the dialect implements.
func ModelJSON() []byte { return slices.Clone(modelJSON) }

// KnowsThing reports false: AppConfig clients are anonymous sessions, not things of the device API.
func (s *Service) KnowsThing(string) bool { return false }

// Register adds AppConfig, AppConfigData and the CloudWatch subset to h.
func (s *Service) Register(h *awsapi.Handler) error {
	if err := h.Register(awsapi.Service{Model: s.model, Name: "appconfig", Dialect: Kind, ARNService: "appconfig",
		MessageMember: "Message", Invalid: badRequest, Internal: internal}, s.operations()); err != nil {
		return err
	}
	if err := h.Register(awsapi.Service{Model: s.data, Name: "appconfig", Dialect: Kind, ARNService: "appconfig",
		MessageMember: "Message", Invalid: dataBadRequest, Internal: internal},
		map[string]awsapi.Operation{
			"StartConfigurationSession": awsapi.Handle(s.startSession),
			"GetLatestConfiguration":    awsapi.Handle(s.getLatestConfiguration),
		}); err != nil {
		return err
	}
	return s.registerCloudWatch(h)
}

func (s *Service) operations() map[string]awsapi.Operation {
	op := awsapi.Handle
	ops := map[string]awsapi.Operation{
		"CreateApplication":                op(s.createApplication),
		"GetApplication":                   op(s.getApplication),
		"ListApplications":                 op(s.listApplications),
		"UpdateApplication":                op(s.updateApplication),
		"DeleteApplication":                op(s.deleteApplication),
		"CreateEnvironment":                op(s.createEnvironment),
		"GetEnvironment":                   op(s.getEnvironment),
		"ListEnvironments":                 op(s.listEnvironments),
		"UpdateEnvironment":                op(s.updateEnvironment),
		"DeleteEnvironment":                op(s.deleteEnvironment),
		"CreateConfigurationProfile":       op(s.createProfile),
		"GetConfigurationProfile":          op(s.getProfile),
		"ListConfigurationProfiles":        op(s.listProfiles),
		"UpdateConfigurationProfile":       op(s.updateProfile),
		"DeleteConfigurationProfile":       op(s.deleteProfile),
		"CreateHostedConfigurationVersion": {Handle: s.createHostedVersion, MaxBody: 3 << 20},
		"GetHostedConfigurationVersion":    op(s.getHostedVersion),
		"ListHostedConfigurationVersions":  op(s.listHostedVersions),
		"DeleteHostedConfigurationVersion": op(s.deleteHostedVersion),
		"ValidateConfiguration":            op(s.validateConfiguration),
		"CreateDeploymentStrategy":         op(s.createStrategy),
		"GetDeploymentStrategy":            op(s.getStrategy),
		"ListDeploymentStrategies":         op(s.listStrategies),
		"UpdateDeploymentStrategy":         op(s.updateStrategy),
		"DeleteDeploymentStrategy":         op(s.deleteStrategy),
		"StartDeployment":                  op(s.startDeployment),
		"GetDeployment":                    op(s.getDeployment),
		"ListDeployments":                  op(s.listDeployments),
		"StopDeployment":                   op(s.stopDeployment),
	}
	for name, o := range s.tagging().Operations() {
		ops[name] = o
	}
	return ops
}

func (s *Service) tagging() awsapi.Tagging {
	return awsapi.Tagging{Records: s.rec, Store: s.store, Invalid: badRequest,
		Members: awsapi.TagMembers{ARN: "ResourceArn", Tags: "Tags", TagKeys: "TagKeys"},
		Taggable: func(tx store.Tx, arn string) error {
			if _, _, found, err := s.rec.FindByARN(tx, arn); err != nil || found {
				return err
			}
			return notFound("", "Resource %s not found", arn)
		}}
}

// Errors, all with the capital Message of the model.

var modelViolation = regexp.MustCompile(`(?s)^1 validation error detected: Value (.*) at '([^']*)' failed to ` +
	`satisfy constraint: (.*)$`)

// badRequest is AppConfig's BadRequestException (400). A broken model constraint names its member as an
// InvalidConfiguration detail.
func badRequest(msg string) *awsapi.Error {
	e := awsapi.NewError("BadRequestException", http.StatusBadRequest, "%s", msg)
	if m := modelViolation.FindStringSubmatch(msg); m != nil {
		e = e.With("Reason", "InvalidConfiguration").With("Details", map[string]any{
			"InvalidConfiguration": []invalidDetail{{Constraint: m[3], Location: m[2], Reason: m[3],
				Type: "Constraint", Value: m[1]}}})
	}
	return e
}

func badRequestf(format string, args ...any) *awsapi.Error {
	return badRequest(fmt.Sprintf(format, args...))
}

// invalidDetail is an InvalidConfigurationDetail of a BadRequestException.
type invalidDetail struct {
	Constraint string `json:"Constraint,omitempty"`
	Location   string `json:"Location,omitempty"`
	Reason     string `json:"Reason,omitempty"`
	Type       string `json:"Type,omitempty"`
	Value      string `json:"Value,omitempty"`
}

// invalidConfiguration is the BadRequestException of a configuration that fails a validator.
func invalidConfiguration(msg string, details ...invalidDetail) *awsapi.Error {
	return awsapi.NewError("BadRequestException", http.StatusBadRequest, "%s", msg).
		With("Reason", "InvalidConfiguration").
		With("Details", map[string]any{"InvalidConfiguration": details})
}

func notFound(resource, format string, args ...any) *awsapi.Error {
	e := awsapi.NewError("ResourceNotFoundException", http.StatusNotFound, format, args...)
	if resource != "" {
		e = e.With("ResourceName", resource)
	}
	return e
}

func conflict(format string, args ...any) *awsapi.Error {
	return awsapi.NewError("ConflictException", http.StatusConflict, format, args...)
}

func quotaExceeded(format string, args ...any) *awsapi.Error {
	return awsapi.NewError("ServiceQuotaExceededException", http.StatusPaymentRequired, format, args...)
}

func internal(error) *awsapi.Error {
	return awsapi.NewError("InternalServerException", http.StatusInternalServerError, "Internal server error")
}
