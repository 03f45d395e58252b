package model

import "testing"

func TestCompilePattern(t *testing.T) {
	tests := []struct {
		java       string
		match, not []string
	}{
		// Plain patterns match the whole value, as the services apply them.
		{`[a-zA-Z0-9_\-]*`, []string{"", "fleet_1-a"}, []string{"fleet 1", "a/b"}},
		{`arn:.*`, []string{"arn:aws:x"}, []string{"xarn:", " arn:"}},
		{`(\$LATEST)|[0-9]*`, []string{"$LATEST", "12", ""}, []string{"$LATEST1", "1a"}},
		{`[a-z0-9][a-z0-9.\-]*[a-z0-9]`, []string{"my-bucket.1"}, []string{"-bucket", "Bucket"}},
		{`arn:aws:iam::\w+:role/.*`, []string{"arn:aws:iam::123:role/r"}, []string{"arn:aws:iam:::role/r"}},
		{`[\S\s]+`, []string{"a b\n"}, []string{""}},
		// Java's POSIX classes (ASCII only).
		{`[\p{Graph}\x20]*`, []string{"a b~"}, []string{"tab\t", "é"}},
		{`[\p{Upper}\p{Digit}_]+`, []string{"A_1"}, []string{"a", "É"}},
		{`\p{Alpha}+`, []string{"abc"}, []string{"ab1"}},
		{`\P{Digit}+`, []string{"abc"}, []string{"a1"}},
		{`[\p{ASCII}]*`, []string{"plain"}, []string{"é"}},
		{`\p{IsLatin}+`, []string{"abé"}, []string{"a1"}},
		// Possessive quantifiers become greedy ones.
		{`[^\p{C}]*+`, []string{"any text"}, []string{"bell\a"}},
		{`a++b?+`, []string{"aab", "a"}, []string{"b"}},
		{`a+?b`, []string{"aab"}, []string{"aa"}},
		{`(?>ab)+`, []string{"abab"}, []string{"aba"}},
		// Repeats above RE2's limit are capped below and unbounded above.
		{`\S{1,8192}`, []string{"x"}, []string{"", "a b"}},
		{`x{2000}`, []string{}, []string{"x"}},
		// Leading lookaheads become prefix checks.
		{`(?!enabled$)[a-z][a-zA-Z0-9_-]{0,63}`, []string{"enabledx", "disabled"}, []string{"enabled", "1abc"}},
		{`^(?!AWS\.).{1,64}$`, []string{"My.Thing", "AWS"}, []string{"AWS.Thing", ""}},
		{`(?=a)[a-c]+`, []string{"abc"}, []string{"bca"}},
		// Braces that are not repeats, quoting and named groups.
		{`a{x}`, []string{"a{x}"}, []string{"a"}},
		{`\Q.*\E!`, []string{".*!"}, []string{"ab!"}},
		{`(?<word>[a-z]+)`, []string{"abc"}, []string{"ABC"}},
	}
	for _, tc := range tests {
		p, err := CompilePattern(tc.java)
		if err != nil {
			t.Errorf("CompilePattern(%q): %v", tc.java, err)
			continue
		}
		if p.String() != tc.java {
			t.Errorf("String() = %q, want the model's text", p.String())
		}
		for _, s := range tc.match {
			if !p.MatchString(s) {
				t.Errorf("%q does not match %q", tc.java, s)
			}
		}
		for _, s := range tc.not {
			if p.MatchString(s) {
				t.Errorf("%q matches %q", tc.java, s)
			}
		}
	}
}

func TestCompilePatternRejects(t *testing.T) {
	for _, java := range []string{
		`a(?=b)`,      // lookahead not at the start
		`(?<=a)b`,     // lookbehind
		`(a)\1`,       // backreference
		`[a-z&&[^b]]`, // class intersection
		`[a[b]]`,      // nested class
		`[abc`,        // unterminated class
		`\`,           // trailing backslash
		`\p{`,         // unterminated property
		`(?!abc`,      // unbalanced lookahead
		`\h+`,         // Java-only escape
	} {
		if _, err := CompilePattern(java); err == nil {
			t.Errorf("CompilePattern(%q) succeeded", java)
		}
	}
}
