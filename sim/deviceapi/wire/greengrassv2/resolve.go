package greengrassv2

import (
	"fmt"
	"sort"
	"strings"
)

// Versions returns the recipes of every available version of a component (none: the component is unknown).
type Versions func(name string) ([]*Recipe, error)

// ConflictError is a component no available version of which runs on the platform and satisfies what its
// dependents require: the nucleus fails such a deployment before touching the device.
type ConflictError struct {
	Component string
	// Requirements are the dependents' requirements, by dependent ("" is the deployment's own pin).
	Requirements map[string]string
	// Known is false when no version of the component exists at all.
	Known bool
}

func (e *ConflictError) Error() string {
	var parts []string
	for _, d := range sortedKeys(e.Requirements) {
		who := d
		if who == "" {
			who = "the deployment"
		}
		parts = append(parts, fmt.Sprintf("%s from %s", e.Requirements[d], who))
	}
	if !e.Known {
		return fmt.Sprintf("component %s has no version (required: %s)", e.Component, strings.Join(parts, ", "))
	}
	return fmt.Sprintf("no version of component %s runs on this platform and satisfies %s", e.Component,
		strings.Join(parts, ", "))
}

// ResolveDependencies picks the version of every component a deployment needs: the roots at their pinned
// versions, and their dependencies, transitively, each at a version that runs on the platform and satisfies the
// requirements of all its dependents. A dependency keeps the version it has as long as that still satisfies
// them, else takes the highest that does (the nucleus's preference for the newest). Components no chosen
// component depends on any more are dropped.
//
// It returns the chosen recipes by name, or a *ConflictError for the first component that cannot be satisfied.
// Resolution is greedy and does not backtrack, as the nucleus's is not: a conflict that an older version of a
// dependent would avoid is still a conflict.
func ResolveDependencies(roots map[string]string, platform map[string]string, versions Versions) (
	map[string]*Recipe, error) {
	reqs := map[string]map[string]Requirement{} // component → dependent → requirement
	for name, v := range roots {
		r, err := ParseRequirement("=" + v)
		if err != nil {
			return nil, fmt.Errorf("root %s: %w", name, err)
		}
		reqs[name] = map[string]Requirement{"": r}
	}
	chosen := map[string]*Recipe{}
	queue := sortedKeys(roots)
	// Each component can change version at most once per available version before requirements repeat; the
	// bound stops a cycle of requirements that would otherwise flip versions forever.
	budget := 1000 + 100*len(roots)
	for len(queue) > 0 {
		if budget--; budget < 0 {
			return nil, fmt.Errorf("dependency resolution does not settle (cyclic requirements among %s)",
				strings.Join(sortedKeys(reqs), ", "))
		}
		name := queue[0]
		queue = queue[1:]
		if len(reqs[name]) == 0 {
			continue
		}
		pick, err := pickVersion(name, chosen[name], reqs[name], platform, versions)
		if err != nil {
			return nil, err
		}
		if old := chosen[name]; old != nil && old.ComponentVersion == pick.ComponentVersion {
			continue
		}
		if old := chosen[name]; old != nil {
			for dep := range old.ComponentDependencies {
				delete(reqs[dep], name)
				queue = append(queue, dep)
			}
		}
		chosen[name] = pick
		for _, dep := range sortedKeys(pick.ComponentDependencies) {
			r, err := ParseRequirement(pick.ComponentDependencies[dep].VersionRequirement)
			if err != nil {
				return nil, fmt.Errorf("%s %s: dependency %s: %w", name, pick.ComponentVersion, dep, err)
			}
			if reqs[dep] == nil {
				reqs[dep] = map[string]Requirement{}
			}
			reqs[dep][name] = r
			queue = append(queue, dep)
		}
	}
	// Keep what the roots reach.
	keep := map[string]*Recipe{}
	var walk func(string)
	walk = func(name string) {
		r := chosen[name]
		if r == nil || keep[name] != nil {
			return
		}
		keep[name] = r
		for dep := range r.ComponentDependencies {
			walk(dep)
		}
	}
	for _, name := range sortedKeys(roots) {
		walk(name)
	}
	return keep, nil
}

// pickVersion keeps current when it satisfies reqs on the platform, else takes the highest version that does.
func pickVersion(name string, current *Recipe, reqs map[string]Requirement, platform map[string]string,
	versions Versions) (*Recipe, error) {
	all, err := versions(name)
	if err != nil {
		return nil, fmt.Errorf("versions of %s: %w", name, err)
	}
	fitsAll := func(r *Recipe) bool {
		if _, ok := r.Manifest(platform); !ok && len(r.Manifests) > 0 {
			return false
		}
		v, err := ParseVersion(r.ComponentVersion)
		if err != nil {
			return false
		}
		for _, req := range reqs {
			if !req.Allows(v) {
				return false
			}
		}
		return true
	}
	if current != nil && fitsAll(current) {
		return current, nil
	}
	var best *Recipe
	var bestV Version
	for _, r := range all {
		if !fitsAll(r) {
			continue
		}
		v, _ := ParseVersion(r.ComponentVersion)
		if best == nil || v.Compare(bestV) > 0 {
			best, bestV = r, v
		}
	}
	if best == nil {
		text := map[string]string{}
		for d, r := range reqs {
			text[d] = r.String()
		}
		return nil, &ConflictError{Component: name, Requirements: text, Known: len(all) > 0}
	}
	return best, nil
}

// StartOrder returns the components in the order the nucleus starts them: every component after all it depends
// on (HARD or SOFT), ties by name. A dependency cycle is an error naming it.
func StartOrder(components map[string]*Recipe) ([]string, error) {
	const (
		unseen = iota
		visiting
		done
	)
	state := map[string]int{}
	var order []string
	var path []string
	var visit func(string) error
	visit = func(name string) error {
		switch state[name] {
		case done:
			return nil
		case visiting:
			i := 0
			for path[i] != name {
				i++
			}
			return fmt.Errorf("dependency cycle: %s → %s", strings.Join(path[i:], " → "), name)
		}
		state[name] = visiting
		path = append(path, name)
		r := components[name]
		deps := sortedKeys(r.ComponentDependencies)
		for _, dep := range deps {
			if _, ok := components[dep]; !ok {
				continue // outside the set: already running or not part of this deployment
			}
			if err := visit(dep); err != nil {
				return err
			}
		}
		path = path[:len(path)-1]
		state[name] = done
		order = append(order, name)
		return nil
	}
	names := make([]string, 0, len(components))
	for n := range components {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return order, nil
}
