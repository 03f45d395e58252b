package greengrassv2

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	ggwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/greengrassv2"
)

// Candidate is one component the device asks the cloud to resolve (ResolveComponentCandidates'
// ComponentCandidate).
type Candidate struct {
	Name string
	// Version is the version the device resolved the component to so far, "" for none: the cloud keeps it while
	// it still runs on the platform and satisfies Requirements.
	Version string
	// Requirements are the version requirements on the component, by dependent: a component depending on it,
	// or RootDependent for the deployment's own pin.
	Requirements map[string]string
}

// RootDependent is the dependent that the deployment's own pin of a root component is sent under.
const RootDependent = "DEPLOYMENT"

// maxRounds bounds the rounds of resolution: requirements that keep changing the versions they choose (a cycle
// of requirements) never settle.
const maxRounds = 64

// resolveSet resolves roots (component → pinned version) and their dependencies, transitively, as the nucleus
// does: it sends the roots as candidates, reads the dependencies of the recipes the cloud answers, adds their
// requirements to the candidates (a component several components depend on carries all their requirements, which
// the cloud intersects) and asks again, each candidate at the version it has so far, until the answer is the set
// it asked about. A component no chosen component depends on any more is dropped in the next round.
//
// Errors: a *ggwire.ConflictError for a component the cloud has no fitting version of; a failure with
// CodeRecipeError for a requirement that does not parse, an answer that is not one recipe per candidate, or a set
// that does not settle; or the resolver's own (the cloud's).
func resolveSet(ctx context.Context, r Resolver, platform, roots map[string]string) (map[string]*ggwire.Recipe,
	error) {
	chosen := map[string]*ggwire.Recipe{}
	for round := 0; round < maxRounds; round++ {
		reqs, err := requirements(roots, chosen)
		if err != nil {
			return nil, err
		}
		names := sortedKeys(reqs)
		cands := make([]Candidate, len(names))
		for i, name := range names {
			cands[i] = Candidate{Name: name, Requirements: reqs[name]}
			if c := chosen[name]; c != nil {
				cands[i].Version = c.ComponentVersion
			}
		}
		got, err := r.Resolve(ctx, platform, cands)
		if err != nil {
			return nil, err
		}
		next := make(map[string]*ggwire.Recipe, len(got))
		for _, rec := range got {
			if _, asked := reqs[rec.ComponentName]; !asked || next[rec.ComponentName] != nil {
				return nil, agent.Failf(CodeRecipeError, "resolve components: the answer names %s, asked once for %s",
					rec.ComponentName, strings.Join(names, ", "))
			}
			next[rec.ComponentName] = rec
		}
		if len(next) != len(names) {
			return nil, agent.Failf(CodeRecipeError, "resolve components: %d answered for %d candidates (%s)", len(next), len(names),
				strings.Join(names, ", "))
		}
		if sameVersions(chosen, next) {
			return next, nil
		}
		chosen = next
	}
	return nil, agent.Failf(CodeRecipeError, "dependency resolution does not settle in %d rounds (cyclic requirements among %s)",
		maxRounds, strings.Join(sortedKeys(chosen), ", "))
}

// requirements returns, by component, the requirements on it: the roots' pins, and the dependencies of the chosen
// components the roots reach through chosen ones.
func requirements(roots map[string]string, chosen map[string]*ggwire.Recipe) (map[string]map[string]string, error) {
	reqs := map[string]map[string]string{}
	add := func(component, dependent, req string) {
		if reqs[component] == nil {
			reqs[component] = map[string]string{}
		}
		reqs[component][dependent] = req
	}
	seen := map[string]bool{}
	var walk func(name string) error
	walk = func(name string) error {
		r := chosen[name]
		if r == nil || seen[name] {
			return nil
		}
		seen[name] = true
		for _, dep := range sortedKeys(r.ComponentDependencies) {
			req := r.ComponentDependencies[dep].VersionRequirement
			if _, err := ggwire.ParseRequirement(req); err != nil {
				return agent.Failf(CodeRecipeError, "%s %s: dependency %s: %w", name, r.ComponentVersion, dep, err)
			}
			add(dep, name, req)
			if err := walk(dep); err != nil {
				return err
			}
		}
		return nil
	}
	for name, v := range roots {
		if _, err := ggwire.ParseRequirement("=" + v); err != nil {
			return nil, agent.Failf(CodeRecipeError, "root %s: %w", name, err)
		}
		add(name, RootDependent, "="+v)
	}
	for _, name := range sortedKeys(roots) {
		if err := walk(name); err != nil {
			return nil, err
		}
	}
	return reqs, nil
}

