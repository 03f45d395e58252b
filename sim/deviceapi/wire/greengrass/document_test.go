package greengrass

import (
	"encoding/json"
	"testing"
)

func valid() Document {
	return Document{DeploymentID: "d", DeploymentType: TypeNew, GroupID: "g", GroupVersionID: "v",
		Core:      Core{ID: "c", ThingArn: "arn:aws:iot:us-east-1:123456789012:thing/core-1"},
		Functions: []Function{{ID: "f", Executable: "exit 0"}},
		Resources: []Resource{{ID: "r", S3: &S3Resource{Bucket: "b", Key: "k", DestinationPath: "/m"}}}}
}

func TestValidate(t *testing.T) {
	if err := valid().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Document){
		"no id":            func(d *Document) { d.DeploymentID = "" },
		"no group":         func(d *Document) { d.GroupID = "" },
		"unknown type":     func(d *Document) { d.DeploymentType = "Sideways" },
		"no version":       func(d *Document) { d.GroupVersionID = "" },
		"core not a thing": func(d *Document) { d.Core.ThingArn = "arn:aws:iot:us-east-1:1:cert/x" },
		"function twice":   func(d *Document) { d.Functions = append(d.Functions, d.Functions[0]) },
		"no executable":    func(d *Document) { d.Functions[0].Executable = " " },
		"two-line command": func(d *Document) { d.Functions[0].Executable = "a\nb" },
		"resource escapes": func(d *Document) { d.Resources[0].S3.DestinationPath = "/../.." },
		"resource no key":  func(d *Document) { d.Resources[0].S3.Key = "" },
		"bulk of bulk": func(d *Document) {
			*d = Document{DeploymentID: "b", DeploymentType: TypeBulk, Bulk: map[string]Document{"x": {DeploymentType: TypeBulk}}}
		},
		"bulk wrong core": func(d *Document) {
			*d = Document{DeploymentID: "b", DeploymentType: TypeBulk, Bulk: map[string]Document{"core-9": valid()}}
		},
		"bulk entry broken": func(d *Document) {
			e := valid()
			e.GroupID = ""
			*d = Document{DeploymentID: "b", DeploymentType: TypeBulk, Bulk: map[string]Document{"core-1": e}}
		},
	} {
		d := valid()
		mod(&d)
		if err := d.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	reset := Document{DeploymentID: "d", DeploymentType: TypeReset, GroupID: "g", Core: valid().Core}
	if err := reset.Validate(); err != nil {
		t.Errorf("reset: %v", err)
	}
	bulk := Document{DeploymentID: "b", DeploymentType: TypeBulk, Bulk: map[string]Document{"core-1": valid()}}
	if err := bulk.Validate(); err != nil {
		t.Fatal(err)
	}
	if g, ok := bulk.ForThing("core-1"); !ok || g.GroupID != "g" {
		t.Errorf("ForThing core-1: %+v %v", g, ok)
	}
	if _, ok := bulk.ForThing("core-2"); ok {
		t.Error("ForThing of a core the bulk has not")
	}
	env, err := valid().Envelope()
	if err != nil {
		t.Fatal(err)
	}
	if d, err := FromEnvelope(env); err != nil || d.GroupID != "g" {
		t.Fatalf("round trip %+v %v", d, err)
	}
	env.Kind = "robomaker"
	if _, err := FromEnvelope(env); err == nil {
		t.Error("another kind's envelope read")
	}
}

func TestThingNameAndResourceDir(t *testing.T) {
	for arn, want := range map[string]string{
		"arn:aws:iot:us-east-1:123456789012:thing/core-1": "core-1",
		"arn:aws:iot:us-east-1:123456789012:thing/":       "",
		"arn:aws:iot:us-east-1:123456789012:thing/a/b":    "",
		"arn:aws:s3:::thing/x":                            "",
		"core-1":                                          "",
	} {
		if got := ThingName(arn); got != want {
			t.Errorf("ThingName(%q) = %q, want %q", arn, got, want)
		}
	}
	for dest, want := range map[string]string{"/ml": "resources/ml", "ml/model/": "resources/ml/model", "/a/../b": "resources/b",
		"/": "", "": "", "/../x": "resources/x"} {
		got, ok := ResourceDir(dest)
		if got != want || ok != (want != "") {
			t.Errorf("ResourceDir(%q) = %q %v, want %q", dest, got, ok, want)
		}
	}
}

// FuzzDocument: any payload either fails to decode or validate, or validates and round-trips.
func FuzzDocument(f *testing.F) {
	b, _ := json.Marshal(valid())
	f.Add(b)
	f.Add([]byte(`{"deploymentType":"BulkDeployment","deploymentId":"x","bulk":{"a":{}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var d Document
		if json.Unmarshal(data, &d) != nil || d.Validate() != nil {
			return
		}
		env, err := d.Envelope()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := FromEnvelope(env); err != nil {
			t.Fatalf("a valid document does not round-trip: %v", err)
		}
		for _, r := range d.Resources {
			if r.S3 != nil {
				if dir, ok := ResourceDir(r.S3.DestinationPath); !ok || len(dir) < len("resources/") {
					t.Fatalf("resource dir %q", dir)
				}
			}
		}
	})
}
