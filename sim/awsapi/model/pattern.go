package model

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Pattern is a model pattern compiled for Go. Patterns in botocore models are Java regular expressions, and the
// services match them against the whole value (Java's Matcher.matches), so a Pattern matches only when the entire
// value matches.
//
// Go's regexp (RE2) lacks some Java syntax; CompilePattern translates what it can:
//   - POSIX classes \p{Lower}, \p{Upper}, \p{Digit}, \p{Alpha}, \p{Alnum}, \p{Punct}, \p{Graph}, \p{Print},
//     \p{Blank}, \p{Cntrl}, \p{XDigit}, \p{Space}, \p{ASCII} (ASCII-only, as in Java) and their \P negations;
//     \p{IsX} becomes \p{X};
//   - possessive quantifiers (*+, ++, ?+, {n,m}+) become greedy ones, and atomic groups (?>…) plain groups: for a
//     whole-value match the result differs only on patterns written to fail by refusing to backtrack;
//   - bounded repeats above RE2's limit of 1000 are capped at 1000 below and left unbounded above; the shape's
//     own min/max length still bounds the value;
//   - lookaheads (?=…) and (?!…) at the very start of the pattern become separate prefix checks.
//
// Anything else Go cannot take (lookbehind, lookaheads elsewhere, class intersection, backreferences) is an
// error, so a model that needs it fails at Load rather than matching wrongly.
type Pattern struct {
	source string
	re     *regexp.Regexp
	must   []*regexp.Regexp // positive lookaheads at the start: each must match a prefix
	not    []*regexp.Regexp // negative lookaheads at the start: none may match a prefix
}

// CompilePattern translates a Java pattern from a model and compiles it for whole-value matching.
func CompilePattern(java string) (*Pattern, error) {
	p := &Pattern{source: java}
	rest := java
	caret := strings.HasPrefix(rest, "^")
	if caret {
		rest = rest[1:]
	}
	looked := false
	for strings.HasPrefix(rest, "(?=") || strings.HasPrefix(rest, "(?!") {
		end, err := closingParen(rest)
		if err != nil {
			return nil, fmt.Errorf("pattern %q: %w", java, err)
		}
		inner, err := translate(rest[3:end])
		if err != nil {
			return nil, fmt.Errorf("pattern %q: %w", java, err)
		}
		re, err := regexp.Compile(`\A(?:` + inner + `)`)
		if err != nil {
			return nil, fmt.Errorf("pattern %q: %w", java, err)
		}
		if rest[2] == '=' {
			p.must = append(p.must, re)
		} else {
			p.not = append(p.not, re)
		}
		rest = rest[end+1:]
		looked = true
	}
	if !looked {
		rest = java
	}
	body, err := translate(rest)
	if err != nil {
		return nil, fmt.Errorf("pattern %q: %w", java, err)
	}
	re, err := regexp.Compile(`\A(?:` + body + `)\z`)
	if err != nil {
		return nil, fmt.Errorf("pattern %q: %w", java, err)
	}
	p.re = re
	return p, nil
}

// MatchString reports whether the whole of s matches the pattern.
func (p *Pattern) MatchString(s string) bool {
	for _, re := range p.not {
		if re.MatchString(s) {
			return false
		}
	}
	for _, re := range p.must {
		if !re.MatchString(s) {
			return false
		}
	}
	return p.re.MatchString(s)
}

// String returns the pattern as the model writes it, which is what validation messages quote.
func (p *Pattern) String() string { return p.source }

// posixClasses maps Java's POSIX character class names (US-ASCII only, as Java defines them) to RE2 classes.
var posixClasses = map[string]string{
	"Lower": "[:lower:]", "Upper": "[:upper:]", "ASCII": "[:ascii:]", "Alpha": "[:alpha:]", "Digit": "[:digit:]",
	"Alnum": "[:alnum:]", "Punct": "[:punct:]", "Graph": "[:graph:]", "Print": "[:print:]", "Blank": "[:blank:]",
	"Cntrl": "[:cntrl:]", "XDigit": "[:xdigit:]", "Space": "[:space:]",
}

// maxRepeat is RE2's largest repeat count.
const maxRepeat = 1000

