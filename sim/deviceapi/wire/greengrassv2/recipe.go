// Package greengrassv2 is what the Greengrass V2 dialect and the device's Greengrass agent share: the component
// recipe (its types, JSON and YAML parsing, validation), semantic versions and version requirements, the
// configurationUpdate algorithm of the nucleus, dependency resolution, and the job document a deployment puts in
// an IoT job (a wire.Document of kind Kind).
//
// Recipe keys are case-insensitive, as the nucleus reads them ("componentName" is ComponentName), in JSON and in
// YAML alike.
package greengrassv2

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// RecipeFormatVersion is the one recipe format Greengrass V2 knows.
const RecipeFormatVersion = "2020-01-25"

// Component types (ComponentType).
const (
	TypeGeneric = "aws.greengrass.generic"
	TypeLambda  = "aws.greengrass.lambda"
	TypePlugin  = "aws.greengrass.plugin"
	TypeNucleus = "aws.greengrass.nucleus"
)

// Dependency types.
const (
	DependencyHard = "HARD" // the dependent restarts when the dependency changes state
	DependencySoft = "SOFT" // it does not
)

// Recipe is a component recipe.
type Recipe struct {
	RecipeFormatVersion    string                `json:"RecipeFormatVersion"`
	ComponentName          string                `json:"ComponentName"`
	ComponentVersion       string                `json:"ComponentVersion"`
	ComponentType          string                `json:"ComponentType,omitempty"`
	ComponentDescription   string                `json:"ComponentDescription,omitempty"`
	ComponentPublisher     string                `json:"ComponentPublisher,omitempty"`
	ComponentSource        string                `json:"ComponentSource,omitempty"`
	ComponentConfiguration *Configuration        `json:"ComponentConfiguration,omitempty"`
	ComponentDependencies  map[string]Dependency `json:"ComponentDependencies,omitempty"`
	Manifests              []Manifest            `json:"Manifests,omitempty"`
	// Lifecycle is the recipe-wide lifecycle, used by manifests that have none of their own.
	Lifecycle map[string]any `json:"Lifecycle,omitempty"`
}

// Configuration is ComponentConfiguration.
type Configuration struct {
	// DefaultConfiguration is the component's configuration before any deployment's configurationUpdate.
	DefaultConfiguration map[string]any `json:"DefaultConfiguration,omitempty"`
}

// Dependency is one entry of ComponentDependencies.
type Dependency struct {
	// VersionRequirement is a Requirement ("" allows any version).
	VersionRequirement string `json:"VersionRequirement,omitempty"`
	// DependencyType is DependencyHard (the default) or DependencySoft.
	DependencyType string `json:"DependencyType,omitempty"`
}

// Type returns the dependency type, HARD when the recipe leaves it out.
func (d Dependency) Type() string {
	if d.DependencyType == "" {
		return DependencyHard
	}
	return d.DependencyType
}

// Manifest is one platform's way of running the component.
type Manifest struct {
	Name string `json:"Name,omitempty"`
	// Platform is the attributes a device must have ("os", "architecture", …); a value "*" matches any, and a
	// value written /regex/ matches by regular expression. An empty platform matches every device.
	Platform Platform `json:"Platform,omitempty"`
	// Lifecycle is the manifest's lifecycle: step name (install, startup, run, shutdown, recover, bootstrap) →
	// a script string or a Step object; "Setenv" → environment. Parse it with Steps.
	Lifecycle map[string]any `json:"Lifecycle,omitempty"`
	// Selections name keys of the recipe-wide Lifecycle (a legacy form).
	Selections []string   `json:"Selections,omitempty"`
	Artifacts  []Artifact `json:"Artifacts,omitempty"`
}

// Platform is a manifest's platform attributes.
type Platform map[string]string

// Artifact is one artifact of a manifest.
type Artifact struct {
	// URI is s3://bucket/key, or docker:image for a Docker image.
	URI string `json:"URI"`
	// Digest is the base64 SHA-256 of the object; Algorithm names it ("SHA-256").
	Digest    string `json:"Digest,omitempty"`
	Algorithm string `json:"Algorithm,omitempty"`
	// Unarchive is NONE, ZIP or TAR.
	Unarchive  string      `json:"Unarchive,omitempty"`
	Permission *Permission `json:"Permission,omitempty"`
}

