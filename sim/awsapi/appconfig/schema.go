package appconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/store"
)

// Validator types.
const (
	ValidatorJSONSchema = "JSON_SCHEMA"
	ValidatorLambda     = "LAMBDA"
)

// noLoader refuses every reference outside the schema itself: nothing of a request reaches a file or the network.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("schema references %s, outside the schema", url)
}

// compileSchema compiles a JSON_SCHEMA validator's content (draft 4 unless it names another with $schema).
func compileSchema(content string) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(content))
	if err != nil {
		return nil, fmt.Errorf("the schema is not JSON: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft4)
	c.UseLoader(noLoader{})
	if err := c.AddResource("validator.json", doc); err != nil {
		return nil, err
	}
	return c.Compile("validator.json")
}

// checkValidators refuses validators that cannot be used: more than two, or a JSON schema that does not compile.
func checkValidators(vs []Validator) *awsapi.Error {
	if len(vs) > 2 {
		return badRequestf("A configuration profile can have at most 2 validators, not %d", len(vs))
	}
	for _, v := range vs {
		if v.Type != ValidatorJSONSchema {
			continue
		}
		if _, err := compileSchema(v.Content); err != nil {
			return badRequestf("The JSON schema validator is not valid: %v", err)
		}
	}
	return nil
}

// validate runs a profile's validators on a configuration; the error is the BadRequestException AWS gives a
// version that fails them, with the validator's reason.
func validate(vs []Validator, content []byte) *awsapi.Error {
	for _, v := range vs {
		switch v.Type {
		case ValidatorLambda:
			return badRequestf("The configuration profile has a LAMBDA validator (%s), which this service cannot "+
				"invoke", v.Content)
		case ValidatorJSONSchema:
			sch, err := compileSchema(v.Content)
			if err != nil {
				return badRequestf("The JSON schema validator is not valid: %v", err)
			}
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(content))
			if err != nil {
				return invalidConfiguration("The configuration is not valid JSON: "+err.Error(),
					invalidDetail{Constraint: "JSON", Location: "", Reason: err.Error(), Type: ValidatorJSONSchema})
			}
			if err := sch.Validate(doc); err != nil {
				var ve *jsonschema.ValidationError
				details := []invalidDetail{}
				if errors.As(err, &ve) {
					for _, leaf := range leaves(ve) {
						details = append(details, invalidDetail{Constraint: leaf.ErrorKind.KeywordPath()[0],
							Location: "/" + strings.Join(leaf.InstanceLocation, "/"), Reason: leaf.Error(),
							Type: ValidatorJSONSchema})
					}
				}
				msg := "The configuration does not satisfy its JSON schema validator"
				if len(details) > 0 {
					msg += ": " + details[0].Reason
				}
				return invalidConfiguration(msg, details...)
			}
		}
	}
	return nil
}

// leaves returns the innermost causes of a validation error.
func leaves(e *jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(e.Causes) == 0 {
		if len(e.ErrorKind.KeywordPath()) == 0 {
			return nil
		}
		return []*jsonschema.ValidationError{e}
	}
	var out []*jsonschema.ValidationError
	for _, c := range e.Causes {
		out = append(out, leaves(c)...)
	}
	return out
}

// featureFlags is the hosted document of an AWS.AppConfig.FeatureFlags profile.
type featureFlags struct {
	Version string                     `json:"version"`
	Flags   map[string]json.RawMessage `json:"flags"`
	Values  map[string]map[string]any  `json:"values"`
}

// checkFeatureFlags refuses a feature-flags document that is not one: version "1", flags, and values only for
// flags it declares, each with a boolean "enabled".
func checkFeatureFlags(content []byte) *awsapi.Error {
	var ff featureFlags
	dec := json.NewDecoder(bytes.NewReader(content))
	if err := dec.Decode(&ff); err != nil {
		return invalidConfiguration("The feature flags configuration is not valid JSON: "+err.Error(),
			invalidDetail{Constraint: "JSON", Reason: err.Error(), Type: "FeatureFlags"})
	}
	if ff.Version != "1" {
		return invalidConfiguration(fmt.Sprintf("The feature flags configuration has version %q, not \"1\"",
			ff.Version), invalidDetail{Constraint: "version", Location: "/version", Type: "FeatureFlags",
			Reason: "version must be \"1\"", Value: ff.Version})
	}
	if ff.Flags == nil {
		return invalidConfiguration("The feature flags configuration has no flags",
			invalidDetail{Constraint: "required", Location: "/flags", Type: "FeatureFlags", Reason: "flags is required"})
	}
	for _, name := range slices.Sorted(maps.Keys(ff.Values)) {
		if _, ok := ff.Flags[name]; !ok {
			return invalidConfiguration(fmt.Sprintf("The feature flags configuration has a value for %s, which is "+
				"not a flag", name), invalidDetail{Constraint: "flags", Location: "/values/" + name,
				Type: "FeatureFlags", Reason: "value of an undeclared flag"})
		}
		if _, ok := ff.Values[name]["enabled"].(bool); !ok {
			return invalidConfiguration(fmt.Sprintf("The value of flag %s has no boolean enabled", name),
				invalidDetail{Constraint: "enabled", Location: "/values/" + name + "/enabled", Type: "FeatureFlags",
					Reason: "enabled must be a boolean"})
		}
	}
	return nil
}

// flagValues is what AppConfigData serves of a feature-flags document: each flag's value, a flag without one
// disabled.
func flagValues(content []byte) []byte {
	var ff featureFlags
	if json.Unmarshal(content, &ff) != nil {
		return content
	}
	out := map[string]map[string]any{}
	for name := range ff.Flags {
		v := ff.Values[name]
		if v == nil {
			v = map[string]any{"enabled": false}
		}
		out[name] = v
	}
	data, err := json.Marshal(out)
	if err != nil {
		return content
	}
	return data
}

// validateConfiguration runs a profile's validators on one of its hosted versions, as StartDeployment does.
func (s *Service) validateConfiguration(r *awsapi.Request) (any, error) {
	app, _ := r.Input["ApplicationId"].(string)
	prof, _ := r.Input["ConfigurationProfileId"].(string)
	version, _ := r.Input["ConfigurationVersion"].(string)
	n, err := strconv.Atoi(version)
	if err != nil {
		return nil, badRequestf("Configuration version %s is not a hosted configuration version number", version)
	}
	var p *profileRec
	var v *versionRec
	err = s.store.View(func(tx store.Tx) (err error) {
		if p, err = s.loadProfile(tx, app, prof); err != nil {
			return err
		}
		v, err = s.loadVersion(tx, app, prof, n)
		return err
	})
	if err != nil {
		return nil, err
	}
	if e := validate(p.Validators, v.Content); e != nil {
		return nil, e
	}
	return struct{}{}, nil
}
