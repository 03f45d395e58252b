package appconfig

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/store"
)

// Store buckets of the dialect's own records (awsapi.Records keeps ARNs and tags in "appconfig.*" beside them).
const (
	bucketApps        = "appconfig.applications" // app id
	bucketEnvs        = "appconfig.environments" // app id/env id
	bucketProfiles    = "appconfig.profiles"     // app id/profile id
	bucketVersions    = "appconfig.versions"     // app id/profile id/%010d
	bucketStrategies  = "appconfig.strategies"   // strategy id
	bucketDeployments = "appconfig.deployments"  // app id/env id/%010d
)

// Record kinds in the ARN index.
const (
	kindApp      = "application"
	kindEnv      = "environment"
	kindProfile  = "profile"
	kindStrategy = "strategy"
	kindDeploy   = "deployment"
)

// Configuration profile types.
const (
	TypeFreeform     = "AWS.Freeform"
	TypeFeatureFlags = "AWS.AppConfig.FeatureFlags"
)

// Monitor is an environment's alarm (AppConfig's Monitor shape).
type Monitor struct {
	AlarmArn     string `json:"AlarmArn"`
	AlarmRoleArn string `json:"AlarmRoleArn,omitempty"`
}

// Validator is a profile's validator.
type Validator struct {
	Type    string `json:"Type"`
	Content string `json:"Content"`
}

type appRec struct {
	Id          string `json:"Id"`
	Name        string `json:"Name"`
	Description string `json:"Description,omitempty"`
}

type envRec struct {
	ApplicationId string    `json:"ApplicationId"`
	Id            string    `json:"Id"`
	Name          string    `json:"Name"`
	Description   string    `json:"Description,omitempty"`
	Monitors      []Monitor `json:"Monitors,omitempty"`
}

type profileRec struct {
	ApplicationId    string      `json:"ApplicationId"`
	Id               string      `json:"Id"`
	Name             string      `json:"Name"`
	Description      string      `json:"Description,omitempty"`
	LocationUri      string      `json:"LocationUri"`
	RetrievalRoleArn string      `json:"RetrievalRoleArn,omitempty"`
	Validators       []Validator `json:"Validators,omitempty"`
	Type             string      `json:"Type"`
	KmsKeyIdentifier string      `json:"KmsKeyIdentifier,omitempty"`
}

type versionRec struct {
	ApplicationId          string `json:"ApplicationId"`
	ConfigurationProfileId string `json:"ConfigurationProfileId"`
	VersionNumber          int    `json:"VersionNumber"`
	Description            string `json:"Description,omitempty"`
	ContentType            string `json:"ContentType"`
	VersionLabel           string `json:"VersionLabel,omitempty"`
	Content                []byte `json:"Content"`
}

// Strategy is a deployment strategy (AppConfig's DeploymentStrategy shape).
type Strategy struct {
	Id                          string  `json:"Id"`
	Name                        string  `json:"Name"`
	Description                 string  `json:"Description,omitempty"`
	DeploymentDurationInMinutes int     `json:"DeploymentDurationInMinutes"`
	GrowthType                  string  `json:"GrowthType"`
	GrowthFactor                float64 `json:"GrowthFactor"`
	FinalBakeTimeInMinutes      int     `json:"FinalBakeTimeInMinutes"`
	ReplicateTo                 string  `json:"ReplicateTo,omitempty"`
}

// Predefined are AWS's predefined deployment strategies, as AWS names and parameterises them.
var Predefined = []Strategy{
	{Id: "AppConfig.AllAtOnce", Name: "AppConfig.AllAtOnce", GrowthType: "LINEAR", GrowthFactor: 100,
		FinalBakeTimeInMinutes: 10, ReplicateTo: "NONE",
		Description: "Quick: All at once deployment"},
	{Id: "AppConfig.Linear50PercentEvery30Seconds", Name: "AppConfig.Linear50PercentEvery30Seconds",
		DeploymentDurationInMinutes: 1, GrowthType: "LINEAR", GrowthFactor: 50, FinalBakeTimeInMinutes: 1,
		ReplicateTo: "NONE", Description: "Test/Demo: 50% every 30 seconds"},
	{Id: "AppConfig.Canary10Percent20Minutes", Name: "AppConfig.Canary10Percent20Minutes",
		DeploymentDurationInMinutes: 20, GrowthType: "EXPONENTIAL", GrowthFactor: 10, FinalBakeTimeInMinutes: 10,
		ReplicateTo: "NONE", Description: "AWS Recommended: Exponential growth over 20 minutes"},
	{Id: "AppConfig.Linear20PercentEvery6Minutes", Name: "AppConfig.Linear20PercentEvery6Minutes",
		DeploymentDurationInMinutes: 30, GrowthType: "LINEAR", GrowthFactor: 20, FinalBakeTimeInMinutes: 30,
		ReplicateTo: "NONE", Description: "AWS Recommended: 20% every 6 minutes"},
}