// Permission says who may read and execute an artifact: NONE, OWNER or ALL.
type Permission struct {
	Read    string `json:"Read,omitempty"`
	Execute string `json:"Execute,omitempty"`
}

// Step is one lifecycle step.
type Step struct {
	Script            string            `json:"Script"`
	Timeout           int               `json:"Timeout,omitempty"` // seconds; 0 means the nucleus default
	RequiresPrivilege bool              `json:"RequiresPrivilege,omitempty"`
	Skipif            string            `json:"Skipif,omitempty"`
	Setenv            map[string]string `json:"Setenv,omitempty"`
}

// Lifecycle steps.
const (
	StepInstall   = "install"
	StepStartup   = "startup"
	StepRun       = "run"
	StepShutdown  = "shutdown"
	StepRecover   = "recover"
	StepBootstrap = "bootstrap"
)

var lifecycleSteps = []string{StepInstall, StepStartup, StepRun, StepShutdown, StepRecover, StepBootstrap}

// S3Object is the bucket and key of an s3:// artifact URI.
type S3Object struct{ Bucket, Key string }

// S3 returns the bucket and key of an s3:// URI; ok is false for another scheme.
func (a Artifact) S3() (obj S3Object, ok bool, err error) {
	rest, found := strings.CutPrefix(a.URI, "s3://")
	if !found {
		return S3Object{}, false, nil
	}
	bucket, key, _ := strings.Cut(rest, "/")
	if bucket == "" || key == "" || strings.HasSuffix(key, "/") {
		return S3Object{}, true, fmt.Errorf("artifact URI %q is not s3://bucket/key", a.URI)
	}
	return S3Object{Bucket: bucket, Key: key}, true, nil
}

// Name is the artifact's file name on the device: the last element of its URI.
func (a Artifact) Name() string {
	u := a.URI
	if i := strings.LastIndexAny(u, "/:"); i >= 0 {
		u = u[i+1:]
	}
	return u
}

// RecipeError is a recipe that does not parse or breaks a rule; Field names the part ("ComponentVersion",
// "Manifests[1].Artifacts[0].URI"), empty when the recipe does not parse at all.
type RecipeError struct {
	Field string
	Msg   string
}

func (e *RecipeError) Error() string {
	if e.Field == "" {
		return "recipe: " + e.Msg
	}
	return "recipe: " + e.Field + ": " + e.Msg
}

// ParseRecipe parses a recipe in JSON or YAML (JSON when its first non-space byte is '{') and validates it.
// The error is a *RecipeError.
func ParseRecipe(data []byte) (*Recipe, error) {
	doc, err := decodeDocument(data)
	if err != nil {
		return nil, &RecipeError{Msg: err.Error()}
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil, &RecipeError{Msg: "a recipe is an object"}
	}
	// Re-encode the generic document and decode it into the struct: encoding/json matches keys to fields
	// case-insensitively, which is how the nucleus reads recipes, for both formats.
	buf, err := json.Marshal(obj)
	if err != nil {
		return nil, &RecipeError{Msg: err.Error()}
	}
	var r Recipe
	if err := json.Unmarshal(buf, &r); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, &RecipeError{Field: te.Field, Msg: fmt.Sprintf("is a %s, want a %s", te.Value, te.Type)}
		}
		return nil, &RecipeError{Msg: err.Error()}
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// decodeDocument decodes JSON or YAML into JSON values (maps with string keys, []any, string, float64, bool,
// nil).
func decodeDocument(data []byte) (any, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, errors.New("the recipe is empty")
	}
	if trimmed[0] == '{' {
		var v any
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("JSON does not parse: %v", err)
		}
		if dec.More() {
			return nil, errors.New("JSON has data after the recipe object")
		}
		return v, nil
	}
	var v any
	if err := yaml.Unmarshal(trimmed, &v); err != nil {
		return nil, fmt.Errorf("YAML does not parse: %v", err)
	}
	return jsonValue(v)
}

// jsonValue turns a decoded YAML value into JSON values: keys become strings, integers float64.
func jsonValue(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			c, err := jsonValue(e)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			c, err := jsonValue(e)
			if err != nil {
				return nil, err
			}
			out[fmt.Sprint(k)] = c
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			c, err := jsonValue(e)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case int:
		return float64(t), nil
	case int64:
		return float64(t), nil
	case uint64:
		return float64(t), nil
	case float64:
		if t != t || t > 1e308 || t < -1e308 { // NaN and infinities have no JSON form
			return nil, fmt.Errorf("the number %v has no JSON form", t)
		}
		return t, nil
	case string, bool, nil:
		return t, nil
	}
	// Timestamps and binary YAML scalars: keep their text.
	return fmt.Sprint(v), nil
}

