package greengrassv2

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is a semantic version (semver 2.0.0): MAJOR.MINOR.PATCH with an optional pre-release and build.
// Component versions are Versions; the nucleus refuses any other form.
type Version struct {
	Major, Minor, Patch uint64
	// Pre are the dot-separated pre-release identifiers ("rc.1" → ["rc", "1"]); empty for a release.
	Pre []string
	// Build is the build metadata after '+', ignored in comparisons.
	Build string
}

// ParseVersion parses a semantic version such as "1.2.3", "1.2.3-rc.1" or "1.0.0+build.5". A leading 'v' or a
// missing part ("1.2") is an error, as it is for Greengrass.
func ParseVersion(s string) (Version, error) {
	var v Version
	rest := s
	if i := strings.IndexByte(rest, '+'); i >= 0 {
		v.Build = rest[i+1:]
		rest = rest[:i]
		if !validIdentifiers(v.Build, false) {
			return Version{}, fmt.Errorf("version %q: build metadata %q is not dot-separated [0-9A-Za-z-] identifiers",
				s, v.Build)
		}
	}
	if i := strings.IndexByte(rest, '-'); i >= 0 {
		pre := rest[i+1:]
		rest = rest[:i]
		if !validIdentifiers(pre, true) {
			return Version{}, fmt.Errorf("version %q: pre-release %q is not dot-separated [0-9A-Za-z-] identifiers "+
				"without leading zeros", s, pre)
		}
		v.Pre = strings.Split(pre, ".")
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return Version{}, fmt.Errorf("version %q is not MAJOR.MINOR.PATCH", s)
	}
	nums := [3]*uint64{&v.Major, &v.Minor, &v.Patch}
	for i, p := range parts {
		n, err := numeric(p)
		if err != nil {
			return Version{}, fmt.Errorf("version %q: %s", s, err)
		}
		*nums[i] = n
	}
	return v, nil
}

// numeric parses a version number: digits, no leading zero.
func numeric(p string) (uint64, error) {
	if p == "" {
		return 0, fmt.Errorf("empty number")
	}
	if len(p) > 1 && p[0] == '0' {
		return 0, fmt.Errorf("number %q has a leading zero", p)
	}
	n, err := strconv.ParseUint(p, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", p)
	}
	return n, nil
}

func validIdentifiers(s string, noLeadingZero bool) bool {
	if s == "" {
		return false
	}
	for _, id := range strings.Split(s, ".") {
		if id == "" {
			return false
		}
		digits := true
		for _, r := range id {
			switch {
			case r >= '0' && r <= '9':
			case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '-':
				digits = false
			default:
				return false
			}
		}
		if noLeadingZero && digits && len(id) > 1 && id[0] == '0' {
			return false
		}
	}
	return true
}

// String returns the version in its canonical form.
func (v Version) String() string {
	s := fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
	if len(v.Pre) > 0 {
		s += "-" + strings.Join(v.Pre, ".")
	}
	if v.Build != "" {
		s += "+" + v.Build
	}
	return s
}