func predefined(id string) (Strategy, bool) {
	for _, p := range Predefined {
		if p.Id == id {
			return p, true
		}
	}
	return Strategy{}, false
}

func (s *Service) newID() string { return s.ids.Base36(7) }

func (s *Service) appARN(app string) string { return s.rec.ARN("application/" + app) }
func (s *Service) envARN(app, env string) string {
	return s.rec.ARN("application/" + app + "/environment/" + env)
}
func (s *Service) profileARN(app, prof string) string {
	return s.rec.ARN("application/" + app + "/configurationprofile/" + prof)
}
func (s *Service) strategyARN(id string) string { return s.rec.ARN("deploymentstrategy/" + id) }
func (s *Service) deploymentARN(app, env string, n int) string {
	return s.rec.ARN(fmt.Sprintf("application/%s/environment/%s/deployment/%d", app, env, n))
}

func versionKey(app, prof string, n int) string   { return fmt.Sprintf("%s/%s/%010d", app, prof, n) }
func deploymentKey(app, env string, n int) string { return fmt.Sprintf("%s/%s/%010d", app, env, n) }

// count returns how many keys of bucket start with prefix.
func count(tx store.Tx, bucket, prefix string) (int, error) {
	n := 0
	err := tx.ForEach(bucket, prefix, func(string, []byte) error { n++; return nil })
	return n, err
}

func (s *Service) loadApp(tx store.Tx, id string) (*appRec, error) {
	a, err := awsapi.LoadKey[appRec](tx, bucketApps, id)
	if err == nil && a == nil {
		err = notFound(id, "Application %s not found", id)
	}
	return a, err
}

func (s *Service) loadEnv(tx store.Tx, app, env string) (*envRec, error) {
	if _, err := s.loadApp(tx, app); err != nil {
		return nil, err
	}
	e, err := awsapi.LoadKey[envRec](tx, bucketEnvs, app+"/"+env)
	if err == nil && e == nil {
		err = notFound(env, "Environment %s not found in application %s", env, app)
	}
	return e, err
}

func (s *Service) loadProfile(tx store.Tx, app, prof string) (*profileRec, error) {
	if _, err := s.loadApp(tx, app); err != nil {
		return nil, err
	}
	p, err := awsapi.LoadKey[profileRec](tx, bucketProfiles, app+"/"+prof)
	if err == nil && p == nil {
		err = notFound(prof, "Configuration profile %s not found in application %s", prof, app)
	}
	return p, err
}

func (s *Service) loadStrategy(tx store.Tx, id string) (Strategy, error) {
	if p, ok := predefined(id); ok {
		return p, nil
	}
	st, err := awsapi.LoadKey[Strategy](tx, bucketStrategies, id)
	if err != nil {
		return Strategy{}, err
	}
	if st == nil {
		return Strategy{}, notFound(id, "Deployment strategy %s not found", id)
	}
	return *st, nil
}