// componentName is what Greengrass allows in a component name.
var componentName = regexp.MustCompile(`^[a-zA-Z0-9._\-]{1,128}$`)

// Validate checks what Greengrass checks of a recipe: the format version, a name and a semantic version, the
// component type, dependencies with valid requirements and types, manifests with valid platforms, lifecycles
// and artifact URIs. The error is a *RecipeError naming the first field at fault.
func (r *Recipe) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &RecipeError{Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	if r.RecipeFormatVersion == "" {
		return bad("RecipeFormatVersion", "is missing (want %s)", RecipeFormatVersion)
	}
	if r.RecipeFormatVersion != RecipeFormatVersion {
		return bad("RecipeFormatVersion", "is %q, want %s", r.RecipeFormatVersion, RecipeFormatVersion)
	}
	if r.ComponentName == "" {
		return bad("ComponentName", "is missing")
	}
	if !componentName.MatchString(r.ComponentName) {
		return bad("ComponentName", "%q must be 1-128 characters of letters, digits, '.', '_' and '-'",
			r.ComponentName)
	}
	if r.ComponentVersion == "" {
		return bad("ComponentVersion", "is missing")
	}
	if len(r.ComponentVersion) > 64 {
		return bad("ComponentVersion", "is longer than 64 characters")
	}
	if _, err := ParseVersion(r.ComponentVersion); err != nil {
		return bad("ComponentVersion", "%s: a component version is a semantic version MAJOR.MINOR.PATCH", err)
	}
	switch r.ComponentType {
	case "", TypeGeneric, TypeLambda, TypePlugin, TypeNucleus:
	default:
		return bad("ComponentType", "%q is not one of %s, %s, %s, %s", r.ComponentType, TypeGeneric, TypeLambda,
			TypePlugin, TypeNucleus)
	}
	for _, name := range sortedKeys(r.ComponentDependencies) {
		d := r.ComponentDependencies[name]
		field := "ComponentDependencies." + name
		if !componentName.MatchString(name) {
			return bad(field, "%q is not a component name", name)
		}
		if name == r.ComponentName {
			return bad(field, "a component cannot depend on itself")
		}
		if _, err := ParseRequirement(d.VersionRequirement); err != nil {
			return bad(field+".VersionRequirement", "%s", err)
		}
		if t := d.Type(); t != DependencyHard && t != DependencySoft {
			return bad(field+".DependencyType", "%q is not HARD or SOFT", d.DependencyType)
		}
	}
	if err := validateLifecycle("Lifecycle", r.Lifecycle); err != nil {
		return err
	}
	for i, m := range r.Manifests {
		field := fmt.Sprintf("Manifests[%d]", i)
		for _, k := range sortedKeys(m.Platform) {
			v := m.Platform[k]
			if pattern, ok := platformRegex(v); ok {
				if _, err := regexp.Compile(pattern); err != nil {
					return bad(field+".Platform."+k, "%q is not a regular expression: %v", v, err)
				}
			}
		}
		if err := validateLifecycle(field+".Lifecycle", m.Lifecycle); err != nil {
			return err
		}
		for j, a := range m.Artifacts {
			af := fmt.Sprintf("%s.Artifacts[%d]", field, j)
			if a.URI == "" {
				return bad(af+".URI", "is missing")
			}
			_, isS3, err := a.S3()
			switch {
			case err != nil:
				return bad(af+".URI", "%s", err)
			case !isS3 && !strings.HasPrefix(a.URI, "docker:"):
				return bad(af+".URI", "%q: an artifact URI is s3://bucket/key or docker:image", a.URI)
			}
			if a.Digest != "" && a.Algorithm != "" && a.Algorithm != "SHA-256" {
				return bad(af+".Algorithm", "%q is not SHA-256", a.Algorithm)
			}
			switch strings.ToUpper(a.Unarchive) {
			case "", "NONE", "ZIP", "TAR":
			default:
				return bad(af+".Unarchive", "%q is not NONE, ZIP or TAR", a.Unarchive)
			}
			if p := a.Permission; p != nil {
				for name, v := range map[string]string{"Read": p.Read, "Execute": p.Execute} {
					switch strings.ToUpper(v) {
					case "", "NONE", "OWNER", "ALL":
					default:
						return bad(af+".Permission."+name, "%q is not NONE, OWNER or ALL", v)
					}
				}
			}
		}
	}
	return nil
}

