package deviceapi

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// validName accepts exactly what the model's patterns do.
func TestValidNameIsTheModelsPattern(t *testing.T) {
	patterns := []struct {
		re    *regexp.Regexp
		max   int
		colon bool
	}{
		{regexp.MustCompile(`^[a-zA-Z0-9:_-]{1,128}$`), 128, true}, // thingName, statusDetails keys
		{regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`), 64, false},   // jobId
	}
	inputs := []string{"", "a", "robot-1", "robot_1", "thing:1", "$next", "a b", "a/b", "ä", "a\x00", "-", ":",
		strings.Repeat("a", 64), strings.Repeat("a", 65), strings.Repeat("a", 128), strings.Repeat("a", 129),
		strings.Repeat("ä", 10), "a\n"}
	rnd := rand.New(rand.NewPCG(1, 2))
	valid, any := []rune("aZ09_-:"), []rune("aZ09_-:$ ./\x00\nä€")
	for i := range 5000 {
		alphabet := valid
		if i%2 == 1 {
			alphabet = any
		}
		r := make([]rune, rnd.IntN(140))
		for i := range r {
			r[i] = alphabet[rnd.IntN(len(alphabet))]
		}
		inputs = append(inputs, string(r))
	}
	for _, p := range patterns {
		for _, in := range inputs {
			if got, want := validName(in, p.max, p.colon), p.re.MatchString(in); got != want {
				t.Errorf("validName(%q, %d, %v) = %v, the pattern %s says %v", in, p.max, p.colon, got, p.re, want)
			}
		}
	}
}
