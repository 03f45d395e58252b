package greengrassv2

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	ggwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/greengrassv2"
	"github.com/fleetlab/fleetlab/sim/store"
)

// Store layout. A component version is kept at "<name>/<sequence>" in bucketVersions, so the versions of one
// component are one prefix; the shared records (awsapi.Records, buckets "greengrass.index", ".tags", ".tokens",
// ".meta", ".seq") find it by its ARN and by "version/<name>/<version>", find a component by its ARN
// ("component" → the name), and keep the tags of both.
const (
	bucketVersions = "greengrass.component-versions" // <name>/<seq> → versionRec
	kindVersion    = "version"
	kindComponent  = "component"
)

// versionRec is one component version.
type versionRec struct {
	Key          string          `json:"key"`
	Name         string          `json:"name"`
	Version      string          `json:"version"`
	ARN          string          `json:"arn"`
	ComponentARN string          `json:"componentArn"`
	CreatedAt    time.Time       `json:"createdAt"`
	Recipe       json.RawMessage `json:"recipe"` // the parsed recipe's JSON form
	Description  string          `json:"description,omitempty"`
	Publisher    string          `json:"publisher,omitempty"`
	Platforms    []platform      `json:"platforms,omitempty"`
}

func (v *versionRec) recipe() (*ggwire.Recipe, error) {
	var r ggwire.Recipe
	if err := json.Unmarshal(v.Recipe, &r); err != nil {
		return nil, fmt.Errorf("decode recipe of %s: %w", v.ARN, err)
	}
	return &r, nil
}

func (v *versionRec) semver() ggwire.Version {
	sv, _ := ggwire.ParseVersion(v.Version) // validated when created
	return sv
}

// platformList is the version's platforms, an empty list rather than none.
func (v *versionRec) platformList() []platform {
	if v.Platforms == nil {
		return []platform{}
	}
	return v.Platforms
}