// list pages the records of bucket under prefix, in key order, as MaxResults and NextToken say.
func list[T any](s *Service, r *awsapi.Request, bucket, prefix string, check func(tx store.Tx) error) (any, error) {
	var in struct {
		MaxResults int    `json:"MaxResults"`
		NextToken  string `json:"NextToken"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	type item struct {
		key string
		v   *T
	}
	var items []item
	err := s.store.View(func(tx store.Tx) error {
		if check != nil {
			if err := check(tx); err != nil {
				return err
			}
		}
		return tx.ForEach(bucket, prefix, func(k string, _ []byte) error {
			v, err := awsapi.LoadKey[T](tx, bucket, k)
			if err == nil && v != nil {
				items = append(items, item{k, v})
			}
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	page, next, err := awsapi.Page(items, func(i item) string { return i.key }, r.Operation+"/"+prefix,
		in.NextToken, cmpOr(in.MaxResults, 50))
	if err != nil {
		return nil, badRequest("The next token is not valid")
	}
	out := make([]*T, len(page))
	for i, it := range page {
		out[i] = it.v
	}
	return listOut[*T]{Items: out, NextToken: next}, nil
}

type listOut[T any] struct {
	Items     []T    `json:"Items"`
	NextToken string `json:"NextToken,omitempty"`
}

// Applications.

func (s *Service) createApplication(r *awsapi.Request) (any, error) {
	var in struct {
		Name        string            `json:"Name"`
		Description string            `json:"Description"`
		Tags        map[string]string `json:"Tags"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	a := appRec{Id: s.newID(), Name: in.Name, Description: in.Description}
	err := s.store.Batch(func(tx store.Tx) error {
		n, err := count(tx, bucketApps, "")
		if err != nil {
			return err
		}
		if n >= s.quotas.Applications {
			return quotaExceeded("The number of applications has reached the limit of %d", s.quotas.Applications)
		}
		return s.rec.Insert(tx, bucketApps, kindApp, a.Id, s.appARN(a.Id), &a, in.Tags)
	})
	if err != nil {
		return nil, err
	}
	return &a, nil
}

func (s *Service) getApplication(r *awsapi.Request) (any, error) {
	id, _ := r.Input["ApplicationId"].(string)
	var a *appRec
	err := s.store.View(func(tx store.Tx) (err error) { a, err = s.loadApp(tx, id); return err })
	return a, err
}

func (s *Service) listApplications(r *awsapi.Request) (any, error) {
	return list[appRec](s, r, bucketApps, "", nil)
}

func (s *Service) updateApplication(r *awsapi.Request) (any, error) {
	var in struct {
		ApplicationId string  `json:"ApplicationId"`
		Name          *string `json:"Name"`
		Description   *string `json:"Description"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	var a *appRec
	err := s.store.Batch(func(tx store.Tx) (err error) {
		if a, err = s.loadApp(tx, in.ApplicationId); err != nil {
			return err
		}
		if in.Name != nil {
			a.Name = *in.Name
		}
		if in.Description != nil {
			a.Description = *in.Description
		}
		return awsapi.PutJSON(tx, bucketApps, a.Id, a)
	})
	return a, err
}

func (s *Service) deleteApplication(r *awsapi.Request) (any, error) {
	id, _ := r.Input["ApplicationId"].(string)
	err := s.store.Batch(func(tx store.Tx) error {
		if _, err := s.loadApp(tx, id); err != nil {
			return err
		}
		// AWS refuses to delete an application with environments or profiles only through the console's
		// checks; the API deletes it and leaves them unreachable. Delete them with it.
		for _, b := range []string{bucketEnvs, bucketProfiles} {
			var keys []string
			if err := tx.ForEach(b, id+"/", func(k string, _ []byte) error { keys = append(keys, k); return nil }); err != nil {
				return err
			}
			for _, k := range keys {
				parts := strings.SplitN(k, "/", 2)
				arn := s.envARN(parts[0], parts[1])
				if b == bucketProfiles {
					arn = s.profileARN(parts[0], parts[1])
				}
				if err := s.rec.Remove(tx, b, k, arn); err != nil {
					return err
				}
			}
		}
		return s.rec.Remove(tx, bucketApps, id, s.appARN(id))
	})
	return struct{}{}, err
}

// Environments.

func (s *Service) createEnvironment(r *awsapi.Request) (any, error) {
	var in struct {
		ApplicationId string            `json:"ApplicationId"`
		Name          string            `json:"Name"`
		Description   string            `json:"Description"`
		Monitors      []Monitor         `json:"Monitors"`
		Tags          map[string]string `json:"Tags"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	if len(in.Monitors) > 5 {
		return nil, badRequest("An environment can have at most 5 monitors")
	}
	e := envRec{ApplicationId: in.ApplicationId, Id: s.newID(), Name: in.Name, Description: in.Description,
		Monitors: in.Monitors}
	err := s.store.Batch(func(tx store.Tx) error {
		if _, err := s.loadApp(tx, in.ApplicationId); err != nil {
			return err
		}
		n, err := count(tx, bucketEnvs, in.ApplicationId+"/")
		if err != nil {
			return err
		}
		if n >= s.quotas.EnvironmentsPerApp {
			return quotaExceeded("The number of environments in application %s has reached the limit of %d",
				in.ApplicationId, s.quotas.EnvironmentsPerApp)
		}
		return s.rec.Insert(tx, bucketEnvs, kindEnv, e.ApplicationId+"/"+e.Id, s.envARN(e.ApplicationId, e.Id),
			&e, in.Tags)
	})
	if err != nil {
		return nil, err
	}
	return s.envOut(&e, EnvReady), nil
}

// environmentOut is the Environment shape: the record with its State.
type environmentOut struct {
	ApplicationId string    `json:"ApplicationId"`
	Id            string    `json:"Id"`
	Name          string    `json:"Name"`
	Description   string    `json:"Description,omitempty"`
	State         string    `json:"State"`
	Monitors      []Monitor `json:"Monitors"`
}

func (s *Service) envOut(e *envRec, state string) environmentOut {
	mon := e.Monitors
	if mon == nil {
		mon = []Monitor{}
	}
	return environmentOut{ApplicationId: e.ApplicationId, Id: e.Id, Name: e.Name, Description: e.Description,
		State: state, Monitors: mon}
}

func (s *Service) getEnvironment(r *awsapi.Request) (any, error) {
	app, _ := r.Input["ApplicationId"].(string)
	env, _ := r.Input["EnvironmentId"].(string)
	s.watch()
	var e, latest = (*envRec)(nil), (*deploymentRec)(nil)
	err := s.store.View(func(tx store.Tx) (err error) {
		if e, err = s.loadEnv(tx, app, env); err != nil {
			return err
		}
		latest, err = s.latestDeployment(tx, app, env)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.envOut(e, s.environmentState(latest)), nil
}

func (s *Service) listEnvironments(r *awsapi.Request) (any, error) {
	app, _ := r.Input["ApplicationId"].(string)
	s.watch()
	res, err := list[envRec](s, r, bucketEnvs, app+"/", func(tx store.Tx) error {
		_, err := s.loadApp(tx, app)
		return err
	})
	if err != nil {
		return nil, err
	}
	page := res.(listOut[*envRec])
	out := listOut[environmentOut]{Items: []environmentOut{}, NextToken: page.NextToken}
	latest := make([]*deploymentRec, len(page.Items))
	err = s.store.View(func(tx store.Tx) (err error) {
		for i, e := range page.Items {
			if latest[i], err = s.latestDeployment(tx, e.ApplicationId, e.Id); err != nil {
				return err
			}
		}
		return nil
	})
	for i, e := range page.Items {
		out.Items = append(out.Items, s.envOut(e, s.environmentState(latest[i])))
	}
	return out, err
}

func (s *Service) updateEnvironment(r *awsapi.Request) (any, error) {
	var in struct {
		ApplicationId string     `json:"ApplicationId"`
		EnvironmentId string     `json:"EnvironmentId"`
		Name          *string    `json:"Name"`
		Description   *string    `json:"Description"`
		Monitors      *[]Monitor `json:"Monitors"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	if in.Monitors != nil && len(*in.Monitors) > 5 {
		return nil, badRequest("An environment can have at most 5 monitors")
	}
	var e, latest = (*envRec)(nil), (*deploymentRec)(nil)
	err := s.store.Batch(func(tx store.Tx) (err error) {
		if e, err = s.loadEnv(tx, in.ApplicationId, in.EnvironmentId); err != nil {
			return err
		}
		if in.Name != nil {
			e.Name = *in.Name
		}
		if in.Description != nil {
			e.Description = *in.Description
		}
		if in.Monitors != nil {
			e.Monitors = *in.Monitors
		}
		if latest, err = s.latestDeployment(tx, e.ApplicationId, e.Id); err != nil {
			return err
		}
		return awsapi.PutJSON(tx, bucketEnvs, e.ApplicationId+"/"+e.Id, e)
	})
	if err != nil {
		return nil, err
	}
	return s.envOut(e, s.environmentState(latest)), nil
}

func (s *Service) deleteEnvironment(r *awsapi.Request) (any, error) {
	app, _ := r.Input["ApplicationId"].(string)
	env, _ := r.Input["EnvironmentId"].(string)
	s.deploys.Lock()
	defer s.deploys.Unlock()
	if d, ok := s.engine.Active(app + "/" + env); ok {
		return nil, conflict("Environment %s has deployment %s in progress", env, d.ID)
	}
	err := s.store.Batch(func(tx store.Tx) error {
		if _, err := s.loadEnv(tx, app, env); err != nil {
			return err
		}
		return s.rec.Remove(tx, bucketEnvs, app+"/"+env, s.envARN(app, env))
	})
	return struct{}{}, err
}

// Configuration profiles.

func (s *Service) createProfile(r *awsapi.Request) (any, error) {
	var in struct {
		ApplicationId    string            `json:"ApplicationId"`
		Name             string            `json:"Name"`
		Description      string            `json:"Description"`
		LocationUri      string            `json:"LocationUri"`
		RetrievalRoleArn string            `json:"RetrievalRoleArn"`
		Validators       []Validator       `json:"Validators"`
		Tags             map[string]string `json:"Tags"`
		Type             string            `json:"Type"`
		KmsKeyIdentifier string            `json:"KmsKeyIdentifier"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	if in.Type == "" {
		in.Type = TypeFreeform
	}
	if in.Type != TypeFreeform && in.Type != TypeFeatureFlags {
		return nil, badRequestf("Type %s is not valid: it is %s or %s", in.Type, TypeFreeform, TypeFeatureFlags)
	}
	if err := checkValidators(in.Validators); err != nil {
		return nil, err
	}
	p := profileRec{ApplicationId: in.ApplicationId, Id: s.newID(), Name: in.Name, Description: in.Description,
		LocationUri: in.LocationUri, RetrievalRoleArn: in.RetrievalRoleArn, Validators: in.Validators, Type: in.Type,
		KmsKeyIdentifier: in.KmsKeyIdentifier}
	err := s.store.Batch(func(tx store.Tx) error {
		if _, err := s.loadApp(tx, in.ApplicationId); err != nil {
			return err
		}
		n, err := count(tx, bucketProfiles, in.ApplicationId+"/")
		if err != nil {
			return err
		}
		if n >= s.quotas.ProfilesPerApp {
			return quotaExceeded("The number of configuration profiles in application %s has reached the limit "+
				"of %d", in.ApplicationId, s.quotas.ProfilesPerApp)
		}
		return s.rec.Insert(tx, bucketProfiles, kindProfile, p.ApplicationId+"/"+p.Id,
			s.profileARN(p.ApplicationId, p.Id), &p, in.Tags)
	})
	if err != nil {
		return nil, err
	}
	return &p, nil
}

func (s *Service) getProfile(r *awsapi.Request) (any, error) {
	app, _ := r.Input["ApplicationId"].(string)
	prof, _ := r.Input["ConfigurationProfileId"].(string)
	var p *profileRec
	err := s.store.View(func(tx store.Tx) (err error) { p, err = s.loadProfile(tx, app, prof); return err })
	return p, err
}

type profileSummary struct {
	ApplicationId  string   `json:"ApplicationId"`
	Id             string   `json:"Id"`
	Name           string   `json:"Name"`
	LocationUri    string   `json:"LocationUri"`
	ValidatorTypes []string `json:"ValidatorTypes"`
	Type           string   `json:"Type"`
}

func (s *Service) listProfiles(r *awsapi.Request) (any, error) {
	app, _ := r.Input["ApplicationId"].(string)
	typ, _ := r.Input["Type"].(string)
	res, err := list[profileRec](s, r, bucketProfiles, app+"/", func(tx store.Tx) error {
		_, err := s.loadApp(tx, app)
		return err
	})
	if err != nil {
		return nil, err
	}
	page := res.(listOut[*profileRec])
	out := listOut[profileSummary]{Items: []profileSummary{}, NextToken: page.NextToken}
	for _, p := range page.Items {
		if typ != "" && p.Type != typ {
			continue
		}
		types := []string{}
		for _, v := range p.Validators {
			types = append(types, v.Type)
		}
		out.Items = append(out.Items, profileSummary{p.ApplicationId, p.Id, p.Name, p.LocationUri, types, p.Type})
	}
	return out, nil
}

func (s *Service) updateProfile(r *awsapi.Request) (any, error) {
	var in struct {
		ApplicationId          string       `json:"ApplicationId"`
		ConfigurationProfileId string       `json:"ConfigurationProfileId"`
		Name                   *string      `json:"Name"`
		Description            *string      `json:"Description"`
		RetrievalRoleArn       *string      `json:"RetrievalRoleArn"`
		Validators             *[]Validator `json:"Validators"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	if in.Validators != nil {
		if err := checkValidators(*in.Validators); err != nil {
			return nil, err
		}
	}
	var p *profileRec
	err := s.store.Batch(func(tx store.Tx) (err error) {
		if p, err = s.loadProfile(tx, in.ApplicationId, in.ConfigurationProfileId); err != nil {
			return err
		}
		if in.Name != nil {
			p.Name = *in.Name
		}
		if in.Description != nil {
			p.Description = *in.Description
		}
		if in.RetrievalRoleArn != nil {
			p.RetrievalRoleArn = *in.RetrievalRoleArn
		}
		if in.Validators != nil {
			p.Validators = *in.Validators
		}
		return awsapi.PutJSON(tx, bucketProfiles, p.ApplicationId+"/"+p.Id, p)
	})
	return p, err
}

func (s *Service) deleteProfile(r *awsapi.Request) (any, error) {
	app, _ := r.Input["ApplicationId"].(string)
	prof, _ := r.Input["ConfigurationProfileId"].(string)
	err := s.store.Batch(func(tx store.Tx) error {
		if _, err := s.loadProfile(tx, app, prof); err != nil {
			return err
		}
		var keys []string
		if err := tx.ForEach(bucketVersions, app+"/"+prof+"/", func(k string, _ []byte) error {
			keys = append(keys, k)
			return nil
		}); err != nil {
			return err
		}
		for _, k := range keys {
			if err := tx.Delete(bucketVersions, k); err != nil {
				return err
			}
		}
		return s.rec.Remove(tx, bucketProfiles, app+"/"+prof, s.profileARN(app, prof))
	})
	return struct{}{}, err
}

// Hosted configuration versions.

func (s *Service) createHostedVersion(r *awsapi.Request) (any, error) {
	var in struct {
		ApplicationId          string `json:"ApplicationId"`
		ConfigurationProfileId string `json:"ConfigurationProfileId"`
		Description            string `json:"Description"`
		ContentType            string `json:"ContentType"`
		LatestVersionNumber    *int   `json:"LatestVersionNumber"`
		VersionLabel           string `json:"VersionLabel"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	content := r.Body
	if len(content) > s.quotas.MaxHostedSize {
		return nil, awsapi.NewError("PayloadTooLargeException", http.StatusRequestEntityTooLarge,
			"The configuration is %d KB, larger than the limit of %d KB", len(content)/1024,
			s.quotas.MaxHostedSize/1024).With("Measure", "KILOBYTES").
			With("Limit", float64(s.quotas.MaxHostedSize)/1024).With("Size", float64(len(content))/1024)
	}
	var v versionRec
	err := s.store.Batch(func(tx store.Tx) error {
		p, err := s.loadProfile(tx, in.ApplicationId, in.ConfigurationProfileId)
		if err != nil {
			return err
		}
		if p.LocationUri != "hosted" {
			return badRequestf("Configuration profile %s is not hosted (its location is %s)", p.Id, p.LocationUri)
		}
		if p.Type == TypeFeatureFlags {
			if err := checkFeatureFlags(content); err != nil {
				return err
			}
		}
		latest, n := 0, 0
		if err := tx.ForEach(bucketVersions, p.ApplicationId+"/"+p.Id+"/", func(k string, _ []byte) error {
			n++
			num, _ := strconv.Atoi(k[strings.LastIndexByte(k, '/')+1:])
			latest = max(latest, num)
			return nil
		}); err != nil {
			return err
		}
		if in.LatestVersionNumber != nil && *in.LatestVersionNumber != latest {
			return conflict("The latest version number of configuration profile %s is %d, not %d", p.Id, latest,
				*in.LatestVersionNumber)
		}
		if n >= s.quotas.HostedVersionsPerProf {
			return quotaExceeded("Configuration profile %s has reached the limit of %d hosted versions", p.Id,
				s.quotas.HostedVersionsPerProf)
		}
		// Version numbers are never reused, even after a version is deleted.
		seq, err := tx.NextSequence(bucketVersions + "/" + p.ApplicationId + "/" + p.Id)
		if err != nil {
			return err
		}
		num := max(int(seq), latest+1)
		for int(seq) < num { // keep the sequence ahead of numbers in use
			if seq, err = tx.NextSequence(bucketVersions + "/" + p.ApplicationId + "/" + p.Id); err != nil {
				return err
			}
		}
		v = versionRec{ApplicationId: p.ApplicationId, ConfigurationProfileId: p.Id, VersionNumber: num,
			Description: in.Description, ContentType: in.ContentType, VersionLabel: in.VersionLabel,
			Content: content}
		return awsapi.PutJSON(tx, bucketVersions, versionKey(p.ApplicationId, p.Id, num), &v)
	})
	if err != nil {
		return nil, err
	}
	return versionResponse(&v), nil
}

// versionResponse is the HostedConfigurationVersion shape: metadata in headers, the content as the body.
func versionResponse(v *versionRec) *awsapi.Response {
	h := http.Header{}
	h.Set("Application-Id", v.ApplicationId)
	h.Set("Configuration-Profile-Id", v.ConfigurationProfileId)
	h.Set("Version-Number", strconv.Itoa(v.VersionNumber))
	h.Set("Content-Type", v.ContentType)
	if v.Description != "" {
		h.Set("Description", v.Description)
	}
	if v.VersionLabel != "" {
		h.Set("VersionLabel", v.VersionLabel)
	}
	body := v.Content
	if body == nil {
		body = []byte{}
	}
	return &awsapi.Response{Header: h, Body: body}
}

func (s *Service) loadVersion(tx store.Tx, app, prof string, n int) (*versionRec, error) {
	if _, err := s.loadProfile(tx, app, prof); err != nil {
		return nil, err
	}
	v, err := awsapi.LoadKey[versionRec](tx, bucketVersions, versionKey(app, prof, n))
	if err == nil && v == nil {
		err = notFound(strconv.Itoa(n), "Hosted configuration version %d not found in configuration profile %s",
			n, prof)
	}
	return v, err
}

func intInput(r *awsapi.Request, member string) int {
	switch v := r.Input[member].(type) {
	case interface{ Int64() (int64, error) }:
		n, _ := v.Int64()
		return int(n)
	case string:
		n, _ := strconv.Atoi(v)
		return n
	case float64:
		return int(v)
	}
	return 0
}

func (s *Service) getHostedVersion(r *awsapi.Request) (any, error) {
	app, _ := r.Input["ApplicationId"].(string)
	prof, _ := r.Input["ConfigurationProfileId"].(string)
	var v *versionRec
	err := s.store.View(func(tx store.Tx) (err error) {
		v, err = s.loadVersion(tx, app, prof, intInput(r, "VersionNumber"))
		return err
	})
	if err != nil {
		return nil, err
	}
	return versionResponse(v), nil
}

type versionSummary struct {
	ApplicationId          string `json:"ApplicationId"`
	ConfigurationProfileId string `json:"ConfigurationProfileId"`
	VersionNumber          int    `json:"VersionNumber"`
	Description            string `json:"Description,omitempty"`
	ContentType            string `json:"ContentType"`
	VersionLabel           string `json:"VersionLabel,omitempty"`
}

func (s *Service) listHostedVersions(r *awsapi.Request) (any, error) {
	app, _ := r.Input["ApplicationId"].(string)
	prof, _ := r.Input["ConfigurationProfileId"].(string)
	label, _ := r.Input["VersionLabel"].(string)
	var in struct {
		MaxResults int    `json:"MaxResults"`
		NextToken  string `json:"NextToken"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	var items []versionSummary
	err := s.store.View(func(tx store.Tx) error {
		if _, err := s.loadProfile(tx, app, prof); err != nil {
			return err
		}
		return awsapi.Each(tx, bucketVersions, func(v *versionRec) error {
			if v.ApplicationId != app || v.ConfigurationProfileId != prof {
				return nil
			}
			if label != "" && !matchLabel(label, v.VersionLabel) {
				return nil
			}
			items = append(items, versionSummary{v.ApplicationId, v.ConfigurationProfileId, v.VersionNumber,
				v.Description, v.ContentType, v.VersionLabel})
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	// Newest first, as AWS lists them.
	for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
		items[i], items[j] = items[j], items[i]
	}
	page, next, err := awsapi.Page(items, func(v versionSummary) string { return fmt.Sprintf("%010d", 1<<31-v.VersionNumber) },
		r.Operation+"/"+app+"/"+prof+"/"+label, in.NextToken, cmpOr(in.MaxResults, 50))
	if err != nil {
		return nil, badRequest("The next token is not valid")
	}
	if page == nil {
		page = []versionSummary{}
	}
	return listOut[versionSummary]{Items: page, NextToken: next}, nil
}

// matchLabel matches a version label against a filter, which may end in a * wildcard.
func matchLabel(filter, label string) bool {
	if p, ok := strings.CutSuffix(filter, "*"); ok {
		return strings.HasPrefix(label, p)
	}
	return filter == label
}

func (s *Service) deleteHostedVersion(r *awsapi.Request) (any, error) {
	app, _ := r.Input["ApplicationId"].(string)
	prof, _ := r.Input["ConfigurationProfileId"].(string)
	n := intInput(r, "VersionNumber")
	err := s.store.Batch(func(tx store.Tx) error {
		if _, err := s.loadVersion(tx, app, prof, n); err != nil {
			return err
		}
		return tx.Delete(bucketVersions, versionKey(app, prof, n))
	})
	return struct{}{}, err
}

// Deployment strategies.

func (s *Service) createStrategy(r *awsapi.Request) (any, error) {
	var in struct {
		Name                        string            `json:"Name"`
		Description                 string            `json:"Description"`
		DeploymentDurationInMinutes int               `json:"DeploymentDurationInMinutes"`
		FinalBakeTimeInMinutes      int               `json:"FinalBakeTimeInMinutes"`
		GrowthFactor                float64           `json:"GrowthFactor"`
		GrowthType                  string            `json:"GrowthType"`
		ReplicateTo                 string            `json:"ReplicateTo"`
		Tags                        map[string]string `json:"Tags"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	if in.GrowthType == "" {
		in.GrowthType = "LINEAR"
	}
	if in.ReplicateTo == "" {
		in.ReplicateTo = "NONE"
	}
	st := Strategy{Id: s.newID(), Name: in.Name, Description: in.Description,
		DeploymentDurationInMinutes: in.DeploymentDurationInMinutes, GrowthType: in.GrowthType,
		GrowthFactor: in.GrowthFactor, FinalBakeTimeInMinutes: in.FinalBakeTimeInMinutes, ReplicateTo: in.ReplicateTo}
	err := s.store.Batch(func(tx store.Tx) error {
		n, err := count(tx, bucketStrategies, "")
		if err != nil {
			return err
		}
		if n >= s.quotas.DeploymentStrategies {
			return quotaExceeded("The number of deployment strategies has reached the limit of %d",
				s.quotas.DeploymentStrategies)
		}
		return s.rec.Insert(tx, bucketStrategies, kindStrategy, st.Id, s.strategyARN(st.Id), &st, in.Tags)
	})
	if err != nil {
		return nil, err
	}
	return &st, nil
}

func (s *Service) getStrategy(r *awsapi.Request) (any, error) {
	id, _ := r.Input["DeploymentStrategyId"].(string)
	var st Strategy
	err := s.store.View(func(tx store.Tx) (err error) { st, err = s.loadStrategy(tx, id); return err })
	return st, err
}

func (s *Service) listStrategies(r *awsapi.Request) (any, error) {
	var in struct {
		MaxResults int    `json:"MaxResults"`
		NextToken  string `json:"NextToken"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	items := append([]Strategy(nil), Predefined...)
	err := s.store.View(func(tx store.Tx) error {
		return awsapi.Each(tx, bucketStrategies, func(st *Strategy) error { items = append(items, *st); return nil })
	})
	if err != nil {
		return nil, err
	}
	keyed := make([]struct {
		k  string
		st Strategy
	}, len(items))
	for i, st := range items {
		keyed[i].k, keyed[i].st = fmt.Sprintf("%04d", i), st
	}
	page, next, err := awsapi.Page(keyed, func(v struct {
		k  string
		st Strategy
	}) string {
		return v.k
	}, r.Operation, in.NextToken, cmpOr(in.MaxResults, 50))
	if err != nil {
		return nil, badRequest("The next token is not valid")
	}
	out := listOut[Strategy]{Items: []Strategy{}, NextToken: next}
	for _, p := range page {
		out.Items = append(out.Items, p.st)
	}
	return out, nil
}

func (s *Service) updateStrategy(r *awsapi.Request) (any, error) {
	var in struct {
		DeploymentStrategyId        string   `json:"DeploymentStrategyId"`
		Description                 *string  `json:"Description"`
		DeploymentDurationInMinutes *int     `json:"DeploymentDurationInMinutes"`
		FinalBakeTimeInMinutes      *int     `json:"FinalBakeTimeInMinutes"`
		GrowthFactor                *float64 `json:"GrowthFactor"`
		GrowthType                  *string  `json:"GrowthType"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	if _, ok := predefined(in.DeploymentStrategyId); ok {
		return nil, badRequestf("Predefined deployment strategy %s cannot be changed", in.DeploymentStrategyId)
	}
	var st Strategy
	err := s.store.Batch(func(tx store.Tx) (err error) {
		if st, err = s.loadStrategy(tx, in.DeploymentStrategyId); err != nil {
			return err
		}
		if in.Description != nil {
			st.Description = *in.Description
		}
		if in.DeploymentDurationInMinutes != nil {
			st.DeploymentDurationInMinutes = *in.DeploymentDurationInMinutes
		}
		if in.FinalBakeTimeInMinutes != nil {
			st.FinalBakeTimeInMinutes = *in.FinalBakeTimeInMinutes
		}
		if in.GrowthFactor != nil {
			st.GrowthFactor = *in.GrowthFactor
		}
		if in.GrowthType != nil {
			st.GrowthType = *in.GrowthType
		}
		return awsapi.PutJSON(tx, bucketStrategies, st.Id, &st)
	})
	return st, err
}

func (s *Service) deleteStrategy(r *awsapi.Request) (any, error) {
	id, _ := r.Input["DeploymentStrategyId"].(string)
	if _, ok := predefined(id); ok {
		return nil, badRequestf("Predefined deployment strategy %s cannot be deleted", id)
	}
	err := s.store.Batch(func(tx store.Tx) error {
		if _, err := s.loadStrategy(tx, id); err != nil {
			return err
		}
		return s.rec.Remove(tx, bucketStrategies, id, s.strategyARN(id))
	})
	return struct{}{}, err
}