// translate rewrites one Java pattern (without leading lookaheads) into RE2 syntax.
func translate(src string) (string, error) {
	var b strings.Builder
	inClass := false
	quantified := false // the previous token was a quantifier, so a following + is possessive
	for i := 0; i < len(src); {
		c := src[i]
		if c == '\\' {
			if i+1 >= len(src) {
				return "", fmt.Errorf("trailing backslash")
			}
			n := src[i+1]
			switch n {
			case 'p', 'P':
				name, width, err := propertyName(src[i+2:])
				if err != nil {
					return "", err
				}
				b.WriteString(property(name, n == 'P', inClass))
				i += 2 + width
			case 'Q':
				end := strings.Index(src[i+2:], `\E`)
				lit := src[i+2:]
				if end >= 0 {
					lit = src[i+2 : i+2+end]
					i += 2 + end + 2
				} else {
					i = len(src)
				}
				b.WriteString(regexp.QuoteMeta(lit))
			case 'Z':
				b.WriteString(`\z`)
				i += 2
			case 'h', 'H', 'R', 'X', 'G', 'k':
				return "", fmt.Errorf(`unsupported escape \%c`, n)
			default:
				if n >= '1' && n <= '9' && !inClass {
					return "", fmt.Errorf(`backreference \%c is not supported`, n)
				}
				b.WriteString(src[i : i+2])
				i += 2
			}
			quantified = false
			continue
		}
		if inClass {
			switch {
			case c == '[':
				return "", fmt.Errorf("nested character class at offset %d is not supported", i)
			case c == '&' && strings.HasPrefix(src[i:], "&&"):
				return "", fmt.Errorf("character class intersection is not supported")
			case c == ']':
				inClass = false
			}
			b.WriteByte(c)
			i++
			continue
		}
		switch c {
		case '[':
			inClass = true
			b.WriteByte(c)
			i++
			// A ']' right after '[' or '[^' is literal in Java; RE2 agrees, so copy it through.
			if strings.HasPrefix(src[i:], "^") {
				b.WriteByte('^')
				i++
			}
			if strings.HasPrefix(src[i:], "]") {
				b.WriteByte(']')
				i++
			}
			quantified = false
		case '(':
			switch {
			case strings.HasPrefix(src[i:], "(?>"):
				b.WriteString("(?:")
				i += 3
			case strings.HasPrefix(src[i:], "(?="), strings.HasPrefix(src[i:], "(?!"),
				strings.HasPrefix(src[i:], "(?<="), strings.HasPrefix(src[i:], "(?<!"):
				return "", fmt.Errorf("lookaround at offset %d is not supported", i)
			case strings.HasPrefix(src[i:], "(?<"):
				b.WriteString("(?P<")
				i += 3
			case strings.HasPrefix(src[i:], "(?"):
				b.WriteString("(?")
				i += 2
			default:
				b.WriteByte('(')
				i++
			}
			quantified = false
		case '*', '+', '?':
			if quantified {
				// A quantifier after a quantifier: '+' makes it possessive (dropped), '?' lazy (kept).
				if c == '?' {
					b.WriteByte('?')
				}
				quantified = false
				i++
				continue
			}
			b.WriteByte(c)
			quantified = true
			i++
		case '{':
			end := strings.IndexByte(src[i:], '}')
			if end < 0 {
				b.WriteString(`\{`)
				i++
				quantified = false
				continue
			}
			rep, ok := repeat(src[i+1 : i+end])
			if !ok {
				// Not a repeat: Java, like RE2, takes the brace literally.
				b.WriteString(`\{`)
				i++
				quantified = false
				continue
			}
			b.WriteString(rep)
			i += end + 1
			quantified = true
		default:
			b.WriteByte(c)
			i++
			quantified = false
		}
	}
	if inClass {
		return "", fmt.Errorf("unterminated character class")
	}
	return b.String(), nil
}

// propertyName reads the name of \pX or \p{Name} from s (the text after \p) and the bytes it used.
func propertyName(s string) (string, int, error) {
	if s == "" {
		return "", 0, fmt.Errorf(`\p without a name`)
	}
	if s[0] != '{' {
		return s[:1], 1, nil
	}
	end := strings.IndexByte(s, '}')
	if end < 0 {
		return "", 0, fmt.Errorf(`unterminated \p{`)
	}
	return s[1:end], end + 1, nil
}

// property renders a Java \p{name} (negated for \P) for RE2, inside or outside a character class.
func property(name string, negated, inClass bool) string {
	if cls, ok := posixClasses[name]; ok {
		if negated {
			cls = "[:^" + cls[2:]
		}
		if inClass {
			return cls
		}
		return "[" + cls + "]"
	}
	name = strings.TrimPrefix(name, "Is")
	name = strings.TrimPrefix(name, "In")
	if negated {
		return `\P{` + name + `}`
	}
	return `\p{` + name + `}`
}

// repeat renders the inside of a {…} repeat for RE2, capping counts RE2 cannot take; ok is false when the text
// is not a repeat.
func repeat(inside string) (string, bool) {
	lo, hi, comma := strings.Cut(inside, ",")
	n, err := strconv.Atoi(lo)
	if err != nil || n < 0 {
		return "", false
	}
	if !comma {
		return "{" + strconv.Itoa(min(n, maxRepeat)) + "}", true
	}
	if hi == "" {
		return "{" + strconv.Itoa(min(n, maxRepeat)) + ",}", true
	}
	m, err := strconv.Atoi(hi)
	if err != nil || m < n {
		return "", false
	}
	if m > maxRepeat {
		return "{" + strconv.Itoa(min(n, maxRepeat)) + ",}", true
	}
	return "{" + strconv.Itoa(n) + "," + strconv.Itoa(m) + "}", true
}

// closingParen returns the index of the parenthesis closing the group that opens s.
func closingParen(s string) (int, error) {
	depth := 0
	inClass := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			i++
		case inClass:
			if c == ']' {
				inClass = false
			}
		case c == '[':
			inClass = true
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth == 0 {
				return i, nil
			}
		}
	}
	return 0, fmt.Errorf("unbalanced parenthesis")
}