// platform is ComponentPlatform.
type platform struct {
	Name       string            `json:"name,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// status is CloudComponentStatus: every stored version is deployable.
type status struct {
	ComponentState string            `json:"componentState"`
	Message        string            `json:"message"`
	Errors         map[string]string `json:"errors"`
	VendorGuidance string            `json:"vendorGuidance"`
}

func deployable() status {
	return status{ComponentState: "DEPLOYABLE", Message: "NONE", Errors: map[string]string{}, VendorGuidance: "ACTIVE"}
}

func (s *Service) componentARN(name string) string { return s.rec.ARN("components:" + name) }

func (s *Service) versionARN(name, version string) string {
	return s.rec.ARN("components:" + name + ":versions:" + version)
}

// platforms returns what DescribeComponent shows of a recipe's manifests: each manifest's platform, named after
// the manifest or, as AWS does when it has no name, after its os and architecture.
func platforms(r *ggwire.Recipe) []platform {
	var out []platform
	for _, m := range r.Manifests {
		name := m.Name
		if name == "" {
			var parts []string
			for _, k := range []string{"os", "architecture"} {
				if v, ok := m.Platform[k]; ok {
					parts = append(parts, v)
				}
			}
			name = strings.Join(parts, " ")
		}
		out = append(out, platform{Name: name, Attributes: m.Platform})
	}
	return out
}

type createOutput struct {
	ARN               string              `json:"arn"`
	ComponentName     string              `json:"componentName"`
	ComponentVersion  string              `json:"componentVersion"`
	CreationTimestamp awsapi.EpochSeconds `json:"creationTimestamp"`
	Status            status              `json:"status"`
}

func (s *Service) createComponentVersion(r *awsapi.Request) (any, error) {
	var in struct {
		InlineRecipe   []byte            `json:"inlineRecipe"`
		LambdaFunction json.RawMessage   `json:"lambdaFunction"`
		Tags           map[string]string `json:"tags"`
		ClientToken    string            `json:"clientToken"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	switch {
	case len(in.LambdaFunction) > 0 && len(in.InlineRecipe) > 0:
		return nil, validation(reasonOther, "Specify either inlineRecipe or lambdaFunction, not both.")
	case len(in.LambdaFunction) > 0:
		return nil, validation(reasonOther, "Components from Lambda functions are not supported by this service.")
	case len(in.InlineRecipe) == 0:
		return nil, validation(reasonOther, "You must specify either inlineRecipe or lambdaFunction.")
	}
	recipe, err := ggwire.ParseRecipe(in.InlineRecipe)
	if err != nil {
		return nil, fieldInvalid("inlineRecipe", "The recipe is not valid: %s", err)
	}
	if err := s.checkArtifacts(recipe); err != nil {
		return nil, err
	}
	canonical, err := recipe.JSON()
	if err != nil {
		return nil, err
	}
	name, version := recipe.ComponentName, recipe.ComponentVersion
	const scope = "CreateComponentVersion"
	var out json.RawMessage
	err = s.store.Batch(func(tx store.Tx) error {
		if in.ClientToken != "" {
			// One constant hash: a token answers the response it first got, whatever the request.
			cached, found, err := s.tokens.Lookup(tx, scope, in.ClientToken, "")
			if err != nil {
				return err
			}
			if found {
				out = json.RawMessage(cached)
				return nil
			}
		}
		arn := s.versionARN(name, version)
		entry := "version/" + name + "/" + version
		if _, _, exists, err := s.rec.Lookup(tx, entry); err != nil {
			return err
		} else if exists {
			return conflict(arn, typeComponentVersion, "The component %s version %s already exists.", name, version)
		}
		seq, _, err := s.rec.NextKey(tx)
		if err != nil {
			return err
		}
		now := s.clock.Now().UTC()
		rec := versionRec{Key: name + "/" + seq, Name: name, Version: version, ARN: arn,
			ComponentARN: s.componentARN(name), CreatedAt: now, Recipe: canonical,
			Description: recipe.ComponentDescription, Publisher: recipe.ComponentPublisher,
			Platforms: platforms(recipe)}
		if err := s.rec.Insert(tx, bucketVersions, kindVersion, rec.Key, arn, rec, in.Tags, entry); err != nil {
			return err
		}
		if err := s.rec.Index(tx, "arn/"+rec.ComponentARN, kindComponent, name); err != nil {
			return err
		}
		data, err := json.Marshal(createOutput{ARN: arn, ComponentName: name, ComponentVersion: version,
			CreationTimestamp: awsapi.EpochSeconds(now), Status: deployable()})
		if err != nil {
			return err
		}
		out = data
		if in.ClientToken != "" {
			return s.tokens.Record(tx, scope, in.ClientToken, "", string(data))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// checkArtifacts refuses a recipe whose s3:// artifacts the artifact store does not hold, naming every such URI
// as AWS does.
func (s *Service) checkArtifacts(r *ggwire.Recipe) error {
	if s.objects == nil {
		return nil
	}
	var missing []string
	seen := map[string]bool{}
	for _, m := range r.Manifests {
		for _, a := range m.Artifacts {
			obj, isS3, err := a.S3()
			if err != nil || !isS3 || seen[a.URI] {
				continue // a malformed URI was refused with the recipe
			}
			seen[a.URI] = true
			if _, err := s.objects.ETag(obj.Bucket, obj.Key); err != nil {
				missing = append(missing, a.URI+" = Specified artifact resource cannot be accessed")
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fieldInvalid("inlineRecipe", "Invalid Input: Encountered following errors in Artifacts: {%s}",
		strings.Join(missing, ", "))
}

// loadVersion finds a component version by its ARN, or answers ResourceNotFoundException.
func (s *Service) loadVersion(tx store.Tx, arn string) (*versionRec, error) {
	v, err := awsapi.LoadByARN[versionRec](s.rec, tx, arn, kindVersion, bucketVersions)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, notFound(arn, typeComponentVersion, "The component version %s does not exist.", arn)
	}
	return v, nil
}

// versionsOf returns the versions of a component, highest first.
func versionsOf(tx store.Tx, name string) ([]*versionRec, error) {
	var out []*versionRec
	err := tx.ForEach(bucketVersions, name+"/", func(k string, data []byte) error {
		var v versionRec
		if err := json.Unmarshal(data, &v); err != nil {
			return fmt.Errorf("decode %s/%s: %w", bucketVersions, k, err)
		}
		out = append(out, &v)
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].semver().Compare(out[j].semver()) > 0 })
	return out, err
}

func arnInput(r *awsapi.Request) string {
	arn, _ := r.Input["arn"].(string)
	return arn
}

type describeOutput struct {
	ARN               string              `json:"arn"`
	ComponentName     string              `json:"componentName"`
	ComponentVersion  string              `json:"componentVersion"`
	CreationTimestamp awsapi.EpochSeconds `json:"creationTimestamp"`
	Publisher         string              `json:"publisher,omitempty"`
	Description       string              `json:"description,omitempty"`
	Status            status              `json:"status"`
	Platforms         []platform          `json:"platforms"`
	Tags              map[string]string   `json:"tags"`
}

func (s *Service) describeComponent(r *awsapi.Request) (any, error) {
	var out describeOutput
	err := s.viewVersion(arnInput(r), func(v *versionRec, tags map[string]string) error {
		out = describeOutput{ARN: v.ARN, ComponentName: v.Name, ComponentVersion: v.Version,
			CreationTimestamp: awsapi.EpochSeconds(v.CreatedAt), Publisher: v.Publisher, Description: v.Description,
			Status: deployable(), Platforms: v.platformList(), Tags: tags}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// viewVersion calls fn with the component version arn names and its tags, in a read transaction; a version that
// does not exist is ResourceNotFoundException.
func (s *Service) viewVersion(arn string, fn func(v *versionRec, tags map[string]string) error) error {
	return s.store.View(func(tx store.Tx) error {
		v, err := s.loadVersion(tx, arn)
		if err != nil {
			return err
		}
		tags, err := s.rec.Tags(tx, v.ARN)
		if err != nil {
			return err
		}
		return fn(v, tags)
	})
}

type getOutput struct {
	RecipeOutputFormat string            `json:"recipeOutputFormat"`
	Recipe             []byte            `json:"recipe"`
	Tags               map[string]string `json:"tags"`
}

func (s *Service) getComponent(r *awsapi.Request) (any, error) {
	format, _ := r.Input["recipeOutputFormat"].(string)
	if format == "" {
		format = "JSON"
	}
	var out getOutput
	err := s.viewVersion(arnInput(r), func(v *versionRec, tags map[string]string) error {
		recipe := []byte(v.Recipe)
		if format == "YAML" {
			parsed, err := v.recipe()
			if err != nil {
				return err
			}
			if recipe, err = parsed.YAML(); err != nil {
				return err
			}
		}
		out = getOutput{RecipeOutputFormat: format, Recipe: recipe, Tags: tags}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

type latestVersion struct {
	ARN               string              `json:"arn"`
	ComponentVersion  string              `json:"componentVersion"`
	CreationTimestamp awsapi.EpochSeconds `json:"creationTimestamp"`
	Description       string              `json:"description,omitempty"`
	Publisher         string              `json:"publisher,omitempty"`
	Platforms         []platform          `json:"platforms"`
}

type componentItem struct {
	ARN           string        `json:"arn"`
	ComponentName string        `json:"componentName"`
	LatestVersion latestVersion `json:"latestVersion"`
}

type listInput struct {
	Scope      string `json:"scope"`
	MaxResults int    `json:"maxResults"`
	NextToken  string `json:"nextToken"`
}

// DefaultMaxResults is the page size of the List operations when maxResults is absent.
const DefaultMaxResults = 50

func (in listInput) limit() int {
	if in.MaxResults <= 0 {
		return DefaultMaxResults
	}
	return in.MaxResults
}

func badToken(err error) error {
	if errors.Is(err, awsapi.ErrBadToken) {
		return fieldInvalid("nextToken", "The nextToken is not valid for this request.")
	}
	return err
}

// listPage returns the page of items in's token and maxResults ask for (never nil, so that it encodes as a list)
// and the token of the next, or ValidationException for a token that is not one of scope's.
func listPage[T any](items []T, key func(T) string, scope string, in listInput) ([]T, string, error) {
	page, next, err := awsapi.Page(items, key, scope, in.NextToken, in.limit())
	if err != nil {
		return nil, "", badToken(err)
	}
	if page == nil {
		page = []T{}
	}
	return page, next, nil
}

func (s *Service) listComponents(r *awsapi.Request) (any, error) {
	var in listInput
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	items := []componentItem{}
	if in.Scope != "PUBLIC" {
		err := s.store.View(func(tx store.Tx) error {
			latest := map[string]*versionRec{}
			err := awsapi.Each(tx, bucketVersions, func(v *versionRec) error {
				if l := latest[v.Name]; l == nil || v.semver().Compare(l.semver()) > 0 {
					latest[v.Name] = v
				}
				return nil
			})
			for _, v := range latest {
				items = append(items, componentItem{ARN: v.ComponentARN, ComponentName: v.Name,
					LatestVersion: latestVersion{ARN: v.ARN, ComponentVersion: v.Version,
						CreationTimestamp: awsapi.EpochSeconds(v.CreatedAt), Description: v.Description,
						Publisher: v.Publisher, Platforms: v.platformList()}})
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Slice(items, func(i, j int) bool { return items[i].ComponentName < items[j].ComponentName })
	page, next, err := listPage(items, func(c componentItem) string { return c.ComponentName },
		"ListComponents/"+in.Scope, in)
	if err != nil {
		return nil, err
	}
	return struct {
		Components []componentItem `json:"components"`
		NextToken  string          `json:"nextToken,omitempty"`
	}{page, next}, nil
}

type versionItem struct {
	ComponentName    string `json:"componentName"`
	ComponentVersion string `json:"componentVersion"`
	ARN              string `json:"arn"`
	position         string
}

// listComponentVersions lists a component's versions highest first. Pages resume by position in that order, so
// a version created or deleted between two pages can shift the next page by one.
func (s *Service) listComponentVersions(r *awsapi.Request) (any, error) {
	var in listInput
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	arn := arnInput(r)
	var items []versionItem
	err := s.store.View(func(tx store.Tx) error {
		kind, name, found, err := s.rec.FindByARN(tx, arn)
		if err != nil {
			return err
		}
		if !found || kind != kindComponent {
			return notFound(arn, typeComponent, "The component %s does not exist.", arn)
		}
		versions, err := versionsOf(tx, name)
		for i, v := range versions {
			items = append(items, versionItem{ComponentName: v.Name, ComponentVersion: v.Version, ARN: v.ARN,
				position: fmt.Sprintf("%010d", i)})
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	page, next, err := listPage(items, func(v versionItem) string { return v.position },
		"ListComponentVersions/"+arn, in)
	if err != nil {
		return nil, err
	}
	return struct {
		ComponentVersions []versionItem `json:"componentVersions"`
		NextToken         string        `json:"nextToken,omitempty"`
	}{page, next}, nil
}

// deleteComponent deletes one component version, its tags and index entries; the component goes with its last
// version.
func (s *Service) deleteComponent(r *awsapi.Request) (any, error) {
	err := s.store.Batch(func(tx store.Tx) error {
		v, err := s.loadVersion(tx, arnInput(r))
		if err != nil {
			return err
		}
		if err := s.rec.Remove(tx, bucketVersions, v.Key, v.ARN, "version/"+v.Name+"/"+v.Version); err != nil {
			return err
		}
		rest, err := versionsOf(tx, v.Name)
		if err != nil || len(rest) > 0 {
			return err
		}
		if err := s.rec.PutTags(tx, v.ComponentARN, nil); err != nil {
			return err
		}
		return s.rec.Unindex(tx, "arn/"+v.ComponentARN)
	})
	if err != nil {
		return nil, err
	}
	return nil, nil
}

func (s *Service) getComponentVersionArtifact(r *awsapi.Request) (any, error) {
	name, _ := r.Input["artifactName"].(string)
	var obj ggwire.S3Object
	err := s.store.View(func(tx store.Tx) error {
		v, err := s.loadVersion(tx, arnInput(r))
		if err != nil {
			return err
		}
		recipe, err := v.recipe()
		if err != nil {
			return err
		}
		for _, m := range recipe.Manifests {
			for _, a := range m.Artifacts {
				o, isS3, err := a.S3()
				if err != nil || !isS3 {
					continue
				}
				if a.Name() == name || o.Bucket+"/"+o.Key == name || o.Key == name {
					obj = o
					return nil
				}
			}
		}
		return notFound(name, typeArtifact, "The component version %s has no artifact %s.", v.ARN, name)
	})
	if err != nil {
		return nil, err
	}
	scheme := "http"
	if r.HTTP.TLS != nil {
		scheme = "https"
	}
	segs := strings.Split(obj.Key, "/")
	for i, sg := range segs {
		segs[i] = url.PathEscape(sg)
	}
	return struct {
		PreSignedURL string `json:"preSignedUrl"`
	}{fmt.Sprintf("%s://%s/artifacts/%s/%s", scheme, r.HTTP.Host, url.PathEscape(obj.Bucket),
		strings.Join(segs, "/"))}, nil
}
