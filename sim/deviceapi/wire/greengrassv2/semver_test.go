package greengrassv2

import "testing"

func TestParseVersion(t *testing.T) {
	for _, s := range []string{"0.0.0", "1.2.3", "10.20.30", "1.0.0-rc.1", "1.0.0-alpha-1.x", "1.0.0+build.5",
		"1.0.0-rc.1+b"} {
		v, err := ParseVersion(s)
		if err != nil {
			t.Errorf("ParseVersion(%q): %v", s, err)
			continue
		}
		if v.String() != s {
			t.Errorf("ParseVersion(%q).String() = %q", s, v.String())
		}
	}
	for _, s := range []string{"", "1", "1.2", "v1.2.3", "1.2.3.4", "01.2.3", "1.02.3", "1.2.3-", "1.2.3-01",
		"1.2.3+", "1.2.3-a..b", "a.b.c", "1.2.-3", "1.2.3-é"} {
		if _, err := ParseVersion(s); err == nil {
			t.Errorf("ParseVersion(%q) succeeded", s)
		}
	}
}

func TestVersionCompare(t *testing.T) {
	// Ascending by semver precedence (semver.org §11).
	order := []string{"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
		"1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0", "10.0.0"}
	for i := range order {
		for j := range order {
			a, b := mustVersion(t, order[i]), mustVersion(t, order[j])
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := a.Compare(b); got != want {
				t.Errorf("%s vs %s = %d, want %d", order[i], order[j], got, want)
			}
		}
	}
	if mustVersion(t, "1.0.0+a").Compare(mustVersion(t, "1.0.0+b")) != 0 {
		t.Error("build metadata changes precedence")
	}
}

func TestRequirementAllows(t *testing.T) {
	cases := []struct {
		req     string
		yes, no []string
	}{
		{">=1.0.0 <2.0.0", []string{"1.0.0", "1.9.9"}, []string{"0.9.9", "2.0.0"}},
		{"^1.2", []string{"1.2.0", "1.9.0"}, []string{"1.1.9", "2.0.0"}},
		{"^1.2.3", []string{"1.2.3", "1.99.0"}, []string{"1.2.2", "2.0.0"}},
		{"^0.2.3", []string{"0.2.3", "0.2.9"}, []string{"0.3.0", "0.2.2"}},
		{"^0.0.3", []string{"0.0.3"}, []string{"0.0.4", "0.0.2"}},
		{"^0.0", []string{"0.0.0", "0.0.9"}, []string{"0.1.0"}},
		{"~1.2.3", []string{"1.2.3", "1.2.9"}, []string{"1.3.0", "1.2.2"}},
		{"~1.2", []string{"1.2.0", "1.2.9"}, []string{"1.3.0"}},
		{"~1", []string{"1.0.0", "1.9.9"}, []string{"2.0.0", "0.9.0"}},
		{"1.2.3", []string{"1.2.3"}, []string{"1.2.4"}},
		{"=1.2.3", []string{"1.2.3"}, []string{"1.2.2"}},
		{"v1.2.3", []string{"1.2.3"}, []string{"1.2.2"}},
		{"1.2.x", []string{"1.2.0", "1.2.7"}, []string{"1.3.0", "1.1.0"}},
		{"1.x", []string{"1.0.0", "1.7.0"}, []string{"2.0.0"}},
		{"1.2", []string{"1.2.5"}, []string{"1.3.0"}},
		{"*", []string{"0.0.0", "9.9.9"}, nil},
		{"", []string{"0.0.0", "3.1.4"}, nil},
		{">1.2", []string{"1.3.0"}, []string{"1.2.9"}},
		{"<=1.2", []string{"1.2.9"}, []string{"1.3.0"}},
		{"<1.2.3", []string{"1.2.2"}, []string{"1.2.3"}},
		{">= 1.0.0 < 2.0.0", []string{"1.5.0"}, []string{"2.0.0"}},
		{"1.2.3 - 2.3.4", []string{"1.2.3", "2.3.4"}, []string{"2.3.5", "1.2.2"}},
		{"1.2 - 2.3", []string{"1.2.0", "2.3.9"}, []string{"2.4.0"}},
		{"<1.0.0 || >=2.0.0", []string{"0.5.0", "2.0.0"}, []string{"1.0.0", "1.5.0"}},
	}
	for _, c := range cases {
		r, err := ParseRequirement(c.req)
		if err != nil {
			t.Errorf("ParseRequirement(%q): %v", c.req, err)
			continue
		}
		for _, v := range c.yes {
			if !r.Allows(mustVersion(t, v)) {
				t.Errorf("%q does not allow %s", c.req, v)
			}
		}
		for _, v := range c.no {
			if r.Allows(mustVersion(t, v)) {
				t.Errorf("%q allows %s", c.req, v)
			}
		}
	}
	for _, s := range []string{">=", "1.2.3.4", ">=a.b", "^01.2", "1.x-rc", "=> 1.0.0", "1.0.0 -"} {
		if _, err := ParseRequirement(s); err == nil {
			t.Errorf("ParseRequirement(%q) succeeded", s)
		}
	}
}

func mustVersion(t *testing.T, s string) Version {
	t.Helper()
	v, err := ParseVersion(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