// validateLifecycle checks that every step is a script string or a Step object with a Script.
func validateLifecycle(field string, lc map[string]any) error {
	for _, k := range sortedKeys(lc) {
		if !isStep(k) {
			continue // Setenv and selection keys of the recipe-wide lifecycle
		}
		if _, err := step(lc[k]); err != nil {
			return &RecipeError{Field: field + "." + k, Msg: err.Error()}
		}
	}
	return nil
}

func isStep(k string) bool {
	for _, s := range lifecycleSteps {
		if strings.EqualFold(k, s) {
			return true
		}
	}
	return false
}

// step decodes one lifecycle step: a script string, or an object with a Script.
func step(v any) (Step, error) {
	switch t := v.(type) {
	case string:
		return Step{Script: t}, nil
	case map[string]any:
		buf, err := json.Marshal(t)
		if err != nil {
			return Step{}, err
		}
		var s Step
		if err := json.Unmarshal(buf, &s); err != nil {
			return Step{}, fmt.Errorf("is not a step (Script, Timeout, RequiresPrivilege, Skipif, Setenv): %v", err)
		}
		if s.Script == "" {
			return Step{}, errors.New("has no Script")
		}
		if s.Timeout < 0 {
			return Step{}, errors.New("has a negative Timeout")
		}
		return s, nil
	}
	return Step{}, fmt.Errorf("is a %T, want a script or an object with a Script", v)
}

// Steps returns the manifest's lifecycle steps by step name (install, startup, run, shutdown, recover,
// bootstrap), lower-cased. A Recipe that validated has only steps that decode.
func (m Manifest) Steps() (map[string]Step, error) {
	out := map[string]Step{}
	for k, v := range m.Lifecycle {
		if !isStep(k) {
			continue
		}
		s, err := step(v)
		if err != nil {
			return nil, fmt.Errorf("lifecycle %s: %w", k, err)
		}
		out[strings.ToLower(k)] = s
	}
	return out, nil
}

// platformRegex returns the pattern of a platform value written /regex/.
func platformRegex(v string) (string, bool) {
	if len(v) >= 2 && strings.HasPrefix(v, "/") && strings.HasSuffix(v, "/") {
		return v[1 : len(v)-1], true
	}
	return "", false
}

// Matches reports whether a device of the given attributes runs this platform: every attribute of p must be "*",
// match the device's value as /regex/, or equal it (case-insensitively, as the nucleus compares them).
func (p Platform) Matches(device map[string]string) bool {
	for k, want := range p {
		if want == "*" {
			continue
		}
		have, ok := lookupFoldString(device, k)
		if !ok {
			return false
		}
		if pattern, isRegex := platformRegex(want); isRegex {
			re, err := regexp.Compile(pattern)
			if err != nil || !re.MatchString(have) {
				return false
			}
			continue
		}
		if !strings.EqualFold(have, want) {
			return false
		}
	}
	return true
}

// Manifest returns the first manifest whose platform matches the device; ok is false when none does. A recipe
// without manifests has none for any device.
func (r *Recipe) Manifest(device map[string]string) (Manifest, bool) {
	for _, m := range r.Manifests {
		if m.Platform.Matches(device) {
			return m, true
		}
	}
	return Manifest{}, false
}

// Defaults returns the recipe's DefaultConfiguration (nil when it has none).
func (r *Recipe) Defaults() map[string]any {
	if r.ComponentConfiguration == nil {
		return nil
	}
	return r.ComponentConfiguration.DefaultConfiguration
}

// JSON returns the recipe as JSON.
func (r *Recipe) JSON() ([]byte, error) { return json.Marshal(r) }

// YAML returns the recipe as YAML, with the same keys as its JSON form.
func (r *Recipe) YAML() ([]byte, error) {
	buf, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	var v any
	if err := json.Unmarshal(buf, &v); err != nil {
		return nil, err
	}
	return yaml.Marshal(v)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func lookupFoldString(m map[string]string, key string) (string, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for _, k := range sortedKeys(m) {
		if strings.EqualFold(k, key) {
			return m[k], true
		}
	}
	return "", false
}
