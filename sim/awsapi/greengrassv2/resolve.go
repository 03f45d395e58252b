package greengrassv2

import (
	"fmt"
	"sort"
	"strings"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	ggwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/greengrassv2"
	"github.com/fleetlab/fleetlab/sim/store"
)

type resolvedVersion struct {
	ARN              string `json:"arn"`
	ComponentName    string `json:"componentName"`
	ComponentVersion string `json:"componentVersion"`
	Recipe           []byte `json:"recipe"`
	VendorGuidance   string `json:"vendorGuidance"`
}

// resolveComponentCandidates picks, for each candidate, the version a device of the platform should run: the
// candidate's own componentVersion when it exists, runs on the platform and satisfies every requirement, else the
// highest version that does. A component that does not exist, or has no such version, fails the whole request
// with ResourceNotFoundException.
func (s *Service) resolveComponentCandidates(r *awsapi.Request) (any, error) {
	var in struct {
		Platform struct {
			Attributes map[string]string `json:"attributes"`
		} `json:"platform"`
		Candidates []struct {
			Name         string            `json:"componentName"`
			Version      string            `json:"componentVersion"`
			Requirements map[string]string `json:"versionRequirements"`
		} `json:"componentCandidates"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	type candidate struct {
		name, version string
		reqs          map[string]ggwire.Requirement
	}
	var cands []candidate
	for i, c := range in.Candidates {
		field := fmt.Sprintf("componentCandidates.%d.member", i+1)
		if c.Name == "" {
			return nil, fieldInvalid(field+".componentName", "A component candidate needs a componentName.")
		}
		reqs := map[string]ggwire.Requirement{}
		for dependent, text := range c.Requirements {
			req, err := ggwire.ParseRequirement(text)
			if err != nil {
				return nil, fieldInvalid(field+".versionRequirements."+dependent, "%s", err)
			}
			reqs[dependent] = req
		}
		cands = append(cands, candidate{name: c.Name, version: c.Version, reqs: reqs})
	}
	out := []resolvedVersion{}
	err := s.store.View(func(tx store.Tx) error {
		for _, c := range cands {
			versions, err := versionsOf(tx, c.name)
			if err != nil {
				return err
			}
			if len(versions) == 0 {
				return notFound(c.name, typeComponent, "The component %s does not exist.", c.name)
			}
			var chosen *versionRec
			var chosenRecipe *ggwire.Recipe
			for _, v := range versions {
				recipe, err := v.recipe()
				if err != nil {
					return err
				}
				if !fits(v, recipe, in.Platform.Attributes, c.reqs) {
					continue
				}
				if chosen == nil || v.Version == c.version {
					chosen, chosenRecipe = v, recipe
				}
				if v.Version == c.version {
					break
				}
			}
			if chosen == nil {
				return notFound(c.name, typeComponent, "No version of the component %s runs on the platform %v "+
					"and satisfies %s.", c.name, in.Platform.Attributes, describeRequirements(c.reqs))
			}
			recipe, err := chosenRecipe.JSON()
			if err != nil {
				return err
			}
			out = append(out, resolvedVersion{ARN: chosen.ARN, ComponentName: chosen.Name,
				ComponentVersion: chosen.Version, Recipe: recipe, VendorGuidance: "ACTIVE"})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return struct {
		Resolved []resolvedVersion `json:"resolvedComponentVersions"`
	}{out}, nil
}

// fits reports whether a version runs on the platform (a recipe without manifests runs anywhere) and satisfies
// every requirement.
func fits(v *versionRec, recipe *ggwire.Recipe, attributes map[string]string,
	reqs map[string]ggwire.Requirement) bool {
	if _, ok := recipe.Manifest(attributes); !ok && len(recipe.Manifests) > 0 {
		return false
	}
	sv := v.semver()
	for _, req := range reqs {
		if !req.Allows(sv) {
			return false
		}
	}
	return true
}

func describeRequirements(reqs map[string]ggwire.Requirement) string {
	if len(reqs) == 0 {
		return "no requirement"
	}
	var parts []string
	for dependent, req := range reqs {
		parts = append(parts, fmt.Sprintf("%s (from %s)", req, dependent))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
