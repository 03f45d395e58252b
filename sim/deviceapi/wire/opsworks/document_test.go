package opsworks

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestValidate(t *testing.T) {
	app := &App{ID: "a", Releases: []Release{{DeploymentID: "d1"}}}
	for _, c := range Commands {
		d := Document{DeploymentID: "d", Command: c}
		err := d.Validate()
		isApp := false
		for _, a := range AppCommands {
			isApp = isApp || a == c
		}
		if isApp != (err != nil) {
			t.Errorf("%s without an app: %v", c, err)
		}
		d.App = app
		if err := d.Validate(); err != nil {
			t.Errorf("%s with an app: %v", c, err)
		}
	}
	for name, d := range map[string]Document{
		"no id":             {Command: Setup},
		"unknown command":   {DeploymentID: "d", Command: "reboot"},
		"deploy no release": {DeploymentID: "d", Command: Deploy, App: &App{ID: "a"}},
		"custom json":       {DeploymentID: "d", Command: Setup, CustomJSON: "{"},
	} {
		if d.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestRecipesFor(t *testing.T) {
	d := Document{Layers: map[string]Recipes{"a": {Setup: []string{"x::1"}, Deploy: []string{"x::d"}}, "b": {Setup: []string{"y"}}},
		Instances: map[string][]string{"h": {"a", "b"}}}
	if got := d.RecipesFor("h", Setup); !reflect.DeepEqual(got, []string{"x::1", "y"}) {
		t.Errorf("setup %q", got)
	}
	if got := d.RecipesFor("h", Deploy); !reflect.DeepEqual(got, []string{"x::d"}) {
		t.Errorf("deploy %q", got)
	}
	if got := d.RecipesFor("other", Setup); got != nil {
		t.Errorf("other host %q", got)
	}
}

func FuzzDocument(f *testing.F) {
	f.Add([]byte(`{"deploymentId":"d","command":"deploy","app":{"id":"a","releases":[{"deploymentId":"x"}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var d Document
		if json.Unmarshal(data, &d) != nil || d.Validate() != nil {
			return
		}
		if d.Command == Deploy && (d.App == nil || len(d.App.Releases) == 0) {
			t.Fatal("a deploy without a release validated")
		}
		if _, err := d.Envelope(); err != nil {
			t.Fatal(err)
		}
	})
}