// Compare orders versions by semver precedence: -1, 0 or +1. Build metadata does not count.
func (v Version) Compare(w Version) int {
	for _, d := range [][2]uint64{{v.Major, w.Major}, {v.Minor, w.Minor}, {v.Patch, w.Patch}} {
		if d[0] != d[1] {
			if d[0] < d[1] {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(v.Pre) == 0 && len(w.Pre) == 0:
		return 0
	case len(v.Pre) == 0:
		return 1
	case len(w.Pre) == 0:
		return -1
	}
	for i := 0; i < len(v.Pre) && i < len(w.Pre); i++ {
		if c := compareIdentifier(v.Pre[i], w.Pre[i]); c != 0 {
			return c
		}
	}
	switch {
	case len(v.Pre) < len(w.Pre):
		return -1
	case len(v.Pre) > len(w.Pre):
		return 1
	}
	return 0
}

func compareIdentifier(a, b string) int {
	an, aerr := strconv.ParseUint(a, 10, 64)
	bn, berr := strconv.ParseUint(b, 10, 64)
	switch {
	case aerr == nil && berr == nil:
		if an != bn {
			if an < bn {
				return -1
			}
			return 1
		}
		return 0
	case aerr == nil:
		return -1 // numeric identifiers sort before alphanumeric ones
	case berr == nil:
		return 1
	}
	return strings.Compare(a, b)
}

// Requirement is a version requirement as recipes and deployments write them: the npm range syntax the nucleus
// accepts (semver4j's NPM mode). A requirement is alternatives joined by "||"; each is comparators joined by
// spaces, all of which must hold:
//
//	1.2.3, =1.2.3, v1.2.3         exactly 1.2.3
//	>1.2.3 >=1.2.3 <2.0.0 <=2.0.0 comparisons
//	1.2.x, 1.2, 1.x, 1, *, x, ""  any version with the given prefix (any version at all for *, x and "")
//	~1.2.3, ~1.2, ~1              >=1.2.3 <1.3.0, >=1.2.0 <1.3.0, >=1.0.0 <2.0.0
//	^1.2.3, ^0.2.3, ^0.0.3, ^1.2  below the next change of the leftmost non-zero part
//	1.2.3 - 2.3.4                 >=1.2.3 <=2.3.4 (a partial upper bound is exclusive of its next part)
//
// Pre-release versions match by precedence only: npm's rule that a pre-release matches only a comparator with a
// pre-release on the same MAJOR.MINOR.PATCH is not applied (Greengrass components rarely carry pre-releases).
type Requirement struct {
	source string
	any    [][]comparator
}

type comparator struct {
	op string // "=", "<", "<=", ">", ">="
	v  Version
}

func (c comparator) holds(v Version) bool {
	d := v.Compare(c.v)
	switch c.op {
	case "<":
		return d < 0
	case "<=":
		return d <= 0
	case ">":
		return d > 0
	case ">=":
		return d >= 0
	}
	return d == 0
}

// ParseRequirement parses a version requirement; the error names the part that does not parse.
func ParseRequirement(s string) (Requirement, error) {
	r := Requirement{source: s}
	for _, alt := range strings.Split(s, "||") {
		set, err := parseRange(strings.TrimSpace(alt))
		if err != nil {
			return Requirement{}, fmt.Errorf("version requirement %q: %w", s, err)
		}
		r.any = append(r.any, set)
	}
	return r, nil
}

// String returns the requirement as written.
func (r Requirement) String() string { return r.source }

// Allows reports whether v satisfies the requirement.
func (r Requirement) Allows(v Version) bool {
	for _, set := range r.any {
		ok := true
		for _, c := range set {
			if !c.holds(v) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// partial is a version with possibly missing or wildcard parts: n is how many of major, minor, patch are given.
type partial struct {
	v Version
	n int
}

func parsePartial(s string) (partial, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "v"), "=")
	if s == "" || s == "*" || s == "x" || s == "X" {
		return partial{}, nil
	}
	core, tail := s, ""
	if i := strings.IndexAny(s, "-+"); i >= 0 {
		core, tail = s[:i], s[i:]
	}
	parts := strings.Split(core, ".")
	if len(parts) > 3 {
		return partial{}, fmt.Errorf("%q has more than three parts", s)
	}
	var p partial
	nums := [3]*uint64{&p.v.Major, &p.v.Minor, &p.v.Patch}
	for i, part := range parts {
		if part == "x" || part == "X" || part == "*" {
			break
		}
		n, err := numeric(part)
		if err != nil {
			return partial{}, fmt.Errorf("%q: %s", s, err)
		}
		*nums[i] = n
		p.n = i + 1
	}
	if tail != "" {
		if p.n < 3 {
			return partial{}, fmt.Errorf("%q has a pre-release or build on a partial version", s)
		}
		full, err := ParseVersion(core + tail)
		if err != nil {
			return partial{}, err
		}
		p.v = full
	}
	return p, nil
}

// next returns the smallest version above every version the partial's given parts cover (1.2 → 1.3.0-0 in
// effect; here 1.3.0, with the comparator "<").
func (p partial) next() Version {
	switch p.n {
	case 1:
		return Version{Major: p.v.Major + 1}
	case 2:
		return Version{Major: p.v.Major, Minor: p.v.Minor + 1}
	}
	return p.v
}

func (p partial) floor() Version {
	return Version{Major: p.v.Major, Minor: p.v.Minor, Patch: p.v.Patch, Pre: p.v.Pre}
}

// parseRange parses one alternative: a hyphen range or space-separated comparators.
func parseRange(s string) ([]comparator, error) {
	fields := strings.Fields(s)
	if len(fields) == 3 && fields[1] == "-" {
		lo, err := parsePartial(fields[0])
		if err != nil {
			return nil, err
		}
		hi, err := parsePartial(fields[2])
		if err != nil {
			return nil, err
		}
		set := []comparator{{">=", lo.floor()}}
		switch hi.n {
		case 0:
		case 3:
			set = append(set, comparator{"<=", hi.v})
		default:
			set = append(set, comparator{"<", hi.next()})
		}
		return set, nil
	}
	// Join an operator written apart from its version (">= 1.0.0").
	var terms []string
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		if strings.Trim(f, "<>=~^") == "" && i+1 < len(fields) {
			f += fields[i+1]
			i++
		}
		terms = append(terms, f)
	}
	if len(terms) == 0 {
		return []comparator{{">=", Version{}}}, nil
	}
	var set []comparator
	for _, t := range terms {
		cs, err := parseTerm(t)
		if err != nil {
			return nil, err
		}
		set = append(set, cs...)
	}
	return set, nil
}

func parseTerm(t string) ([]comparator, error) {
	op := ""
	for _, o := range []string{">=", "<=", ">", "<", "=", "~>", "~", "^"} {
		if strings.HasPrefix(t, o) {
			op, t = o, t[len(o):]
			break
		}
	}
	if t == "" {
		return nil, fmt.Errorf("operator %q without a version", op)
	}
	p, err := parsePartial(t)
	if err != nil {
		return nil, err
	}
	any := []comparator{{">=", Version{}}}
	switch op {
	case "", "=":
		switch p.n {
		case 0:
			return any, nil
		case 3:
			return []comparator{{"=", p.v}}, nil
		}
		return []comparator{{">=", p.floor()}, {"<", p.next()}}, nil
	case ">":
		switch p.n {
		case 0:
			return []comparator{{"<", Version{}}}, nil // nothing is above every version
		case 3:
			return []comparator{{">", p.v}}, nil
		}
		return []comparator{{">=", p.next()}}, nil
	case ">=":
		return []comparator{{">=", p.floor()}}, nil
	case "<":
		if p.n == 0 {
			return []comparator{{"<", Version{}}}, nil
		}
		return []comparator{{"<", p.floor()}}, nil
	case "<=":
		switch p.n {
		case 0:
			return any, nil
		case 3:
			return []comparator{{"<=", p.v}}, nil
		}
		return []comparator{{"<", p.next()}}, nil
	case "~", "~>":
		switch p.n {
		case 0:
			return any, nil
		case 1:
			return []comparator{{">=", p.floor()}, {"<", Version{Major: p.v.Major + 1}}}, nil
		}
		return []comparator{{">=", p.floor()}, {"<", Version{Major: p.v.Major, Minor: p.v.Minor + 1}}}, nil
	case "^":
		if p.n == 0 {
			return any, nil
		}
		var upper Version
		switch {
		case p.v.Major > 0 || p.n == 1:
			upper = Version{Major: p.v.Major + 1}
		case p.v.Minor > 0 || p.n == 2:
			upper = Version{Minor: p.v.Minor + 1}
		default:
			upper = Version{Patch: p.v.Patch + 1}
		}
		return []comparator{{">=", p.floor()}, {"<", upper}}, nil
	}
	return nil, fmt.Errorf("unknown operator in %q", t)
}