func sameVersions(a, b map[string]*ggwire.Recipe) bool {
	if len(a) != len(b) {
		return false
	}
	for name, r := range a {
		if o := b[name]; o == nil || o.ComponentVersion != r.ComponentVersion {
			return false
		}
	}
	return true
}

// conflict is the *ggwire.ConflictError of candidate c; known says whether the component has any version on the
// platform.
func conflict(c Candidate, known bool) *ggwire.ConflictError {
	reqs := map[string]string{}
	for d, r := range c.Requirements {
		if d == RootDependent {
			d = "" // the deployment, as ConflictError names it
		}
		reqs[d] = r
	}
	return &ggwire.ConflictError{Component: c.Name, Requirements: reqs, Known: known}
}

// SigningName is the signing name of the Greengrass V2 API, which ResolveComponentCandidates is signed with.
const SigningName = "greengrass"

// PathResolve is ResolveComponentCandidates' path (POST).
const PathResolve = "/greengrass/v2/resolveComponentCandidates"

// CloudResolver is the Resolver of a device that asks the cloud: ResolveComponentCandidates through the
// agent's transport (agent.APICaller), at its endpoint, signed with the device's keys when it signs.
type CloudResolver struct {
	Caller agent.APICaller
}

var _ Resolver = CloudResolver{}

type resolveRequest struct {
	Platform   resolvePlatform    `json:"platform"`
	Candidates []resolveCandidate `json:"componentCandidates"`
}

type resolvePlatform struct {
	Attributes map[string]string `json:"attributes"`
}

type resolveCandidate struct {
	Name         string            `json:"componentName"`
	Version      string            `json:"componentVersion,omitempty"`
	Requirements map[string]string `json:"versionRequirements,omitempty"`
}

type resolveResponse struct {
	Resolved []struct {
		ComponentName    string `json:"componentName"`
		ComponentVersion string `json:"componentVersion"`
		Recipe           []byte `json:"recipe"`
	} `json:"resolvedComponentVersions"`
}

// Resolve implements Resolver with one ResolveComponentCandidates call. The cloud fails the whole call with
// ResourceNotFoundException when one candidate has no fitting version; Resolve then asks about the candidates one
// at a time to name it, and once more without requirements to tell a component with no version on the platform
// (Known false) from requirements no version meets.
func (c CloudResolver) Resolve(ctx context.Context, platform map[string]string, cands []Candidate) (
	[]*ggwire.Recipe, error) {
	out, err := c.call(ctx, platform, cands)
	if !notFound(err) {
		return out, err
	}
	for _, cand := range cands {
		if _, err := c.call(ctx, platform, []Candidate{cand}); !notFound(err) {
			if err != nil {
				return nil, err
			}
			continue
		}
		_, err := c.call(ctx, platform, []Candidate{{Name: cand.Name}})
		switch {
		case notFound(err):
			return nil, conflict(cand, false)
		case err != nil:
			return nil, err
		}
		return nil, conflict(cand, true)
	}
	return nil, err // no candidate alone fails: the cloud changed between the calls; the loop asks again
}

func (c CloudResolver) call(ctx context.Context, platform map[string]string, cands []Candidate) (
	[]*ggwire.Recipe, error) {
	in := resolveRequest{Platform: resolvePlatform{Attributes: platform}, Candidates: make([]resolveCandidate, len(cands))}
	for i, cand := range cands {
		in.Candidates[i] = resolveCandidate{Name: cand.Name, Version: cand.Version, Requirements: cand.Requirements}
	}
	var out resolveResponse
	if err := c.Caller.CallAPI(ctx, SigningName, http.MethodPost, PathResolve, in, &out); err != nil {
		return nil, err
	}
	recipes := make([]*ggwire.Recipe, len(out.Resolved))
	for i, rv := range out.Resolved {
		r, err := ggwire.ParseRecipe(rv.Recipe)
		if err != nil {
			return nil, agent.Fail(CodeRecipeError, fmt.Errorf("recipe of %s %s from the cloud: %w", rv.ComponentName,
				rv.ComponentVersion, err))
		}
		if r.ComponentName != rv.ComponentName || r.ComponentVersion != rv.ComponentVersion {
			return nil, agent.Failf(CodeRecipeError, "the cloud resolved %s %s with the recipe of %s %s",
				rv.ComponentName, rv.ComponentVersion, r.ComponentName, r.ComponentVersion)
		}
		recipes[i] = r
	}
	return recipes, nil
}

func notFound(err error) bool {
	var ae *agent.APIError
	return errors.As(err, &ae) && ae.Code == wire.ErrResourceNotFound
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
