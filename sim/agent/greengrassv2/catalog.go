package greengrassv2

import (
	"context"
	"fmt"
	"sort"
	"sync"

	ggwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/greengrassv2"
)

// Catalog is a Resolver over recipes held in memory, standing for the cloud in tests and in hosts that serve
// no ResolveComponentCandidates: it resolves each candidate as the cloud does, among the versions added whose
// recipe runs on the platform. It is safe for concurrent use.
type Catalog struct {
	mu      sync.Mutex
	recipes map[string][]*ggwire.Recipe
	asked   []string
}

var _ Resolver = (*Catalog)(nil)

// Add adds recipes to the catalog; each must validate, and a component version may be added once.
func (c *Catalog) Add(recipes ...*ggwire.Recipe) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.recipes == nil {
		c.recipes = map[string][]*ggwire.Recipe{}
	}
	for _, r := range recipes {
		if err := r.Validate(); err != nil {
			return err
		}
		for _, have := range c.recipes[r.ComponentName] {
			if have.ComponentVersion == r.ComponentVersion {
				return fmt.Errorf("catalog: component %s %s added twice", r.ComponentName, r.ComponentVersion)
			}
		}
		c.recipes[r.ComponentName] = append(c.recipes[r.ComponentName], r)
	}
	return nil
}

// Resolve implements Resolver.
func (c *Catalog) Resolve(_ context.Context, platform map[string]string, cands []Candidate) ([]*ggwire.Recipe,
	error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*ggwire.Recipe, 0, len(cands))
	for _, cand := range cands {
		c.asked = append(c.asked, cand.Name)
		r, err := c.pick(platform, cand)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// pick is the version cand resolves to: its own Version while it fits, else the highest that does.
func (c *Catalog) pick(platform map[string]string, cand Candidate) (*ggwire.Recipe, error) {
	reqs := make([]ggwire.Requirement, 0, len(cand.Requirements))
	for d, text := range cand.Requirements {
		req, err := ggwire.ParseRequirement(text)
		if err != nil {
			return nil, fmt.Errorf("catalog: requirement of %s on %s: %w", d, cand.Name, err)
		}
		reqs = append(reqs, req)
	}
	var best *ggwire.Recipe
	var bestV ggwire.Version
	known := false
	for _, r := range c.recipes[cand.Name] {
		if _, ok := r.Manifest(platform); !ok && len(r.Manifests) > 0 {
			continue
		}
		known = true
		v, err := ggwire.ParseVersion(r.ComponentVersion)
		if err != nil || !allows(reqs, v) {
			continue
		}
		if r.ComponentVersion == cand.Version {
			return r, nil
		}
		if best == nil || v.Compare(bestV) > 0 {
			best, bestV = r, v
		}
	}
	if best == nil {
		return nil, conflict(cand, known)
	}
	return best, nil
}

func allows(reqs []ggwire.Requirement, v ggwire.Version) bool {
	for _, req := range reqs {
		if !req.Allows(v) {
			return false
		}
	}
	return true
}

// Asked returns the component names Resolve was asked about, sorted, each once.
func (c *Catalog) Asked() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, n := range c.asked {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}
